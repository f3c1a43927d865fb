// The main job: teacher -> baseline and distilled students over several seeds ->
// report.json + report.html. Used by `retort demo`.
#pragma once
#include <string>

#include "retort/options.h"

namespace retort {

struct DemoReport {
  std::string json_path, html_path;
  std::string table;  // the summary printed in the terminal
};

DemoReport run_demo(const Options& o);

// The language-model job on the King James Bible: a gpt teacher, a baseline student on
// labels and a distilled one (distill.*), generation samples -> runs/demo-lm/report.*.
DemoReport run_demo_lm(const Options& o);
// The settings `retort demo lm` starts from (configs/kjv-lm.toml holds the same), as TOML.
const std::string& lm_recipe_toml();

}  // namespace retort

// The main job: teacher -> baseline and distilled students over several seeds ->
// report.json + report.html. Used by `retort demo`.
#pragma once
#include <string>

#include "retort/config.h"

namespace retort {

struct DemoReport {
  std::string json_path, html_path;
  std::string table;  // the summary printed in the terminal
};

DemoReport run_demo(const Config& c);

}  // namespace retort

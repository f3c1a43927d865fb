// Options shared by `train` and `distill`: --resume / --fresh and the run folder.
#pragma once
#include <filesystem>

#include "common.h"

namespace retort::cli {

struct RunArgs {
  ConfigArgs config;
  bool resume = false;  // --resume
  bool fresh = false;   // --fresh
};

void add_run_args(CLI::App* cmd, RunArgs& args);
// runs/<run.name or fallback>; refuses to overwrite a run unless --resume/--fresh.
std::filesystem::path run_dir_for(const Config& c, const RunArgs& args, const std::string& fallback);

}  // namespace retort::cli

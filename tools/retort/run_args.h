// Options shared by `train` and `distill`: --resume / --fresh and the run folder.
#pragma once
#include <filesystem>

#include "common.h"

namespace retort {
struct CommandResult;  // retort/commands.h
}

namespace retort::cli {

struct RunArgs {
  ConfigArgs config;
  bool resume = false;  // --resume
  bool fresh = false;   // --fresh
};

void add_run_args(CLI::App* cmd, RunArgs& args);
// runs/<run.name or fallback>; refuses to overwrite a run unless --resume/--fresh.
std::filesystem::path run_dir_for(const Options& o, const RunArgs& args, const std::string& fallback);
// The result line on stdout; the report's headline and where report.html is on stderr (rank 0).
void print_command_result(const CommandResult& r);

}  // namespace retort::cli

#include "run_args.h"

#include <cstdio>

#include "retort/checkpoints.h"
#include "retort/commands.h"
#include "retort/distributed.h"
#include "retort/error.h"

namespace retort::cli {

void add_run_args(CLI::App* cmd, RunArgs& args) {
  add_config_args(cmd, args.config);
  cmd->add_flag("--resume", args.resume,
                "continue the run in the run folder from its last checkpoint (written each epoch and on Ctrl-C)");
  cmd->add_flag("--fresh", args.fresh, "delete what the run folder holds and start over");
}

std::filesystem::path run_dir_for(const Options& o, const RunArgs& args, const std::string& fallback) {
  const std::string& name = o.run.name.empty() ? fallback : o.run.name;
  std::filesystem::path dir = std::filesystem::path(o.run.dir) / name;
  if (args.resume && args.fresh) fail("--resume and --fresh exclude each other");
  if (args.fresh) std::filesystem::remove_all(dir);
  const bool has = has_checkpoint(dir / "checkpoints");
  if (!args.resume && has)
    fail("run folder ", dir.string(), " already holds a run; pass --resume to continue it, --fresh to start over, ",
         "or --set run.name=OTHER");
  // Asked to resume what is not there: say so rather than silently start over (rank 0 only).
  if (args.resume && !has && launch_env().rank == 0)
    std::fprintf(stderr, "resume: no checkpoint in %s; starting from step 0\n", (dir / "checkpoints").c_str());
  return dir;
}

void print_command_result(const CommandResult& r) {
  print_result(r.summary);
  if (!r.report.html.empty())
    std::fprintf(stderr, "%s\nreport: %s\n", r.report.headline.c_str(), r.report.html.c_str());
}

}  // namespace retort::cli

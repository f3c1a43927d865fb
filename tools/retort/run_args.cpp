#include "run_args.h"

#include "retort/error.h"

namespace retort::cli {

void add_run_args(CLI::App* cmd, RunArgs& args) {
  add_config_args(cmd, args.config);
  cmd->add_flag("--resume", args.resume,
                "continue the run in the run folder from its last checkpoint (written each epoch and on Ctrl-C)");
  cmd->add_flag("--fresh", args.fresh, "delete what the run folder holds and start over");
}

std::filesystem::path run_dir_for(const Config& c, const RunArgs& args, const std::string& fallback) {
  std::string name = c.get_string("run.name").empty() ? fallback : c.get_string("run.name");
  std::filesystem::path dir = std::filesystem::path(c.get_string("run.dir")) / name;
  if (args.resume && args.fresh) fail("--resume and --fresh exclude each other");
  if (args.fresh) std::filesystem::remove_all(dir);
  if (!args.resume && std::filesystem::exists(dir / "checkpoints" / "last.pt"))
    fail("run folder ", dir.string(), " already holds a run; pass --resume to continue it, --fresh to start over, ",
         "or --set run.name=OTHER");
  return dir;
}

}  // namespace retort::cli

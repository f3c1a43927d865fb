#include "common.h"

#include <ATen/Parallel.h>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "retort/config_schema.h"
#include "retort/distributed.h"
#include "retort/error.h"
#include "retort/guard.h"
#include "retort/progress.h"
#include "retort/runtime.h"

namespace retort::cli {

void add_config_args(CLI::App* cmd, ConfigArgs& args) {
  cmd->add_option("--config", args.file, "TOML file with settings (see `retort config` for every key)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", args.sets,
                  "override one key, e.g. --set train.epochs=5 --set model.hidden=256,128 (repeatable; "
                  "applied after --config)");
}

Config resolve_config(const ConfigArgs& args) { return Config::load(retort_schema(), args.file, args.sets); }

void setup_runtime(const RunOptions& run, bool data_parallel) {
  LaunchEnv env = launch_env();
  if (env.world_size > 1 && !data_parallel)
    fail("this command runs in one process, but the environment describes rank ", env.rank, " of ", env.world_size,
         " (", env.launcher, "); launch `retort train` or `retort distill` with torchrun or srun instead");
  if (env.rank == 0) warn_if_reference_blas();
  set_progress_enabled(env.rank == 0);
  int threads = configure_threads(static_cast<int>(run.threads));
  install_interrupt_handler();
  if (run.device != "cpu" && run.device.rfind("cuda", 0) != 0)
    throw retort::Error("run.device must be cpu or cuda[:N], got " + run.device);
  dist::init(env, std::chrono::milliseconds(int64_t(run.dist_timeout * 1000)));
  std::string who = env.world_size > 1 ? dist::describe() + ", " : "";
  std::fprintf(stderr, "retort: %s%d threads, BLAS %s, device %s\n", who.c_str(), threads, blas_backend().c_str(),
               run.device.c_str());
}

void print_result(const std::string& line) {
  if (dist::is_main()) std::printf("%s\n", line.c_str());
}

std::string iso_utc(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::shared_ptr<GuardDb> open_existing_db(const std::string& file, const std::string& to_create) {
  if (!std::filesystem::exists(file)) fail("no guard database at '", file, "'; ", to_create);
  return std::make_shared<GuardDb>(file);
}

void add_db_option(CLI::App* cmd, std::string& db) {
  cmd->add_option("--db", db, "the guard database `retort serve --db` uses")->capture_default_str();
}

}  // namespace retort::cli

#include "common.h"

#include <ATen/Parallel.h>
#include <cstdio>

#include "retort/error.h"
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

void setup_runtime(const Config& c) {
  warn_if_reference_blas();
  int threads = configure_threads(static_cast<int>(c.get_int("run.threads")));
  install_interrupt_handler();
  if (c.get_string("run.device") != "cpu" && c.get_string("run.device").rfind("cuda", 0) != 0)
    throw retort::Error("run.device must be cpu or cuda[:N], got " + c.get_string("run.device"));
  std::fprintf(stderr, "retort: %d threads, BLAS %s, device %s\n", threads, blas_backend().c_str(),
               c.get_string("run.device").c_str());
}

}  // namespace retort::cli

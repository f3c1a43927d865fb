// Pieces every subcommand shares: --config/--set, runtime set-up, run folders.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "retort/config.h"
#include "retort/options.h"

namespace retort {
class GuardDb;
}

namespace retort::cli {

struct ConfigArgs {
  std::string file;               // --config
  std::vector<std::string> sets;  // --set key=value (repeatable)
};

void add_config_args(CLI::App* cmd, ConfigArgs& args);
Config resolve_config(const ConfigArgs& args);
// Threads, the BLAS warning, Ctrl-C handling, and with `data_parallel` the process group the
// launcher describes (torchrun / Slurm variables; see retort/distributed.h). Without it, a
// launch of more than one process is refused. Prints one line about the set-up.
void setup_runtime(const RunOptions& run, bool data_parallel = false);
// Prints a result line on stdout (rank 0 only in a data-parallel job).
void print_result(const std::string& line);

// "2024-05-01T12:34:56Z"
std::string iso_utc(int64_t unix_seconds);
// The guard database at `file`; a missing one is an Error ending with `to_create` (listing or
// changing a database that does not exist would only create an empty one).
std::shared_ptr<GuardDb> open_existing_db(const std::string& file, const std::string& to_create);
// --db: the guard database `retort serve --db` uses, into `db`.
void add_db_option(CLI::App* cmd, std::string& db);

// Registration of each subcommand (defined in cmd_<name>.cpp).
void register_demo(CLI::App& app);
void register_train(CLI::App& app);
void register_distill(CLI::App& app);
void register_eval(CLI::App& app);
void register_config(CLI::App& app);
void register_generate(CLI::App& app);
void register_export(CLI::App& app);
void register_doctor(CLI::App& app);
void register_serve(CLI::App& app);
void register_keys(CLI::App& app);
void register_guard(CLI::App& app);
void register_guard_simulate(CLI::App& guard);   // cmd_simulate.cpp: `retort guard simulate`
void register_guard_campaigns(CLI::App& guard);  // cmd_campaigns.cpp: campaigns, explain, act
void register_intel(CLI::App& app);               // cmd_intel.cpp: export, grant
void register_intel_exchange(CLI::App& intel);    // cmd_intel_exchange.cpp: pull, push, partner

}  // namespace retort::cli

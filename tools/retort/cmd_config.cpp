// `retort config`: every key with its default and meaning, or the resolved config.
#include <cstdio>

#include "common.h"

namespace retort::cli {

void register_config(CLI::App& app) {
  auto* cmd = app.add_subcommand("config", "Print every configuration key with its default and meaning, "
                                           "or (with --config/--set) the resolved configuration as TOML");
  static ConfigArgs args;
  add_config_args(cmd, args);
  cmd->callback([] {
    Config c = resolve_config(args);
    std::fputs(c.to_toml().c_str(), stdout);
  });
}

}  // namespace retort::cli

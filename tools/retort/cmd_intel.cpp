// `retort intel`: threat intelligence with partner providers (STIX 2.1 over TAXII 2.1).
// export and grant live here; pull, push and partner in cmd_intel_exchange.cpp.
#include "common.h"

namespace retort::cli {

void register_intel(CLI::App& app) {
  CLI::App* intel = app.add_subcommand("intel", "share what the guard finds with partner providers (STIX 2.1 over TAXII 2.1)");
  intel->require_subcommand(1);
  register_intel_exchange(*intel);
}

}  // namespace retort::cli

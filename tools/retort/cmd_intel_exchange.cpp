// `retort intel pull | push | partner`: being written (issue 16).
#include "common.h"

namespace retort::cli {

void register_intel_exchange(CLI::App& intel) {}

}  // namespace retort::cli

// `retort keys` (placeholder while it is being written).
#include "common.h"

namespace retort::cli {

void register_keys(CLI::App& app) { (void)app; }

}  // namespace retort::cli

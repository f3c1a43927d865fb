// `retort serve` (placeholder while it is being written).
#include "common.h"

namespace retort::cli {

void register_serve(CLI::App& app) { (void)app; }

}  // namespace retort::cli

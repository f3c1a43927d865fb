// TAXII 2.1 at /taxii2/ (intel.taxii): being written (issue 16).
#include "serve/routes.h"

namespace retort::serve {

void add_taxii_routes(http::Transport& t, ServeContext& c) {}

}  // namespace retort::serve

// /dashboard (admin key): being written (issue 16).
#include "serve/routes.h"

namespace retort::serve {

void add_dashboard_routes(http::Transport& t, ServeContext& c) {}

}  // namespace retort::serve

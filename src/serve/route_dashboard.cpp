// /dashboard: the operator's page (dashboard_page.h: HTML, CSS and script built into the binary,
// nothing fetched from elsewhere) and its data at /dashboard/api/<view> (dashboard_data.h), which
// needs an admin key. The page itself holds no data, so it is served to anyone; it reads the key
// from the address's fragment (never sent to the server) or asks for it.
#include <memory>

#include "serve/dashboard_data.h"
#include "serve/dashboard_page.h"
#include "serve/routes.h"

namespace retort::serve {

namespace {

// The page may load only its own script and style and talk only to this server.
constexpr const char* kPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; frame-ancestors 'none'";

void send_static(http::Response& res, const std::string& body, const char* type) {
  res.set_content(body, type);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Content-Security-Policy", kPolicy);
}

}  // namespace

void add_dashboard_routes(http::Transport& t, ServeContext& c) {
  using Req = const http::Request&;
  using Res = http::Response&;
  auto data = std::make_shared<DashboardData>(c.chain, c.options);
  // The page's own files are the same for everyone and hold no data: served like /health, without
  // an audit row (a page load would otherwise read as three requests without a key).
  auto file = [&t](const char* path, const std::string& (*body)(), const char* type) {
    t.route("GET", path, [body, type](Req, Res res) { send_static(res, body(), type); });
  };
  file("/dashboard", dashboard_html, "text/html; charset=utf-8");
  file("/dashboard/", dashboard_html, "text/html; charset=utf-8");
  file("/dashboard/app.js", dashboard_js, "text/javascript; charset=utf-8");
  file("/dashboard/style.css", dashboard_css, "text/css; charset=utf-8");
  t.route("GET", R"(/dashboard/api/([A-Za-z_]+))", [&c, data](Req req, Res res) {
    c.chain.handle(req, res, "/dashboard/api/{view}", true, [data](const CallPtr& call, Req req, Res res) {
      if (!call->key->admin)
        throw ApiError(403, "invalid_request_error", "permission_denied",
                       cat("the key '", call->key->name, "' is not an admin key; the dashboard needs one (retort keys create --admin)"));
      GuardChain::send_json(res, 200, data->view(req.matches[1]));
      res.set_header("Cache-Control", "no-store");
    });
  });
}

}  // namespace retort::serve

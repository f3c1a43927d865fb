// /v1/admin/keys: GET lists, POST creates, DELETE /NAME revokes; admin keys only (the CLI's
// `retort keys` does the same on the database).
#include "serve/routes.h"

namespace retort::serve {

namespace {

json key_json(const ApiKey& k) {
  return {{"object", "api_key"}, {"name", k.name}, {"prefix", k.prefix}, {"created", k.created},
          {"rpm", k.limits.rpm}, {"tpm", k.limits.tpm}, {"quota_tokens", k.limits.quota_tokens},
          {"used_tokens", k.used_tokens}, {"admin", k.admin}, {"revoked", k.revoked}};
}

void create_key(GuardChain& chain, const http::Request& req, http::Response& res) {
  json b = parse_body(req.body);
  if (!b.contains("name") || !b.at("name").is_string()) bad_request("name", "'name' (a string) is required");
  auto limit = [&](const char* k) {
    if (!b.contains(k) || b.at(k).is_null()) return int64_t(0);
    if (!b.at(k).is_number_integer() || b.at(k).get<int64_t>() < 0) bad_request(k, cat("'", k, "' must be an integer >= 0"));
    return b.at(k).get<int64_t>();
  };
  KeyLimits l{limit("rpm"), limit("tpm"), limit("quota_tokens")};
  bool admin = b.contains("admin") && b.at("admin").is_boolean() && b.at("admin").get<bool>();
  std::pair<ApiKey, std::string> made;
  try {
    made = chain.keys().create(b.at("name").get<std::string>(), l, admin);
  } catch (const Error& e) {
    bad_request("name", e.what());
  }
  json out = key_json(made.first);
  out["key"] = made.second;
  GuardChain::send_json(res, 200, out);
}

}  // namespace

void add_admin_routes(http::Transport& t, ServeContext& c) {
  using Req = const http::Request&;
  using Res = http::Response&;
  t.route("GET", "/v1/admin/keys", [&c](Req req, Res res) {
    c.chain.handle(req, res, "/v1/admin/keys", true, [&c](const CallPtr& call, Req, Res res) {
      c.chain.require_admin(*call);
      json data = json::array();
      for (const auto& k : c.chain.keys().list()) data.push_back(key_json(k));
      GuardChain::send_json(res, 200, {{"object", "list"}, {"data", data}});
    });
  });
  t.route("POST", "/v1/admin/keys", [&c](Req req, Res res) {
    c.chain.handle(req, res, "/v1/admin/keys", true, [&c](const CallPtr& call, Req req, Res res) {
      c.chain.require_admin(*call);
      create_key(c.chain, req, res);
    });
  });
  t.route("DELETE", R"(/v1/admin/keys/([^/]+))", [&c](Req req, Res res) {
    c.chain.handle(req, res, "/v1/admin/keys/{name}", true, [&c](const CallPtr& call, Req req, Res res) {
      c.chain.require_admin(*call);
      std::string name = req.matches[1];
      if (!c.chain.keys().revoke(name)) throw ApiError(404, "invalid_request_error", "key_not_found", cat("no key named '", name, "'"));
      GuardChain::send_json(res, 200, {{"object", "api_key.deleted"}, {"name", name}, {"deleted", true}});
    });
  });
}

}  // namespace retort::serve

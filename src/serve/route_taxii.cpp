// TAXII 2.1 at /taxii2/ (intel.taxii): retort/taxii.h's TaxiiService on the transport. Each
// request runs inside the guard chain (one audit row each), but authenticates here, so that every
// refusal (no key, a blocked key) comes as a TAXII error message resource, not an OpenAI error.
#include <cctype>
#include <cmath>

#include "retort/base64.h"
#include "retort/taxii.h"
#include "serve/routes.h"

namespace retort::serve {

namespace {

// The key a request carries: "Authorization: Bearer KEY", "Token KEY" (taxii2-client's TokenAuth)
// or HTTP Basic with the key as the password (as the user name when the password is empty).
std::string credentials(const http::Request& req) {
  const std::string h = req.header("Authorization");
  const size_t space = h.find(' '), start = h.find_first_not_of(' ', space);
  if (space == std::string::npos || start == std::string::npos) return "";
  std::string scheme = h.substr(0, space), value = h.substr(start);
  for (char& c : scheme) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (scheme == "bearer" || scheme == "token") return value;
  if (scheme != "basic") return "";
  std::string pair;
  try {
    pair = base64_decode(value);
  } catch (const std::exception&) {
    return "\x01";  // sent, but not a key: answered as an unknown key
  }
  const size_t colon = pair.find(':');
  if (colon == std::string::npos) return pair;
  const std::string password = pair.substr(colon + 1);
  return password.empty() ? pair.substr(0, colon) : password;
}

void send(http::Response& res, const TaxiiResponse& t) {
  res.status = t.status;
  for (const auto& [k, v] : t.headers) res.set_header(k, v);
  res.set_content(t.body, t.content_type);
}

}  // namespace

void add_taxii_routes(http::Transport& t, ServeContext& c) {
  if (!c.options.intel.taxii) return;
  TaxiiOptions o;
  o.title = c.options.intel.provider;
  o.max_content_length = c.options.max_body;
  auto service = std::make_shared<TaxiiService>(std::make_shared<IntelStore>(c.chain.db()), o);

  // What the transport refuses by itself (a body over --max-body, an unknown path) as TAXII errors.
  c.chain.shape_transport_errors("/taxii2", [](http::Response& res, const std::string& message) {
    send(res, TaxiiService::error(res.status, "", message));
  });

  auto handler = [&c, service](const http::Request& req, http::Response& res) {
    c.chain.handle(
        req, res, "/taxii2/", /*needs_key=*/false,
        [&c, &service](const CallPtr& call, const http::Request& req, http::Response& res) {
          TaxiiRequest r;
          r.method = req.method;
          r.path = req.path.size() > 8 ? req.path.substr(8) : "";  // below "/taxii2/"
          r.query = req.query;
          r.host = req.header("Host");
          r.accept = req.header("Accept");
          r.content_type = req.header("Content-Type");
          r.body = req.body;
          try {
            const std::string token = credentials(req);
            r.credentials_sent = !token.empty();
            if (r.credentials_sent) r.key = c.chain.keys().authenticate(token);
            if (r.key) {
              call->key = r.key;
              call->audit.key_id = r.key->id;
              call->audit.key_name = r.key->name;
              c.chain.enforce(*call);  // a key the guard blocked is refused here too
            }
            send(res, service->handle(r));
          } catch (const ApiError& e) {
            TaxiiResponse err = TaxiiService::error(e.status, "", e.what());
            if (e.retry_after > 0)
              err.headers.push_back(
                  {"Retry-After", std::to_string(int64_t(std::ceil(e.retry_after)))});
            send(res, err);
          } catch (const std::exception& e) {
            send(res, TaxiiService::error(500, "", e.what()));
          }
        });
  };
  for (const char* method : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
    t.route(method, "/taxii2(/.*)?", handler);
}

}  // namespace retort::serve

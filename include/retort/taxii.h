// TAXII 2.1 (OASIS, cs01) over the intel store (retort/intel.h), without HTTP: a request below
// /taxii2/ in, status + headers + body out. src/serve/route_taxii.cpp puts it on `retort serve`'s
// transport inside the guard chain; tests may call it directly. No torch.
//
// Resources (one API root, "api1"; collections from intel_collections(), by id or alias):
//   GET    /taxii2/                                         discovery
//   GET    /taxii2/api1/                                    API root (max_content_length = serve's
//   max body) GET    /taxii2/api1/collections/[{id}/]                 collections a key may read or
//   write GET    /taxii2/api1/collections/{id}/objects/           envelope; added_after, limit,
//   next, match[...] POST   /taxii2/api1/collections/{id}/objects/           envelope in, 202 +
//   status resource out GET    /taxii2/api1/collections/{id}/objects/{oid}/     envelope of that
//   object's versions DELETE /taxii2/api1/collections/{id}/objects/{oid}/     its versions
//   (match[version], default all) GET    /taxii2/api1/collections/{id}/objects/{oid}/versions/ GET
//   /taxii2/api1/collections/{id}/manifest/ GET    /taxii2/api1/status/{status-id}/
// Every answer is application/taxii+json;version=2.1; every error a TAXII error message
// resource {title, description, http_status (a string, as the spec has it)}. Statuses: 401 no or
// unknown key, 403 a key without the right, 404 unknown resource, 405 wrong method, 406 an Accept
// without taxii+json 2.1, 415 a POST that is not taxii+json 2.1, 413 a body over
// max_content_length, 400 a bad filter / `next` / `limit` / JSON, 422 JSON that is not an envelope.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "retort/intel.h"

namespace retort {

inline constexpr const char* kTaxiiMediaType = "application/taxii+json;version=2.1";
inline constexpr const char* kStixMediaType = "application/stix+json;version=2.1";

struct TaxiiOptions {
  std::string title = "retort";          // the discovery resource's title (intel.provider)
  int64_t max_content_length = 1 << 20;  // bytes a POST may carry (= serve --max-body)
  int64_t default_page = 100;            // objects per page when `limit` is absent
  int64_t max_page = 1000;               // the most per page whatever `limit` asks
};

struct TaxiiRequest {
  std::string method;  // GET | POST | DELETE | ...
  std::string path;    // below /taxii2/: "", "api1/", "api1/collections/ID/objects/", ...
  std::string query;   // after '?', undecoded
  std::string host;    // the Host header: discovery names API roots as http://HOST/taxii2/api1/
  std::string accept, content_type, body;
  std::optional<ApiKey> key;      // the authenticated key; nullopt: none sent, or not a key
  bool credentials_sent = false;  // a key was sent (so nullopt means unknown or revoked)
};

struct TaxiiResponse {
  int status = 200;
  std::string content_type = kTaxiiMediaType;
  std::vector<std::pair<std::string, std::string>>
      headers;  // X-TAXII-Date-Added-First/Last, WWW-Authenticate
  std::string body;
};

class TaxiiService {
 public:
  TaxiiService(std::shared_ptr<IntelStore> store, TaxiiOptions options);
  // Never throws: every failure is a TAXII error message resource.
  TaxiiResponse handle(const TaxiiRequest& request) const;
  // An error message resource with its status (also for what the transport refuses by itself);
  // an empty title becomes the status's reason phrase.
  static TaxiiResponse error(int status, const std::string& title, const std::string& description);

  const IntelStore& store() const { return *store_; }

 private:
  std::shared_ptr<IntelStore> store_;
  TaxiiOptions o_;
};

}  // namespace retort

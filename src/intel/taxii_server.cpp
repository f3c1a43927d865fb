// TAXII 2.1 resources over the intel store (retort/taxii.h): paths, rights, paging, envelopes,
// manifests, versions, adding objects with status resources, and error message resources (the
// request's parts are read in taxii_request.cpp). HTTP-agnostic: route_taxii.cpp carries the bytes.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>

#include "intel/taxii_parts.h"
#include "retort/error.h"
#include "retort/json_depth.h"
#include "retort/stix.h"
#include "retort/taxii.h"

namespace retort {

using nlohmann::json;

using namespace taxii_detail;

namespace {

constexpr const char* kApiRoot = "api1";

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// ---- answers -------------------------------------------------------------------------

const char* reason_phrase(int status) {
  static const std::pair<int, const char*> kPhrases[] = {
      {400, "Bad Request"},        {401, "Unauthorized"},       {403, "Forbidden"},
      {404, "Not Found"},          {405, "Method Not Allowed"}, {406, "Not Acceptable"},
      {413, "Payload Too Large"},  {415, "Unsupported Media Type"}, {422, "Unprocessable Entity"},
      {429, "Too Many Requests"},  {503, "Service Unavailable"}};
  for (const auto& [code, phrase] : kPhrases)
    if (code == status) return phrase;
  return status >= 500 ? "Internal Server Error" : "Error";
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

TaxiiResponse answer(int status, const json& body) {
  TaxiiResponse r;
  r.status = status;
  r.body = dump(body);
  return r;
}

// X-TAXII-Date-Added-First/Last: the date added of the first and last object in this answer.
void date_headers(TaxiiResponse& r, const std::vector<StoredObject>& objects) {
  if (objects.empty()) return;
  r.headers.push_back({"X-TAXII-Date-Added-First", objects.front().date_added});
  r.headers.push_back({"X-TAXII-Date-Added-Last", objects.back().date_added});
}

// {more, next (only when more), KEY: items}
json page_body(const ObjectPage& page, const char* key, json items) {
  json body = {{"more", page.more}};
  if (page.more) body["next"] = std::to_string(page.next);
  body[key] = std::move(items);
  return body;
}

// The version an object's status detail names: modified, else created, else the stored one.
std::string version_of(const json& o) {
  for (const char* k : {"modified", "created"})
    if (o.contains(k) && o[k].is_string()) return o[k].get<std::string>();
  return "";
}

// ---- one request ---------------------------------------------------------------------

class Exchange {
 public:
  Exchange(IntelStore& store, const TaxiiOptions& o, const TaxiiRequest& r)
      : store_(store), o_(o), r_(r) {}

  TaxiiResponse run() {
    if (!r_.key) {
      TaxiiResponse e = TaxiiService::error(
          401, "Unauthorized",
          r_.credentials_sent ? "the key sent is not a key of this server (or it was revoked)"
                              : "no key: send one as 'Authorization: Bearer KEY' (or HTTP Basic "
                                "with the key as password)");
      e.headers.push_back({"WWW-Authenticate", "Bearer realm=\"taxii\", Basic realm=\"taxii\""});
      return e;
    }
    std::vector<std::string> seg;
    for (const std::string& s : split(r_.path, '/'))
      if (!s.empty()) seg.push_back(percent_decode(s, false));

    if (seg.empty()) return get_only([&] { return discovery(); });
    if (seg[0] != kApiRoot)
      refuse(404, "Not Found",
             "no API root '" + shown(seg[0]) + "' (this server has " + kApiRoot + ")");
    if (seg.size() == 1) return get_only([&] { return api_root(); });
    if (seg[1] == "status" && seg.size() == 3) return get_only([&] { return status(seg[2]); });
    if (seg[1] != "collections")
      refuse(404, "Not Found", "no resource '" + shown(r_.path) + "' under the API root");
    if (seg.size() == 2) return get_only([&] { return collections(); });
    const IntelCollection& c = collection(seg[2]);
    if (seg.size() == 3) return get_only([&] { return collection_resource(c); });
    if (seg[3] == "manifest" && seg.size() == 4) return get_only([&] { return manifest(c); });
    if (seg[3] != "objects" || seg.size() > 6 || (seg.size() == 6 && seg[5] != "versions"))
      refuse(404, "Not Found", "no resource '" + shown(r_.path) + "' under the collection");
    if (seg.size() == 4) {
      if (r_.method == "POST") return add_objects(c);
      return get_only([&] { return get_objects(c); });
    }
    if (seg.size() == 6) return get_only([&] { return versions(c, seg[4]); });
    if (r_.method == "DELETE") return delete_object(c, seg[4]);
    return get_only([&] { return get_object(c, seg[4]); });
  }

 private:
  template <typename F>
  TaxiiResponse get_only(F f) {
    if (r_.method != "GET" && r_.method != "HEAD")
      refuse(405, "Method Not Allowed", r_.method + " is not allowed on " + shown(r_.path));
    negotiate();
    return f();
  }

  void negotiate() const {
    if (!accepts_taxii(r_.accept))
      refuse(406, "Not Acceptable",
             "Accept: '" + shown(r_.accept) + "' does not admit " + kTaxiiMediaType +
                 ", the only type this server answers with");
  }

  const ApiKey& key() const { return *r_.key; }

  // The published collection is written by this provider's publisher alone (admins may seed it).
  bool can_write(const IntelCollection& c) const {
    if (c.alias == kPublishedCollection && !key().admin) return false;
    return store_.can_write(c.id, key());
  }
  bool can_read(const IntelCollection& c) const { return store_.can_read(c.id, key()); }

  const IntelCollection& collection(const std::string& id) const {
    const IntelCollection* c = find_collection(id);
    if (!c) refuse(404, "Not Found", "no collection '" + shown(id) + "' in API root " + kApiRoot);
    return *c;
  }

  void need_read(const IntelCollection& c) const {
    if (!can_read(c))
      refuse(403, "Forbidden",
             "the key '" + key().name + "' may not read the collection '" + c.alias + "'");
  }

  std::string root_url() const {
    return r_.host.empty() ? std::string("/taxii2/") + kApiRoot + "/"
                           : "http://" + r_.host + "/taxii2/" + kApiRoot + "/";
  }

  TaxiiResponse discovery() const {
    return answer(
        200, {{"title", o_.title},
              {"description",
               "STIX 2.1 threat intelligence about model-extraction campaigns, served by retort"},
              {"default", root_url()},
              {"api_roots", json::array({root_url()})}});
  }

  TaxiiResponse api_root() const {
    return answer(200,
                  {{"title", o_.title + " intel"},
                   {"description",
                    "Distillation campaigns this provider found, and an inbox for partner reports"},
                   {"versions", json::array({kTaxiiMediaType})},
                   {"max_content_length", o_.max_content_length}});
  }

  json collection_json(const IntelCollection& c, bool read, bool write) const {
    return {{"id", c.id},
            {"title", c.title},
            {"description", c.description},
            {"alias", c.alias},
            {"can_read", read},
            {"can_write", write},
            {"media_types", json::array({kStixMediaType})}};
  }

  // Only the collections this key may read or write (the others are not its business).
  TaxiiResponse collections() const {
    json list = json::array();
    for (const IntelCollection& c : intel_collections()) {
      bool read = can_read(c), write = can_write(c);
      if (read || write) list.push_back(collection_json(c, read, write));
    }
    return answer(200, {{"collections", list}});
  }

  TaxiiResponse collection_resource(const IntelCollection& c) const {
    bool read = can_read(c), write = can_write(c);
    if (!read && !write)
      refuse(403, "Forbidden",
             "the key '" + key().name + "' has no rights on the collection '" + c.alias + "'");
    return answer(200, collection_json(c, read, write));
  }

  TaxiiResponse get_objects(const IntelCollection& c) const {
    need_read(c);
    ObjectPage page = store_.objects(c.id, read_filters(r_.query, o_, Filters::collection));
    return objects_answer(page);
  }

  TaxiiResponse objects_answer(const ObjectPage& page) const {
    json objects = json::array();
    for (const StoredObject& s : page.objects) objects.push_back(s.object);
    TaxiiResponse r = answer(200, page_body(page, "objects", std::move(objects)));
    date_headers(r, page.objects);
    return r;
  }

  void need_object(const IntelCollection& c, const std::string& id) const {
    if (!store_.latest(c.id, id))
      refuse(404, "Not Found", "no object '" + shown(id) + "' in the collection '" + c.alias + "'");
  }

  TaxiiResponse get_object(const IntelCollection& c, const std::string& id) const {
    need_read(c);
    ObjectQuery q = read_filters(r_.query, o_, Filters::object);
    need_object(c, id);
    q.ids = {id};
    return objects_answer(store_.objects(c.id, q));
  }

  TaxiiResponse versions(const IntelCollection& c, const std::string& id) const {
    need_read(c);
    ObjectQuery q = read_filters(r_.query, o_, Filters::versions);
    need_object(c, id);
    q.ids = {id};
    ObjectPage page = store_.objects(c.id, q);
    json versions = json::array();
    for (const StoredObject& s : page.objects) versions.push_back(s.version);
    TaxiiResponse r = answer(200, page_body(page, "versions", std::move(versions)));
    date_headers(r, page.objects);
    return r;
  }

  TaxiiResponse manifest(const IntelCollection& c) const {
    need_read(c);
    ObjectPage page = store_.objects(c.id, read_filters(r_.query, o_, Filters::collection));
    json records = json::array();
    for (const StoredObject& s : page.objects)
      records.push_back({{"id", s.id},
                         {"date_added", s.date_added},
                         {"version", s.version},
                         {"media_type", kStixMediaType}});
    TaxiiResponse r = answer(200, page_body(page, "objects", std::move(records)));
    date_headers(r, page.objects);
    return r;
  }

  TaxiiResponse status(const std::string& id) const {
    negotiate();
    // Statuses belong to writers: a key that may write somewhere (or an admin) may read them.
    bool writer = key().admin;
    for (const IntelCollection& c : intel_collections()) writer = writer || can_write(c);
    if (!writer)
      refuse(403, "Forbidden",
             "the key '" + key().name + "' writes to no collection, so it has no status resources");
    std::optional<json> s = store_.status(id);
    if (!s) refuse(404, "Not Found", "no status resource '" + shown(id) + "'");
    return answer(200, *s);
  }

  void need_write(const IntelCollection& c) const {
    if (!can_write(c)) {
      if (c.alias == kPublishedCollection)
        refuse(403, "Forbidden",
               "the collection '" + c.alias + "' is written only by this provider's own publisher");
      refuse(403, "Forbidden",
             "the key '" + key().name + "' may not write to the collection '" + c.alias + "'");
    }
  }

  TaxiiResponse add_objects(const IntelCollection& c) {
    negotiate();
    auto [type, params] = media_range(r_.content_type);
    if (!is_taxii21(type, params))
      refuse(415, "Unsupported Media Type",
             "Content-Type: '" + shown(r_.content_type) + "': add objects as an envelope of type " +
                 kTaxiiMediaType);
    need_write(c);
    if (int64_t(r_.body.size()) > o_.max_content_length)
      refuse(413, "Payload Too Large",
             "the envelope has " + std::to_string(r_.body.size()) +
                 " bytes; the API root's max_content_length is " +
                 std::to_string(o_.max_content_length));
    if (json_nests_deeper_than(r_.body))
      refuse(400, "Bad Request",
             "the envelope nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    json envelope;
    try {
      envelope = json::parse(r_.body);
    } catch (const json::exception& e) {
      refuse(400, "Bad Request", std::string("the body is not JSON: ") + e.what());
    }
    if (!envelope.is_object() || !envelope.contains("objects") || !envelope["objects"].is_array())
      refuse(422, "Unprocessable Entity",
             "the body is JSON but not a TAXII envelope: an object with an 'objects' array");

    const std::string requested = stix_time(now_seconds());
    json successes = json::array(), failures = json::array();
    for (const json& o : envelope["objects"]) {
      const std::string id = o.is_object() && o.contains("id") && o["id"].is_string()
                                 ? o["id"].get<std::string>()
                                 : "";
      std::string version = o.is_object() ? version_of(o) : "";
      std::string why =
          o.is_object() ? validate_stix_object(o) : "an envelope's object must be a JSON object";
      bool added = false;
      if (why.empty()) {
        try {
          StoredObject s;
          s.collection = c.id;
          s.object = o;
          s.source = key().name;
          added = store_.add(std::move(s));
          if (version.empty())
            if (auto stored = store_.latest(c.id, id)) version = stored->version;
        } catch (const std::exception& e) {
          why = std::string("not stored: ") + e.what();
        }
      }
      if (!why.empty()) {
        failures.push_back({{"id", id}, {"version", version}, {"message", why}});
        store_.log({0, 0, "rejected", key().name, c.alias, id, why});
      } else {
        const std::string what =
            added ? "added" : "already in the collection (same id and version)";
        successes.push_back({{"id", id}, {"version", version}, {"message", what}});
        store_.log({0, 0, "received", key().name, c.alias, id, what});
      }
    }
    const std::string status_id = stix_uuid4();
    json status = {{"id", status_id},
                   {"status", "complete"},
                   {"request_timestamp", requested},
                   {"total_count", successes.size() + failures.size()},
                   {"success_count", successes.size()},
                   {"successes", successes},
                   {"failure_count", failures.size()},
                   {"failures", failures},
                   {"pending_count", 0},
                   {"pendings", json::array()}};
    store_.put_status(status_id, c.id, status);
    return answer(202, status);
  }

  // Deletes the object's versions that match[version] / match[spec_version] select (all by
  // default).
  TaxiiResponse delete_object(const IntelCollection& c, const std::string& id) {
    negotiate();
    need_write(c);
    need_object(c, id);
    ObjectQuery q = read_filters(r_.query, o_, Filters::object);
    if (q.versions.empty()) q.versions = {"all"};
    q.ids = {id};
    q.after_seq = 0;
    q.limit = 1 << 20;
    std::vector<int64_t> seqs;
    for (const StoredObject& s : store_.objects(c.id, q).objects) seqs.push_back(s.seq);
    store_.remove(seqs);
    TaxiiResponse r;
    r.status = 200;
    return r;
  }

  IntelStore& store_;
  const TaxiiOptions& o_;
  const TaxiiRequest& r_;
};

}  // namespace

TaxiiService::TaxiiService(std::shared_ptr<IntelStore> store, TaxiiOptions options)
    : store_(std::move(store)), o_(std::move(options)) {
  if (!store_) fail("TaxiiService needs an intel store");
  if (o_.max_content_length <= 0 || o_.default_page <= 0 || o_.max_page < o_.default_page)
    fail(
        "TAXII options: max_content_length, default_page must be positive and max_page >= "
        "default_page, got ",
        o_.max_content_length, ", ", o_.default_page, ", ", o_.max_page);
}

TaxiiResponse TaxiiService::error(int status, const std::string& title,
                                  const std::string& description) {
  return answer(status, {{"title", title.empty() ? reason_phrase(status) : title},
                         {"description", description},
                         {"http_status", std::to_string(status)}});
}

TaxiiResponse TaxiiService::handle(const TaxiiRequest& request) const {
  try {
    try {
      return Exchange(*store_, o_, request).run();
    } catch (const Refusal&) {
      throw;
    } catch (const json::exception& e) {
      refuse(400, "Bad Request", std::string("a value the server cannot use: ") + e.what());
    } catch (const std::exception& e) {
      refuse(500, "Internal Server Error", e.what());
    }
  } catch (const Refusal& r) {
    return error(r.status, r.title, r.description);
  }
}

}  // namespace retort

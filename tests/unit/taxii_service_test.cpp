// TAXII 2.1 without HTTP (retort/taxii.h): paging through `next`, content negotiation, the
// statuses of bad input, rights per key, and adding objects, on a temporary guard database.
#include <gtest/gtest.h>

#include <set>

#include "guard_fixture.h"
#include "retort/stix.h"
#include "retort/taxii.h"

namespace retort {
namespace {

using namespace guard_testing;
using nlohmann::json;

const std::string kObjects = "api1/collections/partner-reports/objects/";

json identity(int i) {
  char id[64];
  std::snprintf(id, sizeof id, "identity--00000000-0000-4000-8000-%012d", i);
  return {{"type", "identity"},
          {"spec_version", "2.1"},
          {"id", id},
          {"created", "2026-01-01T00:00:00.000Z"},
          {"modified", "2026-01-01T00:00:00.000Z"},
          {"name", "lab " + std::to_string(i)}};
}

struct Taxii {
  TempDir dir;
  Guard g{dir.path / "serve.db"};
  std::shared_ptr<IntelStore> store = std::make_shared<IntelStore>(g.db);
  TaxiiService service{store, [] {
                         TaxiiOptions o;
                         o.max_content_length = 4096;
                         return o;
                       }()};
  ApiKey admin = g.keys.create("admin", {}, /*admin=*/true).first;
  ApiKey partner = g.keys.create("partner", {}).first;

  TaxiiResponse call(const std::string& method, const std::string& path,
                     const std::string& query = "", std::optional<ApiKey> key = std::nullopt,
                     const std::string& body = "",
                     const std::string& content_type = kTaxiiMediaType,
                     const std::string& accept = kTaxiiMediaType) {
    TaxiiRequest r;
    r.method = method;
    r.path = path;
    r.query = query;
    r.accept = accept;
    r.content_type = content_type;
    r.body = body;
    r.key = key ? key : std::optional<ApiKey>(admin);
    r.credentials_sent = true;
    return service.handle(r);
  }
  TaxiiResponse post(const json& envelope, std::optional<ApiKey> key = std::nullopt) {
    return call("POST", kObjects, "", key, envelope.dump());
  }
};

// Every error: the status, the TAXII media type, an error resource with http_status as a string.
void expect_error(const TaxiiResponse& r, int status, const std::string& what) {
  EXPECT_EQ(r.status, status) << what << ": " << r.body;
  EXPECT_EQ(r.content_type, kTaxiiMediaType) << what;
  json b = json::parse(r.body);
  EXPECT_EQ(b.value("http_status", ""), std::to_string(status)) << what;
  EXPECT_FALSE(b.value("title", "").empty()) << what;
}

TEST(TaxiiService, PagingThroughNextGivesEveryObjectOnce) {
  Taxii t;
  json objects = json::array();
  for (int i = 0; i < 7; ++i) objects.push_back(identity(i));
  TaxiiResponse added = t.post({{"objects", objects}});
  ASSERT_EQ(added.status, 202) << added.body;
  EXPECT_EQ(json::parse(added.body)["success_count"], 7);

  std::multiset<std::string> seen;
  std::string next;
  int pages = 0;
  for (;; ++pages) {
    TaxiiResponse r = t.call("GET", kObjects, "limit=3" + (next.empty() ? "" : "&next=" + next));
    ASSERT_EQ(r.status, 200) << r.body;
    json env = json::parse(r.body);
    EXPECT_LE(env["objects"].size(), 3u);
    for (const json& o : env["objects"]) seen.insert(o["id"].get<std::string>());
    if (!env["more"].get<bool>()) {
      EXPECT_FALSE(env.contains("next"));
      break;
    }
    next = env["next"].get<std::string>();
    ASSERT_LT(pages, 10) << "paging does not end";
  }
  EXPECT_EQ(pages + 1, 3);
  EXPECT_EQ(seen.size(), 7u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(seen.count(identity(i)["id"].get<std::string>()), 1u) << i;
}

TEST(TaxiiService, BadFiltersAre400) {
  Taxii t;
  for (const char* q : {"next=garbage", "next=0", "next=-3", "limit=0", "limit=-1", "limit=ten",
                        "added_after=yesterday", "match%5Bversion%5D=newest", "match%5Bid%5D=x",
                        "match%5Btype%5D=Not_A_Type", "match%5Bspec_version%5D=3", "limit=%zz"})
    expect_error(t.call("GET", kObjects, q), 400, q);
  EXPECT_EQ(t.call("GET", kObjects, "match%5Bfoo%5D=bar").status, 200)
      << "unknown filters are ignored";
}

TEST(TaxiiService, MediaTypes) {
  Taxii t;
  expect_error(t.call("GET", "", "", std::nullopt, "", "", "application/json"), 406,
               "Accept: application/json");
  expect_error(t.call("GET", "", "", std::nullopt, "", "", "application/taxii+json;version=2.0"),
               406, "2.0");
  expect_error(t.call("GET", "", "", std::nullopt, "", "", ""), 406, "no Accept");
  for (const char* ok :
       {"application/taxii+json", "*/*", "application/json, application/taxii+json; version=2.1"})
    EXPECT_EQ(t.call("GET", "", "", std::nullopt, "", "", ok).status, 200) << ok;
  json env = {{"objects", json::array({identity(1)})}};
  expect_error(t.call("POST", kObjects, "", std::nullopt, env.dump(), "application/json"), 415,
               "application/json");
  expect_error(t.call("POST", kObjects, "", std::nullopt, env.dump(), kStixMediaType), 415,
               "stix+json");
  EXPECT_EQ(t.call("POST", kObjects, "", std::nullopt, env.dump(), "application/taxii+json").status,
            202);
}

TEST(TaxiiService, BadBodies) {
  Taxii t;
  expect_error(t.call("POST", kObjects, "", std::nullopt, std::string(5000, ' ')), 413,
               "over max_content_length");
  expect_error(t.call("POST", kObjects, "", std::nullopt, "{\"objects\":["), 400, "not JSON");
  expect_error(t.call("POST", kObjects, "", std::nullopt, std::string(100, '[')), 400, "nested");
  expect_error(t.post(json::array()), 422, "a list");
  expect_error(t.post({{"objects", 3}}), 422, "objects not a list");

  json bad = identity(2);
  bad.erase("name");
  TaxiiResponse r = t.post({{"objects", {identity(1), bad, 7}}});
  ASSERT_EQ(r.status, 202) << r.body;
  json status = json::parse(r.body);
  EXPECT_EQ(status["total_count"], 3);
  EXPECT_EQ(status["success_count"], 1);
  EXPECT_EQ(status["failure_count"], 2);
  EXPECT_EQ(status["failures"][0]["id"], bad["id"]);
  EXPECT_EQ(t.call("GET", kObjects + bad["id"].get<std::string>() + "/").status, 404)
      << "the invalid one is not stored";
  TaxiiResponse kept = t.call("GET", "api1/status/" + status["id"].get<std::string>() + "/");
  ASSERT_EQ(kept.status, 200);
  EXPECT_EQ(json::parse(kept.body), status);
}

TEST(TaxiiService, RightsPerKey) {
  Taxii t;
  TaxiiRequest anonymous;
  anonymous.method = "GET";
  anonymous.accept = kTaxiiMediaType;
  expect_error(t.service.handle(anonymous), 401, "no key");
  expect_error(t.call("GET", kObjects, "", t.partner), 403, "no grant");
  json cols = json::parse(t.call("GET", "api1/collections/", "", t.partner).body);
  EXPECT_TRUE(cols["collections"].empty());

  t.store->grant(kInboxCollection, "partner", /*read=*/false, /*write=*/true);
  t.store->grant(kPublishedCollection, "partner", /*read=*/true, /*write=*/true);
  EXPECT_EQ(t.post({{"objects", {identity(1)}}}, t.partner).status, 202);
  expect_error(t.call("GET", kObjects, "", t.partner), 403, "write-only");
  const std::string published = "api1/collections/distillation-campaigns/objects/";
  expect_error(t.call("POST", published, "", t.partner, json{{"objects", {identity(1)}}}.dump()),
               403, "the published collection is the publisher's even with a write grant");
  EXPECT_EQ(t.call("GET", published, "", t.partner).status, 200);
  expect_error(t.call("GET", "api1/collections/nope/objects/"), 404, "unknown collection");
  expect_error(t.call("PUT", kObjects), 405, "PUT");
}

}  // namespace
}  // namespace retort

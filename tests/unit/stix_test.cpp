// The STIX 2.1 vocabulary (retort/stix.h) and what publish() makes of a guard database
// (retort/stix_publish.h): ids against Python's uuid.uuid5, times, patterns, validation, TLP,
// and the published objects of a database with action and audit rows.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>

#include "guard_fixture.h"
#include "retort/actions.h"
#include "retort/intel.h"
#include "retort/stix.h"
#include "retort/stix_publish.h"
#include "retort/verifications.h"

namespace retort {
namespace {

using namespace guard_testing;
using nlohmann::json;

// ---- ids, times, patterns ----------------------------------------------------------------

TEST(Stix, Uuid5MatchesPython) {
  // uuid.uuid5(uuid.NAMESPACE_DNS, "python.org") (the Python documentation's example)
  EXPECT_EQ(stix_uuid5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org"), "886313e1-3b8a-5372-9b90-0c9aee199e5d");
  // uuid.uuid5(STIX namespace, '{"value":"198.51.100.3"}'): an ipv4-addr SCO's id (spec 2.9)
  EXPECT_EQ(sco_id("ipv4-addr", json{{"value", "198.51.100.3"}}), "ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4");
  EXPECT_EQ(retort_id("identity", "lab-a"), "identity--c3b2f00a-2d0c-5f57-a37d-8a418c8740f9");
  EXPECT_FALSE(error_of([] { stix_uuid5("not-a-uuid", "x"); }).empty());
  const std::string a = stix_uuid4(), b = stix_uuid4();
  EXPECT_NE(a, b);
  EXPECT_EQ(a[14], '4');
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos) << a;
}

TEST(Stix, TimesHaveMillisecondsAndParseAnyPrecision) {
  EXPECT_EQ(stix_time(1796466124.123), "2026-12-05T10:22:04.123Z");
  EXPECT_EQ(stix_time(1796466124), "2026-12-05T10:22:04.000Z");
  EXPECT_EQ(stix_time(1796466124.9996), "2026-12-05T10:22:05.000Z");
  EXPECT_DOUBLE_EQ(parse_stix_time("2026-12-05T10:22:04.123Z"), 1796466124.123);
  EXPECT_EQ(parse_stix_time_us("2026-12-05T10:22:04Z"), int64_t(1796466124) * 1000000);
  EXPECT_EQ(parse_stix_time_us("2026-12-05T10:22:04.1234567Z"), int64_t(1796466124) * 1000000 + 123456);
  for (const char* bad : {"2026-12-05 10:22:04Z", "2026-12-05T10:22:04", "2026-12-05T10:22:04.Z", "2026-13-05T10:22:04Z",
                          "2026-02-30T10:22:04Z", "2026-12-05T10:22:04+01:00", ""})
    EXPECT_FALSE(error_of([&] { parse_stix_time(bad); }).empty()) << bad;
}

TEST(Stix, PatternsRoundTripWithQuotes) {
  EXPECT_EQ(indicator_pattern("address", "203.0.113.7"), "[ipv4-addr:value = '203.0.113.7']");
  EXPECT_EQ(indicator_pattern("address", "2001:db8::1"), "[ipv6-addr:value = '2001:db8::1']");
  EXPECT_EQ(indicator_pattern("user_agent", "it's \\ odd"),
            "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = 'it\\'s \\\\ odd']");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"address", "203.0.113.7"},
      {"address", "2001:db8::1"},
      {"user_agent", "harvest/1.0 (it's 'quoted' \\ and ] too)"},
      {"account", "37d02ec70731f7feaa6a365bbd6925f4"},
      {"template", hex64(0xdeadbeef00112233ull)},
      {"simhash", hex64(1)},
      {"shape", "/v1/completions echo lp=5 max=1 t=1 n=1"}};
  for (const auto& [kind, value] : cases) {
    const std::string p = indicator_pattern(kind, value);
    const auto back = parse_indicator_pattern(p);
    ASSERT_TRUE(back) << p;
    EXPECT_EQ(back->first, kind) << p;
    EXPECT_EQ(back->second, value) << p;
  }
  EXPECT_NE(indicator_pattern("template", hex64(7)).find(kRetortExtensionId), std::string::npos);
  for (const char* other : {"", "[", "[ipv4-addr:value = '1.2.3.4'", "[ipv4-addr:value = '1.2.3.4'] AND [x:y = 'z']",
                            "[ipv4-addr:value = '1.2.3.4' OR ipv4-addr:value = '5.6.7.8']", "[ipv4-addr:value = '']",
                            "[ipv4-addr:value = 'a\\b']", "[file:name = 'x']", "[ipv4-addr:value != '1.2.3.4']",
                            "[network-traffic:extensions.'extension-definition--b64cb344-7f45-5497-8d3c-242f6182107a'.prompt_prefix = 'xyz']"})
    EXPECT_FALSE(parse_indicator_pattern(other)) << other;
  EXPECT_FALSE(error_of([] { indicator_pattern("mood", "x"); }).empty());
  EXPECT_EQ(hex64(0x00ff), "00000000000000ff");
  EXPECT_EQ(parse_hex64("00000000000000ff"), 255u);
  EXPECT_FALSE(parse_hex64("ff"));
}

TEST(Stix, RequestShapeIsTheDetectorsAndPseudonymIsHmac) {
  AuditRow r;
  r.endpoint = "/v1/completions";
  r.echo = true;
  r.logprobs = 5;
  r.max_tokens = 1;
  r.temperature = 1;
  r.n = 1;
  EXPECT_EQ(request_shape(r), "/v1/completions echo lp=5 max=1 t=1 n=1");
  r.echo = false;
  r.temperature = 0.7;
  EXPECT_EQ(request_shape(r), "/v1/completions lp=5 max=1 t=0.7 n=1");
  r.logprobs = -1;
  EXPECT_EQ(request_shape(r), "");
  // hmac.new(b"group-secret", b"thief", hashlib.sha256).hexdigest()[:32]
  EXPECT_EQ(pseudonym("group-secret", "thief"), "37d02ec70731f7feaa6a365bbd6925f4");
}

// ---- validation and TLP ------------------------------------------------------------------

json good_indicator() {
  return json{{"type", "indicator"},
              {"spec_version", "2.1"},
              {"id", "indicator--11111111-1111-4111-8111-111111111111"},
              {"created", "2026-01-01T00:00:00.000Z"},
              {"modified", "2026-01-01T00:00:00.000Z"},
              {"pattern", "[ipv4-addr:value = '203.0.113.7']"},
              {"pattern_type", "stix"},
              {"valid_from", "2026-01-01T00:00:00Z"},
              {"confidence", 80},
              {"object_marking_refs", json::array({tlp_marking_id("amber")})}};
}

TEST(Stix, ValidationCatchesEachBrokenField) {
  EXPECT_EQ(validate_stix_object(good_indicator()), "");
  const std::vector<std::pair<std::function<void(json&)>, std::string>> breaks = {
      {[](json& o) { o.erase("type"); }, "type"},
      {[](json& o) { o["type"] = "Indicator"; }, "type"},
      {[](json& o) { o["id"] = "indicator--nope"; }, "id"},
      {[](json& o) { o["id"] = "campaign--11111111-1111-4111-8111-111111111111"; }, "type"},
      {[](json& o) { o["spec_version"] = "2.0"; }, "spec_version"},
      {[](json& o) { o.erase("spec_version"); }, "spec_version"},
      {[](json& o) { o.erase("created"); }, "created"},
      {[](json& o) { o["created"] = "2026-01-01T00:00:00Z"; }, "millisecond"},
      {[](json& o) { o["modified"] = "2025-12-31T00:00:00.000Z"; }, "before created"},
      {[](json& o) { o["modified"] = "yesterday"; }, "modified"},
      {[](json& o) { o.erase("pattern"); }, "pattern"},
      {[](json& o) { o.erase("pattern_type"); }, "pattern_type"},
      {[](json& o) { o.erase("valid_from"); }, "valid_from"},
      {[](json& o) { o["valid_until"] = "2025-01-01T00:00:00Z"; }, "valid_until"},
      {[](json& o) { o["confidence"] = 101; }, "confidence"},
      {[](json& o) { o["confidence"] = "high"; }, "confidence"},
      {[](json& o) { o["object_marking_refs"] = json::array({"identity--11111111-1111-4111-8111-111111111111"}); },
       "object_marking_refs"},
      {[](json& o) { o["created_by_ref"] = "me"; }, "created_by_ref"},
  };
  for (const auto& [f, word] : breaks) {
    json o = good_indicator();
    f(o);
    const std::string why = validate_stix_object(o);
    EXPECT_NE(why.find(word), std::string::npos) << o.dump() << " -> '" << why << "'";
  }
  const json base = {{"spec_version", "2.1"}, {"created", "2026-01-01T00:00:00.000Z"}, {"modified", "2026-01-01T00:00:00.000Z"}};
  auto with = [&](json extra) {
    json o = base;
    o.update(extra);
    return validate_stix_object(o);
  };
  const std::string u = "--22222222-2222-4222-8222-222222222222";
  EXPECT_EQ(with({{"type", "relationship"}, {"id", "relationship" + u}, {"relationship_type", "uses"},
                  {"source_ref", "campaign" + u}, {"target_ref", "attack-pattern" + u}}), "");
  EXPECT_NE(with({{"type", "relationship"}, {"id", "relationship" + u}, {"relationship_type", "uses"},
                  {"source_ref", "campaign" + u}}), "");
  EXPECT_EQ(with({{"type", "sighting"}, {"id", "sighting" + u}, {"sighting_of_ref", "indicator" + u}, {"count", 3}}), "");
  EXPECT_NE(with({{"type", "sighting"}, {"id", "sighting" + u}}), "");
  EXPECT_NE(with({{"type", "identity"}, {"id", "identity" + u}}), "");
  EXPECT_NE(with({{"type", "campaign"}, {"id", "campaign" + u}}), "");
  EXPECT_NE(with({{"type", "intrusion-set"}, {"id", "intrusion-set" + u}}), "");
  EXPECT_NE(with({{"type", "attack-pattern"}, {"id", "attack-pattern" + u}}), "");
  EXPECT_NE(with({{"type", "note"}, {"id", "note" + u}, {"content", "x"}}), "");
  EXPECT_NE(with({{"type", "note"}, {"id", "note" + u}, {"object_refs", json::array({"campaign" + u})}}), "");
  EXPECT_EQ(with({{"type", "note"}, {"id", "note" + u}, {"content", "x"}, {"object_refs", json::array({"campaign" + u})}}), "");
  EXPECT_NE(validate_stix_object(json::array()), "");
  // An SCO needs no created/modified.
  EXPECT_EQ(validate_stix_object(json{{"type", "ipv4-addr"}, {"spec_version", "2.1"}, {"id", sco_id("ipv4-addr", {{"value", "1.2.3.4"}})}, {"value", "1.2.3.4"}}), "");
}

TEST(Stix, TlpMarkingsAreTheSpecsOwn) {
  EXPECT_EQ(tlp_marking_id("white"), "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9");
  EXPECT_EQ(tlp_marking_id("green"), "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da");
  EXPECT_EQ(tlp_marking_id("amber"), "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82");
  EXPECT_EQ(tlp_marking_id("red"), "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed");
  for (const char* name : {"white", "green", "amber", "red"}) {
    const json& m = tlp_marking(name);
    EXPECT_EQ(validate_stix_object(m), "") << name;
    EXPECT_EQ(m["created"], "2017-01-20T00:00:00.000Z");
    EXPECT_EQ(m["definition"]["tlp"], name);
    EXPECT_EQ(tlp_of(json{{"object_marking_refs", json::array({m["id"]})}}), name);
  }
  EXPECT_EQ(tlp_of(good_indicator()), "amber");
  EXPECT_EQ(tlp_of(json::object()), "");
  EXPECT_FALSE(error_of([] { tlp_marking_id("clear"); }).empty());
  EXPECT_EQ(validate_stix_object(extension_definition(retort_id("identity", "lab"))), "");
}

// ---- publish -----------------------------------------------------------------------------

constexpr double kT0 = 1.8e9;

AuditRow request(const ApiKey& k, double t, const std::string& client, const std::string& agent, int64_t logprobs,
                 uint64_t prefix) {
  AuditRow r;
  r.time = t;
  r.key_id = k.id;
  r.key_name = k.name;
  r.endpoint = "/v1/completions";
  r.model = "tiny";
  r.status = 200;
  r.client = client;
  r.user_agent = agent;
  r.logprobs = logprobs;
  r.echo = logprobs >= 0;
  r.max_tokens = logprobs >= 0 ? 1 : 32;
  r.prompt_prefix = prefix;
  r.prompt_simhash = prefix * 3 + 1;
  r.prompt_text = "SECRET PROMPT TEXT";
  return r;
}

struct Published {
  std::map<std::string, json> by_id;
  std::vector<json> of(const std::string& type) const {
    std::vector<json> out;
    for (const auto& [id, o] : by_id)
      if (o["type"] == type) out.push_back(o);
    return out;
  }
  std::set<std::string> patterns() const {
    std::set<std::string> out;
    for (const json& o : of("indicator")) out.insert(o["pattern"].get<std::string>());
    return out;
  }
};

Published newest(IntelStore& store) {
  Published p;
  ObjectQuery q;
  q.limit = 10000;
  for (const StoredObject& o : store.objects(kPublishedCollection, q).objects) p.by_id[o.id] = o.object;
  return p;
}

TEST(StixPublish, SharesTheThiefsOwnIndicatorsNotTheOfficeAddressOrCommonClient) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey thief = g.keys.create("thief", {}).first;
  const ApiKey benign = g.keys.create("benign", {}).first;
  const ApiKey partnered = g.keys.create("partnered", {}).first;
  const ApiKey quiet = g.keys.create("quiet", {}).first;  // no action row at all
  AuditLog audit(g.db);
  audit.append(request(quiet, kT0 + 45, "198.51.100.44", "quiet/1", -1, 0));
  audit.append(request(thief, kT0 + 46, "198.51.100.44", "quiet/1", -1, 0));
  AuditRow refused = request(thief, kT0 + 47, "203.0.113.7", "harvest/1.0", 0, 0x1111);
  refused.status = 403;  // a refusal's row: what it asked is not whole
  refused.echo = false;
  audit.append(refused);
  for (int i = 0; i < 6; ++i) {
    audit.append(request(thief, kT0 + i, "203.0.113.7", "harvest/1.0", 5, 0x1111));
    audit.append(request(thief, kT0 + 10 + i, "198.51.100.1", "python-requests/2.31", 5, 0x2222 + i));
    audit.append(request(benign, kT0 + 20 + i, "198.51.100.1", "python-requests/2.31", -1, 0x3333 + i));
    audit.append(request(partnered, kT0 + 30 + i, "192.0.2.9", "other/1.0", 5, 0x4444));
  }
  ActionStore actions(g.db);
  ActionRow row;
  row.time = kT0 + 40;
  row.key_id = thief.id;
  row.key_name = "thief";
  row.action = Response::block;
  row.score = 0.873;
  row.reason = "the thief's reason";
  row.signals = "[]";
  row.source = "policy";
  actions.append(row);
  ActionRow p = row;
  p.key_id = partnered.id;
  p.key_name = "partnered";
  p.source = "partner";
  actions.append(p);
  ActionRow watch = row;
  watch.key_id = benign.id;
  watch.key_name = "benign";
  watch.action = Response::observe;
  actions.append(watch);

  IntelStore store(g.db);
  IntelOptions o;
  o.provider = "lab-a";
  o.group_secret = "group-secret";
  const PublishResult first = publish(store, o, kT0 + 50);
  EXPECT_EQ(first.campaigns, 1);
  EXPECT_GT(first.new_versions, 10);
  Published pub = newest(store);

  // Every object is valid, made by the identity and marked amber; no prompt text anywhere.
  const std::string identity = retort_id("identity", "lab-a");
  for (const auto& [id, obj] : pub.by_id) {
    EXPECT_EQ(validate_stix_object(obj), "") << obj.dump();
    EXPECT_EQ(obj.dump().find("SECRET"), std::string::npos) << obj.dump();
    EXPECT_EQ(obj.dump().find("thief"), std::string::npos) << obj.dump();  // pseudonymised
    if (obj["type"] == "marking-definition") continue;
    EXPECT_EQ(obj["created_by_ref"], identity) << obj.dump();
    EXPECT_EQ(obj["object_marking_refs"], json::array({tlp_marking_id("amber")})) << obj.dump();
  }
  ASSERT_TRUE(pub.by_id.count(identity));
  EXPECT_EQ(pub.by_id[identity]["name"], "lab-a");
  EXPECT_TRUE(pub.by_id.count(tlp_marking_id("amber")));
  EXPECT_TRUE(pub.by_id.count(kRetortExtensionId));
  ASSERT_EQ(pub.of("attack-pattern").size(), 1u);
  EXPECT_EQ(pub.of("attack-pattern")[0]["external_references"][0]["external_id"], "AML.T0024.002");
  EXPECT_EQ(pub.of("attack-pattern")[0]["external_references"][0]["source_name"], "mitre-atlas");

  const std::set<std::string> patterns = pub.patterns();
  EXPECT_TRUE(patterns.count(indicator_pattern("address", "203.0.113.7")));
  EXPECT_FALSE(patterns.count(indicator_pattern("address", "198.51.100.1")));  // the office's, the benign key's too
  EXPECT_TRUE(patterns.count(indicator_pattern("user_agent", "harvest/1.0")));
  EXPECT_FALSE(patterns.count(indicator_pattern("user_agent", "python-requests/2.31")));
  EXPECT_TRUE(patterns.count(indicator_pattern("template", hex64(0x1111))));  // used 6 times
  EXPECT_FALSE(patterns.count(indicator_pattern("template", hex64(0x2222))));  // once: no template
  EXPECT_TRUE(patterns.count(indicator_pattern("shape", "/v1/completions echo lp=5 max=1 t=1 n=1")));
  EXPECT_TRUE(patterns.count(indicator_pattern("account", pseudonym("group-secret", "thief"))));
  EXPECT_FALSE(patterns.count(indicator_pattern("address", "192.0.2.9")));  // a partner's word is not re-shared
  EXPECT_FALSE(patterns.count(indicator_pattern("address", "198.51.100.44")));  // a key without any action used it
  EXPECT_FALSE(patterns.count(indicator_pattern("user_agent", "quiet/1")));
  EXPECT_FALSE(patterns.count(indicator_pattern("shape", "/v1/completions lp=0 max=1 t=1 n=1")));  // the refusal's
  EXPECT_EQ(pub.of("indicator").size(), 5u);

  ASSERT_EQ(pub.of("campaign").size(), 1u);
  const json campaign = pub.of("campaign")[0];
  EXPECT_EQ(campaign["confidence"], 87);
  EXPECT_EQ(campaign["first_seen"], stix_time(kT0));
  EXPECT_EQ(pub.of("intrusion-set").size(), 1u);
  std::set<std::string> rels;
  for (const json& r : pub.of("relationship"))
    rels.insert(pub.by_id[r["source_ref"]]["type"].get<std::string>() + " " + r["relationship_type"].get<std::string>() +
                " " + pub.by_id[r["target_ref"]]["type"].get<std::string>());
  EXPECT_EQ(rels, (std::set<std::string>{"campaign attributed-to intrusion-set", "campaign uses attack-pattern",
                                         "intrusion-set uses attack-pattern", "indicator indicates campaign"}));
  EXPECT_EQ(pub.of("relationship").size(), 3u + 5u);
  ASSERT_EQ(pub.of("sighting").size(), 5u);
  const std::string address = retort_id("indicator", "lab-a/address/203.0.113.7");
  ASSERT_TRUE(pub.by_id.count(address));
  EXPECT_EQ(pub.by_id[address]["confidence"], 87);
  EXPECT_EQ(pub.by_id[address]["valid_from"], stix_time(kT0));
  const json sighting = pub.by_id[retort_id("sighting", "lab-a/" + address)];
  EXPECT_EQ(sighting["count"], 7);  // the refusal counts: it came from there
  EXPECT_EQ(sighting["first_seen"], stix_time(kT0));
  EXPECT_EQ(sighting["last_seen"], stix_time(kT0 + 47));
  EXPECT_EQ(sighting["where_sighted_refs"], json::array({identity}));

  // Nothing new: no new version.
  EXPECT_EQ(publish(store, o, kT0 + 60).new_versions, 0);

  // More of the thief: the same ids, a later `modified`, the new count.
  audit.append(request(thief, kT0 + 70, "203.0.113.7", "harvest/1.0", 5, 0x1111));
  const PublishResult third = publish(store, o, kT0 + 80);
  EXPECT_GT(third.new_versions, 0);
  const Published again = newest(store);
  EXPECT_EQ(again.by_id.size(), pub.by_id.size());
  const json s2 = again.by_id.at(retort_id("sighting", "lab-a/" + address));
  EXPECT_EQ(s2["count"], 8);
  EXPECT_EQ(s2["created"], sighting["created"]);
  EXPECT_GT(parse_stix_time(s2["modified"]), parse_stix_time(sighting["modified"]));
  EXPECT_EQ(again.by_id.at(address), pub.by_id[address]);  // the indicator itself did not change
  ObjectQuery all;
  all.versions = {"all"};
  all.ids = {s2["id"].get<std::string>()};
  EXPECT_EQ(store.objects(kPublishedCollection, all).objects.size(), 2u);

  // The bundle: everything, or since a time only the changed objects and what they name.
  const json bundle = export_bundle(store, 0);
  EXPECT_EQ(bundle["type"], "bundle");
  EXPECT_EQ(bundle["id"].get<std::string>().rfind("bundle--", 0), 0u);
  EXPECT_EQ(bundle["objects"].size(), again.by_id.size());
  const json recent = export_bundle(store, kT0 + 75);
  std::set<std::string> types;
  for (const json& x : recent["objects"]) types.insert(x["type"]);
  EXPECT_TRUE(types.count("sighting"));
  EXPECT_TRUE(types.count("identity"));
  EXPECT_TRUE(types.count("marking-definition"));
  EXPECT_FALSE(types.count("attack-pattern"));
  EXPECT_FALSE(types.count("indicator"));
}

TEST(StixPublish, ClearNamesWhenAskedClustersAndVerificationNotes) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey a = g.keys.create("hydra-1", {}).first;
  const ApiKey b = g.keys.create("hydra-2", {}).first;
  AuditLog audit(g.db);
  audit.append(request(a, kT0, "203.0.113.1", "h/1", 5, 0));
  audit.append(request(b, kT0 + 1, "203.0.113.2", "h/1", 5, 0));
  ActionStore actions(g.db);
  for (const ApiKey* k : {&a, &b}) {
    ActionRow r;
    r.time = kT0 + 2;
    r.key_id = k->id;
    r.key_name = k->name;
    r.cluster = "hydra-1+1";
    r.action = Response::block;
    r.score = 0.5;
    r.signals = "[]";
    r.source = k == &a ? "policy" : "operator";
    actions.append(r);
  }
  VerificationRow v;
  v.suspect = "runs/student/model";
  v.method = "open-model kgw";
  v.p_value = 1e-12;
  v.tokens = 4096;
  v.watermark_key = "wm-1";
  v.control_p_value = 0.4;
  v.usage = R"([{"key": "hydra-2", "requests": 3}, {"key": "stranger", "requests": 1}])";
  VerificationStore(g.db).append(v);
  VerificationRow unrelated = v;
  unrelated.usage = R"([{"key": "stranger"}])";
  VerificationStore(g.db).append(unrelated);
  ASSERT_EQ(VerificationStore(g.db).recent(10).size(), 2u);
  EXPECT_EQ(VerificationStore(g.db).recent(10)[0].usage, unrelated.usage);

  IntelStore store(g.db);
  IntelOptions o;
  o.provider = "lab-a";
  o.pseudonymise = false;
  o.tlp = "green";
  publish(store, o, kT0 + 10);
  const Published pub = newest(store);
  ASSERT_EQ(pub.of("campaign").size(), 1u);  // one cluster, one campaign
  EXPECT_EQ(pub.of("campaign")[0]["confidence"], 100);  // an operator's row
  EXPECT_NE(pub.of("campaign")[0]["name"].get<std::string>().find("hydra-1+1"), std::string::npos);
  EXPECT_TRUE(pub.patterns().count(indicator_pattern("account", "hydra-1")));
  EXPECT_TRUE(pub.patterns().count(indicator_pattern("account", "hydra-2")));
  EXPECT_TRUE(pub.patterns().count(indicator_pattern("user_agent", "h/1")));
  for (const json& x : pub.of("indicator")) EXPECT_EQ(tlp_of(x), "green");
  ASSERT_EQ(pub.of("note").size(), 1u);
  const json note = pub.of("note")[0];
  EXPECT_EQ(note["object_refs"], json::array({pub.of("campaign")[0]["id"]}));
  EXPECT_NE(note["content"].get<std::string>().find("wm-1"), std::string::npos);
  EXPECT_NE(note["content"].get<std::string>().find("4096"), std::string::npos);
  EXPECT_EQ(validate_stix_object(note), "");
  EXPECT_FALSE(error_of([&] {
                 IntelOptions bad = o;
                 bad.tlp = "clear";
                 publish(store, bad, kT0 + 20);
               }).empty());
}

}  // namespace
}  // namespace retort

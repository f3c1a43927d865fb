// The intel tables (retort/intel.h): object versions in TAXII collections with TAXII's filters and
// paging, partner rules, pull cursors, rights and events, on a temporary guard database.
#include <gtest/gtest.h>

#include <set>

#include "guard_fixture.h"
#include "retort/intel.h"
#include "retort/stix.h"

namespace retort {
namespace {

using namespace guard_testing;
using nlohmann::json;

json indicator(const std::string& id, const std::string& modified, const std::string& value = "203.0.113.7") {
  return json{{"type", "indicator"},
              {"spec_version", "2.1"},
              {"id", id},
              {"created", "2026-01-01T00:00:00.000Z"},
              {"modified", modified},
              {"pattern", indicator_pattern("address", value)},
              {"pattern_type", "stix"},
              {"valid_from", "2026-01-01T00:00:00.000Z"}};
}

StoredObject stored(const json& o, const std::string& collection = kPublishedCollection) {
  StoredObject s;
  s.collection = collection;
  s.object = o;
  return s;
}

const std::string kA = "indicator--11111111-1111-4111-8111-111111111111";
const std::string kB = "indicator--22222222-2222-4222-8222-222222222222";
const std::string kC = "identity--33333333-3333-4333-8333-333333333333";

std::vector<std::string> versions_of(const ObjectPage& p) {
  std::vector<std::string> out;
  for (const StoredObject& o : p.objects) out.push_back(o.id.substr(0, 12) + "@" + o.version.substr(0, 16));
  return out;
}

TEST(IntelStore, CollectionsHaveFixedIdsAndAliases) {
  ASSERT_EQ(intel_collections().size(), 2u);
  const IntelCollection* pub = find_collection(kPublishedCollection);
  ASSERT_NE(pub, nullptr);
  EXPECT_EQ(pub->id, "a8d137a5-ee2b-52d2-bf12-631d93236b39");
  EXPECT_EQ(pub->id, stix_uuid5(kRetortNamespace, kPublishedCollection));
  EXPECT_EQ(find_collection(pub->id), pub);
  const IntelCollection* inbox = find_collection(kInboxCollection);
  ASSERT_NE(inbox, nullptr);
  EXPECT_EQ(inbox->id, stix_uuid5(kRetortNamespace, kInboxCollection));
  EXPECT_EQ(find_collection("nope"), nullptr);
}

TEST(IntelStore, AddKeepsVersionsAndRefusesADuplicate) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  IntelStore store(g.db);
  EXPECT_TRUE(store.add(stored(indicator(kA, "2026-01-01T00:00:00.000Z"))));
  EXPECT_FALSE(store.add(stored(indicator(kA, "2026-01-01T00:00:00.000Z"))));
  // The same instant written with another precision is the same version.
  EXPECT_FALSE(store.add(stored(indicator(kA, "2026-01-01T00:00:00Z"))));
  EXPECT_TRUE(store.add(stored(indicator(kA, "2026-01-02T00:00:00.000Z"))));
  const auto last = store.latest(kPublishedCollection, kA);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->version, "2026-01-02T00:00:00.000Z");
  EXPECT_EQ(last->type, "indicator");
  EXPECT_EQ(last->source, "local");
  EXPECT_EQ(last->collection, find_collection(kPublishedCollection)->id);
  EXPECT_EQ(last->object["modified"], "2026-01-02T00:00:00.000Z");
  EXPECT_FALSE(store.latest(kInboxCollection, kA));  // collections are apart
  EXPECT_NE(error_of([&] { store.add(stored(indicator(kA, "2026-01-03T00:00:00.000Z"), "elsewhere")); }).find("elsewhere"),
            std::string::npos);
}

TEST(IntelStore, DateAddedIsMillisecondsAndStrictlyIncreasing) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  IntelStore store(g.db);
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(store.add(stored(indicator(kA, stix_time(1.8e9 + i)))));
  ObjectQuery q;
  q.versions = {"all"};
  const ObjectPage p = store.objects(kPublishedCollection, q);
  ASSERT_EQ(p.objects.size(), 20u);
  for (size_t i = 0; i < p.objects.size(); ++i) {
    EXPECT_EQ(p.objects[i].date_added.size(), 24u) << p.objects[i].date_added;  // 2026-...T..:..:...mmmZ
    if (i > 0) {
      EXPECT_GT(parse_stix_time_us(p.objects[i].date_added), parse_stix_time_us(p.objects[i - 1].date_added));
      EXPECT_GT(p.objects[i].seq, p.objects[i - 1].seq);
    }
  }
}

TEST(IntelStore, VersionFilters) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  IntelStore store(g.db);
  // Added out of version order: version order, not insertion order, decides first and last.
  ASSERT_TRUE(store.add(stored(indicator(kA, "2026-01-02T00:00:00.000Z"))));
  ASSERT_TRUE(store.add(stored(indicator(kA, "2026-01-01T00:00:00.000Z"))));
  ASSERT_TRUE(store.add(stored(indicator(kA, "2026-01-03T00:00:00.000Z"))));
  ASSERT_TRUE(store.add(stored(indicator(kB, "2026-01-01T00:00:00.000Z"))));
  ObjectQuery q;
  EXPECT_EQ(versions_of(store.objects(kPublishedCollection, q)),
            (std::vector<std::string>{"indicator--1@2026-01-03T00:00", "indicator--2@2026-01-01T00:00"}));
  q.versions = {"first"};
  EXPECT_EQ(versions_of(store.objects(kPublishedCollection, q)),
            (std::vector<std::string>{"indicator--1@2026-01-01T00:00", "indicator--2@2026-01-01T00:00"}));
  q.versions = {"all"};
  EXPECT_EQ(store.objects(kPublishedCollection, q).objects.size(), 4u);
  q.versions = {"2026-01-02T00:00:00Z"};  // a timestamp of another precision
  EXPECT_EQ(versions_of(store.objects(kPublishedCollection, q)), (std::vector<std::string>{"indicator--1@2026-01-02T00:00"}));
  q.versions = {"first", "last"};
  EXPECT_EQ(store.objects(kPublishedCollection, q).objects.size(), 3u);
  q.versions = {"not a time"};
  EXPECT_NE(error_of([&] { store.objects(kPublishedCollection, q); }).find("not a time"), std::string::npos);
}

TEST(IntelStore, IdTypeSpecVersionAndAddedAfterFilters) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  IntelStore store(g.db);
  ASSERT_TRUE(store.add(stored(indicator(kA, "2026-01-01T00:00:00.000Z"))));
  ASSERT_TRUE(store.add(stored(json{{"type", "identity"}, {"spec_version", "2.1"}, {"id", kC}, {"name", "lab"},
                                    {"created", "2026-01-01T00:00:00.000Z"}, {"modified", "2026-01-01T00:00:00.000Z"}})));
  ASSERT_TRUE(store.add(stored(indicator(kB, "2026-01-01T00:00:00.000Z"))));
  ObjectQuery q;
  q.types = {"identity"};
  EXPECT_EQ(store.objects(kPublishedCollection, q).objects.at(0).id, kC);
  EXPECT_EQ(store.objects(kPublishedCollection, q).objects.size(), 1u);
  q = ObjectQuery{};
  q.ids = {kB, kC};
  EXPECT_EQ(store.objects(kPublishedCollection, q).objects.size(), 2u);
  q = ObjectQuery{};
  q.spec_versions = {"2.0"};
  EXPECT_TRUE(store.objects(kPublishedCollection, q).objects.empty());
  q.spec_versions = {"2.1"};
  EXPECT_EQ(store.objects(kPublishedCollection, q).objects.size(), 3u);

  // added_after is strictly after: the second object's date_added leaves only the third.
  q = ObjectQuery{};
  const ObjectPage all = store.objects(kPublishedCollection, q);
  q.added_after = all.objects.at(1).date_added;
  const ObjectPage after = store.objects(kPublishedCollection, q);
  ASSERT_EQ(after.objects.size(), 1u);
  EXPECT_EQ(after.objects[0].id, kB);
  // ...at any precision: one microsecond earlier takes the second too.
  const int64_t us = parse_stix_time_us(all.objects.at(1).date_added) - 1;
  q.added_after = stix_time(double(us / 1000000)).substr(0, 19) + "." + std::to_string(1000000 + us % 1000000).substr(1) + "Z";
  EXPECT_EQ(store.objects(kPublishedCollection, q).objects.size(), 2u) << q.added_after;
}

TEST(IntelStore, PagesBySeqWithMoreAndNext) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  IntelStore store(g.db);
  std::set<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    const std::string id = "indicator--" + stix_uuid5(kRetortNamespace, std::to_string(i));
    ids.insert(id);
    ASSERT_TRUE(store.add(stored(indicator(id, "2026-01-01T00:00:00.000Z"))));
  }
  ObjectQuery q;
  q.limit = 3;
  std::set<std::string> seen;
  int pages = 0;
  for (;;) {
    const ObjectPage p = store.objects(kPublishedCollection, q);
    ++pages;
    for (const StoredObject& o : p.objects) EXPECT_TRUE(seen.insert(o.id).second) << o.id;
    EXPECT_EQ(p.more, pages < 3);
    if (!p.more) break;
    EXPECT_EQ(p.next, p.objects.back().seq);
    q.after_seq = p.next;
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, ids);
  // Exactly a page's worth: no `more`.
  q = ObjectQuery{};
  q.limit = 7;
  EXPECT_FALSE(store.objects(kPublishedCollection, q).more);
  q.limit = 0;
  EXPECT_FALSE(error_of([&] { store.objects(kPublishedCollection, q); }).empty());
}

TEST(IntelStore, RulesOfAnIndicatorAreReplacedAndTheVersionMoves) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  IntelStore store(g.db);
  EXPECT_EQ(store.rules_version(), 0);
  IntelRule r;
  r.version = "2026-01-01T00:00:00.000Z";
  r.source = "lab-b";
  r.kind = "address";
  r.value = "203.0.113.7";
  r.action = Response::block;
  r.confidence = 80;
  r.tlp = "amber";
  IntelRule ua = r;
  ua.kind = "user_agent";
  ua.value = "harvest/1.0";
  ua.action = Response::throttle;
  store.replace_rules(kA, {r, ua});
  store.replace_rules(kB, {r});
  const int64_t v1 = store.rules_version();
  EXPECT_GT(v1, 0);
  EXPECT_EQ(store.rules().size(), 3u);
  IntelRule newer = r;
  newer.version = "2026-01-02T00:00:00.000Z";
  newer.value = "203.0.113.8";
  store.replace_rules(kA, {newer});
  EXPECT_GT(store.rules_version(), v1);
  const auto rules = store.rules();
  ASSERT_EQ(rules.size(), 2u);
  int of_a = 0;
  for (const IntelRule& x : rules)
    if (x.indicator == kA) {
      ++of_a;
      EXPECT_EQ(x.value, "203.0.113.8");
      EXPECT_EQ(x.action, Response::block);
      EXPECT_EQ(x.confidence, 80);
      EXPECT_GT(x.created, 0);
    }
  EXPECT_EQ(of_a, 1);
  store.replace_rules(kA, {});
  EXPECT_EQ(store.rules().size(), 1u);
}

TEST(IntelStore, CursorsPartnersStatusAndSecretSurviveAReopen) {
  TempDir dir;
  const fs::path file = dir.path / "serve.db";
  std::string secret;
  {
    Guard g(file);
    IntelStore store(g.db);
    EXPECT_EQ(store.cursor("http://b/taxii2/api1/", "c1"), "");
    store.set_cursor("http://b/taxii2/api1/", "c1", "2026-01-01T00:00:00.001Z");
    store.set_cursor("http://b/taxii2/api1/", "c1", "2026-01-01T00:00:00.002Z");
    store.add_partner({"lab-b", "http://b/taxii2/api1/", "c1", "rt-secret", 0});
    store.put_status("s1", "c1", json{{"id", "s1"}, {"status", "complete"}, {"total_count", 2}, {"success_count", 1},
                                      {"failure_count", 1}, {"pending_count", 0}});
    secret = store.own_secret();
    EXPECT_EQ(secret.size(), 64u);
    EXPECT_EQ(store.own_secret(), secret);
  }
  Guard g(file);
  IntelStore store(g.db);
  EXPECT_EQ(store.cursor("http://b/taxii2/api1/", "c1"), "2026-01-01T00:00:00.002Z");
  EXPECT_EQ(store.cursor("http://c/taxii2/api1/", "c1"), "");
  ASSERT_EQ(store.partners().size(), 1u);
  EXPECT_EQ(store.partners()[0].token, "rt-secret");
  EXPECT_GT(store.partners()[0].added, 0);
  const auto st = store.status("s1");
  ASSERT_TRUE(st);
  EXPECT_EQ((*st)["failure_count"], 1);
  EXPECT_FALSE(store.status("s2"));
  EXPECT_EQ(store.own_secret(), secret);
}

TEST(IntelStore, RightsPerKeyAndCollectionAdminsMayDoAll) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  IntelStore store(g.db);
  const ApiKey reader = g.keys.create("reader", {}).first;
  const ApiKey writer = g.keys.create("writer", {}).first;
  const ApiKey admin = g.keys.create("boss", {}, true).first;
  store.grant(kPublishedCollection, "reader", true, false);
  store.grant(find_collection(kInboxCollection)->id, "writer", false, true);
  EXPECT_TRUE(store.can_read(kPublishedCollection, reader));
  EXPECT_TRUE(store.can_read(find_collection(kPublishedCollection)->id, reader));
  EXPECT_FALSE(store.can_write(kPublishedCollection, reader));
  EXPECT_FALSE(store.can_read(kInboxCollection, reader));
  EXPECT_TRUE(store.can_write(kInboxCollection, writer));
  EXPECT_FALSE(store.can_read(kInboxCollection, writer));
  EXPECT_TRUE(store.can_read(kInboxCollection, admin));
  EXPECT_TRUE(store.can_write(kPublishedCollection, admin));
  EXPECT_FALSE(store.can_read("unknown", admin));
  store.grant(kPublishedCollection, "reader", false, false);  // a grant replaces the last
  EXPECT_FALSE(store.can_read(kPublishedCollection, reader));
  EXPECT_NE(error_of([&] { store.grant("unknown", "reader", true, false); }).find("unknown"), std::string::npos);
}

TEST(IntelStore, EventsNewestFirst) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  IntelStore store(g.db);
  store.log({0, 0, "published", "", kPublishedCollection, kA, "first"});
  store.log({0, 0, "rejected", "lab-b", kPublishedCollection, kB, "bad pattern"});
  const auto ev = store.events(10);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].direction, "rejected");
  EXPECT_EQ(ev[0].detail, "bad pattern");
  EXPECT_EQ(ev[1].object_id, kA);
  EXPECT_GT(ev[1].time, 0);
  EXPECT_EQ(store.events(1).size(), 1u);
}

}  // namespace
}  // namespace retort

// Partners' indicators as guard rules (retort/partner_rules.h): one rule per indicator of each of
// the six kinds with the action intel.act.<kind> gives, none below intel.min_confidence or when
// revoked / expired, TLP kept, a newer version replacing the older, a malformed indicator making
// no rule; the request path's index matching the strongest rule (SimHash within 3 bits); and the
// guard of operator rows.
#include "retort/partner_rules.h"

#include <gtest/gtest.h>

#include "guard_fixture.h"
#include "retort/detect.h"
#include "retort/stix.h"

namespace retort {
namespace {

using namespace guard_testing;
using nlohmann::json;

const std::string kId = "indicator--5d2e8a6c-0b7e-4c57-9a55-2f0c3d4e5f60";

json indicator(const std::string& kind, const std::string& value, int64_t confidence = 90,
               const std::string& modified = "2026-03-01T10:00:00.000Z",
               const std::string& id = kId) {
  return json{{"type", "indicator"},
              {"spec_version", "2.1"},
              {"id", id},
              {"created", "2026-03-01T10:00:00.000Z"},
              {"modified", modified},
              {"pattern", indicator_pattern(kind, value)},
              {"pattern_type", "stix"},
              {"valid_from", "2026-03-01T10:00:00.000Z"},
              {"confidence", confidence}};
}

constexpr double kNow = 1.78e9;  // 2026-05

IntelOptions options() {
  IntelOptions o;
  o.min_confidence = 50;
  o.act_address = Response::block;
  o.act_user_agent = Response::throttle;
  o.act_account = Response::block;
  o.act_template = Response::strip;
  o.act_shape = Response::observe;
  return o;
}

TEST(PartnerRules, EachKindMakesOneRuleWithItsAction) {
  const IntelOptions o = options();
  const std::string h = hex64(0x0123456789abcdefULL);
  const std::vector<std::tuple<std::string, std::string, Response>> cases = {
      {"address", "203.0.113.7", Response::block},
      {"user_agent", "harvest/1.0", Response::throttle},
      {"account", pseudonym("group secret", "thief"), Response::block},
      {"template", h, Response::strip},
      {"simhash", h, Response::strip},  // a prompt fingerprint too: intel.act.template
      {"shape", "/v1/completions echo lp=5 max=0 t=1 n=1", Response::observe},
  };
  for (const auto& [kind, value, action] : cases) {
    std::string why = "unset";
    const std::vector<IntelRule> rules =
        rules_from_indicator(indicator(kind, value), "labA", o, kNow, &why);
    ASSERT_EQ(rules.size(), 1u) << kind << ": " << why;
    EXPECT_EQ(why, "") << kind;
    EXPECT_EQ(rules[0].kind, kind);
    EXPECT_EQ(rules[0].value, value) << kind;
    EXPECT_EQ(rules[0].action, action) << kind << " got " << response_name(rules[0].action);
    EXPECT_EQ(rules[0].indicator, kId);
    EXPECT_EQ(rules[0].source, "labA");
    EXPECT_EQ(rules[0].confidence, 90);
    EXPECT_EQ(rules[0].version, "2026-03-01T10:00:00.000Z");
  }
}

TEST(PartnerRules, BelowMinConfidenceRevokedOrExpiredIsStoredButActsNot) {
  const IntelOptions o = options();
  auto action_of = [&](const json& ind) {
    const auto rules = rules_from_indicator(ind, "labA", o, kNow);
    EXPECT_EQ(rules.size(), 1u);
    return rules.empty() ? Response::allow : rules[0].action;
  };
  EXPECT_EQ(action_of(indicator("address", "203.0.113.7", 49)), Response::none);
  EXPECT_EQ(action_of(indicator("address", "203.0.113.7", 50)), Response::block);
  json no_confidence = indicator("address", "203.0.113.7");
  no_confidence.erase("confidence");
  EXPECT_EQ(action_of(no_confidence), Response::none);
  json revoked = indicator("address", "203.0.113.7");
  revoked["revoked"] = true;
  EXPECT_EQ(action_of(revoked), Response::none);
  json expired = indicator("address", "203.0.113.7");
  expired["valid_until"] = stix_time(kNow - 1);
  EXPECT_EQ(action_of(expired), Response::none);
  json current = indicator("address", "203.0.113.7");
  current["valid_until"] = stix_time(kNow + 3600);
  const auto rules = rules_from_indicator(current, "labA", o, kNow);
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].action, Response::block);
  EXPECT_NEAR(rules[0].valid_until, kNow + 3600, 0.01);
}

TEST(PartnerRules, TlpIsKeptFromTheMarkings) {
  json ind = indicator("address", "203.0.113.7");
  ind["object_marking_refs"] = {tlp_marking_id("red")};
  const auto rules = rules_from_indicator(ind, "labA", options(), kNow);
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].tlp, "red");
  EXPECT_EQ(
      rules_from_indicator(indicator("address", "203.0.113.7"), "labA", options(), kNow).at(0).tlp,
      "");
}

TEST(PartnerRules, AMalformedIndicatorMakesNoRule) {
  const IntelOptions o = options();
  std::string why;
  json bad_pattern = indicator("address", "203.0.113.7");
  bad_pattern["pattern"] = "[ipv4-addr:value = '203.0.113.7'] OR [ipv4-addr:value = '203.0.113.8']";
  EXPECT_TRUE(rules_from_indicator(bad_pattern, "labA", o, kNow, &why).empty());
  EXPECT_NE(why.find("not one retort can match"), std::string::npos) << why;
  json snort = indicator("address", "203.0.113.7");
  snort["pattern_type"] = "snort";
  EXPECT_TRUE(rules_from_indicator(snort, "labA", o, kNow, &why).empty());
  EXPECT_NE(why.find("snort"), std::string::npos) << why;
  json no_pattern = indicator("address", "203.0.113.7");
  no_pattern.erase("pattern");
  EXPECT_TRUE(rules_from_indicator(no_pattern, "labA", o, kNow, &why).empty());
  json wrong_type = indicator("address", "203.0.113.7");
  wrong_type["type"] = "campaign";
  EXPECT_TRUE(rules_from_indicator(wrong_type, "labA", o, kNow, &why).empty());
  json bad_until = indicator("address", "203.0.113.7");
  bad_until["valid_until"] = "tomorrow";
  EXPECT_TRUE(rules_from_indicator(bad_until, "labA", o, kNow, &why).empty());
  EXPECT_TRUE(rules_from_indicator(json::array(), "labA", o, kNow, &why).empty());
}

StoredObject in_inbox(const json& o) {
  StoredObject s;
  s.collection = kInboxCollection;
  s.source = "labA";
  s.object = o;
  return s;
}

TEST(PartnerRules, ANewerVersionReplacesTheRulesOfTheOlder) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  IntelStore store(g.db);
  const IntelOptions o = options();
  ASSERT_TRUE(
      store.add(in_inbox(indicator("address", "203.0.113.7", 90, "2026-03-01T10:00:00.000Z"))));
  EXPECT_EQ(update_partner_rules(store, kInboxCollection, {kId}, o, kNow), 1);
  ASSERT_EQ(store.rules().size(), 1u);
  EXPECT_EQ(store.rules()[0].value, "203.0.113.7");
  const int64_t v1 = store.rules_version();
  // The same version again (a resumed pull): nothing is written.
  EXPECT_EQ(update_partner_rules(store, kInboxCollection, {kId, kId}, o, kNow), 0);
  EXPECT_EQ(store.rules_version(), v1);
  // A newer version with another address: its rule replaces the older one.
  ASSERT_TRUE(
      store.add(in_inbox(indicator("address", "198.51.100.9", 90, "2026-03-02T10:00:00.000Z"))));
  EXPECT_EQ(update_partner_rules(store, kInboxCollection, {kId}, o, kNow), 1);
  ASSERT_EQ(store.rules().size(), 1u);
  EXPECT_EQ(store.rules()[0].value, "198.51.100.9");
  EXPECT_EQ(store.rules()[0].version, "2026-03-02T10:00:00.000Z");
  // An older version arriving late changes nothing.
  ASSERT_TRUE(
      store.add(in_inbox(indicator("address", "192.0.2.1", 90, "2026-02-01T10:00:00.000Z"))));
  EXPECT_EQ(update_partner_rules(store, kInboxCollection, {kId}, o, kNow), 0);
  EXPECT_EQ(store.rules()[0].value, "198.51.100.9");
  // A newer malformed version withdraws the rule (the partner no longer claims it).
  json broken = indicator("address", "198.51.100.9", 90, "2026-03-03T10:00:00.000Z");
  broken["pattern"] = "[file:name = 'x']";
  ASSERT_TRUE(store.add(in_inbox(broken)));
  EXPECT_EQ(update_partner_rules(store, kInboxCollection, {kId}, o, kNow), 0);
  EXPECT_TRUE(store.rules().empty());
  // A malformed indicator with no rules before it writes nothing at all.
  const int64_t v = store.rules_version();
  const std::string other = "indicator--6d2e8a6c-0b7e-4c57-9a55-2f0c3d4e5f61";
  json junk = indicator("address", "1.2.3.4", 90, "2026-03-01T10:00:00.000Z", other);
  junk["pattern"] = "[x]";
  ASSERT_TRUE(store.add(in_inbox(junk)));
  EXPECT_EQ(update_partner_rules(store, kInboxCollection, {other}, o, kNow), 0);
  EXPECT_EQ(store.rules_version(), v);
}

IntelRule rule(const std::string& kind, const std::string& value, Response action, int64_t id,
               double valid_until = 0) {
  IntelRule r;
  r.id = id;
  r.indicator = cat("indicator--", id);
  r.source = "labA";
  r.kind = kind;
  r.value = value;
  r.action = action;
  r.confidence = 80;
  r.valid_until = valid_until;
  return r;
}

TEST(PartnerRules, MatchFindsTheStrongestRule) {
  const uint64_t simhash = 0xf0f0f0f0f0f0f0f0ULL, prefix = 0x1122334455667788ULL;
  const std::string shape = "/v1/completions echo lp=5 max=0 t=1 n=1";
  PartnerRules index;
  index.rebuild({rule("address", "203.0.113.7", Response::block, 1),
                 rule("user_agent", "harvest/1.0", Response::throttle, 2),
                 rule("account", pseudonym("s", "thief"), Response::mark, 3),
                 rule("template", hex64(prefix), Response::strip, 4),
                 rule("simhash", hex64(simhash), Response::throttle, 5),
                 rule("shape", shape, Response::observe, 6),
                 rule("address", "192.0.2.50", Response::block, 7, /*valid_until=*/kNow - 1),
                 rule("address", "192.0.2.51", Response::none, 8)},
                /*version=*/1);
  EXPECT_EQ(index.size(), 7u);  // the none rule is not indexed
  EXPECT_TRUE(index.has("account"));
  EXPECT_FALSE(index.has("nothing"));
  auto action = [&](const PartnerProbe& p) {
    const auto m = index.match(p, kNow);
    return m ? m->action : Response::none;
  };
  PartnerProbe p;
  EXPECT_EQ(action(p), Response::none);
  p.user_agent = "harvest/1.0";
  EXPECT_EQ(action(p), Response::throttle);
  p.address = "203.0.113.7";
  EXPECT_EQ(action(p), Response::block);  // address and user agent: the stronger
  EXPECT_EQ(index.match(p, kNow)->kind, "address");
  PartnerProbe q;
  q.account = pseudonym("s", "thief");
  q.account_name = "thief-at-b";
  EXPECT_EQ(action(q), Response::mark);
  q.account = pseudonym("another secret", "thief");
  EXPECT_EQ(action(q), Response::none);
  PartnerProbe t;
  t.prompt_prefix = prefix;
  EXPECT_EQ(action(t), Response::strip);
  t.prompt_prefix = prefix ^ 1;
  EXPECT_EQ(action(t), Response::none);
  PartnerProbe s;
  s.prompt_simhash = simhash ^ 0x7;  // 3 bits away
  EXPECT_EQ(action(s), Response::throttle);
  EXPECT_NE(PartnerRules::matched_text(*index.match(s, kNow), s).find("3 bits"), std::string::npos);
  s.prompt_simhash = simhash ^ 0xf;  // 4 bits away
  EXPECT_EQ(action(s), Response::none);
  PartnerProbe sh;
  sh.shape = shape;
  EXPECT_EQ(action(sh), Response::observe);
  PartnerProbe expired;
  expired.address = "192.0.2.50";
  EXPECT_EQ(action(expired), Response::none);
  EXPECT_EQ(index.match(expired, kNow - 10)->action, Response::block);  // before its valid_until
  PartnerProbe none_rule;
  none_rule.address = "192.0.2.51";
  EXPECT_EQ(action(none_rule), Response::none);
}

TEST(PartnerRules, AnAccountPublishedInClearMatchesTheKeyName) {
  PartnerRules index;
  index.rebuild({rule("account", "thief", Response::block, 1)}, 1);
  PartnerProbe p;
  p.account = pseudonym("s", "thief");
  p.account_name = "thief";
  ASSERT_TRUE(index.match(p, kNow));
  EXPECT_NE(PartnerRules::matched_text(*index.match(p, kNow), p).find("account name 'thief'"),
            std::string::npos);
}

TEST(PartnerRules, RefreshFollowsTheStoresRulesVersion) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  IntelStore store(g.db);
  PartnerRules index;
  EXPECT_TRUE(index.refresh(store));  // first read
  EXPECT_FALSE(index.refresh(store));
  EXPECT_TRUE(index.empty());
  store.replace_rules("indicator--x", {rule("address", "203.0.113.7", Response::block, 0)});
  EXPECT_TRUE(index.refresh(store));
  PartnerProbe p;
  p.address = "203.0.113.7";
  ASSERT_TRUE(index.match(p, kNow));
  EXPECT_EQ(index.match(p, kNow)->indicator, "indicator--x");
}

TEST(PartnerRules, TheShapeMatchedIsTheShapeTheDetectorCounts) {
  AuditRow r;
  r.endpoint = "/v1/completions";
  r.echo = true;
  r.logprobs = 5;
  r.max_tokens = 0;
  r.temperature = 0.7;
  r.n = 1;
  Activity a;
  a.add(r, DetectPolicy{});
  EXPECT_EQ(request_shape(r), a.top_shape().first);
}

TEST(PartnerRules, AnOperatorsRowStandsAndOnlyStrongerActionsAreWritten) {
  auto row = [](Response a, const char* source) {
    ActionRow r;
    r.action = a;
    r.source = source;
    return std::optional<ActionRow>(r);
  };
  EXPECT_TRUE(partner_may_act(std::nullopt, Response::block));
  EXPECT_FALSE(partner_may_act(std::nullopt, Response::none));
  EXPECT_FALSE(partner_may_act(std::nullopt, Response::allow));
  EXPECT_FALSE(partner_may_act(row(Response::allow, "operator"), Response::block));
  EXPECT_FALSE(partner_may_act(row(Response::observe, "operator"), Response::block));
  EXPECT_FALSE(partner_may_act(row(Response::allow, "policy"), Response::block));
  EXPECT_TRUE(partner_may_act(row(Response::throttle, "policy"), Response::block));
  EXPECT_FALSE(partner_may_act(row(Response::block, "policy"), Response::throttle));
  EXPECT_FALSE(partner_may_act(row(Response::throttle, "partner"), Response::throttle));
  EXPECT_TRUE(partner_may_act(row(Response::throttle, "partner"), Response::block));
}

TEST(PartnerRules, AClientReadsAPartnersReasonOnlyUnderTlpWhite) {
  ActionRow row;
  row.source = "partner";
  row.reason =
      "partner labA's indicator indicator--x (confidence 90, TLP:amber) matched the address "
      "203.0.113.7";
  row.signals = R"([{"signal":"partner_indicator","tlp":"amber"}])";
  const std::string amber = partner_reason_for_client(row);
  EXPECT_EQ(amber.find("labA"), std::string::npos) << amber;
  EXPECT_EQ(amber.find("203.0.113.7"), std::string::npos) << amber;
  EXPECT_NE(amber.find("TLP:AMBER"), std::string::npos) << amber;
  row.signals = R"([{"signal":"partner_indicator","tlp":""}])";
  EXPECT_NE(partner_reason_for_client(row).find("no TLP marking"), std::string::npos);
  row.signals = "not json";
  EXPECT_EQ(partner_reason_for_client(row).find("labA"), std::string::npos);
  row.signals = R"([{"signal":"partner_indicator","tlp":"white"}])";
  EXPECT_EQ(partner_reason_for_client(row), row.reason);
}

}  // namespace
}  // namespace retort

// The guard's responses in a live `retort serve`: the detector blocks a harvesting key off the
// request path, operators' rows are enforced (strip, throttle, allow), the telemetry reaches the
// audit row (X-Forwarded-For when trusted), and a restarted server still refuses a blocked key.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "retort/actions.h"
#include "retort/detect_worker.h"
#include "retort/serve.h"
#include "serve_fixture.h"
#include "test_util.h"

namespace retort {
namespace {

using nlohmann::json;

// A reference corpus of 40 "documents" of 200 made-up words; harvest prompts are cut from it.
std::vector<std::string> corpus() {
  std::vector<std::string> docs;
  for (int d = 0; d < 40; ++d) {
    std::string text;
    for (int w = 0; w < 200; ++w) text += cat(w ? " " : "", "w", (d * 7919 + w * 104729) % 5003);
    docs.push_back(text + ".");
  }
  return docs;
}

std::string cut(int i) {
  const std::string& doc = corpus()[size_t(i % 40)];
  size_t at = 0;
  for (int k = 0; k < (i * 20) % 180; ++k) at = doc.find(' ', at) + 1;
  size_t end = at;
  for (int k = 0; k < 6; ++k) end = doc.find(' ', end + 1);  // ~36 bytes: the byte-level model's context is 48
  return doc.substr(at, end - at);
}

ServeOptions guarded(const testing::TempDir& dir) {
  ServeOptions o;
  std::ofstream out(dir / "reference.txt");
  for (const std::string& d : corpus()) out << d << "\n\n";
  out.close();
  o.guard.reference = (dir / "reference.txt").string();
  o.guard.signals[size_t(SignalKind::coverage)].threshold = 10;
  o.guard.enabled = true;
  o.guard.trust_forwarded = true;
  o.guard.interval = 0.02;
  o.guard.min_requests = 10;
  return o;
}

httplib::Headers headers(const std::string& key, const std::string& address) {
  return {{"Authorization", "Bearer " + key}, {"X-Forwarded-For", address + ", 10.9.9.9"}, {"User-Agent", "harvest/0.1"}};
}

// The teacher-forcing shape `retort distill --teacher openai:` sends, over distinct prompts.
std::shared_ptr<httplib::Result> harvest(httplib::Client& c, const std::string& key, int i) {
  const json body = {{"model", "m"}, {"prompt", cut(i)},
                     {"max_tokens", 0}, {"echo", true}, {"logprobs", 5}, {"temperature", 0}};
  return std::make_shared<httplib::Result>(c.Post("/v1/completions", headers(key, "203.0.113.5"), body.dump(), "application/json"));
}

int wait_for_block(httplib::Client& c, const std::string& key, int* sent) {
  for (int i = 0; i < 400; ++i) {
    auto r = harvest(c, key, i);
    ++*sent;
    if (*r && (*r)->status == 403) return 403;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return 0;
}

TEST(ServeGuard, TheDetectorBlocksAHarvestingKeyAndARestartKeepsItBlocked) {
  testing::TempDir dir;
  std::string db, key;
  {
    auto s = testing::start_server(dir, guarded(dir));
    db = s->db;
    key = s->key;
    httplib::Client c("127.0.0.1", s->server->port());
    int sent = 0;
    ASSERT_EQ(wait_for_block(c, s->key, &sent), 403) << "never blocked after " << sent << " requests";
    auto r = harvest(c, s->key, 999);
    ASSERT_TRUE(*r);
    EXPECT_EQ((*r)->status, 403);
    const json e = json::parse((*r)->body).at("error");
    EXPECT_EQ(e.at("code"), "key_blocked");
    EXPECT_NE(e.at("message").get<std::string>().find("teacher-forcing shape"), std::string::npos) << e.dump();
    EXPECT_LT(sent, 60) << "min_requests 10 and a pass every 20 ms";
    auto guard = std::make_shared<GuardDb>(db);
    const std::vector<AuditRow> rows = AuditLog(guard).recent(1000);
    ASSERT_FALSE(rows.empty());
    EXPECT_EQ(rows.front().action, "block");
    EXPECT_EQ(rows.front().status, 403);
    int answered = 0;
    for (const AuditRow& a : rows) {
      EXPECT_EQ(a.client, "203.0.113.5") << "the first address of X-Forwarded-For, trusted";
      if (a.status != 200) continue;
      ++answered;
      EXPECT_NE(a.prompt_simhash, 0u);
      EXPECT_GE(a.ref_chunk, 0) << "cut from the reference";
      EXPECT_TRUE(a.prompt_text.empty()) << "prompts are not stored unless guard.store_prompts";
    }
    EXPECT_GE(answered, 10) << "min_requests answered before the block";
    const std::vector<ActionRow> acts = ActionStore(guard).for_key(1);
    ASSERT_FALSE(acts.empty());
    EXPECT_EQ(acts.back().action, Response::block);
    EXPECT_EQ(acts.back().source, "policy");
  }
  // Restarted with detection off: the rows in force are enforced from the first request.
  ServeOptions plain;
  plain.db = db;
  plain.port = 0;
  Server again(std::make_shared<Engine>(std::vector<std::pair<std::string, std::string>>{{"m", (dir / "lm").string()}}, "cpu"), plain);
  ASSERT_TRUE(again.bind());
  std::thread t([&] { again.listen_after_bind(); });
  httplib::Client c("127.0.0.1", again.port());
  auto r = harvest(c, key, 1);
  again.stop();
  t.join();
  ASSERT_TRUE(*r);
  EXPECT_EQ((*r)->status, 403) << (*r)->body;
}

TEST(ServeGuard, AnOperatorsRowsAreEnforcedStripThrottleAndAllow) {
  testing::TempDir dir;
  ServeOptions o;  // detection off: only the operator acts
  o.guard.interval = 0.02;
  o.guard.throttle_rpm = 2;
  auto s = testing::start_server(dir, o);
  httplib::Client c("127.0.0.1", s->server->port());
  auto db = std::make_shared<GuardDb>(s->db);
  auto wait = [] { std::this_thread::sleep_for(std::chrono::milliseconds(150)); };

  operator_action(db, "test", Response::strip, "asks for too many logprobs");
  wait();
  auto r = harvest(c, s->key, 1);
  ASSERT_TRUE(*r);
  ASSERT_EQ((*r)->status, 200) << (*r)->body;
  const json lp = json::parse((*r)->body).at("choices")[0].at("logprobs");
  for (size_t t = 0; t < lp.at("token_logprobs").size(); ++t) {
    EXPECT_TRUE(lp.at("token_logprobs")[t].is_null()) << "echoed prompt logprobs are dropped";
    EXPECT_LE(lp.at("top_logprobs")[t].is_null() ? 0 : lp.at("top_logprobs")[t].size(), 1u);
  }
  const json gen = {{"model", "m"}, {"prompt", "abc"}, {"max_tokens", 3}, {"logprobs", 5}};
  auto g = c.Post("/v1/completions", headers(s->key, "198.51.100.1"), gen.dump(), "application/json");
  ASSERT_TRUE(g);
  ASSERT_EQ(g->status, 200) << g->body;
  for (const auto& top : json::parse(g->body).at("choices")[0].at("logprobs").at("top_logprobs"))
    EXPECT_LE(top.size(), 1u) << "strip_top = 1";
  EXPECT_EQ(AuditLog(db).recent(1)[0].logprobs, 5) << "the audit row keeps what was asked, for the detector";
  // strip includes throttle: a key without limits gets throttle_rpm = 2 requests a minute
  auto third = c.Post("/v1/completions", headers(s->key, "198.51.100.1"), gen.dump(), "application/json");
  ASSERT_TRUE(third);
  EXPECT_EQ(third->status, 429) << third->body;

  operator_action(db, "test", Response::allow, "cleared after review");
  wait();
  auto ok = c.Post("/v1/completions", headers(s->key, "198.51.100.1"), gen.dump(), "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << "allow: nothing enforced, " << ok->body;
  EXPECT_EQ(json::parse(ok->body).at("choices")[0].at("logprobs").at("top_logprobs")[0].size(), 5u);
}

}  // namespace
}  // namespace retort

// The detector worker's snapshot (retort/detect_worker.h), which the dashboard reads from another
// thread: what a pass assessed (keys, with ids, and clusters), published after a pass that read
// rows; with detection off, nothing but that it is off.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "guard_fixture.h"
#include "retort/actions.h"
#include "retort/detect_worker.h"
#include "retort/telemetry.h"

namespace retort {
namespace {

using guard_testing::Guard;
using guard_testing::TempDir;

// Two harvesting keys from one address and user agent (one actor) and a chatting key.
void harvest(const std::filesystem::path& file) {
  Guard g(file);
  g.keys.create("thief", {});
  g.keys.create("thief2", {});
  g.keys.create("alice", {});
  AuditLog log(g.db);
  for (int i = 0; i < 30; ++i)
    for (int64_t k : {1, 2, 3}) {
      AuditRow r;
      r.key_id = k;
      r.key_name = k == 1 ? "thief" : k == 2 ? "thief2" : "alice";
      r.time = 1000 + i * 7.0 + double(k);
      r.endpoint = k == 3 ? "/v1/chat/completions" : "/v1/completions";
      r.status = 200;
      r.prompt_tokens = 12;
      r.completion_tokens = k == 3 ? 40 : 0;
      const std::string prompt = k == 3 ? "tell me of day " + std::to_string(i % 4) : "In the beginning word " + std::to_string(i * 31 + k);
      r.prompt_simhash = prompt_simhash(prompt);
      r.prompt_prefix = prompt_prefix(prompt);
      r.echo = k != 3;
      r.logprobs = k == 3 ? -1 : 5;
      r.max_tokens = k == 3 ? 40 : 0;
      r.client = k == 3 ? "198.51.100.7" : "203.0.113.9";
      r.user_agent = k == 3 ? "curl/8" : "harvest/0.1";
      log.append(r);
    }
}

TEST(DetectSnapshot, APassPublishesItsKeysAndClustersForOtherThreads) {
  TempDir dir;
  const auto file = dir.path / "guard.db";
  harvest(file);
  DetectPolicy p;
  p.enabled = true;
  p.min_requests = 10;
  DetectWorker w(file, p, 0, std::make_shared<ActionsInForce>());
  const nlohmann::json before = w.snapshot();
  EXPECT_TRUE(before.at("enabled").get<bool>());
  EXPECT_EQ(before.at("updated").get<double>(), 0) << "nothing published before a pass";
  EXPECT_TRUE(before.at("keys").empty());

  EXPECT_EQ(w.pass().rows, 90);
  const nlohmann::json s = w.snapshot();
  EXPECT_EQ(s.at("observed").get<int64_t>(), 90);
  EXPECT_GT(s.at("updated").get<double>(), 0);
  ASSERT_EQ(s.at("keys").size(), 3u);
  const nlohmann::json& top = s.at("keys").at(0);
  EXPECT_TRUE(top.at("name") == "thief" || top.at("name") == "thief2") << s.at("keys").dump();
  EXPECT_EQ(top.at("ids").size(), 1u);
  EXPECT_EQ(top.at("signals").size(), size_t(kSignalKinds));
  EXPECT_EQ(s.at("keys").at(2).at("name"), "alice") << "the chatting key scores lowest";
  ASSERT_EQ(s.at("clusters").size(), 1u) << s.dump();
  EXPECT_EQ(s.at("clusters").at(0).at("keys"), (nlohmann::json{"thief", "thief2"}));
  EXPECT_EQ(s.at("clusters").at(0).at("ids"), (nlohmann::json{1, 2}));
  ASSERT_FALSE(s.at("clusters").at(0).at("links").empty());
  EXPECT_NE(s.at("clusters").at(0).at("links").at(0).get<std::string>().find("address 203.0.113.9"), std::string::npos);
  // Read while the worker's own thread runs passes: a copy each time, never a torn one.
  w.start();
  for (int i = 0; i < 200; ++i) EXPECT_EQ(w.snapshot().at("keys").size(), 3u);
  w.stop();
}

TEST(DetectSnapshot, DetectionOffPublishesThatItIsOff) {
  TempDir dir;
  const auto file = dir.path / "guard.db";
  harvest(file);
  DetectPolicy p;  // guard.detect = false
  DetectWorker w(file, p, 0, std::make_shared<ActionsInForce>());
  EXPECT_EQ(w.pass().rows, 0);
  const nlohmann::json s = w.snapshot();
  EXPECT_FALSE(s.at("enabled").get<bool>());
  EXPECT_TRUE(s.at("keys").empty());
  EXPECT_TRUE(s.at("clusters").empty());
}

}  // namespace
}  // namespace retort

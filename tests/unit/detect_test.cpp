// The campaign detector on constructed traffic: fingerprints, each signal against what it
// should and should not see, scores and responses, the key graph, the worker's durable rows,
// and a harvest that imitates benign shapes (which signals still see it).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "guard_fixture.h"
#include "retort/actions.h"
#include "retort/detect.h"
#include "retort/detect_worker.h"
#include "retort/telemetry.h"

namespace retort {
namespace {

using guard_testing::error_of;
using guard_testing::Guard;
using guard_testing::TempDir;

const std::vector<std::string> kWords = {"light", "darkness", "waters", "earth", "heaven", "spirit", "morning", "evening",
                                         "firmament", "seed", "fruit", "tree", "herb", "grass", "beast", "fowl",
                                         "sea", "day", "night", "stars", "sun", "moon", "image", "dominion",
                                         "garden", "river", "gold", "onyx", "dust", "breath", "rib", "woman"};

std::string random_text(std::mt19937& rng, int words) {
  std::string s;
  for (int i = 0; i < words; ++i) s += (i ? " " : "") + kWords[rng() % kWords.size()] + std::to_string(rng() % 50);
  return s;
}

// A row of key `key` at `time` with the prompt's telemetry filled in as the chain fills it.
AuditRow row(int64_t key, double time, const std::string& prompt) {
  AuditRow r;
  r.key_id = key;
  r.key_name = "k" + std::to_string(key);
  r.time = time;
  r.endpoint = "/v1/completions";
  r.status = 200;
  r.prompt_tokens = 32;
  r.completion_tokens = 16;
  r.max_tokens = 16;
  r.client = "10.0.0." + std::to_string(key);
  r.user_agent = "agent-" + std::to_string(key);
  r.prompt_simhash = prompt_simhash(prompt);
  r.prompt_prefix = prompt_prefix(prompt);
  return r;
}

AuditRow forcing(AuditRow r, int64_t top) {
  r.echo = true;
  r.logprobs = top;
  r.max_tokens = 1;
  r.completion_tokens = 1;
  return r;
}

const SignalValue& signal(const Assessment& a, SignalKind k) { return a.signals.at(size_t(k)); }

TEST(Telemetry, SimHashPutsTemplateVariantsCloseAndUnrelatedPromptsFarApart) {
  std::mt19937 rng(1);
  const std::string tmpl = "Continue the following passage in the style of the King James Bible and keep its verse numbers: ";
  double close = 0, far = 0;
  for (int i = 0; i < 50; ++i) {
    close += hamming(prompt_simhash(tmpl + random_text(rng, 4)), prompt_simhash(tmpl + random_text(rng, 4)));
    far += hamming(prompt_simhash(random_text(rng, 20)), prompt_simhash(random_text(rng, 20)));
  }
  EXPECT_LT(close / 50, 16) << "variants of one template";
  EXPECT_GT(far / 50, 24) << "unrelated prompts sit near 32 bits apart";
  EXPECT_LT(far / 50, 40);
  EXPECT_EQ(prompt_prefix(tmpl + "in the beginning"), prompt_prefix(tmpl + "and the earth"));
  EXPECT_NE(prompt_prefix("In the beginning God"), prompt_prefix("And the earth was"));
  EXPECT_EQ(prompt_simhash("  ...  "), 0u);
  EXPECT_EQ(prompt_prefix(""), 0u);
}

TEST(Telemetry, ReferenceIndexPlacesAPassageCutFromTheCorpusAndNothingElse) {
  std::mt19937 rng(2);
  std::vector<std::string> docs;
  for (int d = 0; d < 20; ++d) docs.push_back(random_text(rng, 300));
  const ReferenceIndex index(docs, 64);
  EXPECT_GE(index.chunks(), 90);
  // words 130..150 of document 3: chunk (3 * ~296 + 130) / 64
  const std::vector<std::string> w = prompt_words(docs[3]);
  std::string cut;
  for (int i = 130; i < 150; ++i) cut += w[size_t(i)] + " ";
  const int64_t c = index.locate("Please continue: " + cut);
  const int64_t expected = (3 * 296 + 130) / 64;
  EXPECT_NEAR(double(c), double(expected), 1.0);
  EXPECT_EQ(index.locate("nothing of this is in the corpus at all, not one shingle"), -1);
  EXPECT_EQ(ReferenceIndex().locate(cut), -1);
}

TEST(Signals, EachFiresOnTheTrafficItDescribesAndNotOnAChatUser) {
  DetectPolicy p;
  p.hour = 100;
  Detector d(p, 1000);
  std::mt19937 rng(3);
  std::exponential_distribution<double> think(1 / 7.0);
  double t = 1000, u = -4000;  // the chat ends before the harvest starts
  for (int i = 0; i < 400; ++i) {
    AuditRow h = forcing(row(1, t += 0.5, random_text(rng, 30)), 20);  // a metronome harvesting top-20
    h.ref_chunk = i;
    h.prompt_tokens = 128;
    d.observe(h);
  }
  std::string history;
  for (int i = 0; i < 60; ++i) {  // a person chatting: bursts and pauses, one conversation
    u += i % 10 == 0 ? 600 : think(rng);
    history += " " + random_text(rng, 3);
    AuditRow c = row(2, u, "about the garden and the river" + history);
    c.endpoint = "/v1/chat/completions";
    d.observe(c);
  }
  const Assessment h = d.assess_key(1), c = d.assess_key(2);
  EXPECT_DOUBLE_EQ(signal(h, SignalKind::forcing_share).value, 1.0);
  EXPECT_TRUE(signal(h, SignalKind::forcing_share).fired);
  EXPECT_DOUBLE_EQ(signal(c, SignalKind::forcing_share).value, 0.0);
  EXPECT_DOUBLE_EQ(signal(h, SignalKind::logprob_appetite).value, 1.0);
  EXPECT_FALSE(signal(c, SignalKind::logprob_appetite).fired);
  EXPECT_GT(signal(h, SignalKind::novelty).value, 0.95);
  EXPECT_LT(signal(c, SignalKind::novelty).value, 0.3) << "a conversation repeats its history";
  EXPECT_DOUBLE_EQ(signal(h, SignalKind::coverage).value, 400);
  EXPECT_TRUE(signal(h, SignalKind::coverage).fired);
  EXPECT_DOUBLE_EQ(signal(c, SignalKind::coverage).value, 0);
  EXPECT_NEAR(signal(h, SignalKind::volume).value, 200 * 129, 2 * 129) << "tokens in the last 100 s only";
  EXPECT_GT(signal(h, SignalKind::regularity).value, 0.95);
  EXPECT_LT(signal(c, SignalKind::regularity).value, 0.4) << "bursts and pauses";
  EXPECT_TRUE(signal(c, SignalKind::template_repetition).value > 0.9) << "every turn opens the same way here";
  EXPECT_GE(h.score, p.block);
  EXPECT_EQ(h.response, Response::block);
  EXPECT_LT(c.score, p.throttle);
  EXPECT_NE(h.reason().find("teacher-forcing shape"), std::string::npos) << h.reason();
}

TEST(Signals, TemplateRoundTheClockAndTheMinimumOfRequests) {
  DetectPolicy p;
  p.hour = 10;
  Detector d(p);
  std::mt19937 rng(4);
  for (int i = 0; i < 240; ++i) d.observe(row(1, 1000 + i * 1.0, "Continue the passage: " + random_text(rng, 12)));  // 24 hours
  for (int h = 0; h < 24; ++h)
    if (h % 3 == 0)
      for (int i = 0; i < 3; ++i) d.observe(row(2, 1000 + h * 10 + i, random_text(rng, 12)));  // 8 of 24 hours
  for (int i = 0; i < 5; ++i) d.observe(row(3, 1000 + i, "Continue the passage: " + random_text(rng, 12)));
  const Assessment a = d.assess_key(1), b = d.assess_key(2), young = d.assess_key(3);
  EXPECT_DOUBLE_EQ(signal(a, SignalKind::template_repetition).value, 1.0);
  EXPECT_LT(signal(b, SignalKind::template_repetition).value, 0.3);
  EXPECT_DOUBLE_EQ(signal(a, SignalKind::round_the_clock).value, 1.0);
  EXPECT_NEAR(signal(b, SignalKind::round_the_clock).value, 8.0 / 24, 0.05);
  EXPECT_FALSE(signal(b, SignalKind::round_the_clock).fired);
  EXPECT_EQ(young.score, 0) << "5 requests are below guard.min_requests";
  EXPECT_TRUE(signal(young, SignalKind::template_repetition).fired) << "the signal is there; the score waits for evidence";
}

TEST(KeyGraph, AHydraSplitOverManyKeysIsOneActorWhosePartsLookSmall) {
  DetectPolicy p;
  p.hour = 600;  // activity in 50 s periods
  p.min_requests = 20;
  Detector d(p, 5000);
  std::mt19937 rng(5);
  // 24 keys from 3 addresses, one rare user agent, taking turns over one harvest: 10 requests each.
  double t = 1000;
  for (int i = 0; i < 240; ++i) {
    const int64_t key = 100 + i % 24;
    AuditRow r = forcing(row(key, t += 0.7, random_text(rng, 30)), 5);
    r.client = "203.0.113." + std::to_string(key % 3);
    r.user_agent = "harvest/0.1";
    r.ref_chunk = i;
    d.observe(r);
  }
  // 30 benign keys: own addresses, two common agents, five of them behind one office address.
  for (int k = 0; k < 30; ++k)
    for (int i = 0; i < 25; ++i) {
      AuditRow r = row(k + 1, 1000 + rng() % 170, random_text(rng, 10));
      r.user_agent = k % 2 ? "OpenAI/Python 1.40" : "Mozilla/5.0";
      if (k < 5) r.client = "198.51.100.7";
      d.observe(r);
    }
  for (const Assessment& a : d.keys())
    if (a.key_ids.front() >= 100) EXPECT_EQ(a.score, 0) << a.name << ": 10 requests each, below min_requests";
  const std::vector<Assessment> clusters = d.clusters();
  const Assessment* hydra = nullptr;
  for (const Assessment& c : clusters)
    if (c.key_ids.front() >= 100) hydra = &c;
  ASSERT_NE(hydra, nullptr);
  EXPECT_EQ(hydra->key_ids.size(), 24u);
  EXPECT_EQ(hydra->requests, 240);
  EXPECT_EQ(hydra->response, Response::block) << hydra->reason();
  EXPECT_NE(hydra->reason().find("keys act as one"), std::string::npos);
  for (const Assessment& c : clusters)
    if (c.key_ids.front() < 100) EXPECT_LT(c.score, p.throttle) << "benign keys linked by an office address: " << c.reason();
  const std::vector<Verdict> v = Detector::verdicts(d.keys(), clusters);
  for (const Verdict& x : v) EXPECT_EQ(x.response == Response::block, x.key_id >= 100) << x.key_name;
}

TEST(Signals, AHarvestImitatingBenignShapesIsSeenOnlyByCoverageNoveltyAndVolume) {
  // Text-only harvest through chat, no logprobs, human-like gaps, each prompt a new passage with
  // varied openings: the shape signals are blind; what remains is what it must do to harvest.
  DetectPolicy p;
  p.hour = 3600;
  Detector d(p, 12000);
  std::mt19937 rng(6);
  std::exponential_distribution<double> think(1 / 5.0);
  double t = 1000;
  for (int i = 0; i < 600; ++i) {
    AuditRow r = row(1, t += think(rng), random_text(rng, 40));
    r.endpoint = "/v1/chat/completions";
    r.ref_chunk = i;
    r.completion_tokens = 400;
    r.prompt_tokens = 60;
    d.observe(r);
  }
  const Assessment a = d.assess_key(1);
  for (SignalKind k : {SignalKind::forcing_share, SignalKind::logprob_appetite, SignalKind::template_repetition, SignalKind::regularity})
    EXPECT_FALSE(signal(a, k).fired) << signal_name(k) << ": " << signal(a, k).sentence;
  for (SignalKind k : {SignalKind::coverage, SignalKind::novelty, SignalKind::volume})
    EXPECT_TRUE(signal(a, k).fired) << signal_name(k) << ": " << signal(a, k).sentence;
  EXPECT_EQ(a.response, Response::throttle) << "shape-blind: throttled, not stripped or blocked, on these signals alone: "
                                            << a.reason();
}

TEST(Policy, ResponsesAscendAndBadPoliciesNameTheirKey) {
  DetectPolicy p;
  EXPECT_EQ(p.response_for(0), Response::none);
  EXPECT_EQ(p.response_for(p.observe), Response::observe);
  EXPECT_EQ(p.response_for(p.block), Response::block);
  p.strip = 0.9;
  EXPECT_NE(error_of([&] { p.check(); }).find("guard.response.mark"), std::string::npos);
  DetectPolicy q;
  for (SignalRule& r : q.signals) r.weight = 0;
  EXPECT_NE(error_of([&] { q.check(); }).find("weight"), std::string::npos);
  EXPECT_NE(error_of([] { response_from_name("ban"); }).find("observe | throttle"), std::string::npos);
}

TEST(DetectWorker, ActionRowsAreDurableOperatorsWinAndARestartEnforcesThemAgain) {
  TempDir dir;
  const auto file = dir.path / "guard.db";
  DetectPolicy p;
  p.enabled = true;
  std::mt19937 rng(7);
  std::exponential_distribution<double> think(1 / 30.0);
  double when = 1000;
  {
    Guard g(file);
    g.keys.create("thief", {});
    g.keys.create("alice", {});
    AuditLog log(g.db);
    for (int i = 0; i < 60; ++i) {
      AuditRow r = forcing(row(1, 1000 + i * 0.5, random_text(rng, 30)), 20);
      r.key_name = "thief";
      r.ref_chunk = i;
      log.append(r);
      AuditRow a = row(2, when += think(rng), "about the garden " + random_text(rng, 8));
      a.key_name = "alice";
      log.append(a);
    }
  }
  auto in_force = std::make_shared<ActionsInForce>();
  {
    DetectWorker w(file, p, 0, in_force);
    const PassStats st = w.pass();
    EXPECT_EQ(st.rows, 120);
    EXPECT_EQ(st.actions, 1) << "only the thief earns an action";
    const auto thief = in_force->find(1, 2000);
    ASSERT_TRUE(thief);
    EXPECT_EQ(thief->source, "policy");
    EXPECT_GE(thief->action, Response::strip);
    EXPECT_FALSE(in_force->find(2, 2000));
    EXPECT_EQ(w.pass().actions, 0) << "nothing new, nothing written";
  }
  auto db = std::make_shared<GuardDb>(file);
  operator_action(db, "thief", Response::allow, "a research partner, confirmed by phone");
  EXPECT_NE(error_of([&] { operator_action(db, "nobody", Response::block, "x"); }).find("no API key named 'nobody'"), std::string::npos);
  EXPECT_NE(error_of([&] { operator_action(db, "alice", Response::block, ""); }).find("--reason"), std::string::npos);
  {
    AuditLog log(db);
    for (int i = 0; i < 40; ++i) log.append(forcing(row(1, 1100 + i * 0.5, random_text(rng, 30)), 20));
  }
  auto fresh = std::make_shared<ActionsInForce>();  // a restarted server
  DetectWorker w(file, p, 0, fresh);
  EXPECT_EQ(fresh->find(1, 2000)->action, Response::allow) << "read back from the database on start";
  EXPECT_EQ(w.pass().actions, 0) << "the operator's allow stands against the policy";
  EXPECT_EQ(ActionStore(db).for_key(1).size(), 2u);
}

}  // namespace
}  // namespace retort

// retort serve: the engine against the model it serves, and the HTTP server under concurrency,
// a full queue and garbage bodies.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <random>
#include <thread>

#include "retort/generate.h"
#include "retort/guard.h"
#include "retort/serve.h"
#include "serve_fixture.h"
#include "test_util.h"

namespace retort {
namespace {

using testing::TempDir;
using nlohmann::json;

using testing::save_tiny_lm;

GenerationRequest request(const std::string& text, int64_t max_tokens, uint64_t seed = 1) {
  GenerationRequest r;
  for (unsigned char c : text) r.prompt.push_back(c);
  r.max_tokens = max_tokens;
  r.seed = seed;
  return r;
}

int status_of(const std::function<void()>& f, std::string* code = nullptr) {
  try {
    f();
  } catch (const ApiError& e) {
    if (code) *code = e.code;
    return e.status;
  }
  return 200;
}

TEST(ServeEngine, EchoedLogprobsAreTheModelsNextTokenLogSoftmax) {
  TempDir dir;
  Engine engine({{"m", save_tiny_lm(dir)}}, "cpu");
  const ServedModel& m = engine.model("m");
  GenerationRequest r = request("In the beginning", 1);
  r.echo = true;
  r.logprobs = 5;
  GenerationResult g = engine.generate(m, r);
  ASSERT_EQ(g.prompt_logprobs.size(), r.prompt.size());
  EXPECT_TRUE(std::isnan(g.prompt_logprobs[0].logprob));
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::tensor(std::vector<int64_t>(r.prompt.begin(), r.prompt.end())).view({1, -1});
  torch::Tensor lsm = torch::log_softmax(m.model->forward(x).logits[0], -1);  // (P, V)
  for (size_t t = 1; t < r.prompt.size(); ++t) {
    const TokenLogprob& e = g.prompt_logprobs[t];
    EXPECT_NEAR(e.logprob, lsm[t - 1][r.prompt[t]].item<float>(), 1e-5) << t;
    ASSERT_EQ(e.top.size(), 5u);
    EXPECT_EQ(e.top[0].first, lsm[t - 1].argmax().item<int64_t>());
    for (size_t j = 1; j < 5; ++j) EXPECT_GE(e.top[j - 1].second, e.top[j].second);
  }
  // the new token's distribution is the one after the whole prompt
  const auto& first = g.choices[0].logprobs[0];
  EXPECT_NEAR(first.logprob, lsm[r.prompt.size() - 1][first.id].item<float>(), 1e-5);
}

TEST(ServeEngine, SamplesEqualTheLibrarysGenerateForTheSameSeed) {
  TempDir dir;
  Engine engine({{"m", save_tiny_lm(dir)}}, "cpu");
  const ServedModel& m = engine.model("m");
  GenerationRequest r = request("And God", 12, 42);
  r.n = 3;
  r.temperature = 0.9;
  GenerationResult g = engine.generate(m, r);
  SamplingOptions s;
  s.temperature = 0.9;
  s.seed = 42;
  torch::Tensor x = torch::tensor(std::vector<int64_t>(r.prompt.begin(), r.prompt.end())).view({1, -1}).expand({3, -1});
  torch::Tensor out = generate(*m.model, x.contiguous(), 12, s);
  ASSERT_EQ(g.choices.size(), 3u);
  EXPECT_EQ(g.completion_tokens, 36);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t t = 0; t < 12; ++t) EXPECT_EQ(g.choices[c].ids[t], out[c][int64_t(r.prompt.size()) + t].item<int64_t>());
}

TEST(ServeEngine, StopStringEndsTheChoiceBeforeIt) {
  TempDir dir;
  Engine engine({{"m", save_tiny_lm(dir)}}, "cpu");
  const ServedModel& m = engine.model("m");
  GenerationRequest r = request("abc", 20);
  r.temperature = 0;
  std::string full = engine.generate(m, r).choices[0].text;
  ASSERT_EQ(full.size(), 20u);
  r.stop = {full.substr(7, 2), "never there \x01"};
  r.logprobs = 2;
  GeneratedChoice ch = engine.generate(m, r).choices[0];
  size_t at = full.find(full.substr(7, 2));
  EXPECT_EQ(ch.text, full.substr(0, at));
  EXPECT_EQ(ch.finish_reason, "stop");
  EXPECT_EQ(ch.ids.size(), at);  // byte tokens: one per byte
  EXPECT_EQ(ch.logprobs.size(), at);
}

TEST(ServeEngine, StreamedPiecesJoinToTheText) {
  TempDir dir;
  Engine engine({{"m", save_tiny_lm(dir)}}, "cpu");
  const ServedModel& m = engine.model("m");
  GenerationRequest r = request("Let there be", 25, 9);
  r.n = 2;
  r.stop = {"zq"};
  std::vector<std::string> pieces(2);
  int calls = 0;
  GenerationResult g = engine.generate(m, r, [&](int64_t c, const std::string& text, const std::vector<TokenLogprob>*) {
    pieces[c] += text;
    ++calls;
    return true;
  });
  EXPECT_GE(calls, 2);
  for (int c = 0; c < 2; ++c) EXPECT_EQ(pieces[c], g.choices[c].text) << c;
  // a sink that reports the client gone stops generation
  int seen = 0;
  GenerationResult cut = engine.generate(m, r, [&](int64_t, const std::string&, const std::vector<TokenLogprob>*) { return ++seen < 3; });
  EXPECT_LT(cut.completion_tokens, 50);
}

TEST(ServeEngine, RequestsTheModelCannotTakeAre400s) {
  TempDir dir;
  Engine engine({{"m", save_tiny_lm(dir, 16)}}, "cpu");
  const ServedModel& m = engine.model("m");
  std::string code;
  EXPECT_EQ(status_of([&] { engine.generate(m, request(std::string(17, 'a'), 1)); }, &code), 400);
  EXPECT_EQ(code, "context_length_exceeded");
  EXPECT_EQ(status_of([&] { engine.generate(m, request(std::string(10, 'a'), 8)); }, &code), 400);  // 10 + 8 > 16 + 1
  EXPECT_EQ(status_of([&] { engine.generate(m, request(std::string(10, 'a'), 7)); }), 200);          // the last token is never fed
  GenerationRequest bad = request("a", 1);
  bad.prompt[0] = 300;
  EXPECT_EQ(status_of([&] { engine.generate(m, bad); }), 400);
  EXPECT_EQ(status_of([&] { engine.generate(m, request("a", 0)); }), 400);  // max_tokens 0 needs echo
  EXPECT_EQ(status_of([&] { engine.model("nope"); }, &code), 404);
  EXPECT_EQ(code, "model_not_found");
  EXPECT_EQ(status_of([&] { engine.classify(m, {{1.f}}); }), 400);
}

// ---- the HTTP server --------------------------------------------------------------------

using Running = testing::RunningServer;

std::unique_ptr<Running> start(const TempDir& dir, ServeOptions o) { return testing::start_server(dir, o); }

httplib::Result post(const Running& r, const json& body) {
  httplib::Client c("127.0.0.1", r.server->port());
  c.set_read_timeout(60);
  return c.Post("/v1/completions", {{"Authorization", "Bearer " + r.key}}, body.dump(), "application/json");
}

TEST(ServeHttp, ConcurrentRequestsAnswerAsTheyDoOneByOne) {
  TempDir dir;
  ServeOptions o;
  o.workers = 3;
  auto r = start(dir, o);
  auto body = [](int i) { return json{{"model", "m"}, {"prompt", "In the beginning " + std::to_string(i)}, {"max_tokens", 10}, {"seed", i}, {"logprobs", 3}}; };
  std::vector<std::string> serial(12), parallel(12);
  for (int i = 0; i < 12; ++i) {
    auto res = post(*r, body(i));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    serial[i] = json::parse(res->body)["choices"].dump();
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < 12; ++i)
    threads.emplace_back([&, i] {
      auto res = post(*r, body(i));
      if (res && res->status == 200) parallel[i] = json::parse(res->body)["choices"].dump();
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 12; ++i) EXPECT_EQ(parallel[i], serial[i]) << i;
  AuditLog audit(std::make_shared<GuardDb>(dir / "serve.db"));
  EXPECT_EQ(audit.count(), 24);
}

TEST(ServeHttp, AFullQueueAnswers503WithRetryAfter) {
  TempDir dir;
  ServeOptions o;
  o.workers = 1;
  o.queue = 0;
  auto r = start(dir, o);
  std::atomic<int> ok{0}, busy{0}, other{0};
  std::atomic<bool> retry_after{true};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      auto res = post(*r, {{"model", "m"}, {"prompt", "a"}, {"max_tokens", 40}, {"n", 16}, {"seed", i}});
      if (!res) return (void)++other;
      if (res->status == 200) ++ok;
      else if (res->status == 503) {
        ++busy;
        retry_after = retry_after && res->get_header_value("Retry-After") == "1" &&
                      json::parse(res->body)["error"]["code"] == "overloaded";
      } else ++other;
    });
  for (auto& t : threads) t.join();
  EXPECT_GE(ok, 1);
  EXPECT_GE(busy, 1);
  EXPECT_EQ(ok + busy, 8);
  EXPECT_EQ(other, 0);
  EXPECT_TRUE(retry_after);
}

TEST(ServeHttp, GarbageBodiesGet4xxAndTheServerStaysUp) {
  TempDir dir;
  auto r = start(dir, ServeOptions{});
  std::mt19937 rng(3);
  const std::vector<std::string> seeds = {
      R"({"model":"m","prompt":"a","max_tokens":2})", R"({"model":"m","messages":[{"role":"user","content":"hi"}]})",
      R"({"model":"m","prompt":[1,2,3],"logprobs":2,"echo":true,"stop":["x"]})"};
  httplib::Client c("127.0.0.1", r->server->port());
  int statuses_4xx = 0, total = 0;
  for (int i = 0; i < 300; ++i) {
    std::string s = seeds[i % seeds.size()];
    for (int k = 0; k < 1 + int(rng() % 4); ++k) {  // flip, drop or insert characters
      size_t at = rng() % s.size();
      int op = int(rng() % 3);
      if (op == 0) s[at] = char(rng() % 256);
      else if (op == 1) s.erase(at, 1);
      else s.insert(at, 1, "{}[]\":,0-e9tnul"[rng() % 15]);
    }
    const char* path = i % 2 ? "/v1/completions" : "/v1/chat/completions";
    auto res = c.Post(path, {{"Authorization", "Bearer " + r->key}}, s, "application/json");
    ASSERT_TRUE(res) << s;
    ++total;
    EXPECT_TRUE(res->status == 200 || (res->status >= 400 && res->status < 500)) << res->status << " for " << s << ": " << res->body;
    if (res->status >= 400) {
      ++statuses_4xx;
      json e = json::parse(res->body);
      EXPECT_TRUE(e["error"]["message"].is_string());
    }
  }
  EXPECT_GT(statuses_4xx, 100);
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

}  // namespace
}  // namespace retort

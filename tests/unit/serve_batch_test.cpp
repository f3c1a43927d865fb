// Continuous batching in retort serve: gpt's batched step gives each row the logits of a full
// forward pass at that row's position, to the same bits whatever its batch-mates are; a seeded
// request gives the same tokens, logprobs and watermark alone, batched (joining a running batch,
// batch-mates leaving before it) and streamed; a failing request does not fail its batch-mates.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "models/gpt.h"
#include "retort/serve.h"
#include "retort/watermark.h"
#include "serve_fixture.h"
#include "test_util.h"

namespace retort {
namespace {

using testing::TempDir;

// ---- gpt's batched step -----------------------------------------------------------------

struct Rows {
  LoadedModel m = testing::tiny_gpt({{"vocab_size", 256}, {"max_seq_len", 24}});
  GptImpl& gpt = dynamic_cast<GptImpl&>(*m.model);
  torch::Tensor seqs = torch::randint(0, 256, {5, 20}, torch::TensorOptions().dtype(torch::kInt64));
  // A cache of `capacity` rows: row b holds sequence which[b] up to (not including) positions[b].
  KvCache cache_of(const std::vector<int64_t>& which, const std::vector<int64_t>& positions, int64_t capacity) {
    const GptOptions& o = gpt.options();
    KvCache c;
    for (int64_t i = 0; i < o.n_layers(); ++i) {
      c.k.push_back(torch::zeros({capacity, o.n_kv_heads(), o.max_seq_len(), gpt.head_dim()}));
      c.v.push_back(torch::zeros_like(c.k.back()));
    }
    for (size_t b = 0; b < which.size(); ++b) {
      if (positions[b] == 0) continue;  // nothing before it
      KvCache one;
      gpt.forward_cached(seqs[which[b]].narrow(0, 0, positions[b]).unsqueeze(0), one);
      for (size_t i = 0; i < c.k.size(); ++i) c.k[i][int64_t(b)].copy_(one.k[i][0]), c.v[i][int64_t(b)].copy_(one.v[i][0]);
    }
    return c;
  }
  torch::Tensor step(const std::vector<int64_t>& which, const std::vector<int64_t>& positions, int64_t capacity = 8) {
    KvCache c = cache_of(which, positions, capacity);
    std::vector<int64_t> ids;
    for (size_t b = 0; b < which.size(); ++b) ids.push_back(seqs[which[b]][positions[b]].item<int64_t>());
    return gpt.forward_rows(torch::tensor(ids), torch::tensor(positions), c);
  }
};

TEST(GptRows, EachRowGetsTheFullForwardsLogitsAtItsOwnPosition) {
  torch::manual_seed(1);
  torch::NoGradGuard no_grad;
  Rows r;
  const std::vector<int64_t> which = {0, 1, 2, 3}, positions = {0, 5, 13, 19};
  torch::Tensor logits = r.step(which, positions);  // (4, V)
  for (size_t b = 0; b < which.size(); ++b) {
    torch::Tensor full = r.gpt.forward(r.seqs[which[b]].narrow(0, 0, positions[b] + 1).unsqueeze(0)).logits[0][-1];
    EXPECT_TRUE(torch::allclose(logits[int64_t(b)], full, 1e-4, 1e-3))
        << "row " << b << " at " << positions[b] << ": largest difference " << (logits[int64_t(b)] - full).abs().max().item<float>();
  }
}

TEST(GptRows, ARowsLogitsAreTheSameBitsWhateverTheOtherRowsAre) {
  torch::manual_seed(2);
  torch::NoGradGuard no_grad;
  Rows r;
  torch::Tensor alone = r.step({2}, {9}, 1)[0];
  // with 1, 3 and 4 other rows, at other positions, in other places of the batch
  EXPECT_TRUE(torch::equal(r.step({2, 0}, {9, 3})[0], alone));
  EXPECT_TRUE(torch::equal(r.step({0, 1, 2, 3}, {17, 1, 9, 9})[2], alone));
  EXPECT_TRUE(torch::equal(r.step({4, 3, 1, 0, 2}, {0, 19, 2, 11, 9})[4], alone));
}

// ---- the engine's batches -----------------------------------------------------------------

GenerationRequest request(const std::string& text, int64_t max_tokens, uint64_t seed) {
  GenerationRequest r;
  for (unsigned char c : text) r.prompt.push_back(c);
  r.max_tokens = max_tokens;
  r.seed = seed;
  return r;
}

// Sampled requests of several shapes: n, temperature, top_p, logprobs, stop strings, lengths.
std::vector<GenerationRequest> mixed_requests() {
  std::vector<GenerationRequest> rs;
  rs.push_back(request("In the beginning", 20, 7));
  rs.back().n = 2;
  rs.back().temperature = 0.8;
  rs.back().logprobs = 3;
  rs.push_back(request("And God said", 12, 8));
  rs.back().top_p = 0.9;
  rs.back().stop = {"e"};
  rs.push_back(request("The LORD is my shepherd", 6, 10));
  rs.back().temperature = 0;
  rs.push_back(request("Let", 25, 9));
  rs.back().n = 3;
  rs.back().temperature = 1.3;
  rs.back().logprobs = 0;
  return rs;
}

void expect_same(const GenerationResult& a, const GenerationResult& b, const std::string& what) {
  ASSERT_EQ(a.choices.size(), b.choices.size()) << what;
  EXPECT_EQ(a.completion_tokens, b.completion_tokens) << what;
  for (size_t c = 0; c < a.choices.size(); ++c) {
    const GeneratedChoice &x = a.choices[c], &y = b.choices[c];
    EXPECT_EQ(x.ids, y.ids) << what << ", choice " << c;
    EXPECT_EQ(x.text, y.text) << what << ", choice " << c;
    EXPECT_EQ(x.finish_reason, y.finish_reason) << what << ", choice " << c;
    ASSERT_EQ(x.logprobs.size(), y.logprobs.size()) << what << ", choice " << c;
    for (size_t t = 0; t < x.logprobs.size(); ++t) {
      EXPECT_EQ(x.logprobs[t].logprob, y.logprobs[t].logprob) << what << ", choice " << c << ", token " << t;  // the same bits
      EXPECT_EQ(x.logprobs[t].top, y.logprobs[t].top) << what << ", choice " << c << ", token " << t;
    }
  }
}

// All at once: request 0 starts first and each later one once the one before it has a token
// from the batch (past its first, which its prefill gives); every request but the last holds its
// first batch piece until the last is in the batch too. So each request joins a running batch
// and, while they hold, they are in it together (a held request sits the steps out). Streamed
// pieces are joined per choice into `streamed`.
std::vector<GenerationResult> run_together(const Engine& engine, const ServedModel& m, const std::vector<GenerationRequest>& rs,
                                           std::vector<std::vector<std::string>>* streamed) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> pieces(rs.size(), 0);
  std::vector<GenerationResult> out(rs.size());
  streamed->assign(rs.size(), {});
  auto in_batch = [&](size_t i) { return pieces[i] > int(rs[i].n); };
  const size_t last = rs.size() - 1;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < rs.size(); ++i)
    threads.emplace_back([&, i] {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return i == 0 || in_batch(i - 1); });
      }
      (*streamed)[i].assign(size_t(rs[i].n), "");
      out[i] = engine.generate(m, rs[i], [&, i](int64_t c, const std::string& text, const std::vector<TokenLogprob>*) {
        std::unique_lock<std::mutex> lock(mu);
        (*streamed)[i][size_t(c)] += text;
        ++pieces[i];
        cv.notify_all();
        if (i != last && pieces[i] == int(rs[i].n) + 1) cv.wait(lock, [&] { return in_batch(last); });
        return true;
      });
      std::lock_guard<std::mutex> lock(mu);
      pieces[i] = 1 << 20;  // finished: nobody waits for it any more
      cv.notify_all();
    });
  for (auto& t : threads) t.join();
  return out;
}

void expect_batched_like_alone(const std::string& lm, std::shared_ptr<const Watermark> mark) {
  Engine engine({{"m", lm}}, "cpu");
  if (mark) engine.set_watermark(mark);
  const ServedModel& m = engine.model("m");
  const std::vector<GenerationRequest> rs = mixed_requests();
  std::vector<GenerationResult> alone;
  for (const auto& r : rs) alone.push_back(engine.generate(m, r));
  const Engine::BatchStats before = engine.batch_stats();
  EXPECT_EQ(before.largest, 3) << "alone, the largest step is one request's 3 choices";
  std::vector<std::vector<std::string>> streamed;
  std::vector<GenerationResult> together = run_together(engine, m, rs, &streamed);
  EXPECT_GE(engine.batch_stats().largest, 5) << "request 0 (2 rows) held in the batch when request 3 (3 rows) joined";
  for (size_t i = 0; i < rs.size(); ++i) {
    expect_same(alone[i], together[i], "request " + std::to_string(i) + " alone vs batched");
    for (size_t c = 0; c < streamed[i].size(); ++c)
      EXPECT_EQ(streamed[i][c], together[i].choices[c].text) << "request " << i << " choice " << c << " streamed";
  }
}

TEST(ServeBatch, ASeededRequestGivesTheSameTokensAloneBatchedAndStreamed) {
  TempDir dir;
  expect_batched_like_alone(testing::save_tiny_lm(dir), nullptr);
}

TEST(ServeBatch, WatermarkedRequestsGiveTheSameMarkedTokensAloneAndBatched) {
  WatermarkKey key;
  key.id = "wm-batch";
  for (size_t i = 0; i < key.secret.size(); ++i) key.secret[i] = uint8_t(i * 7 + 3);
  for (WatermarkScheme scheme : {WatermarkScheme::Kgw, WatermarkScheme::Gumbel}) {
    TempDir dir;
    expect_batched_like_alone(testing::save_tiny_lm(dir), std::make_shared<const Watermark>(key, WatermarkOptions{scheme, 0.25, 3.0, 1}));
  }
}

TEST(ServeBatch, TheSameAsTheEngineWithoutBatching) {
  TempDir dir;
  const std::string lm = testing::save_tiny_lm(dir);
  Engine batched({{"m", lm}}, "cpu"), single({{"m", lm}}, "cpu");
  single.set_batching(/*max_batch=*/1, /*batches=*/1);
  const std::vector<GenerationRequest> rs = mixed_requests();
  std::vector<std::vector<std::string>> streamed;
  std::vector<GenerationResult> together = run_together(batched, batched.model("m"), rs, &streamed);
  for (size_t i = 0; i < rs.size(); ++i)
    expect_same(single.generate(single.model("m"), rs[i]), together[i], "request " + std::to_string(i) + " --max-batch 1 vs batched");
  EXPECT_EQ(single.batch_stats().largest, 3);  // request 2's three choices: a request is never split
}

TEST(ServeBatch, AClientThatGoesAwayStopsItsRequestOnlyThere) {
  TempDir dir;
  Engine engine({{"m", testing::save_tiny_lm(dir)}}, "cpu");
  const ServedModel& m = engine.model("m");
  GenerationRequest r = request("Let there be", 25, 9);
  r.n = 2;
  const GenerationResult whole = engine.generate(m, r);
  int seen = 0;
  GenerationResult cut = engine.generate(m, r, [&](int64_t, const std::string&, const std::vector<TokenLogprob>*) { return ++seen < 5; });
  // pieces 1-2: the first token of both choices (prefill); 3-4: the second (batch); the 5th
  // piece (third token, choice 0) finds the client gone: three tokens each were generated
  EXPECT_EQ(cut.completion_tokens, 6);
  for (size_t c = 0; c < 2; ++c) {
    ASSERT_EQ(cut.choices[c].ids.size(), 3u);
    EXPECT_EQ(cut.choices[c].ids, std::vector<int32_t>(whole.choices[c].ids.begin(), whole.choices[c].ids.begin() + 3));
  }
}

TEST(ServeBatch, AFailingRequestDoesNotFailItsBatchMates) {
  TempDir dir;
  Engine engine({{"m", testing::save_tiny_lm(dir)}}, "cpu");
  const ServedModel& m = engine.model("m");
  GenerationRequest good = request("In the beginning", 20, 3);
  good.logprobs = 2;
  const GenerationResult alone = engine.generate(m, good);
  // `good` holds its second piece (its first from the batch) while a request beside it in the
  // batch fails: its sink throws (the client's socket broke) on that request's own thread
  std::mutex mu;
  std::condition_variable cv;
  int good_pieces = 0;
  bool bad_done = false;
  GenerationResult together;
  std::thread t([&] {
    together = engine.generate(m, good, [&](int64_t, const std::string&, const std::vector<TokenLogprob>*) {
      std::unique_lock<std::mutex> lock(mu);
      if (++good_pieces == 2) {
        cv.notify_all();
        cv.wait(lock, [&] { return bad_done; });
      }
      return true;
    });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return good_pieces >= 2; });
  }
  GenerationRequest bad = request("And God said", 20, 4);
  int bad_pieces = 0;
  EXPECT_THROW(engine.generate(m, bad,
                               [&](int64_t, const std::string&, const std::vector<TokenLogprob>*) -> bool {
                                 if (++bad_pieces == 3) throw std::runtime_error("the client's socket broke");
                                 return true;
                               }),
               std::runtime_error);
  {
    std::lock_guard<std::mutex> lock(mu);
    bad_done = true;
    cv.notify_all();
  }
  t.join();
  EXPECT_GE(engine.batch_stats().largest, 2);
  expect_same(alone, together, "the batch-mate of a failed request");
}

}  // namespace
}  // namespace retort

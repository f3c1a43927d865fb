// The openai: teacher's harvests against a fake endpoint (api_fixture.h) that plays a bigram
// teacher: the top-k cache (values, tokenizer checks, resume after the budget ran out) and the
// sequence-KD text (resume after a truncated last line).
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "api_fixture.h"
#include "retort/api_teacher.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "test_util.h"

using namespace retort;
using retort::api_testing::FakeEndpoint;
using retort::testing::error_of;
using retort::testing::TempDir;
using json = nlohmann::json;

namespace {

// ---- the teacher the fake plays: a bigram model over bytes -----------------------------------

// log p(next | prev) over the 256 bytes: distinct values, so the top-k order is unambiguous.
std::vector<double> bigram_logprobs(int64_t prev) {
  std::vector<double> logits(256);
  double max = -1e9, sum = 0;
  for (int v = 0; v < 256; ++v) {
    logits[v] = 4.0 * std::sin(0.37 * v + 1.3 * double(prev)) + 0.001 * v;
    max = std::max(max, logits[v]);
  }
  for (double l : logits) sum += std::exp(l - max);
  for (double& l : logits) l = l - max - std::log(sum);
  return logits;
}

std::vector<int32_t> top_ids(const std::vector<double>& lp, int64_t k) {
  std::vector<int32_t> ids(256);
  for (int i = 0; i < 256; ++i) ids[i] = i;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int a, int b) { return lp[a] > lp[b]; });
  ids.resize(k);
  return ids;
}

// Answers teacher-forcing requests as an OpenAI server would: echo of the prompt, then one
// greedy token; top_logprobs with k entries at prompt positions and k + 1 at the completion
// (the sampled token added; here the (k+1)-th best, so the client must drop it). `poison`:
// a key no tokenizer has, at the second position.
FakeEndpoint::Handler bigram_teacher(const TokenStrings& strings, bool poison = false) {
  return [&strings, poison](const json& body, httplib::Response& res) {
    const auto prompt = body.at("prompt").get<std::vector<int64_t>>();
    const int64_t k = body.at("logprobs").get<int64_t>();
    json tokens = json::array(), token_lp = json::array(), top = json::array();
    for (size_t i = 0; i < prompt.size(); ++i) {
      tokens.push_back(strings.text(int32_t(prompt[i])));
      if (i == 0) {
        token_lp.push_back(nullptr);
        top.push_back(nullptr);
        continue;
      }
      auto lp = bigram_logprobs(prompt[i - 1]);
      token_lp.push_back(lp[prompt[i]]);
      json d = json::object();
      for (int32_t id : top_ids(lp, k)) d[strings.text(id)] = lp[id];
      if (poison && i == 2) d["<not a token>"] = -0.5;
      top.push_back(d);
    }
    auto lp = bigram_logprobs(prompt.back());
    auto best = top_ids(lp, k + 1);
    json d = json::object();
    for (int32_t id : best) d[strings.text(id)] = lp[id];
    tokens.push_back(strings.text(best[0]));
    token_lp.push_back(lp[best[0]]);
    top.push_back(d);
    json answer = {
        {"id", "cmpl-1"},
        {"object", "text_completion"},
        {"model", "fake"},
        {"choices",
         {{{"index", 0},
           {"text", strings.text(best[0])},
           {"finish_reason", "length"},
           {"logprobs",
            {{"tokens", tokens}, {"token_logprobs", token_lp}, {"top_logprobs", top}}}}}},
        {"usage",
         {{"prompt_tokens", prompt.size()},
          {"completion_tokens", 1},
          {"total_tokens", prompt.size() + 1}}}};
    res.set_content(answer.dump(), "application/json");
  };
}

// 129 bytes of text: 16 windows of 8 tokens.
TokenSet byte_set(int64_t n = 129) {
  std::string text;
  for (int64_t i = 0; i < n; ++i) text += char(32 + (i * 7 + i / 5) % 90);
  TokenSet s;
  auto tok = make_byte_tokenizer();
  auto ids = tok->encode(text);
  s.tokens = torch::tensor(std::vector<int32_t>(ids.begin(), ids.end()), torch::kInt32);
  s.bytes = n;
  s.vocab_size = 256;
  s.source = "test bytes";
  return s;
}

// The cache must hold the bigram teacher's top-k at every position that has a next token.
void expect_cache_matches(const TopkCache& cache, const TokenBatcher& windows, const TokenSet& set,
                          int64_t k) {
  const int64_t W = windows.windows(), T = windows.seq_len();
  TeacherSignal sig = cache.rows(torch::arange(W, torch::kInt64));
  ASSERT_EQ(sig.ids.sizes().vec(), (std::vector<int64_t>{W, T, k}));
  auto tokens = set.tokens.accessor<int32_t, 1>();
  for (int64_t w = 0; w < W; ++w)
    for (int64_t t = 0; t < T && w * T + t + 1 < set.size(); ++t) {
      auto lp = bigram_logprobs(tokens[w * T + t]);
      auto want = top_ids(lp, k);
      for (int64_t j = 0; j < k; ++j) {
        ASSERT_EQ(sig.ids[w][t][j].item<int64_t>(), want[j])
            << "window " << w << " position " << t << " rank " << j;
        ASSERT_NEAR(sig.logprobs[w][t][j].item<float>(), lp[want[j]],
                    4e-3 * std::max(1.0, std::abs(lp[want[j]])))
            << "window " << w << " position " << t << " rank " << j;
      }
    }
}

}  // namespace

// ---- the top-k harvest ---------------------------------------------------------------------

TEST(ApiHarvest, CacheHoldsWhatTheEndpointServed) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  TokenStrings strings(*tok);
  FakeEndpoint fake;
  fake.completion = bigram_teacher(strings);
  ApiEndpoint e = fake.endpoint();
  e.concurrency = 3;
  ApiClient client(e);
  TokenSet set = byte_set();
  TokenBatcher windows(set, 8, 4, false, 0);
  CacheStatus status;
  TopkCache cache = harvest_topk_cache(client, *tok, windows, set, 5, dir.path(), &status,
                                       /*windows_per_shard=*/4);
  EXPECT_FALSE(status.hit);
  EXPECT_EQ(fake.completions.load(), 16);
  expect_cache_matches(cache, windows, set, 5);
  // Asked again: read from disk, no request.
  fake.reset_counts();
  ApiClient again(e);
  harvest_topk_cache(again, *tok, windows, set, 5, dir.path(), &status, 4);
  EXPECT_TRUE(status.hit);
  EXPECT_EQ(fake.completions.load(), 0);
}

TEST(ApiHarvest, PaddedWindowsSendOnlyPositionsWithANextToken) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  TokenStrings strings(*tok);
  FakeEndpoint fake;
  fake.completion = bigram_teacher(strings);
  ApiClient client(fake.endpoint());
  TokenSet set = byte_set(30);  // 3 full windows of 8 + one of 5 scored positions
  TokenBatcher windows(set, 8, 4, false, 0, /*pad_last=*/true);
  TopkCache cache = harvest_topk_cache(client, *tok, windows, set, 3, dir.path());
  ASSERT_EQ(fake.prompts.size(), 4u);
  size_t shortest = 8;
  for (auto& p : fake.prompts) shortest = std::min(shortest, p.size());
  EXPECT_EQ(shortest, 5u);
  expect_cache_matches(cache, windows, set, 3);
}

TEST(ApiHarvest, UnknownTokenStringIsATokenizerMismatch) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  TokenStrings strings(*tok);
  FakeEndpoint fake;
  fake.completion = bigram_teacher(strings, /*poison=*/true);
  ApiClient client(fake.endpoint());
  TokenSet set = byte_set();
  TokenBatcher windows(set, 8, 4, false, 0);
  std::string e = error_of([&] { harvest_topk_cache(client, *tok, windows, set, 4, dir.path()); });
  EXPECT_NE(e.find("tokenizer mismatch"), std::string::npos) << e;
  EXPECT_NE(e.find("<not a token>"), std::string::npos) << e;
}

TEST(ApiHarvest, PublishedTokenizerFingerprintIsCheckedBeforeAnyRequest) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  TokenStrings strings(*tok);
  FakeEndpoint fake;
  fake.completion = bigram_teacher(strings);
  fake.tokenizer_fingerprint = "0123456789abcdef";
  ApiClient client(fake.endpoint());
  TokenSet set = byte_set();
  TokenBatcher windows(set, 8, 4, false, 0);
  std::string e = error_of([&] { harvest_topk_cache(client, *tok, windows, set, 4, dir.path()); });
  EXPECT_NE(e.find("0123456789abcdef"), std::string::npos) << e;
  EXPECT_NE(e.find(tok->fingerprint()), std::string::npos) << e;
  EXPECT_EQ(fake.completions.load(), 0);
}

TEST(ApiHarvest, ResumesAfterTheBudgetRanOutAskingOnlyForMissingWindows) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  TokenStrings strings(*tok);
  FakeEndpoint fake;
  fake.completion = bigram_teacher(strings);
  TokenSet set = byte_set();
  TokenBatcher windows(set, 8, 4, false, 0);
  ApiEndpoint e = fake.endpoint();
  e.concurrency = 2;
  e.max_requests = 10;  // GET models + 2 shards of 4 windows + 1: the third shard cannot finish
  {
    ApiClient client(e);
    try {
      harvest_topk_cache(client, *tok, windows, set, 4, dir.path(), nullptr, 4);
      FAIL() << "no BudgetExhausted";
    } catch (const BudgetExhausted& b) {
      EXPECT_NE(std::string(b.what()).find("kept in"), std::string::npos) << b.what();
    }
  }
  fake.reset_counts();
  e.max_requests = 0;
  ApiClient client(e);
  CacheStatus status;
  TopkCache cache = harvest_topk_cache(client, *tok, windows, set, 4, dir.path(), &status, 4);
  EXPECT_FALSE(status.hit);
  // Only shards 2 and 3 (windows 8..15) are asked for again.
  std::set<std::vector<int64_t>> asked, want;
  for (auto& p : fake.prompts) asked.insert(p.get<std::vector<int64_t>>());
  Batch missing = windows.windows_batch(torch::arange(8, 16, torch::kInt64));
  for (int64_t i = 0; i < 8; ++i) {
    torch::Tensor row = missing.x[i].contiguous();
    want.insert(
        std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel()));
  }
  EXPECT_EQ(fake.completions.load(), 8);
  EXPECT_EQ(asked, want);
  expect_cache_matches(cache, windows, set, 4);
}

// ---- sequence-level KD text ----------------------------------------------------------------

TEST(ApiHarvest, WrittenCorpusResumesAndIgnoresATruncatedLastLine) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  FakeEndpoint fake;
  // The continuation names the prompt's length and the requested max_tokens.
  fake.completion = [](const json& body, httplib::Response& res) {
    std::string text = "|" + std::to_string(body["prompt"].get<std::string>().size()) + "+" +
                       std::to_string(body["max_tokens"].get<int>());
    res.set_content(
        json{{"choices", {{{"text", text}, {"index", 0}}}}, {"usage", {{"total_tokens", 9}}}}
            .dump(),
        "application/json");
  };
  TokenSet set = byte_set();
  SequenceKdOptions o;
  o.prompt_tokens = 4;
  o.new_tokens = 5;
  ApiEndpoint e = fake.endpoint();
  e.max_requests = 3;
  {
    ApiClient client(e);
    EXPECT_THROW(api_written_corpus(client, *tok, set, 8, o, dir.path()), BudgetExhausted);
  }
  EXPECT_EQ(fake.completions.load(), 3);
  fs::path file;
  for (auto& f : fs::directory_iterator(dir.path()))
    if (f.path().filename().string().rfind("seqkd-api-", 0) == 0) file = f.path();
  ASSERT_FALSE(file.empty());
  {
    std::ofstream out(file, std::ios::app);
    out << R"({"i": 7, "text": "a kill mid-wri)";  // no newline: an unfinished record
  }
  fake.reset_counts();
  e.max_requests = 0;
  e.concurrency = 4;
  ApiClient client(e);
  TextCorpus corpus = api_written_corpus(client, *tok, set, 8, o, dir.path());
  EXPECT_EQ(fake.completions.load(), 13);
  ASSERT_EQ(corpus.documents.size(), 16u);
  auto tokens = set.tokens.accessor<int32_t, 1>();
  for (int64_t i = 0; i < 16; ++i) {
    std::string prompt;
    for (int64_t t = 0; t < 4; ++t) prompt += char(tokens[i * 8 + t]);
    EXPECT_EQ(corpus.documents[i], prompt + "|4+5") << "document " << i;
  }
  // Every line of the file is whole now, and a third run asks nothing.
  std::string text = read_text(file);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 16);
  EXPECT_EQ(text.back(), '\n');
  fake.reset_counts();
  ApiClient third(e);
  EXPECT_EQ(api_written_corpus(third, *tok, set, 8, o, dir.path()).documents, corpus.documents);
  EXPECT_EQ(fake.completions.load(), 0);
}

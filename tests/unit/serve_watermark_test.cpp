// Watermarks in the served answers: logprobs are those of the marked distribution, answers are
// detected and unmarked ones are not, streamed and whole answers are the same tokens, gumbel's
// choices differ yet each is marked, keys rotate and audit rows name the key; and the
// radioactivity tests against a suspect that learned the green lists and one that did not.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sqlite3.h>

#include <random>
#include <set>

#include "retort/generate.h"
#include "retort/dawn.h"
#include "retort/radioactivity.h"
#include "retort/serve.h"
#include "retort/watermark.h"
#include "retort/watermark_store.h"
#include "serve_fixture.h"
#include "test_util.h"

namespace retort {
namespace {

using testing::TempDir;

// The fixture's tiny gpt with its weights back at their initial scale: next-token distributions
// near uniform, so sampling has the entropy a watermark needs (the fixture's are near one-hot).
std::string save_spread_lm(const TempDir& dir, int64_t context = 48) {
  LoadedModel m = testing::tiny_gpt({{"vocab_size", 256}, {"max_seq_len", context}});
  torch::NoGradGuard no_grad;
  for (auto& p : m.model->parameters()) p.sub_(0.01).div_(10);
  const std::filesystem::path p = dir / "lm";
  save_model(*m.model, m.spec, p);
  m.tokenizer->save(p);
  return p.string();
}

WatermarkKey test_key(uint8_t salt, const std::string& id = "wm-test") {
  WatermarkKey k;
  k.id = id;
  for (size_t i = 0; i < k.secret.size(); ++i) k.secret[i] = uint8_t(i * 13 + salt);
  return k;
}

GenerationRequest request(const std::string& text, int64_t max_tokens, uint64_t seed) {
  GenerationRequest r;
  for (unsigned char c : text) r.prompt.push_back(c);
  r.max_tokens = max_tokens;
  r.seed = seed;
  return r;
}

// Prompt + completion ids, as a detector reads a whole answer.
std::vector<int64_t> ids_of(const GenerationRequest& r, const GeneratedChoice& c) {
  std::vector<int64_t> out(r.prompt.begin(), r.prompt.end());
  out.insert(out.end(), c.ids.begin(), c.ids.end());
  return out;
}

TEST(ServeWatermark, EchoedLogprobsAreThoseOfTheMarkedDistribution) {
  TempDir dir;
  Engine engine({{"m", save_spread_lm(dir)}}, "cpu");
  auto mark = std::make_shared<const Watermark>(test_key(1), WatermarkOptions{WatermarkScheme::Kgw, 0.25, 3.0, 1});
  engine.set_watermark(mark);
  const ServedModel& m = engine.model("m");
  GenerationRequest r = request("In the beginning", 1, 1);
  r.echo = true;
  r.logprobs = 3;
  GenerationResult g = engine.generate(m, r);
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::tensor(std::vector<int64_t>(r.prompt.begin(), r.prompt.end())).view({1, -1});
  torch::Tensor logits = m.model->forward(x).logits[0];  // (P, V)
  double moved = 0;
  for (size_t t = 1; t < r.prompt.size(); ++t) {
    const int64_t before = r.prompt[t - 1];
    torch::Tensor marked = torch::log_softmax(mark->mark_logits(logits[t - 1], &before), -1);
    EXPECT_NEAR(g.prompt_logprobs[t].logprob, marked[r.prompt[t]].item<float>(), 1e-5) << t;
    moved += std::abs(marked[r.prompt[t]].item<float>() - torch::log_softmax(logits[t - 1], -1)[r.prompt[t]].item<float>());
  }
  EXPECT_GT(moved, 1.0);  // the mark changed them: the check above is not the plain distribution's
  const int64_t last = r.prompt.back();
  torch::Tensor after = torch::log_softmax(mark->mark_logits(logits[int64_t(r.prompt.size()) - 1], &last), -1);
  EXPECT_NEAR(g.choices[0].logprobs[0].logprob, after[g.choices[0].ids[0]].item<float>(), 1e-5);
}

TEST(ServeWatermark, MarkedAnswersAreDetectedUnmarkedOnesAreNotAndStreamingChangesNothing) {
  TempDir dir;
  Engine engine({{"m", save_spread_lm(dir, 96)}}, "cpu");
  const ServedModel& m = engine.model("m");
  auto mark = std::make_shared<const Watermark>(test_key(2), WatermarkOptions{WatermarkScheme::Kgw, 0.25, 2.0, 1});
  GenerationRequest r = request("And God said", 60, 3);
  r.n = 2;
  int64_t unmarked_low = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {  // unmarked: p below 0.01 about once in 100
    r.seed = seed;
    for (const auto& c : engine.generate(m, r).choices) unmarked_low += detect_watermark(*mark, ids_of(r, c)).p_value < 0.01;
  }
  EXPECT_LE(unmarked_low, 3) << "of 40 unmarked answers";
  engine.set_watermark(mark);
  r.seed = 3;
  GenerationResult whole = engine.generate(m, r);
  std::vector<std::string> streamed(2);
  GenerationResult via_sink = engine.generate(m, r, [&](int64_t c, const std::string& text, const std::vector<TokenLogprob>*) {
    if (c >= 0) streamed[size_t(c)] += text;
    return true;
  });
  for (size_t c = 0; c < 2; ++c) {
    EXPECT_EQ(whole.choices[c].ids, via_sink.choices[c].ids) << c;
    EXPECT_EQ(streamed[c], whole.choices[c].text) << c;
    const Detection d = detect_watermark(*mark, ids_of(r, whole.choices[c]));
    EXPECT_LT(d.p_value, 1e-6) << "choice " << c << " z " << d.z;
  }
  EXPECT_NE(whole.choices[0].ids, whole.choices[1].ids);
}

TEST(ServeWatermark, GumbelChoicesDifferAndEachIsDetected) {
  TempDir dir;
  Engine engine({{"m", save_spread_lm(dir, 96)}}, "cpu");
  const ServedModel& m = engine.model("m");
  auto mark = std::make_shared<const Watermark>(test_key(3), WatermarkOptions{WatermarkScheme::Gumbel, 0.25, 0.0, 1});
  engine.set_watermark(mark);
  GenerationRequest r = request("God is", 60, 0);  // no id twice: the first new ones are all marked
  r.n = 3;
  GenerationResult g = engine.generate(m, r);
  EXPECT_NE(g.choices[0].ids, g.choices[1].ids);
  EXPECT_NE(g.choices[1].ids, g.choices[2].ids);
  for (const auto& c : g.choices) EXPECT_LT(detect_watermark(*mark, ids_of(r, c)).p_value, 1e-6);
  // keyed by the context alone: the request's seed changes nothing until a context repeats (there
  // the ordinary draw takes over, so that the answer cannot loop)
  r.seed = 99;
  const std::vector<int32_t> again = engine.generate(m, r).choices[0].ids;
  std::vector<int64_t> row(r.prompt.begin(), r.prompt.end());
  std::set<int64_t> contexts(row.begin(), row.end() - 1);  // h = 1: a context is one id
  size_t fresh = 0;
  while (fresh < again.size() && contexts.insert(row.back()).second) row.push_back(g.choices[0].ids[fresh++]);
  ASSERT_GE(fresh, 2u);
  for (size_t i = 0; i < fresh; ++i) EXPECT_EQ(again[i], g.choices[0].ids[i]) << i;
}

TEST(GuardWatermark, KeysRotateKeepingOldOnesAndAnOldDatabaseGetsTheAuditColumns) {
  TempDir dir;
  const std::string file = (dir / "old.db").string();
  {  // a database as retort made them before watermarks: audit without the two columns
    auto db = std::make_shared<GuardDb>(file);
    sqlite3_exec(db->handle(), "ALTER TABLE audit DROP COLUMN watermark; ALTER TABLE audit DROP COLUMN watermark_key",
                 nullptr, nullptr, nullptr);
  }
  auto db = std::make_shared<GuardDb>(file);
  WatermarkStore store(db);
  EXPECT_FALSE(store.current());
  EXPECT_NE(testing::error_of([&] { store.require_current(); }).find("retort guard keys rotate --db"), std::string::npos);
  const StoredWatermarkKey first = store.rotate(), second = store.rotate();
  EXPECT_NE(first.key.id, second.key.id);
  EXPECT_NE(first.key.secret, second.key.secret);
  EXPECT_EQ(store.current()->key.id, second.key.id);
  ASSERT_EQ(store.all().size(), 2u);
  EXPECT_EQ(store.all()[1].key.secret, first.key.secret);  // kept, to detect what it marked
  AuditLog audit(db);
  AuditRow row;
  row.key_id = 7;
  row.key_name = "harvester";
  row.status = 200;
  row.completion_tokens = 40;
  row.prompt_tokens = 10;
  row.watermark = "kgw";
  row.watermark_key = first.key.id;
  audit.append(row);
  audit.append(row);
  EXPECT_EQ(audit.recent(1)[0].watermark_key, first.key.id);
  const std::vector<MarkedUsage> usage = store.marked_usage(first.key.id);
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].api_key_name, "harvester");
  EXPECT_EQ(usage[0].requests, 2);
  EXPECT_EQ(usage[0].completion_tokens, 80);
  EXPECT_TRUE(store.marked_usage(second.key.id).empty());
}

TEST(ServeWatermark, ServerWithoutAKeyRefusesToStartAndAuditRowsNameTheKey) {
  TempDir empty, dir;
  ServeOptions o;
  o.watermark = {WatermarkScheme::Kgw, 0.25, 2.0, 1};
  EXPECT_NE(testing::error_of([&] { testing::start_server(empty, o); }).find("no watermark key"), std::string::npos);
  const StoredWatermarkKey key = WatermarkStore(std::make_shared<GuardDb>(dir / "serve.db")).rotate();
  auto s = testing::start_server(dir, o);
  httplib::Client client("127.0.0.1", s->server->port());
  httplib::Headers auth = {{"Authorization", "Bearer " + s->key}};
  auto res = client.Post("/v1/completions", auth, R"({"model":"m","prompt":"abc","max_tokens":5})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto db = std::make_shared<GuardDb>(s->db);
  const AuditRow row = AuditLog(db).recent(1)[0];
  EXPECT_EQ(row.watermark, "kgw");
  EXPECT_EQ(row.watermark_key, key.key.id);
  const auto serving = WatermarkStore(db).serving();
  ASSERT_EQ(serving.size(), 1u);
  EXPECT_EQ(serving[0].model, "m");
  EXPECT_EQ(serving[0].key_id, key.key.id);
}

// A language model whose next-token logits depend on the last id only, plus `bias` on the green
// tokens of `mark` (a student that learned the mark) or on nobody's (bias 0).
class BigramModel : public ModelImpl {
 public:
  BigramModel(int64_t V, const Watermark* mark, double bias) {
    torch::manual_seed(5);
    table_ = torch::randn({V, V}) * 2;
    if (mark)
      for (int64_t a = 0; a < V; ++a)
        for (int64_t t = 0; t < V; ++t)
          if (mark->green(&a, t)) table_[a][t] += float(bias);
  }
  ModelOutput forward(const torch::Tensor& x) override { return {table_.index({x}), {}}; }

 private:
  torch::Tensor table_;
};

TEST(Radioactivity, ASuspectThatLearnedTheGreenListsIsFoundAndCleanOnesGiveUniformPValues) {
  const int64_t V = 64;
  Watermark mark(test_key(4), {WatermarkScheme::Kgw, 0.25, 2.0, 1});
  torch::manual_seed(11);
  torch::Tensor text = torch::randint(0, V, {4096}, torch::kInt64);
  BigramModel learned(V, &mark, 1.0);
  // a bigram suspect has one top-1 prediction per context (64 in all): its top 16 say more
  RadioactivityTest t = radioactivity_open_model(learned, text, {mark}, 64, 8, 0, 16);
  EXPECT_LT(t.detection.p_value, 1e-6) << "z " << t.detection.z;
  EXPECT_EQ(t.method, "open-model");
  EXPECT_EQ(t.growth.size(), 20u);
  for (size_t i = 1; i < t.growth.size(); ++i) EXPECT_GE(t.growth[i].first, t.growth[i - 1].first);
  EXPECT_NEAR(t.growth.back().second, -std::log10(t.detection.p_value), 1e-9);
  // the green probability mass (top = 0) sees a shift too small to change the top tokens
  // (256 contexts of one id, each seen in the text)
  BigramModel faint(256, &mark, 0.4);
  torch::Tensor wide = torch::randint(0, 256, {8192}, torch::kInt64);
  const double mass = radioactivity_open_model(faint, wide, {mark}, 64, 8, 0, 0).detection.p_value;
  const double top1 = radioactivity_open_model(faint, wide, {mark}, 64, 8, 0, 1).detection.p_value;
  EXPECT_LT(mass, 1e-6);
  EXPECT_LT(mass, top1 * 1e-3) << "top-1 p " << top1;
  // clean suspects under 40 other keys, both statistics: p-values never below uniform beyond chance
  BigramModel clean(V, nullptr, 0);
  for (int64_t top : {16, 0}) {
    std::vector<double> p;
    for (uint8_t k = 0; k < 40; ++k)
      p.push_back(radioactivity_open_model(clean, text, {Watermark(test_key(100 + k), mark.options())}, 64, 8, 0, top)
                      .detection.p_value);
    std::sort(p.begin(), p.end());
    for (size_t i = 0; i < p.size(); ++i) EXPECT_GE(p[i], double(i) / p.size() - 0.25) << "top " << top << " rank " << i;
  }
  // black box: text the learned suspect writes is marked; prompts' own n-grams are not counted
  SamplingOptions s;
  std::vector<std::vector<int64_t>> prompts, outputs;
  for (int64_t i = 0; i < 20; ++i) {
    s.seed = uint64_t(i);
    torch::Tensor prompt = text.narrow(0, i * 32, 8).view({1, -1});
    torch::Tensor all = generate(learned, prompt, 40, s).contiguous();
    prompts.emplace_back(all.data_ptr<int64_t>(), all.data_ptr<int64_t>() + 8);
    outputs.emplace_back(all.data_ptr<int64_t>() + 8, all.data_ptr<int64_t>() + 48);
  }
  EXPECT_LT(radioactivity_black_box(prompts, outputs, {mark}).detection.p_value, 1e-6);
  // a suspect that only repeats its prompts shows nothing: only where a repeat joins its prompt
  // is a pair new
  EXPECT_LE(radioactivity_black_box(prompts, prompts, {mark}).detection.tokens_scored, int64_t(prompts.size()));
}

TEST(Radioactivity, APairedTestAgainstABaselineSeesAShiftTheSuspectsOwnPreferencesHide) {
  const int64_t V = 256;
  Watermark mark(test_key(4), {WatermarkScheme::Kgw, 0.25, 2.0, 1});
  torch::manual_seed(12);
  torch::Tensor text = torch::randint(0, V, {8192}, torch::kInt64);
  BigramModel baseline(V, nullptr, 0), faint(V, &mark, 0.05);  // the same preferences, + 0.05 on green logits
  const RadioactivityTest alone = radioactivity_open_model(faint, text, {mark}, 64, 8, 0, 0);
  const RadioactivityTest paired = radioactivity_open_model(faint, text, {mark}, 64, 8, 0, 0, {&baseline});
  EXPECT_GT(alone.detection.p_value, 1e-3) << "z " << alone.detection.z;  // hidden by its own preferences
  EXPECT_LT(paired.detection.p_value, 1e-6) << "z " << paired.detection.z;
  EXPECT_EQ(paired.method, "open-model (green mass, paired)");
  EXPECT_EQ(paired.detection.tokens_scored, V);  // every context, its occurrences averaged
  // the baseline against itself: nothing left to score (variance 0, p = 1)
  EXPECT_EQ(radioactivity_open_model(baseline, text, {mark}, 64, 8, 0, 0, {&baseline}).detection.p_value, 1.0);
  // under 40 keys that marked nothing, the same pair gives p-values no smaller than uniform ones
  std::vector<double> p;
  for (uint8_t k = 0; k < 40; ++k)
    p.push_back(radioactivity_open_model(faint, text, {Watermark(test_key(100 + k), mark.options())}, 64, 8, 0, 0,
                                         {&baseline}).detection.p_value);
  std::sort(p.begin(), p.end());
  for (size_t i = 0; i < p.size(); ++i) EXPECT_GE(p[i], double(i) / p.size() - 0.25) << "rank " << i;
  EXPECT_THROW(radioactivity_open_model(faint, text, {mark}, 64, 8, 0, 4, {&baseline}), Error);
}

TEST(Dawn, AnAccurateCleanClassifierGivesUniformPValuesAndOneThatLearnedTheAnswersIsFound) {
  // 3,000 marked inputs of a 10-class server: top class t, keyed wrong answer. A clean suspect
  // names t 90% of the time and otherwise confuses it with a neighbour; on all inputs it would
  // agree with the answers far below 1/9 (a blind test), where it differs from t exactly at 1/9.
  const int64_t C = 10, n = 3000;
  std::mt19937_64 rng(3);
  std::vector<std::vector<float>> inputs(n, std::vector<float>(16));
  std::vector<int64_t> top(n);
  for (int64_t i = 0; i < n; ++i) {
    for (float& p : inputs[size_t(i)]) p = float(rng() % 256);
    top[size_t(i)] = int64_t(rng() % C);
  }
  auto clean = [&](int64_t i, std::mt19937_64& r) {
    return r() % 10 < 9 ? top[size_t(i)] : (top[size_t(i)] + 1 + int64_t(r() % 2)) % C;
  };
  std::vector<double> p;
  for (uint8_t k = 0; k < 40; ++k) {
    const WatermarkKey key = test_key(50 + k);
    std::vector<int64_t> predicted, answered, served;
    std::mt19937_64 r(k);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t a = dawn_class(key, 1.0, inputs[size_t(i)], top[size_t(i)], C);  // share 1: every input marked
      ASSERT_NE(a, top[size_t(i)]);
      predicted.push_back(clean(i, r)), answered.push_back(a), served.push_back(top[size_t(i)]);
    }
    const Detection d = dawn_test(key.id, predicted, answered, served, C);
    EXPECT_GT(d.tokens_scored, 200);
    EXPECT_LT(d.tokens_scored, 400);  // the ~10% where it differs from the top class
    p.push_back(d.p_value);
  }
  std::sort(p.begin(), p.end());
  for (size_t i = 0; i < p.size(); ++i) EXPECT_GE(p[i], double(i) / p.size() - 0.25) << "rank " << i;
  EXPECT_LT(p[p.size() / 2], 0.9);  // not conservative: the median of uniform p-values is 0.5
  // a suspect that learned a fifth of the answers (and is otherwise the clean one)
  const WatermarkKey key = test_key(49);
  std::vector<int64_t> predicted, answered, served;
  std::mt19937_64 r(1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = dawn_class(key, 1.0, inputs[size_t(i)], top[size_t(i)], C);
    predicted.push_back(r() % 5 == 0 ? a : clean(i, r)), answered.push_back(a), served.push_back(top[size_t(i)]);
  }
  EXPECT_LT(dawn_test(key.id, predicted, answered, served, C).p_value, 1e-6);
  EXPECT_THROW(dawn_test(key.id, predicted, answered, {}, C), Error);
}

}  // namespace
}  // namespace retort

// Watermarks: the PRF against its reference vector, the exact tails against closed forms, marked
// text detected, unmarked text giving p-values consistent with uniform, gumbel sampling exactly
// from the model's distribution, repeated n-grams scored once, several keys corrected.
#include "retort/watermark.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "test_util.h"

namespace retort {
namespace {

WatermarkKey key_of(uint8_t salt, const std::string& id = "wm-test") {
  WatermarkKey k;
  k.id = id;
  for (size_t i = 0; i < k.secret.size(); ++i) k.secret[i] = uint8_t(i * 7 + salt);
  return k;
}

TEST(Watermark, SipHashMatchesTheReferenceVector) {
  std::array<uint8_t, 16> key;
  for (int i = 0; i < 16; ++i) key[i] = uint8_t(i);
  uint8_t msg[15];
  for (int i = 0; i < 15; ++i) msg[i] = uint8_t(i);
  EXPECT_EQ(siphash24(key, msg, 15), 0xa129ca6149be45e5ull);  // SipHash paper, appendix A
  EXPECT_EQ(siphash24(key, msg, 0), 0x726fdb47dd0e0e31ull);   // the empty message
}

TEST(Watermark, TailsMatchClosedForms) {
  EXPECT_NEAR(binomial_upper_tail(8, 10, 0.5), (45.0 + 10 + 1) / 1024, 1e-12);
  EXPECT_DOUBLE_EQ(binomial_upper_tail(0, 10, 0.3), 1.0);
  EXPECT_DOUBLE_EQ(binomial_upper_tail(11, 10, 0.3), 0.0);
  EXPECT_NEAR(binomial_upper_tail(10, 10, 0.25), std::pow(0.25, 10), 1e-18);
  EXPECT_NEAR(gamma_upper_tail(1, 2.0), std::exp(-2.0), 1e-14);
  EXPECT_NEAR(gamma_upper_tail(3, 2.0), 5 * std::exp(-2.0), 1e-14);  // e^-s (1 + s + s^2/2)
  EXPECT_NEAR(gamma_upper_tail(1000, 1000.0), 0.5, 0.01);             // the median is near the mean
}

TEST(Watermark, BadOptionsAreRefusedNamingTheValue) {
  WatermarkOptions o;
  o.gamma = 1.5;
  EXPECT_NE(testing::error_of([&] { check_watermark_options(o); }).find("gamma = 1.5"), std::string::npos);
  o = {};
  o.delta = -1;
  EXPECT_NE(testing::error_of([&] { check_watermark_options(o); }).find("delta = -1"), std::string::npos);
  EXPECT_NE(testing::error_of([] { parse_watermark_scheme("purple"); }).find("'purple'"), std::string::npos);
}

TEST(Watermark, GreenListsHoldAShareGammaOfTheVocabulary) {
  Watermark mark(key_of(1), {WatermarkScheme::Kgw, 0.25, 2.0, 1});
  int64_t green = 0, total = 0;
  for (int64_t ctx = 0; ctx < 64; ++ctx)
    for (int64_t t = 0; t < 512; ++t) green += mark.green(&ctx, t), ++total;
  const double sd = std::sqrt(total * 0.25 * 0.75);
  EXPECT_NEAR(double(green), 0.25 * total, 4 * sd);
  // mark_logits adds delta exactly on the green tokens.
  torch::Tensor logits = torch::zeros({512});
  int64_t ctx = 3;
  torch::Tensor marked = mark.mark_logits(logits, &ctx);
  for (int64_t t = 0; t < 512; ++t) EXPECT_EQ(marked[t].item<float>(), mark.green(&ctx, t) ? 2.0f : 0.0f);
}

// n tokens from a toy model (logits drawn per position, V ids), sampled plainly or with `mark`.
std::vector<int64_t> generate(int64_t n, int64_t V, uint64_t seed, const Watermark* mark) {
  torch::manual_seed(seed);
  std::vector<int64_t> out = {int64_t(seed % uint64_t(V))};
  for (int64_t i = 0; i < n; ++i) {
    torch::Tensor logits = torch::randn({V}) * 3;
    const int64_t* ctx = &out.back();
    if (mark && mark->options().scheme == WatermarkScheme::Gumbel) {
      out.push_back(mark->gumbel_pick(torch::softmax(logits, 0), ctx));
      continue;
    }
    if (mark) logits = mark->mark_logits(logits, ctx);
    out.push_back(torch::multinomial(torch::softmax(logits, 0), 1).item<int64_t>());
  }
  return out;
}

class Schemes : public ::testing::TestWithParam<WatermarkScheme> {};

TEST_P(Schemes, MarkedTextIsDetectedAndUnmarkedTextIsNot) {
  Watermark mark(key_of(2), {GetParam(), 0.25, 2.0, 1});
  // Marked: 200 tokens give p < 1e-6 in every one of 10 generations.
  for (uint64_t seed = 0; seed < 10; ++seed) {
    Detection d = detect_watermark(mark, generate(200, 256, seed, &mark));
    EXPECT_LT(d.p_value, 1e-6) << "seed " << seed << " z " << d.z;
    // gumbel scores each context's first occurrence only: about 135 of 200 positions here
    EXPECT_GT(d.tokens_scored, GetParam() == WatermarkScheme::Kgw ? 150 : 100);
  }
  // Unmarked (and marked under another key): 300 p-values consistent with uniform.
  Watermark other(key_of(9, "other"), {GetParam(), 0.25, 2.0, 1});
  std::vector<double> p;
  int64_t below_001 = 0;
  for (uint64_t seed = 100; seed < 400; ++seed) {
    const std::vector<int64_t> tokens = generate(100, 256, seed, seed % 2 ? &other : nullptr);
    p.push_back(detect_watermark(mark, tokens).p_value);
    below_001 += p.back() <= 0.01;
  }
  // KS at alpha = 0.01 for n = 300: 1.63 / sqrt(300) = 0.094. Both tests are conservative (kgw's
  // binomial tail is discrete; gumbel pays for trying kGumbelSalts salts), so the check bounds
  // p-values below uniform only: that side is what would raise false positives.
  std::vector<double> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i)
    EXPECT_GE(sorted[i], double(i) / sorted.size() - 0.094) << "p-values below uniform at rank " << i;
  // False positives at alpha = 0.01: 3 expected of 300; more than 9 (+3.5 sd) fails.
  EXPECT_LE(below_001, 9);
}

INSTANTIATE_TEST_SUITE_P(Watermark, Schemes, ::testing::Values(WatermarkScheme::Kgw, WatermarkScheme::Gumbel),
                         [](const auto& info) { return std::string(watermark_scheme_name(info.param)); });

TEST(Watermark, GumbelPicksSampleExactlyFromTheDistribution) {
  Watermark mark(key_of(3), {WatermarkScheme::Gumbel, 0.25, 0.0, 1});
  torch::Tensor probs = torch::tensor({0.5, 0.25, 0.125, 0.125, 0.0}, torch::kFloat64);
  std::vector<int64_t> counts(5, 0);
  const int64_t N = 40000;
  for (int64_t ctx = 0; ctx < N; ++ctx) ++counts[mark.gumbel_pick(probs, &ctx)];
  EXPECT_EQ(counts[4], 0);  // probability 0: never
  double chi2 = 0;
  for (int t = 0; t < 4; ++t) {
    const double e = N * probs[t].item<double>();
    chi2 += (counts[t] - e) * (counts[t] - e) / e;
  }
  EXPECT_LT(chi2, 16.27);  // chi-square, 3 degrees of freedom, alpha = 0.001
}

TEST(Watermark, RepeatedNgramsAreScoredOnce) {
  Watermark mark(key_of(4), {WatermarkScheme::Kgw, 0.25, 2.0, 1});
  // Find a green pair (a -> b) and (b -> a): repeating "a b" 500 times is 2 distinct pairs.
  int64_t a = 0, b = 1;
  for (; !(mark.green(&a, b) && mark.green(&b, a)); ++b) {}
  std::vector<int64_t> tokens;
  for (int i = 0; i < 500; ++i) tokens.push_back(a), tokens.push_back(b);
  Detection d = detect_watermark(mark, tokens);
  EXPECT_EQ(d.tokens_scored, 2);
  EXPECT_NEAR(d.p_value, 0.0625, 1e-12);  // 2 of 2 green: 0.25^2, not 999 of 999
}

TEST(Watermark, SeveralKeysFindTheRightOneAndCorrectForTheirNumber) {
  Watermark right(key_of(5, "right"), {WatermarkScheme::Kgw, 0.25, 2.0, 1});
  std::vector<Watermark> keys = {Watermark(key_of(6, "a"), right.options()), right,
                                 Watermark(key_of(7, "b"), right.options())};
  const std::vector<int64_t> tokens = generate(150, 256, 42, &right);
  Detection alone = detect_watermark(right, tokens), any = detect_watermark(keys, tokens);
  EXPECT_EQ(any.key_id, "right");
  EXPECT_NEAR(any.p_value, std::min(1.0, 3 * alone.p_value), 1e-300);
  EXPECT_NE(testing::error_of([&] { detect_watermark(std::vector<Watermark>{}, tokens); }).find("keys rotate"),
            std::string::npos);
}

}  // namespace
}  // namespace retort

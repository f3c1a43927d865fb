// Divergences for language-model distillation: closed forms, parity with PyTorch,
// finite-difference gradients, masking, -inf safety, and the terms and factory around them.
#include "retort/divergence.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "retort/error.h"
#include "retort/fs.h"
#include "test_util.h"

using namespace retort;
using retort::testing::error_of;

namespace {

const double kInf = std::numeric_limits<double>::infinity();

// One divergence with its parameters bound: (student (N, V), teacher (N, V), mask) -> scalar.
struct Named {
  std::string name;
  std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)> fn;
};

// All six at temperature T; beta goes to jsd, alpha to skl and srkl.
std::vector<Named> divergences(double T, double beta, double alpha) {
  return {
      {"kl", [=](const auto& s, const auto& t, const auto& m) { return forward_kl(s, t, T, m); }},
      {"rkl", [=](const auto& s, const auto& t, const auto& m) { return reverse_kl(s, t, T, m); }},
      {"jsd", [=](const auto& s, const auto& t,
                  const auto& m) { return generalized_jsd(s, t, T, beta, m); }},
      {"tvd",
       [=](const auto& s, const auto& t, const auto& m) { return total_variation(s, t, T, m); }},
      {"skl", [=](const auto& s, const auto& t,
                  const auto& m) { return skew_forward_kl(s, t, T, alpha, m); }},
      {"srkl", [=](const auto& s, const auto& t,
                   const auto& m) { return skew_reverse_kl(s, t, T, alpha, m); }},
  };
}

double value(const Named& d, const torch::Tensor& s, const torch::Tensor& t,
             const torch::Tensor& mask = {}) {
  return d.fn(s, t, mask).item<double>();
}

// d/d student, by autograd.
torch::Tensor gradient(const Named& d, const torch::Tensor& s, const torch::Tensor& t,
                       const torch::Tensor& mask = {}) {
  torch::Tensor sv = s.clone().requires_grad_(true);
  d.fn(sv, t, mask).backward();
  return sv.grad();
}

torch::Tensor row(std::vector<double> v) { return torch::tensor(v, torch::kFloat64).unsqueeze(0); }

torch::Tensor random_logits(int64_t n, int64_t v, double scale) {
  return torch::randn({n, v}, torch::kFloat64) * scale;
}

// KL between two-class distributions (p, 1 - p) and (q, 1 - q), by hand.
double kl2(double p, double q) {
  return p * std::log(p / q) + (1 - p) * std::log((1 - p) / (1 - q));
}

bool all_finite(const torch::Tensor& x) { return torch::isfinite(x).all().item<bool>(); }

}  // namespace

// ---- closed forms ------------------------------------------------------------------------

TEST(Divergence, AllAreZeroWhenStudentEqualsTeacher) {
  torch::manual_seed(1);
  torch::Tensor s = random_logits(6, 10, 3.0);
  for (double T : {1.0, 3.0})
    for (double w : {0.0, 0.3, 1.0})
      for (const auto& d : divergences(T, w, w))
        EXPECT_NEAR(value(d, s, s.clone()), 0.0, 1e-12) << d.name << " T=" << T << " w=" << w;
}

TEST(Divergence, TwoClassValuesMatchHandComputedClosedForms) {
  torch::Tensor s = row({0.0, std::log(4.0)});  // p_s = (0.2, 0.8)
  torch::Tensor t = row({0.0, 0.0});            // p_t = (0.5, 0.5)
  std::map<std::string, double> expected = {
      {"kl", kl2(0.5, 0.2)},
      {"rkl", kl2(0.2, 0.5)},
      // m = 0.25 * p_t + 0.75 * p_s = (0.275, 0.725)
      {"jsd", 0.25 * kl2(0.5, 0.275) + 0.75 * kl2(0.2, 0.275)},
      {"tvd", 0.3},
      {"skl", kl2(0.5, 0.23)},   // m = 0.1 * p_t + 0.9 * p_s = (0.23, 0.77)
      {"srkl", kl2(0.2, 0.47)},  // m = 0.1 * p_s + 0.9 * p_t = (0.47, 0.53)
  };
  for (const auto& d : divergences(/*T=*/1.0, /*beta=*/0.25, /*alpha=*/0.1))
    EXPECT_NEAR(value(d, s, t), expected.at(d.name), 1e-12) << d.name;
  // Symmetric JSD: m = (0.35, 0.65).
  EXPECT_NEAR(generalized_jsd(s, t, 1.0, 0.5).item<double>(),
              0.5 * kl2(0.5, 0.35) + 0.5 * kl2(0.2, 0.35), 1e-12);
}

TEST(Divergence, TemperatureSoftensBothSidesAndScalesByTSquared) {
  // At T = 2 these logits give the same distributions as (0, log 4) and (0, 0) at T = 1.
  torch::Tensor s1 = row({0.0, std::log(4.0)}), s2 = row({0.0, 2 * std::log(4.0)});
  torch::Tensor t = row({0.0, 0.0});
  auto at1 = divergences(1.0, 0.4, 0.2), at2 = divergences(2.0, 0.4, 0.2);
  for (size_t i = 0; i < at1.size(); ++i)
    EXPECT_NEAR(value(at2[i], s2, t), 4 * value(at1[i], s1, t), 1e-12) << at1[i].name;
}

TEST(Divergence, JsdEndsAreForwardAndReverseKlAndSkewEndsAreKlAndZero) {
  torch::manual_seed(2);
  torch::Tensor s = random_logits(5, 7, 2.0), t = random_logits(5, 7, 2.0);
  double kl = forward_kl(s, t, 1.5).item<double>(), rkl = reverse_kl(s, t, 1.5).item<double>();
  EXPECT_GT(kl, 0.1);
  EXPECT_NEAR(generalized_jsd(s, t, 1.5, /*beta=*/0).item<double>(), kl, 1e-12);
  EXPECT_NEAR(generalized_jsd(s, t, 1.5, /*beta=*/1).item<double>(), rkl, 1e-12);
  EXPECT_NEAR(skew_forward_kl(s, t, 1.5, /*alpha=*/0).item<double>(), kl, 1e-12);
  EXPECT_NEAR(skew_reverse_kl(s, t, 1.5, /*alpha=*/0).item<double>(), rkl, 1e-12);
  EXPECT_NEAR(skew_forward_kl(s, t, 1.5, /*alpha=*/1).item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(skew_reverse_kl(s, t, 1.5, /*alpha=*/1).item<double>(), 0.0, 1e-12);
}

TEST(Divergence, JsdSwappingStudentAndTeacherMapsBetaToOneMinusBeta) {
  torch::manual_seed(3);
  torch::Tensor p = random_logits(4, 9, 3.0), q = random_logits(4, 9, 3.0);
  for (double beta : {0.0, 0.2, 0.5, 0.9, 1.0}) {
    double a = generalized_jsd(/*student=*/q, /*teacher=*/p, 2.0, beta).item<double>();
    double b = generalized_jsd(/*student=*/p, /*teacher=*/q, 2.0, 1 - beta).item<double>();
    EXPECT_NEAR(a, b, 1e-12) << "beta=" << beta;
  }
}

TEST(Divergence, BoundsHoldFromFlatToNearlyOneHotDistributions) {
  torch::manual_seed(4);
  for (double scale : {0.1, 1.0, 10.0, 100.0}) {
    torch::Tensor s = random_logits(8, 6, scale), t = random_logits(8, 6, scale);
    for (const auto& d : divergences(1.0, 0.5, 0.1))
      EXPECT_GE(value(d, s, t), -1e-12) << d.name << " scale " << scale;
    double tvd = total_variation(s, t, 1.0).item<double>();
    double jsd = generalized_jsd(s, t, 1.0, 0.5).item<double>();
    EXPECT_LE(tvd, 1.0 + 1e-12) << "scale " << scale;
    EXPECT_LE(jsd, std::log(2.0) + 1e-12) << "scale " << scale;
    if (scale == 100.0) EXPECT_GT(tvd, 0.5) << "nearly one-hot rows should mostly disagree";
  }
}

// ---- masking -----------------------------------------------------------------------------

TEST(Divergence, MaskedRowsDoNotCountEvenWhenTheyHoldNan) {
  torch::manual_seed(5);
  torch::Tensor s = random_logits(5, 6, 2.0), t = random_logits(5, 6, 2.0);
  torch::Tensor mask = torch::tensor({true, false, true, true, false});
  torch::Tensor kept = torch::tensor({0, 2, 3}, torch::kInt64);
  s[1].fill_(std::nan(""));  // padding may hold anything
  t[4].fill_(-kInf);         // even a row with no token left
  for (const auto& d : divergences(2.0, 0.3, 0.2)) {
    EXPECT_NEAR(value(d, s, t, mask), value(d, s.index_select(0, kept), t.index_select(0, kept)),
                1e-12)
        << d.name;
    torch::Tensor g = gradient(d, s, t, mask);
    EXPECT_TRUE(all_finite(g)) << d.name << "\n" << g;
    EXPECT_EQ(g[1].abs().sum().item<double>(), 0.0) << d.name;
    EXPECT_EQ(g[4].abs().sum().item<double>(), 0.0) << d.name;
  }
}

TEST(Divergence, AllMaskedGivesZeroValueAndZeroGradientNotNan) {
  torch::manual_seed(6);
  torch::Tensor s = random_logits(3, 4, 1.0), t = random_logits(3, 4, 1.0);
  torch::Tensor none = torch::zeros({3}, torch::kBool);
  for (const auto& d : divergences(4.0, 0.5, 0.1)) {
    EXPECT_EQ(value(d, s, t, none), 0.0) << d.name;
    torch::Tensor g = gradient(d, s, t, none);
    EXPECT_TRUE(all_finite(g)) << d.name;
    EXPECT_EQ(g.abs().sum().item<double>(), 0.0) << d.name;
  }
}

// ---- ruled-out tokens (-inf logits) ------------------------------------------------------

TEST(Divergence, MinusInfinityLogitsOnEitherSideGiveFiniteValuesAndGradients) {
  torch::manual_seed(7);
  torch::Tensor s = random_logits(4, 6, 2.0), t = random_logits(4, 6, 2.0);
  t[0][1] = -kInf;  // only the teacher rules it out
  s[1][2] = -kInf;  // only the student
  s[2][3] = -kInf;  // both
  t[2][3] = -kInf;
  t[3].fill_(-kInf);  // a top-2 teacher
  t[3][0] = 1.0;
  t[3][5] = 0.5;
  for (double w : {0.0, 0.5, 1.0})
    for (const auto& d : divergences(1.5, w, w)) {
      EXPECT_TRUE(std::isfinite(value(d, s, t))) << d.name << " w=" << w;
      torch::Tensor g = gradient(d, s, t);
      EXPECT_TRUE(all_finite(g)) << d.name << " w=" << w << "\n" << g;
    }
}

TEST(Divergence, TokenRuledOutOnBothSidesActsAsIfOutsideTheVocabulary) {
  torch::manual_seed(8);
  torch::Tensor s = random_logits(3, 5, 2.0), t = random_logits(3, 5, 2.0);
  torch::Tensor out = torch::full({3, 1}, -kInf, torch::kFloat64);
  torch::Tensor s6 = torch::cat({s, out}, 1), t6 = torch::cat({t, out}, 1);
  for (const auto& d : divergences(1.0, 0.4, 0.3)) {
    EXPECT_NEAR(value(d, s6, t6), value(d, s, t), 1e-12) << d.name;
    torch::Tensor g6 = gradient(d, s6, t6), g = gradient(d, s, t);
    EXPECT_LT((g6.slice(1, 0, 5) - g).abs().max().item<double>(), 1e-12) << d.name;
    EXPECT_EQ(g6.select(1, 5).abs().sum().item<double>(), 0.0) << d.name;
  }
}

TEST(Divergence, TeacherOnlyRuledOutTokenIsExactForMixturesAndLeftOutOfKl) {
  torch::Tensor s = row({0.0, 0.0});    // p_s = (0.5, 0.5)
  torch::Tensor t = row({0.0, -kInf});  // p_t = (1, 0)
  std::map<std::string, double> expected = {
      {"kl", std::log(2.0)},
      {"rkl", 0.5 * std::log(0.5)},  // KL(p_s || p_t) is infinite: token 2 is left out
      // m = (0.75, 0.25)
      {"jsd",
       0.5 * std::log(1 / 0.75) + 0.5 * (0.5 * std::log(0.5 / 0.75) + 0.5 * std::log(0.5 / 0.25))},
      {"tvd", 0.5},
      {"skl", std::log(1 / 0.55)},  // m = 0.1 * p_t + 0.9 * p_s = (0.55, 0.45)
      // m = 0.1 * p_s + 0.9 * p_t = (0.95, 0.05)
      {"srkl", 0.5 * std::log(0.5 / 0.95) + 0.5 * std::log(0.5 / 0.05)},
  };
  for (const auto& d : divergences(1.0, 0.5, 0.1))
    EXPECT_NEAR(value(d, s, t), expected.at(d.name), 1e-12) << d.name;
}

// ---- argument checks, terms and the factory ----------------------------------------------

TEST(Divergence, RefusesBadParametersAndShapesNamingTheValues) {
  torch::Tensor s = torch::zeros({2, 4}, torch::kFloat64);
  EXPECT_EQ(error_of([&] { forward_kl(s, s, 0.0); }), "forward_kl: temperature must be > 0, got 0");
  EXPECT_EQ(error_of([&] { generalized_jsd(s, s, 1.0, 1.5); }),
            "generalized_jsd: beta must be in [0, 1], got 1.5");
  EXPECT_EQ(error_of([&] { skew_reverse_kl(s, s, 1.0, -0.1); }),
            "skew_reverse_kl: alpha must be in [0, 1], got -0.1");
  EXPECT_EQ(error_of([&] {
              total_variation(s, torch::zeros({2, 5}), 1.0);
            }),
            "total_variation: teacher logits have shape [2, 5], student logits [2, 4]");
  EXPECT_EQ(error_of([&] { reverse_kl(s, s, 1.0, torch::ones({3}, torch::kBool)); }),
            "reverse_kl: mask must be (N) bool with N = 2, got Bool of shape [3]");
  EXPECT_EQ(error_of([&] { JsdTerm(2.0, 2.0); }), "jsd: beta must be in [0, 1], got 2");
  EXPECT_EQ(error_of([&] { ReverseKlTerm(-1.0); }), "rkl: temperature must be > 0, got -1");
}

TEST(Divergence, TermsFlattenPositionsAndLeaveOutIgnoredLabels) {
  torch::manual_seed(9);
  torch::Tensor s = torch::randn({2, 3, 5}, torch::kFloat64),
                t = torch::randn({2, 3, 5}, torch::kFloat64);
  torch::Tensor labels =
      torch::tensor(std::vector<int64_t>{1, 4, kIgnoreLabel, 0, kIgnoreLabel, kIgnoreLabel})
          .view({2, 3});
  torch::Tensor mask = labels.reshape({-1}) != kIgnoreLabel;
  TeacherSignal sig;
  sig.logits = t;
  for (const auto& d : divergences(2.0, 0.3, 0.3)) {
    auto term = make_divergence_term(d.name, 2.0, 0.3);
    EXPECT_EQ(term->name(), d.name);
    EXPECT_TRUE(term->needs_teacher());
    EXPECT_NEAR(term->compute(s, &sig, labels).item<double>(),
                value(d, s.reshape({6, 5}), t.reshape({6, 5}), mask), 1e-12)
        << d.name;
    EXPECT_NEAR(term->compute(s, &sig, torch::Tensor()).item<double>(),
                value(d, s.reshape({6, 5}), t.reshape({6, 5})), 1e-12)
        << d.name << " without labels";
    EXPECT_EQ(error_of([&] { term->compute(s, nullptr, labels); }),
              "the " + d.name + " term needs a teacher signal, but none was given");
  }
  EXPECT_NE(dynamic_cast<ForwardKlTerm*>(make_divergence_term("kl", 2.0, 0.3).get()), nullptr);
  auto jsd = std::dynamic_pointer_cast<JsdTerm>(make_divergence_term("jsd", 3.0, 0.7));
  ASSERT_NE(jsd, nullptr);
  EXPECT_EQ(jsd->weight(), 0.7);
  EXPECT_EQ(jsd->temperature(), 3.0);
  EXPECT_EQ(JsdTerm(1.0).weight(), 0.5);  // the symmetric JSD unless told otherwise
  EXPECT_EQ(SkewReverseKlTerm(1.0).weight(), 0.1);
}

TEST(Divergence, FactoryRefusesUnknownNamesListingTheKnownOnes) {
  EXPECT_EQ(error_of([] { make_divergence_term("js", 1.0, 0.5); }),
            "unknown divergence 'js'; known: kl, rkl, jsd, tvd, skl, srkl");
  EXPECT_EQ(error_of([] { make_divergence_term("skl", 1.0, 1.5); }),
            "skl: alpha must be in [0, 1], got 1.5");
}

// ---- gradients against central finite differences (float64) ------------------------------

void expect_gradients_match_finite_differences(double T, double w, const torch::Tensor& s,
                                               const torch::Tensor& t,
                                               const torch::Tensor& mask = {}) {
  const double h = 1e-6;
  for (const auto& d : divergences(T, w, w)) {
    torch::Tensor analytic = gradient(d, s, t, mask).view(-1);
    for (int64_t i = 0; i < s.numel(); ++i) {
      torch::Tensor step = torch::zeros_like(s);
      step.view(-1)[i] = h;
      double numeric = (value(d, s + step, t, mask) - value(d, s - step, t, mask)) / (2 * h);
      EXPECT_NEAR(analytic[i].item<double>(), numeric, 1e-7)
          << d.name << " T=" << T << " w=" << w << " element " << i;
    }
  }
}

TEST(DivergenceGradients, MatchFiniteDifferencesAtT1) {
  torch::manual_seed(10);
  expect_gradients_match_finite_differences(1.0, 0.5, random_logits(3, 5, 2.0),
                                            random_logits(3, 5, 2.0));
}

TEST(DivergenceGradients, MatchFiniteDifferencesAtT3WithAMaskedRow) {
  torch::manual_seed(11);
  expect_gradients_match_finite_differences(3.0, 0.1, random_logits(4, 5, 2.0),
                                            random_logits(4, 5, 2.0),
                                            torch::tensor({true, true, false, true}));
}

TEST(DivergenceGradients, MatchFiniteDifferencesAtTheMixtureEnds) {
  torch::manual_seed(12);
  torch::Tensor s = random_logits(3, 4, 2.0), t = random_logits(3, 4, 2.0);
  expect_gradients_match_finite_differences(0.7, 0.0, s, t);
  expect_gradients_match_finite_differences(0.7, 1.0, s, t);
}

TEST(DivergenceGradients, MatchFiniteDifferencesWithTokensTheTeacherRulesOut) {
  torch::manual_seed(13);
  torch::Tensor t = random_logits(3, 5, 2.0);
  t[0][1] = -kInf;
  t[1][4] = -kInf;
  t[2][0] = -kInf;
  expect_gradients_match_finite_differences(1.0, 0.3, random_logits(3, 5, 2.0), t);
}

// ---- parity with PyTorch (numbers made by tests/reference/divergence_reference.py) ------

// Rows of numbers; null stands for -inf, which JSON cannot hold.
torch::Tensor matrix(const nlohmann::json& rows) {
  std::vector<torch::Tensor> out;
  for (const auto& r : rows) {
    std::vector<double> v;
    for (const auto& x : r) v.push_back(x.is_null() ? -kInf : x.get<double>());
    out.push_back(torch::tensor(v, torch::kFloat64));
  }
  return torch::stack(out);
}

TEST(DivergenceParity, ValuesAndGradientsMatchTorchWithin1e10) {
  const char* dir = std::getenv("RETORT_REFERENCE_DIR");
  ASSERT_NE(dir, nullptr) << "RETORT_REFERENCE_DIR is not set (ctest sets it)";
  auto ref =
      nlohmann::json::parse(read_text(std::filesystem::path(dir) / "divergence_reference.json"));
  ASSERT_GE(ref["cases"].size(), 8u);
  for (const auto& c : ref["cases"]) {
    torch::Tensor s = matrix(c["student"]), t = matrix(c["teacher"]);
    torch::Tensor mask;  // (N) bool, or undefined: every row counts
    if (!c["mask"].is_null())
      mask = torch::tensor(c["mask"].get<std::vector<int>>()).to(torch::kBool);
    double T = c["temperature"], beta = c["beta"], alpha = c["alpha"];
    for (const auto& d : divergences(T, beta, alpha)) {
      std::string where = d.name + " T=" + std::to_string(T) + " beta=" + std::to_string(beta) +
                          " alpha=" + std::to_string(alpha);
      EXPECT_NEAR(value(d, s, t, mask), c["values"][d.name].get<double>(), 1e-10) << where;
      double diff =
          (gradient(d, s, t, mask) - matrix(c["grads"][d.name])).abs().max().item<double>();
      EXPECT_LT(diff, 1e-10) << "gradient of " << where;
    }
  }
}

// Divergence terms against top-k teachers: k + 1 buckets equal the dense divergence when
// k = V, match PyTorch's bucket computation when k < V, and stay finite at the edges.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "retort/divergence.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "test_util.h"

using namespace retort;
using retort::testing::error_of;

namespace {

const double kInf = std::numeric_limits<double>::infinity();
const std::vector<std::string> kNames = {"kl", "rkl", "jsd", "tvd", "skl", "srkl"};

torch::Tensor random_logits(std::vector<int64_t> shape, double scale) {
  return torch::randn(shape, torch::kFloat64) * scale;
}

double value(const Term& term, const torch::Tensor& s, const TeacherSignal& sig,
             const torch::Tensor& labels = {}) {
  return term.compute(s, &sig, labels).item<double>();
}

torch::Tensor gradient(const Term& term, const torch::Tensor& s, const TeacherSignal& sig,
                       const torch::Tensor& labels = {}) {
  torch::Tensor sv = s.clone().requires_grad_(true);
  term.compute(sv, &sig, labels).backward();
  return sv.grad();
}

torch::Tensor labels_of(std::vector<int64_t> v) { return torch::tensor(v, torch::kInt64); }

bool all_finite(const torch::Tensor& x) { return torch::isfinite(x).all().item<bool>(); }

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

}  // namespace

TEST(TopKDivergence, TopKSignalKeepsTheKMostLikelyTokensSortedAndClampsK) {
  torch::Tensor logits = torch::tensor({{1.0, 3.0, 2.0, 0.0}}, torch::kFloat64);
  TeacherSignal sig = top_k_signal(logits, 2);
  EXPECT_EQ(sig.kind, TeacherSignal::Kind::TopK);
  EXPECT_EQ(sig.ids.sizes(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(sig.ids[0][0].item<int64_t>(), 1);
  EXPECT_EQ(sig.ids[0][1].item<int64_t>(), 2);
  torch::Tensor log_p = torch::log_softmax(logits, -1);
  EXPECT_NEAR(sig.logprobs[0][0].item<double>(), log_p[0][1].item<double>(), 1e-15);
  EXPECT_EQ(top_k_signal(logits, 99).k(), 4);
  EXPECT_EQ(top_k_signal(torch::zeros({2, 3, 7}), 5).ids.sizes(), (std::vector<int64_t>{2, 3, 5}));
  EXPECT_EQ(error_of([&] { top_k_signal(logits, 0); }), "top_k_signal: k must be >= 1, got 0");
}

TEST(TopKDivergence, KEqualToVocabularyEqualsTheDenseDivergenceValuesAndGradients) {
  torch::manual_seed(21);
  torch::Tensor s = random_logits({2, 3, 9}, 2.0), t = random_logits({2, 3, 9}, 2.0);
  torch::Tensor labels = labels_of({1, 2, kIgnoreLabel, 0, 5, 8}).view({2, 3});
  TeacherSignal dense = TeacherSignal::dense(t), top = top_k_signal(t, 9);
  for (double T : {1.0, 2.5})
    for (const auto& name : kNames) {
      auto term = make_divergence_term(name, T, 0.3);
      std::string where = name + " T=" + std::to_string(T);
      EXPECT_NEAR(value(*term, s, top, labels), value(*term, s, dense, labels), 1e-6) << where;
      EXPECT_LT(max_diff(gradient(*term, s, top, labels), gradient(*term, s, dense, labels)), 1e-6)
          << where;
    }
}

TEST(TopKDivergence, SameLogitsGiveZeroForEveryDivergenceAtAnyK) {
  torch::manual_seed(22);
  torch::Tensor s = random_logits({5, 12}, 3.0);
  for (int64_t k : {1, 4, 12}) {
    TeacherSignal top = top_k_signal(s, k);
    for (const auto& name : kNames) {
      auto term = make_divergence_term(name, /*T=*/1.0, 0.5);
      EXPECT_NEAR(value(*term, s, top), 0.0, 1e-12) << name << " k=" << k;
    }
  }
}

TEST(TopKDivergence, TwoBucketsMatchHandComputedForwardKl) {
  // V = 3, k = 1: teacher keeps token 0 with p = 0.6, tail 0.4; student (0.5, 0.3, 0.2).
  torch::Tensor s = torch::log(torch::tensor({{0.5, 0.3, 0.2}}, torch::kFloat64));
  TeacherSignal top = TeacherSignal::top_k(torch::tensor({{int64_t{0}}}),
                                           torch::tensor({{std::log(0.6)}}, torch::kFloat64));
  double kl = 0.6 * std::log(0.6 / 0.5) + 0.4 * std::log(0.4 / 0.5);
  EXPECT_NEAR(value(ForwardKlTerm(1.0), s, top), kl, 1e-12);
  // At T = 2 the teacher's buckets are (0.6, 0.4)^(1/2) renormalised; the student is exact.
  double a = std::sqrt(0.6), b = std::sqrt(0.4), pt = a / (a + b);
  torch::Tensor ps = torch::softmax(s / 2.0, -1);
  double q = ps[0][0].item<double>();
  double kl2 = pt * std::log(pt / q) + (1 - pt) * std::log((1 - pt) / (1 - q));
  EXPECT_NEAR(value(ForwardKlTerm(2.0), s, top), 4 * kl2, 1e-12);
}

TEST(TopKDivergence, MaskedPositionsChangeNothingEvenWithGarbageIds) {
  torch::manual_seed(23);
  torch::Tensor s = random_logits({2, 3, 8}, 2.0), t = random_logits({2, 3, 8}, 2.0);
  TeacherSignal top = top_k_signal(t, 3);
  torch::Tensor labels = labels_of({1, kIgnoreLabel, 3, kIgnoreLabel, 0, 2}).view({2, 3});
  torch::Tensor s2 = s.clone();
  s2[0][1].fill_(std::nan(""));  // padding holds anything
  s2[1][0].fill_(1e6);
  TeacherSignal top2 = top;
  top2.ids = top.ids.clone();
  top2.ids[0][1].fill_(-1);  // even ids out of range
  top2.logprobs = top.logprobs.clone();
  top2.logprobs[1][0].fill_(std::nan(""));
  torch::Tensor kept = torch::tensor({0, 2, 4, 5}, torch::kInt64);
  TeacherSignal flat = TeacherSignal::top_k(top.ids.reshape({6, 3}).index_select(0, kept),
                                            top.logprobs.reshape({6, 3}).index_select(0, kept));
  for (const auto& name : kNames) {
    auto term = make_divergence_term(name, 2.0, 0.2);
    EXPECT_NEAR(value(*term, s2, top2, labels),
                value(*term, s.reshape({6, 8}).index_select(0, kept), flat), 1e-12)
        << name;
    torch::Tensor g = gradient(*term, s2, top2, labels);
    EXPECT_TRUE(all_finite(g)) << name << "\n" << g;
    EXPECT_EQ(g[0][1].abs().sum().item<double>(), 0.0) << name;
    EXPECT_EQ(g[1][0].abs().sum().item<double>(), 0.0) << name;
  }
}

TEST(TopKDivergence, EmptyTailsAndFullyMaskedBatchesGiveNoNan) {
  torch::manual_seed(24);
  torch::Tensor s = random_logits({3, 5}, 2.0);
  // Teacher tail exactly 0: all its mass on the k tokens (a one-hot teacher, k = 1).
  TeacherSignal one_hot =
      TeacherSignal::top_k(torch::tensor({{int64_t{2}}, {int64_t{0}}, {int64_t{4}}}),
                           torch::zeros({3, 1}, torch::kFloat64));
  // Student tail 0 as well: it rules out every token but the ones the teacher keeps.
  torch::Tensor s_peaked = torch::full({3, 5}, -kInf, torch::kFloat64);
  s_peaked.index_put_({torch::arange(3), torch::tensor({2, 0, 4})}, 0.5);
  s_peaked[0][1] = 0.0;
  torch::Tensor none = torch::full({3}, kIgnoreLabel, torch::kInt64);
  for (double T : {1.0, 3.0})
    for (const auto& name : kNames) {
      auto term = make_divergence_term(name, T, 0.5);
      for (const torch::Tensor& student : {s, s_peaked}) {
        EXPECT_TRUE(std::isfinite(value(*term, student, one_hot))) << name;
        EXPECT_TRUE(all_finite(gradient(*term, student, one_hot))) << name;
      }
      EXPECT_EQ(value(*term, s, one_hot, none), 0.0) << name;
      torch::Tensor g = gradient(*term, s, one_hot, none);
      EXPECT_TRUE(all_finite(g)) << name;
      EXPECT_EQ(g.abs().sum().item<double>(), 0.0) << name;
    }
  // A one-hot teacher and a student that agrees with it: every divergence is 0.
  torch::Tensor agree = torch::full({3, 5}, -kInf, torch::kFloat64);
  agree.index_put_({torch::arange(3), torch::tensor({2, 0, 4})}, 0.0);
  for (const auto& name : kNames)
    EXPECT_NEAR(value(*make_divergence_term(name, 2.0, 0.5), agree, one_hot), 0.0, 1e-12) << name;
}

TEST(TopKDivergence, GradientsMatchFiniteDifferencesForKBelowV) {
  torch::manual_seed(25);
  torch::Tensor s = random_logits({3, 6}, 2.0), t = random_logits({3, 6}, 2.0);
  TeacherSignal top = top_k_signal(t, 2);
  torch::Tensor labels = labels_of({0, kIgnoreLabel, 3});
  const double h = 1e-6;
  for (double T : {1.0, 2.0})
    for (const auto& name : kNames) {
      auto term = make_divergence_term(name, T, 0.3);
      torch::Tensor analytic = gradient(*term, s, top, labels).view(-1);
      for (int64_t i = 0; i < s.numel(); ++i) {
        torch::Tensor step = torch::zeros_like(s);
        step.view(-1)[i] = h;
        double numeric =
            (value(*term, s + step, top, labels) - value(*term, s - step, top, labels)) / (2 * h);
        EXPECT_NEAR(analytic[i].item<double>(), numeric, 1e-7)
            << name << " T=" << T << " element " << i;
      }
    }
}

TEST(TopKDivergence, TokensAndEmptySignalsAndBadIdsAreRefusedNamingTheKind) {
  torch::Tensor s = torch::zeros({2, 4}, torch::kFloat64);
  TeacherSignal tokens;
  tokens.kind = TeacherSignal::Kind::Tokens;
  tokens.tokens = torch::zeros({2, 3}, torch::kInt64);
  EXPECT_EQ(error_of([&] { JsdTerm(1.0).compute(s, &tokens, {}); }),
            "the jsd term needs dense logits or a top-k teacher signal, got a tokens signal");
  TeacherSignal empty;
  EXPECT_EQ(error_of([&] { ForwardKlTerm(1.0).compute(s, &empty, {}); }),
            "the kl term got a dense teacher signal that holds no logits");
  TeacherSignal top = TeacherSignal::top_k(torch::tensor({{0, 4}, {1, 2}}, torch::kInt64),
                                           torch::full({2, 2}, -1.0, torch::kFloat64));
  EXPECT_EQ(error_of([&] { ReverseKlTerm(1.0).compute(s, &top, {}); }),
            "rkl: top-k ids must lie in [0, 4), got ids from 0 to 4");
  TeacherSignal wrong =
      TeacherSignal::top_k(torch::zeros({3, 2}, torch::kInt64), torch::zeros({3, 2}));
  EXPECT_EQ(
      error_of([&] { TotalVariationTerm(1.0).compute(s, &wrong, {}); }),
      "tvd: top-k teacher ids of shape [3, 2] and logprobs of shape [3, 2] do not fit student "
      "logits [2, 4] (want (..., k) with the same leading dimensions)");
}

// ---- parity with PyTorch (tests/reference/divergence_reference.py, "topk_cases") ---------

TEST(TopKDivergence, ValuesAndGradientsMatchTorchBucketsWithin1e10) {
  const char* dir = std::getenv("RETORT_REFERENCE_DIR");
  ASSERT_NE(dir, nullptr) << "RETORT_REFERENCE_DIR is not set (ctest sets it)";
  auto ref =
      nlohmann::json::parse(read_text(std::filesystem::path(dir) / "divergence_reference.json"));
  ASSERT_GE(ref["topk_cases"].size(), 4u);
  auto matrix = [](const nlohmann::json& rows, torch::ScalarType type) {
    std::vector<torch::Tensor> out;
    for (const auto& r : rows)
      out.push_back(torch::tensor(r.get<std::vector<double>>(), torch::kFloat64).to(type));
    return torch::stack(out);
  };
  for (const auto& c : ref["topk_cases"]) {
    torch::Tensor s = matrix(c["student"], torch::kFloat64);
    TeacherSignal top = TeacherSignal::top_k(matrix(c["ids"], torch::kInt64),
                                             matrix(c["logprobs"], torch::kFloat64));
    torch::Tensor labels;  // masked rows get the ignored label
    if (!c["mask"].is_null()) {
      torch::Tensor keep = torch::tensor(c["mask"].get<std::vector<int>>()).to(torch::kBool);
      labels = torch::where(keep, torch::zeros({keep.size(0)}, torch::kInt64),
                            torch::full({keep.size(0)}, kIgnoreLabel, torch::kInt64));
    }
    double T = c["temperature"], beta = c["beta"], alpha = c["alpha"];
    for (const auto& name : kNames) {
      auto term = make_divergence_term(name, T, name == "jsd" ? beta : alpha);
      std::string where = name + " T=" + std::to_string(T) + " k=" + std::to_string(top.k());
      EXPECT_NEAR(value(*term, s, top, labels), c["values"][name].get<double>(), 1e-10) << where;
      EXPECT_LT(
          max_diff(gradient(*term, s, top, labels), matrix(c["grads"][name], torch::kFloat64)),
          1e-10)
          << "gradient of " << where;
    }
  }
}

// ---- the objective around them --------------------------------------------------------

TEST(TopKDivergence, DistillObjectiveMixesCrossEntropyAndTheDivergenceAndDescribesThem) {
  EXPECT_EQ(make_kd_objective(0.9, 4.0).describe(), "0.1*ce + 0.9*kl(T=4)");
  EXPECT_EQ(make_distill_objective("jsd", 1.0, 1.0, 0.5).describe(), "1*jsd(T=1, beta=0.5)");
  EXPECT_EQ(make_distill_objective("skl", 0.5, 2.0, 0.1).describe(),
            "0.5*ce + 0.5*skl(T=2, alpha=0.1)");
  EXPECT_EQ(make_distill_objective("tvd", 0.0, 2.0, 0.1).describe(), "1*ce");
  EXPECT_EQ(error_of([] { make_distill_objective("js", 0.5, 1.0, 0.5); }),
            "unknown divergence 'js'; known: kl, rkl, jsd, tvd, skl, srkl");
  EXPECT_EQ(error_of([] { make_distill_objective("kl", 1.5, 1.0, 0.0); }),
            "distill.alpha must be in [0, 1], got 1.5");

  torch::manual_seed(26);
  torch::Tensor s = random_logits({2, 4, 6}, 1.0), t = random_logits({2, 4, 6}, 1.0);
  torch::Tensor y = torch::randint(0, 6, {2, 4}, torch::kInt64);
  y[1][3] = kIgnoreLabel;
  TeacherSignal top = top_k_signal(t, 3);
  LossParts parts = make_distill_objective("rkl", 0.25, 2.0, 0.0).compute(s, &top, y);
  double ce = CrossEntropyTerm().compute(s, nullptr, y).item<double>();
  double rkl = value(ReverseKlTerm(2.0), s, top, y);
  ASSERT_EQ(parts.terms.size(), 2u);
  EXPECT_EQ(parts.terms[1].first, "rkl");
  EXPECT_NEAR(parts.total.item<double>(), 0.75 * ce + 0.25 * rkl, 1e-12);
}

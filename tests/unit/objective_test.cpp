// Loss terms: closed forms, parity with PyTorch, finite-difference gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "retort/divergence.h"  // ForwardKlTerm
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/objective.h"

using namespace retort;

namespace {

torch::Tensor d(std::initializer_list<std::initializer_list<double>> rows) {
  std::vector<torch::Tensor> r;
  for (auto row : rows) r.push_back(torch::tensor(std::vector<double>(row), torch::kFloat64));
  return torch::stack(r);
}

double term_value(const Term& term, const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& y) {
  TeacherSignal sig;
  sig.logits = t;
  return term.compute(s, &sig, y).item<double>();
}

}  // namespace

TEST(CrossEntropy, MatchesClosedFormOnTwoExamples) {
  torch::Tensor s = d({{1.0, 2.0, 3.0}, {0.0, 0.0, 0.0}});
  torch::Tensor y = torch::tensor({2, 0}, torch::kInt64);
  // -log softmax: row0 = log(e^1+e^2+e^3) - 3, row1 = log 3
  double expected = (std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0 + std::log(3.0)) / 2;
  EXPECT_NEAR(CrossEntropyTerm().compute(s, nullptr, y).item<double>(), expected, 1e-12);
}

TEST(ForwardKl, MatchesClosedFormWithTemperatureSquared) {
  torch::Tensor s = d({{0.0, std::log(3.0)}});  // student probs at T=2: softmax([0, log3 / 2])
  torch::Tensor t = d({{0.0, 0.0}});            // teacher uniform
  double T = 2;
  double q1 = 1 / (1 + std::sqrt(3.0)), q2 = 1 - q1;
  double kl = 0.5 * std::log(0.5 / q1) + 0.5 * std::log(0.5 / q2);
  EXPECT_NEAR(term_value(ForwardKlTerm(T), s, t, torch::zeros({1}, torch::kInt64)), kl * T * T, 1e-12);
}

TEST(ForwardKl, IsZeroWhenStudentEqualsTeacher) {
  torch::Tensor s = torch::randn({6, 10}, torch::kFloat64);
  EXPECT_NEAR(term_value(ForwardKlTerm(3.0), s, s.clone(), torch::zeros({6}, torch::kInt64)), 0.0, 1e-12);
}

TEST(ForwardKl, TeacherMinusInfinityLogitsGiveFiniteLossAndGradient) {
  double inf = std::numeric_limits<double>::infinity();
  torch::Tensor s = d({{0.5, -1.0, 2.0}}).requires_grad_(true);
  torch::Tensor t = d({{1.0, -inf, 0.0}});
  TeacherSignal sig;
  sig.logits = t;
  torch::Tensor loss = ForwardKlTerm(1.0).compute(s, &sig, torch::zeros({1}, torch::kInt64));
  loss.backward();
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
  EXPECT_TRUE(torch::isfinite(s.grad()).all().item<bool>()) << s.grad();
}

TEST(ForwardKl, RefusesNonPositiveTemperatureAndShapeMismatch) {
  EXPECT_THROW(ForwardKlTerm(0.0), Error);
  EXPECT_THROW(ForwardKlTerm(-1.0), Error);
  TeacherSignal sig;
  sig.logits = torch::zeros({2, 5});
  EXPECT_THROW(ForwardKlTerm(1.0).compute(torch::zeros({2, 4}), &sig, torch::zeros({2}, torch::kInt64)), Error);
  EXPECT_THROW(ForwardKlTerm(1.0).compute(torch::zeros({2, 4}), nullptr, torch::zeros({2}, torch::kInt64)), Error);
}

TEST(Objective, MixesTermsByAlphaAndReportsEachTerm) {
  torch::Tensor s = torch::randn({5, 4}, torch::kFloat64), t = torch::randn({5, 4}, torch::kFloat64);
  torch::Tensor y = torch::randint(0, 4, {5}, torch::kInt64);
  TeacherSignal sig;
  sig.logits = t;
  LossParts parts = make_kd_objective(0.3, 2.0).compute(s, &sig, y);
  ASSERT_EQ(parts.terms.size(), 2u);
  double ce = term_value(CrossEntropyTerm(), s, t, y), kl = term_value(ForwardKlTerm(2.0), s, t, y);
  EXPECT_EQ(parts.terms[0].first, "ce");
  EXPECT_NEAR(parts.terms[0].second, ce, 1e-12);
  EXPECT_NEAR(parts.terms[1].second, kl, 1e-12);
  EXPECT_NEAR(parts.total.item<double>(), 0.7 * ce + 0.3 * kl, 1e-12);
  EXPECT_EQ(make_kd_objective(0.0, 2.0).needs_teacher(), false);
  EXPECT_EQ(make_kd_objective(1.0, 2.0).compute(s, &sig, y).terms.size(), 1u);
  EXPECT_THROW(make_kd_objective(1.5, 2.0), Error);
}

// ---- gradients against central finite differences ---------------------------------

void check_gradient(const Term& term, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor s = (torch::randn({3, 5}, torch::kFloat64) * 2).requires_grad_(true);
  torch::Tensor t = torch::randn({3, 5}, torch::kFloat64) * 2;
  torch::Tensor y = torch::randint(0, 5, {3}, torch::kInt64);
  TeacherSignal sig;
  sig.logits = t;
  term.compute(s, &sig, y).backward();
  torch::Tensor analytic = s.grad().clone();
  const double h = 1e-6;
  for (int64_t i = 0; i < s.numel(); ++i) {
    torch::Tensor plus = s.detach().clone(), minus = s.detach().clone();
    plus.view(-1)[i] += h;
    minus.view(-1)[i] -= h;
    double numeric = (term.compute(plus, &sig, y).item<double>() - term.compute(minus, &sig, y).item<double>()) / (2 * h);
    EXPECT_NEAR(analytic.view(-1)[i].item<double>(), numeric, 1e-7) << term.name() << " element " << i;
  }
}

TEST(Gradients, CrossEntropyMatchesFiniteDifferences) { check_gradient(CrossEntropyTerm(), 1); }
TEST(Gradients, ForwardKlMatchesFiniteDifferencesAtT1) { check_gradient(ForwardKlTerm(1.0), 2); }
TEST(Gradients, ForwardKlMatchesFiniteDifferencesAtT4) { check_gradient(ForwardKlTerm(4.0), 3); }

// ---- parity with PyTorch (numbers made by tests/reference/kd_reference.py) ----------

TEST(PyTorchParity, LossesAndGradientsMatchTorchWithin1e10) {
  const char* dir = std::getenv("RETORT_REFERENCE_DIR");
  ASSERT_NE(dir, nullptr) << "RETORT_REFERENCE_DIR is not set (ctest sets it)";
  auto ref = nlohmann::json::parse(read_text(std::filesystem::path(dir) / "kd_reference.json"));
  ASSERT_GE(ref["cases"].size(), 4u);
  auto to_tensor = [](const nlohmann::json& j) {
    std::vector<torch::Tensor> rows;
    for (const auto& r : j) rows.push_back(torch::tensor(r.get<std::vector<double>>(), torch::kFloat64));
    return torch::stack(rows);
  };
  for (const auto& c : ref["cases"]) {
    torch::Tensor s = to_tensor(c["student"]), t = to_tensor(c["teacher"]);
    torch::Tensor y = torch::tensor(c["labels"].get<std::vector<int64_t>>(), torch::kInt64);
    double T = c["temperature"];
    TeacherSignal sig;
    sig.logits = t;
    for (auto [name, term] : std::vector<std::pair<std::string, std::shared_ptr<Term>>>{
             {"ce", std::make_shared<CrossEntropyTerm>()}, {"kl", std::make_shared<ForwardKlTerm>(T)}}) {
      torch::Tensor sv = s.clone().requires_grad_(true);
      torch::Tensor loss = term->compute(sv, &sig, y);
      loss.backward();
      EXPECT_NEAR(loss.item<double>(), c[name].get<double>(), 1e-10) << name << " T=" << T;
      double max_diff = (sv.grad() - to_tensor(c["grad_" + name])).abs().max().item<double>();
      EXPECT_LT(max_diff, 1e-10) << "gradient of " << name << " T=" << T;
    }
  }
}

// Divergences between student and teacher token distributions, and their objective terms.
// Everything works on log-probabilities so that -inf logits (ruled-out tokens) stay finite.
#include "retort/divergence.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "retort/error.h"

namespace retort {

namespace {

constexpr double kMinusInf = -std::numeric_limits<double>::infinity();

void check_temperature(const std::string& what, double temperature) {
  if (!(temperature > 0) || !std::isfinite(temperature))
    fail(what, ": temperature must be > 0, got ", temperature);
}

void check_weight(const std::string& what, const char* weight_name, double weight) {
  if (!(weight >= 0 && weight <= 1))
    fail(what, ": ", weight_name, " must be in [0, 1], got ", weight);
}

// Per row, KL(p || q) = sum_v p_v (log p_v - log q_v) from log-probabilities (n, V) -> (n).
// Tokens that either side rules out (-inf) are left out: where p rules a token out its term
// is 0 anyway; where only q does, the true KL is infinite (see the header). They are replaced
// by 0 before any arithmetic, because masking after the fact would still leave -inf - -inf
// or 0 * inf in the backward pass, and a NaN times a zero gradient is still NaN.
torch::Tensor kl_rows(const torch::Tensor& log_p, const torch::Tensor& log_q) {
  torch::Tensor out = (log_p == kMinusInf) | (log_q == kMinusInf);
  torch::Tensor lp = log_p.masked_fill(out, 0.0), lq = log_q.masked_fill(out, 0.0);
  return (lp.exp() * (lp - lq)).sum(-1);  // a left-out token adds exp(0) * (0 - 0) = 0
}

// log(w * exp(log_a) + (1 - w) * exp(log_b)) elementwise, w in [0, 1]: the log of a mixture
// of two distributions without leaving log space. -inf where neither side has mass.
torch::Tensor log_mix(const torch::Tensor& log_a, const torch::Tensor& log_b, double w) {
  torch::Tensor x = log_a + std::log(w), y = log_b + std::log1p(-w);
  // logaddexp(-inf, -inf) has gradient 0/0 = NaN even under a zero incoming gradient,
  // so those entries go in as 0 and come out as -inf again.
  torch::Tensor empty = (x == kMinusInf) & (y == kMinusInf);
  return torch::logaddexp(x.masked_fill(empty, 0.0), y.masked_fill(empty, 0.0))
      .masked_fill(empty, kMinusInf);
}

// Checks the inputs, softens both sides, keeps the unmasked rows and returns
// T^2 * mean over them of per_row(log p_s (n, V), log p_t (n, V)) -> (n).
template <typename PerRow>
torch::Tensor mean_over_rows(const char* what, const torch::Tensor& student,
                             const torch::Tensor& teacher, double temperature,
                             const torch::Tensor& mask, const PerRow& per_row) {
  check_temperature(what, temperature);
  if (student.dim() != 2)
    fail(what, ": student logits must be (N, V), got shape ", student.sizes());
  if (!teacher.defined() || teacher.sizes() != student.sizes())
    fail(what, ": teacher logits have shape ",
         teacher.defined() ? teacher.sizes() : c10::IntArrayRef{}, ", student logits ",
         student.sizes());
  torch::Tensor s = student, t = teacher.to(student.dtype());
  if (mask.defined()) {
    if (mask.scalar_type() != torch::kBool || mask.dim() != 1 || mask.size(0) != student.size(0))
      fail(what, ": mask must be (N) bool with N = ", student.size(0), ", got ", mask.scalar_type(),
           " of shape ", mask.sizes());
    // Selecting rows (rather than zeroing their values) keeps whatever padding rows hold,
    // NaN included, out of both passes; their gradient is exactly 0.
    torch::Tensor rows = mask.to(student.device());
    s = s.index({rows});
    t = t.index({rows});
  }
  torch::Tensor log_ps = torch::log_softmax(s / temperature, -1);  // (n, V)
  torch::Tensor log_pt = torch::log_softmax(t / temperature, -1);  // (n, V)
  int64_t rows = std::max<int64_t>(s.size(0), 1);                  // all masked: 0 / 1
  return per_row(log_ps, log_pt).sum() / rows * (temperature * temperature);
}

// KL(p || alpha * p + (1 - alpha) * q) with p the teacher and q the student, or the other
// way round when `reverse`: the two skew KLs are one divergence with the roles swapped.
torch::Tensor skew_kl(const char* what, bool reverse, const torch::Tensor& student,
                      const torch::Tensor& teacher, double temperature, double alpha,
                      const torch::Tensor& mask) {
  check_weight(what, "alpha", alpha);
  return mean_over_rows(what, student, teacher, temperature, mask,
                        [alpha, reverse](const torch::Tensor& ls, const torch::Tensor& lt) {
                          const torch::Tensor& log_p = reverse ? ls : lt;
                          const torch::Tensor& log_q = reverse ? lt : ls;
                          return kl_rows(log_p, log_mix(log_p, log_q, alpha));
                        });
}

}  // namespace

// ---- the divergences ---------------------------------------------------------------------

torch::Tensor forward_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                         double temperature, const torch::Tensor& mask) {
  return mean_over_rows(
      "forward_kl", student, teacher, temperature, mask,
      [](const torch::Tensor& ls, const torch::Tensor& lt) { return kl_rows(lt, ls); });
}

torch::Tensor reverse_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                         double temperature, const torch::Tensor& mask) {
  return mean_over_rows(
      "reverse_kl", student, teacher, temperature, mask,
      [](const torch::Tensor& ls, const torch::Tensor& lt) { return kl_rows(ls, lt); });
}

torch::Tensor generalized_jsd(const torch::Tensor& student, const torch::Tensor& teacher,
                              double temperature, double beta, const torch::Tensor& mask) {
  check_weight("generalized_jsd", "beta", beta);
  return mean_over_rows("generalized_jsd", student, teacher, temperature, mask,
                        [beta](const torch::Tensor& ls, const torch::Tensor& lt) {
                          if (beta == 0) return kl_rows(lt, ls);  // TRL's convention for the ends
                          if (beta == 1) return kl_rows(ls, lt);
                          // m covers both supports, so neither KL leaves out a token p allows.
                          torch::Tensor log_m = log_mix(lt, ls, beta);
                          return beta * kl_rows(lt, log_m) + (1 - beta) * kl_rows(ls, log_m);
                        });
}

torch::Tensor total_variation(const torch::Tensor& student, const torch::Tensor& teacher,
                              double temperature, const torch::Tensor& mask) {
  return mean_over_rows("total_variation", student, teacher, temperature, mask,
                        [](const torch::Tensor& ls, const torch::Tensor& lt) {
                          return 0.5 * (lt.exp() - ls.exp()).abs().sum(-1);
                        });
}

torch::Tensor skew_forward_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                              double temperature, double alpha, const torch::Tensor& mask) {
  return skew_kl("skew_forward_kl", /*reverse=*/false, student, teacher, temperature, alpha, mask);
}

torch::Tensor skew_reverse_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                              double temperature, double alpha, const torch::Tensor& mask) {
  return skew_kl("skew_reverse_kl", /*reverse=*/true, student, teacher, temperature, alpha, mask);
}

// ---- the terms ---------------------------------------------------------------------------

namespace {

// The weighted divergences' signature; the others are adapted to it by ignoring_weight.
using DivergenceFn = torch::Tensor (*)(const torch::Tensor& student, const torch::Tensor& teacher,
                                       double temperature, double weight,
                                       const torch::Tensor& mask);

template <torch::Tensor (*unweighted)(const torch::Tensor&, const torch::Tensor&, double,
                                      const torch::Tensor&)>
torch::Tensor ignoring_weight(const torch::Tensor& student, const torch::Tensor& teacher,
                              double temperature, double, const torch::Tensor& mask) {
  return unweighted(student, teacher, temperature, mask);
}

struct KindInfo {
  const char* name;         // the term's name, as make_divergence_term knows it
  const char* weight_name;  // "beta" or "alpha"; nullptr: takes no weight
  DivergenceFn divergence;
};

KindInfo kind_info(DivergenceKind kind) {
  switch (kind) {
    case DivergenceKind::kReverseKl:
      return {"rkl", nullptr, &ignoring_weight<&reverse_kl>};
    case DivergenceKind::kJsd:
      return {"jsd", "beta", &generalized_jsd};
    case DivergenceKind::kTotalVariation:
      return {"tvd", nullptr, &ignoring_weight<&total_variation>};
    case DivergenceKind::kSkewForwardKl:
      return {"skl", "alpha", &skew_forward_kl};
    case DivergenceKind::kSkewReverseKl:
      return {"srkl", "alpha", &skew_reverse_kl};
  }
  fail("unknown divergence kind ", static_cast<int>(kind));
}

}  // namespace

DivergenceTerm::DivergenceTerm(DivergenceKind kind, double temperature, double weight)
    : kind_(kind), temperature_(temperature), weight_(weight) {
  KindInfo k = kind_info(kind);
  check_temperature(k.name, temperature);
  if (k.weight_name) check_weight(k.name, k.weight_name, weight);
}

std::string DivergenceTerm::name() const { return kind_info(kind_).name; }

torch::Tensor DivergenceTerm::compute(const torch::Tensor& logits, const TeacherSignal* teacher,
                                      const torch::Tensor& labels) const {
  std::string what = name();
  if (!teacher) fail("the ", what, " term needs a teacher signal, but none was given");
  if (logits.dim() != 2 && logits.dim() != 3)
    fail(what, ": logits must be (B, V) or (B, T, V), got shape ", logits.sizes());
  int64_t vocab = logits.size(-1);
  torch::Tensor mask;  // (N) bool; undefined: every row counts
  if (labels.defined()) {
    if (labels.numel() * vocab != logits.numel())
      fail(what, ": labels have shape ", labels.sizes(), ", logits ", logits.sizes());
    mask = labels.reshape({-1}) != kIgnoreLabel;
  }
  const torch::Tensor& t = teacher->logits;
  if (!t.defined() || t.sizes() != logits.sizes())
    fail(what, ": teacher logits have shape ", t.defined() ? t.sizes() : c10::IntArrayRef{},
         ", student logits ", logits.sizes());
  return kind_info(kind_).divergence(logits.reshape({-1, vocab}), t.reshape({-1, vocab}),
                                     temperature_, weight_, mask);
}

std::shared_ptr<Term> make_divergence_term(const std::string& name, double temperature,
                                           double beta_or_alpha) {
  if (name == "kl") return std::make_shared<ForwardKlTerm>(temperature);
  if (name == "rkl") return std::make_shared<ReverseKlTerm>(temperature);
  if (name == "jsd") return std::make_shared<JsdTerm>(temperature, beta_or_alpha);
  if (name == "tvd") return std::make_shared<TotalVariationTerm>(temperature);
  if (name == "skl") return std::make_shared<SkewForwardKlTerm>(temperature, beta_or_alpha);
  if (name == "srkl") return std::make_shared<SkewReverseKlTerm>(temperature, beta_or_alpha);
  fail("unknown divergence '", name, "'; known: kl, rkl, jsd, tvd, skl, srkl");
}

}  // namespace retort

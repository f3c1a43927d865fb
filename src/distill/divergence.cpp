// Divergences between student and teacher token distributions, and their objective terms: the
// checks, softening, masks and T^2 around what each divergence computes per position (its row
// function in divergence_rows.cpp, found through the divergence table).
#include "retort/divergence.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "retort/divergence_table.h"
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

// Checks `mask` against n rows and returns it on `device`: (n) bool, true = the row counts.
torch::Tensor checked_mask(const char* what, const torch::Tensor& mask, int64_t n,
                           const torch::Device& device) {
  if (mask.scalar_type() != torch::kBool || mask.dim() != 1 || mask.size(0) != n)
    fail(what, ": mask must be (N) bool with N = ", n, ", got ", mask.scalar_type(), " of shape ",
         mask.sizes());
  return mask.to(device);
}

// What mean_over_rows is given: raw logits to soften by T, or log-probabilities at T already.
enum class Inputs { kLogits, kLogProbs };

// Checks the inputs, softens both sides (for kLogits), keeps the unmasked rows and returns
// T^2 * mean over them of rows(log p_s (n, V), log p_t (n, V), weight) -> (n).
torch::Tensor mean_over_rows(const char* what, const torch::Tensor& student,
                             const torch::Tensor& teacher, double temperature,
                             const torch::Tensor& mask, Inputs inputs, RowDivergence rows,
                             double weight) {
  check_temperature(what, temperature);
  if (student.dim() != 2)
    fail(what, ": student logits must be (N, V), got shape ", student.sizes());
  if (!teacher.defined() || teacher.sizes() != student.sizes())
    fail(what, ": teacher logits have shape ",
         teacher.defined() ? teacher.sizes() : c10::IntArrayRef{}, ", student logits ",
         student.sizes());
  torch::Tensor s = student, t = teacher.to(student.dtype());
  if (mask.defined()) {
    // Selecting rows (rather than zeroing their values) keeps whatever padding rows hold,
    // NaN included, out of both passes; their gradient is exactly 0.
    torch::Tensor keep = checked_mask(what, mask, student.size(0), student.device());
    s = s.index({keep});
    t = t.index({keep});
  }
  if (inputs == Inputs::kLogits) {
    s = torch::log_softmax(s / temperature, -1);  // (n, V)
    t = torch::log_softmax(t / temperature, -1);  // (n, V)
  }
  int64_t n = std::max<int64_t>(s.size(0), 1);  // all masked: 0 / 1
  return rows(s, t, weight).sum() / n * (temperature * temperature);
}

// A divergence between dense logits, checked and named as its public function.
torch::Tensor dense_divergence(DivergenceKind kind, const torch::Tensor& student,
                               const torch::Tensor& teacher, double temperature, double weight,
                               const torch::Tensor& mask) {
  const DivergenceRow& k = divergence_row(kind);
  if (k.weight_name) check_weight(k.function, k.weight_name, weight);
  return mean_over_rows(k.function, student, teacher, temperature, mask, Inputs::kLogits, k.rows,
                        weight);
}

}  // namespace

// ---- the public divergences --------------------------------------------------------------

torch::Tensor forward_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                         double temperature, const torch::Tensor& mask) {
  return dense_divergence(DivergenceKind::kForwardKl, student, teacher, temperature, 0, mask);
}

torch::Tensor reverse_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                         double temperature, const torch::Tensor& mask) {
  return dense_divergence(DivergenceKind::kReverseKl, student, teacher, temperature, 0, mask);
}

torch::Tensor generalized_jsd(const torch::Tensor& student, const torch::Tensor& teacher,
                              double temperature, double beta, const torch::Tensor& mask) {
  return dense_divergence(DivergenceKind::kJsd, student, teacher, temperature, beta, mask);
}

torch::Tensor total_variation(const torch::Tensor& student, const torch::Tensor& teacher,
                              double temperature, const torch::Tensor& mask) {
  return dense_divergence(DivergenceKind::kTotalVariation, student, teacher, temperature, 0, mask);
}

torch::Tensor skew_forward_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                              double temperature, double alpha, const torch::Tensor& mask) {
  return dense_divergence(DivergenceKind::kSkewForwardKl, student, teacher, temperature, alpha,
                          mask);
}

torch::Tensor skew_reverse_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                              double temperature, double alpha, const torch::Tensor& mask) {
  return dense_divergence(DivergenceKind::kSkewReverseKl, student, teacher, temperature, alpha,
                          mask);
}

// ---- top-k teachers: k + 1 buckets -------------------------------------------------------

namespace {

// log(1 - exp(x)) for x <= 0, accurate at both ends (Maechler, 2012); -inf at x = 0.
torch::Tensor log1mexp(const torch::Tensor& x) {
  return torch::where(x < -std::log(2.0), torch::log1p(-x.exp()), torch::log(-torch::expm1(x)));
}

// The student's and teacher's log-masses over k + 1 buckets at temperature T, both (n, k + 1).
//   student (n, V) logits; ids (n, k) int64 in [0, V); logprobs (n, k) teacher log-probs at T = 1.
std::pair<torch::Tensor, torch::Tensor> bucket_log_probs(const torch::Tensor& student,
                                                         const torch::Tensor& ids,
                                                         const torch::Tensor& logprobs,
                                                         double temperature) {
  // Student: exact bucketing of its softened distribution. The tail is the log-sum of the
  // other tokens rather than log(1 - sum) of the k, which cancels catastrophically when the
  // k hold nearly all the mass. A row with no tail mass (k = V) gets -inf with no gradient:
  // logsumexp over only -inf has a 0/0 gradient, so such rows go in as 0 and come out -inf.
  torch::Tensor log_ps = torch::log_softmax(student / temperature, -1);            // (n, V)
  torch::Tensor rest = log_ps.scatter(-1, ids, kMinusInf);                         // (n, V)
  torch::Tensor empty = (rest == kMinusInf).all(-1, /*keepdim=*/true);             // (n, 1)
  torch::Tensor tail_s = torch::logsumexp(rest.masked_fill(empty, 0.0), -1, true)  // (n, 1)
                             .masked_fill(empty, kMinusInf);
  torch::Tensor s = torch::cat({log_ps.gather(-1, ids), tail_s}, -1);

  // Teacher: its tail is whatever mass the k tokens leave; a rounding residue of their sum
  // is no mass at all (it would otherwise grow to a visible bucket under T > 1).
  torch::Tensor lp = logprobs.detach();
  torch::Tensor mass = torch::logsumexp(lp, -1, /*keepdim=*/true).clamp_max(0.0);  // (n, 1)
  double eps = lp.scalar_type() == torch::kDouble ? std::numeric_limits<double>::epsilon()
                                                  : std::numeric_limits<float>::epsilon();
  double floor = 16.0 * std::max<int64_t>(lp.size(-1), 1) * eps;
  torch::Tensor tail_t = log1mexp(mass);
  tail_t = tail_t.masked_fill(tail_t < std::log(floor), kMinusInf);
  torch::Tensor t = torch::cat({lp, tail_t}, -1);
  // Softening divides log-masses by T and renormalises; the tail acts as one token.
  if (temperature != 1.0) t = torch::log_softmax(t / temperature, -1);
  return {s, t};
}

// The divergence of `kind` between dense student logits (N, V) and a top-k teacher
// ids / logprobs (N, k), over k + 1 buckets; mask as for the dense divergences.
torch::Tensor top_k_divergence(DivergenceKind kind, const torch::Tensor& student,
                               const torch::Tensor& ids, const torch::Tensor& logprobs,
                               double temperature, double weight, const torch::Tensor& mask) {
  const DivergenceRow& k = divergence_row(kind);
  check_temperature(k.name, temperature);
  torch::Tensor s = student, i = ids.to(torch::kLong), lp = logprobs.to(student.dtype());
  if (mask.defined()) {  // rows are left out before anything touches them, as in mean_over_rows
    torch::Tensor keep = checked_mask(k.name, mask, student.size(0), student.device());
    s = s.index({keep});
    i = i.index({keep});
    lp = lp.index({keep});
  }
  if (i.numel() > 0) {
    int64_t lo = i.min().item<int64_t>(), hi = i.max().item<int64_t>();
    if (lo < 0 || hi >= s.size(-1))
      fail(k.name, ": top-k ids must lie in [0, ", s.size(-1), "), got ids from ", lo, " to ", hi);
  }
  auto [log_ps, log_pt] = bucket_log_probs(s, i, lp, temperature);
  return mean_over_rows(k.name, log_ps, log_pt, temperature, /*mask=*/{}, Inputs::kLogProbs, k.rows,
                        weight);
}

}  // namespace

// ---- the terms ---------------------------------------------------------------------------

DivergenceTerm::DivergenceTerm(DivergenceKind kind, double temperature, double weight)
    : kind_(kind), temperature_(temperature), weight_(weight) {
  const DivergenceRow& k = divergence_row(kind);
  check_temperature(k.name, temperature);
  if (k.weight_name) check_weight(k.name, k.weight_name, weight);
}

std::string DivergenceTerm::name() const { return divergence_row(kind_).name; }

std::string DivergenceTerm::describe() const {
  const DivergenceRow& k = divergence_row(kind_);
  if (!k.weight_name) return cat(k.name, "(T=", temperature_, ")");
  return cat(k.name, "(T=", temperature_, ", ", k.weight_name, "=", weight_, ")");
}

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
  torch::Tensor student = logits.reshape({-1, vocab});  // (N, V)
  switch (teacher->kind) {
    case TeacherSignal::Kind::Dense: {
      const torch::Tensor& t = teacher->logits;
      if (!t.defined()) fail("the ", what, " term got a dense teacher signal that holds no logits");
      if (t.sizes() != logits.sizes())
        fail(what, ": teacher logits have shape ", t.sizes(), ", student logits ", logits.sizes());
      return dense_divergence(kind_, student, t.reshape({-1, vocab}), temperature_, weight_, mask);
    }
    case TeacherSignal::Kind::TopK: {
      const torch::Tensor &ids = teacher->ids, &lp = teacher->logprobs;
      auto positions = logits.sizes().slice(0, logits.dim() - 1);
      if (!ids.defined() || !lp.defined() || ids.sizes() != lp.sizes() ||
          ids.dim() != logits.dim() || ids.sizes().slice(0, ids.dim() - 1) != positions ||
          ids.size(-1) < 1)
        fail(what, ": top-k teacher ids of shape ",
             ids.defined() ? ids.sizes() : c10::IntArrayRef{}, " and logprobs of shape ",
             lp.defined() ? lp.sizes() : c10::IntArrayRef{}, " do not fit student logits ",
             logits.sizes(), " (want (..., k) with the same leading dimensions)");
      if (ids.is_floating_point() || ids.is_complex())
        fail(what, ": top-k teacher ids must be integers, got ", ids.scalar_type());
      int64_t k = ids.size(-1);
      return top_k_divergence(kind_, student, ids.reshape({-1, k}), lp.reshape({-1, k}),
                              temperature_, weight_, mask);
    }
    default:
      fail("the ", what, " term needs dense logits or a top-k teacher signal, got a ",
           kind_name(teacher->kind), " signal");
  }
}

std::shared_ptr<Term> make_divergence_term(const std::string& name, double temperature,
                                           double beta_or_alpha) {
  const DivergenceRow& row = divergence_row(name);
  return row.make(temperature, row.weight_name ? beta_or_alpha : row.default_weight);
}

Objective make_distill_objective(const std::string& loss, double alpha, double temperature,
                                 double beta_or_alpha) {
  if (!(alpha >= 0 && alpha <= 1)) fail("distill.alpha must be in [0, 1], got ", alpha);
  std::shared_ptr<Term> divergence = make_divergence_term(loss, temperature, beta_or_alpha);
  Objective o;
  if (alpha < 1) o.add(1 - alpha, std::make_shared<CrossEntropyTerm>());
  if (alpha > 0) o.add(alpha, std::move(divergence));
  return o;
}

}  // namespace retort

// Divergences between a student's and a teacher's token distributions, for distilling
// language models (one distribution per position), and objective terms wrapping them.
// The functions take dense logits; the terms also take top-k teacher signals, which they
// compare over k + 1 buckets (the teacher's k tokens and one tail bucket for the rest).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "retort/labels.h"
#include "retort/objective.h"

namespace retort {

// ---- conventions shared by every divergence below -------------------------------------
//
// student, teacher: (N, V) raw logits, N = flattened batch * positions, V = vocabulary.
//   Both are softened to p = softmax(logits / T); the teacher is cast to the student's dtype.
// mask: (N) bool, false = padding: such a row never counts, whatever it holds (even NaN),
//   and gets an exactly zero gradient. Undefined (the default) = every row counts.
// Result: a scalar, T^2 * (sum over unmasked rows of the row's divergence) / (unmasked rows),
//   0 when every row is masked (never NaN). At T = 1 this is the plain divergence averaged
//   over positions (PyTorch's kl_div with kBatchMean). The T^2 keeps gradient magnitudes
//   comparable across temperatures (Hinton et al., 2015); TRL's GKD applies T but not T^2,
//   so values differ from TRL's by T^2 when T != 1.
// Ruled-out tokens: a logit may be -inf (a token ruled out, e.g. padded vocabulary or a
//   top-k teacher); +inf and NaN are not allowed, and an unmasked row must allow at least
//   one token. Values and gradients stay finite: the mixtures below are computed in log
//   space and cover both supports, so JSD, TVD and skew KL are exact. KL(p || q) is infinite
//   when q rules out a token p allows; retort then leaves that token out of the sum, as
//   MiniLLM and DistiLLM do, so forward KL (student rules out what the teacher allows) and
//   reverse KL (the other way round) become sums over the tokens both allow; such a sum is
//   no longer a divergence and can fall below 0. Prefer JSD or skew KL when supports differ.

// Forward KL(p_t || p_s): mass-covering; the classic soft-target distillation loss.
torch::Tensor forward_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                         double temperature, const torch::Tensor& mask = {});

// Reverse KL(p_s || p_t): mode-seeking (MiniLLM).
torch::Tensor reverse_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                         double temperature, const torch::Tensor& mask = {});

// Generalized Jensen-Shannon divergence, as in GKD (Agarwal et al., 2024) and TRL:
//   beta * KL(p_t || m) + (1 - beta) * KL(p_s || m),  m = beta * p_t + (1 - beta) * p_s.
// beta in [0, 1]; 0.5 gives the symmetric JSD, bounded by log 2 (times T^2). The formula
// itself is 0 at both ends, so as TRL does, beta = 0 means forward KL(p_t || p_s) and
// beta = 1 means reverse KL(p_s || p_t), the two divergences the family runs between.
// Swapping student and teacher maps beta to 1 - beta.
torch::Tensor generalized_jsd(const torch::Tensor& student, const torch::Tensor& teacher,
                              double temperature, double beta, const torch::Tensor& mask = {});

// Total variation distance 0.5 * sum_v |p_t - p_s|, in [0, 1] (times T^2).
torch::Tensor total_variation(const torch::Tensor& student, const torch::Tensor& teacher,
                              double temperature, const torch::Tensor& mask = {});

// Skew forward KL (DistiLLM, Ko et al., 2024): KL(p_t || alpha * p_t + (1 - alpha) * p_s).
// alpha in [0, 1]: 0 is forward KL, 1 gives 0; DistiLLM uses 0.1. For alpha > 0 the
// mixture covers the teacher's support, so the value is exact whatever -inf logits hold.
torch::Tensor skew_forward_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                              double temperature, double alpha, const torch::Tensor& mask = {});

// Skew reverse KL (DistiLLM): KL(p_s || alpha * p_s + (1 - alpha) * p_t).
// alpha in [0, 1]: 0 is reverse KL, 1 gives 0.
torch::Tensor skew_reverse_kl(const torch::Tensor& student, const torch::Tensor& teacher,
                              double temperature, double alpha, const torch::Tensor& mask = {});

// ---- the divergences as objective terms ----------------------------------------------

// The divergences above that a DivergenceTerm can be; each has one row (its name, weight,
// default and help) in the divergence table (retort/divergence_table.h).
enum class DivergenceKind {
  kForwardKl,
  kReverseKl,
  kJsd,
  kTotalVariation,
  kSkewForwardKl,
  kSkewReverseKl
};

// The mixture weight a term of `kind` gets when none is given, from its table row: beta = 0.5
// for JSD (the symmetric one), alpha = 0.1 for the skew KLs (DistiLLM's choice), unused (0)
// otherwise.
double default_weight(DivergenceKind kind);

// A divergence between student and teacher as an objective term. compute() takes
// logits (B, V) or (B, T, V), labels (B) or (B, T) int64 (undefined: no padding; rows
// labelled kIgnoreLabel are left out) and a teacher signal of kind
//   Dense: logits of the student's shape; the divergence over the V tokens, as above.
//   TopK:  ids and logprobs (B, k) or (B, T, k) (teacher log-probabilities at T = 1); the
//          divergence over k + 1 buckets: the k teacher tokens and one tail bucket holding
//          the rest of the vocabulary. Teacher: [logprobs, log(1 - sum exp(logprobs))];
//          student: log_softmax(logits / T) at ids and the log of the rest's mass (summed
//          over the other tokens, so it stays exact when the k tokens hold nearly all of
//          it). At temperature T the teacher's k + 1 log-masses are divided by T and
//          renormalised: exact at T = 1 and whenever the tail is empty, otherwise the tail
//          is softened as if it were one token. A teacher tail below the rounding noise of
//          its sum (16 * k * epsilon of the dtype) counts as empty. With k = V this is the
//          dense divergence. ids must lie in [0, V) on every row that counts.
// Any other kind (tokens) is refused with an Error naming it. The value is T^2 times the
// mean over the rows that count, 0 (not NaN) when none does.
class DivergenceTerm : public Term {
 public:
  std::string name() const override;      // its table row's name: "kl", "rkl", "jsd", ...
  std::string describe() const override;  // "kl(T=4)", "jsd(T=1, beta=0.5)", "skl(T=2, alpha=0.1)"
  bool needs_teacher() const override { return true; }
  torch::Tensor compute(const torch::Tensor& logits, const TeacherSignal* teacher,
                        const torch::Tensor& labels) const final;
  DivergenceKind kind() const { return kind_; }
  double temperature() const { return temperature_; }
  double weight() const { return weight_; }

 protected:
  // Checks temperature > 0 and, for the kinds that use it, weight in [0, 1].
  DivergenceTerm(DivergenceKind kind, double temperature, double weight);

 private:
  DivergenceKind kind_;
  double temperature_;  // softmax temperature T > 0; the term is scaled by T^2
  double weight_;       // beta for JSD, alpha for the skew KLs, unused otherwise
};

// A DivergenceTerm of one kind; the named terms below are its instances, e.g.
// JsdTerm(/*temperature=*/2.0, /*beta=*/0.3). weight is beta for JsdTerm, alpha for the
// skew terms, and ignored by ForwardKlTerm, ReverseKlTerm and TotalVariationTerm.
template <DivergenceKind kKind>
class DivergenceTermOf : public DivergenceTerm {
 public:
  explicit DivergenceTermOf(double temperature, double weight = default_weight(kKind))
      : DivergenceTerm(kKind, temperature, weight) {}
};

using ForwardKlTerm = DivergenceTermOf<DivergenceKind::kForwardKl>;            // "kl"
using ReverseKlTerm = DivergenceTermOf<DivergenceKind::kReverseKl>;            // "rkl"
using JsdTerm = DivergenceTermOf<DivergenceKind::kJsd>;                        // "jsd"
using TotalVariationTerm = DivergenceTermOf<DivergenceKind::kTotalVariation>;  // "tvd"
using SkewForwardKlTerm = DivergenceTermOf<DivergenceKind::kSkewForwardKl>;    // "skl"
using SkewReverseKlTerm = DivergenceTermOf<DivergenceKind::kSkewReverseKl>;    // "srkl"

// A divergence term by the name of its divergence table row ("kl", "rkl", "jsd", ...), made by
// the row's factory. beta_or_alpha is the row's weight (beta for "jsd", alpha for "skl" and
// "srkl") and is ignored by rows that take none. An unknown name -> retort::Error naming it and
// every row.
std::shared_ptr<Term> make_divergence_term(const std::string& name, double temperature,
                                           double beta_or_alpha);

// (1 - alpha) * cross-entropy + alpha * the divergence `loss` (a make_divergence_term name)
// at `temperature`; terms of weight 0 are left out. alpha in [0, 1]. make_kd_objective(a, T)
// is make_distill_objective("kl", a, T, 0).
Objective make_distill_objective(const std::string& loss, double alpha, double temperature,
                                 double beta_or_alpha);

}  // namespace retort

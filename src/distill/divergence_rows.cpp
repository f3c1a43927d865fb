// The divergences one position at a time (see divergence_rows.h). Everything works on
// log-probabilities so that -inf logits (ruled-out tokens) stay finite.
#include "divergence_rows.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace retort {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Per row, KL(p || q) = sum_v p_v (log p_v - log q_v) from log-probabilities (n, V) -> (n).
// Tokens that either side rules out (-inf) are left out: where p rules a token out its term
// is 0 anyway; where only q does, the true KL is infinite (see divergence.h). They are replaced
// by 0 before any arithmetic, because masking after the fact would still leave -inf - -inf
// or 0 * inf in the backward pass, and a NaN times a zero gradient is still NaN.
torch::Tensor kl_rows(const torch::Tensor& log_p, const torch::Tensor& log_q) {
  torch::Tensor out = (log_p == kNegInf) | (log_q == kNegInf);
  torch::Tensor lp = log_p.masked_fill(out, 0.0), lq = log_q.masked_fill(out, 0.0);
  return (lp.exp() * (lp - lq)).sum(-1);  // a left-out token adds exp(0) * (0 - 0) = 0
}

// log(w * exp(log_a) + (1 - w) * exp(log_b)) elementwise, w in [0, 1]: the log of a mixture
// of two distributions without leaving log space. -inf where neither side has mass.
torch::Tensor log_mix(const torch::Tensor& log_a, const torch::Tensor& log_b, double w) {
  torch::Tensor x = log_a + std::log(w), y = log_b + std::log1p(-w);
  // logaddexp(-inf, -inf) has gradient 0/0 = NaN even under a zero incoming gradient,
  // so those entries go in as 0 and come out as -inf again.
  torch::Tensor empty = (x == kNegInf) & (y == kNegInf);
  return torch::logaddexp(x.masked_fill(empty, 0.0), y.masked_fill(empty, 0.0))
      .masked_fill(empty, kNegInf);
}

}  // namespace

torch::Tensor forward_kl_rows(const torch::Tensor& ls, const torch::Tensor& lt, double) {
  return kl_rows(lt, ls);
}

torch::Tensor reverse_kl_rows(const torch::Tensor& ls, const torch::Tensor& lt, double) {
  return kl_rows(ls, lt);
}

torch::Tensor jsd_rows(const torch::Tensor& ls, const torch::Tensor& lt, double beta) {
  if (beta == 0) return kl_rows(lt, ls);  // TRL's convention for the ends
  if (beta == 1) return kl_rows(ls, lt);
  // m covers both supports, so neither KL leaves out a token p allows.
  torch::Tensor log_m = log_mix(lt, ls, beta);
  return beta * kl_rows(lt, log_m) + (1 - beta) * kl_rows(ls, log_m);
}

torch::Tensor total_variation_rows(const torch::Tensor& ls, const torch::Tensor& lt, double) {
  return 0.5 * (lt.exp() - ls.exp()).abs().sum(-1);
}

// KL(p || alpha * p + (1 - alpha) * q) with p the teacher and q the student (forward), or
// the other way round (reverse): the two skew KLs are one divergence with the roles swapped.
torch::Tensor skew_forward_kl_rows(const torch::Tensor& ls, const torch::Tensor& lt, double alpha) {
  return kl_rows(lt, log_mix(lt, ls, alpha));
}

torch::Tensor skew_reverse_kl_rows(const torch::Tensor& ls, const torch::Tensor& lt, double alpha) {
  return kl_rows(ls, log_mix(ls, lt, alpha));
}

}  // namespace retort

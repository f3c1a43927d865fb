// The divergences one position at a time, from log-probabilities: what each row of the
// divergence table computes (private to src/distill/; the public functions and terms wrap them
// with softening, masks and T^2 in divergence.cpp).
#pragma once
#include <torch/types.h>

namespace retort {

// Each: (log p_s (n, V), log p_t (n, V), weight) -> (n), one divergence per row; weight is beta
// or alpha for the kinds that take one and ignored by the others. -inf entries (ruled-out tokens)
// stay finite in value and gradient (see divergence.h).
torch::Tensor forward_kl_rows(const torch::Tensor& ls, const torch::Tensor& lt, double);
torch::Tensor reverse_kl_rows(const torch::Tensor& ls, const torch::Tensor& lt, double);
torch::Tensor jsd_rows(const torch::Tensor& ls, const torch::Tensor& lt, double beta);
torch::Tensor total_variation_rows(const torch::Tensor& ls, const torch::Tensor& lt, double);
torch::Tensor skew_forward_kl_rows(const torch::Tensor& ls, const torch::Tensor& lt, double alpha);
torch::Tensor skew_reverse_kl_rows(const torch::Tensor& ls, const torch::Tensor& lt, double alpha);

}  // namespace retort

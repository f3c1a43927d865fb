// Compute-efficiency instruments: analytic FLOP counts of the registry models, and the
// measured matmul peak of this machine they are compared against (`retort doctor`).
// Counts are of matrix products only; they are estimates for utilisation, not profiles.
#pragma once
#include <torch/types.h>

#include <cstdint>

#include "retort/model.h"

namespace retort {

// FLOPs of one forward pass of one example (a multiply-add = 2 FLOPs), computed from
// spec.options with the registry's defaults, exactly as make_model builds the model:
//   mlp: every Linear, the output layer included: 2 * in * out each.
//   cnn: every 3x3 same-padded conv: 2 * Cin * Cout * 9 * H * W at the resolution it runs at,
//        then the Linear layers as for mlp.
//   gpt: one example is seq_len tokens (1 <= seq_len <= max_seq_len, else retort::Error):
//        per layer the q/k/v/o projections (grouped-query: k and v have n_kv_heads heads),
//        attention scores Q K^T and the weighted sum P V (2 * T * T * d_model each; the causal
//        mask is counted as full, as the model computes the full T x T product), the SwiGLU
//        FFN (three d_model x d_ff products); then the LM head (d_model x vocab_size), tied or not.
// Biases, norms, activations, softmax, pooling, RoPE and embedding lookups are ignored: they are
// elementwise and small next to the products. seq_len is ignored by the classifiers.
// An unknown model name ("torchscript", ...) or invalid options -> retort::Error.
double forward_flops_per_example(const ModelSpec& spec, int64_t seq_len = 0);

// FLOPs of one training step on `examples` examples: 3 * forward * examples, as the backward pass
// costs about twice the forward (gradients with respect to both activations and weights).
double train_step_flops(const ModelSpec& spec, int64_t examples, int64_t seq_len = 0);

// Measured CPU throughput in GFLOP/s of n x n by n x n matrix products in `dtype` (torch::kFloat,
// torch::kBFloat16) with libtorch's current intra-op thread count: one warm-up product, then
// products until min_seconds have passed (at least one). Counts 2 * n^3 FLOPs per product.
// An unsupported dtype throws (retort::Error for non-floating types, c10::Error from torch).
double measure_matmul_gflops(torch::ScalarType dtype, int64_t n, double min_seconds);

}  // namespace retort

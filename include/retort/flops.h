// Analytic FLOP counts of the registry models (models; src/models/flops.cpp, one counter per
// registry entry). Counts are of matrix products only; they are estimates for utilisation, not
// profiles. The measured matmul peak they are compared against is retort/matmul_probe.h.
#pragma once
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

}  // namespace retort

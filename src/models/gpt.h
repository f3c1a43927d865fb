// gpt: a Llama-style decoder-only language model (token ids -> next-token logits):
// pre-RMSNorm blocks of causal self-attention with rotary positions (RoPE, optional
// grouped-query attention) and a SwiGLU MLP, a final RMSNorm and an LM head.
// Sampling lives in generate.cpp; bench/reference/gpt_model.py is the same model in PyTorch.
#pragma once
#include <torch/nn.h>

#include <string>
#include <vector>

#include "retort/model.h"

namespace retort {

struct GptOptions {
  TORCH_ARG(int64_t, vocab_size) = 256;     // number of token ids; inputs lie in [0, vocab_size)
  TORCH_ARG(int64_t, d_model) = 128;        // width of the residual stream
  TORCH_ARG(int64_t, n_layers) = 4;         // transformer blocks
  TORCH_ARG(int64_t, n_heads) = 4;          // query heads; head_dim = d_model / n_heads (even)
  TORCH_ARG(int64_t, n_kv_heads) = 0;       // key/value heads; 0 = n_heads, fewer = grouped-query
  TORCH_ARG(int64_t, d_ff) = 0;             // SwiGLU hidden width; 0 = round_up(8/3 * d_model, 32)
  TORCH_ARG(int64_t, max_seq_len) = 256;    // longest input (context) in tokens
  TORCH_ARG(double, rope_theta) = 10000.0;  // RoPE base frequency
  TORCH_ARG(bool, tie_embeddings) = true;   // LM head shares the token embedding matrix
  TORCH_ARG(double, dropout) = 0.0;         // probability; attention weights and residual branches
  TORCH_ARG(double, norm_eps) = 1e-5;       // RMSNorm epsilon
};

// The options with the automatic values (n_kv_heads, d_ff = 0) filled in; throws retort::Error
// naming the offending value when the options describe no valid model.
GptOptions resolve_gpt_options(GptOptions o);

// Keys and values of the tokens seen so far, per layer, for incremental decoding.
struct KvCache {
  // per layer: (B, n_kv_heads, max_seq_len, head_dim), filled up to `length`
  std::vector<torch::Tensor> k, v;
  int64_t length = 0;  // tokens already in the cache = position of the next token
  void clear() {
    k.clear();
    v.clear();
    length = 0;
  }
};

// RMSNorm: x / sqrt(mean(x^2) + eps) * weight, computed in float32. Weight only, no bias.
class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RmsNorm);

class GptAttentionImpl : public torch::nn::Module {
 public:
  explicit GptAttentionImpl(const GptOptions& o);
  // x: (B, T, D); cos, sin: (T, head_dim) for the positions of x; mask: (T, S) bool, true = hidden,
  // or undefined (no masking). With a cache, k/v of x are written at cache positions
  // [pos, pos + T) and attention covers [0, pos + T) = S keys. -> (B, T, D)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, torch::Tensor* cache_k = nullptr,
                        torch::Tensor* cache_v = nullptr, int64_t pos = 0);
  torch::nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int64_t n_heads_, n_kv_heads_, head_dim_;
  double dropout_;
};
TORCH_MODULE(GptAttention);

class SwiGluImpl : public torch::nn::Module {
 public:
  SwiGluImpl(int64_t d_model, int64_t d_ff);
  torch::Tensor forward(const torch::Tensor& x);  // w2(silu(w1 x) * w3 x)
  torch::nn::Linear w1{nullptr}, w3{nullptr}, w2{nullptr};
};
TORCH_MODULE(SwiGlu);

class GptBlockImpl : public torch::nn::Module {
 public:
  explicit GptBlockImpl(const GptOptions& o);
  // x + attn(attn_norm(x)), then + mlp(mlp_norm(.)); arguments as GptAttention::forward.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, torch::Tensor* cache_k = nullptr,
                        torch::Tensor* cache_v = nullptr, int64_t pos = 0);
  RmsNorm attn_norm{nullptr}, mlp_norm{nullptr};
  GptAttention attn{nullptr};
  SwiGlu mlp{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(GptBlock);

class GptImpl : public ModelImpl {
 public:
  explicit GptImpl(const GptOptions& o);
  // x: (B, T) int64 ids, T <= max_seq_len -> logits (B, T, V); hidden = {final normed states (B, T,
  // D)}
  ModelOutput forward(const torch::Tensor& x) override;
  // x: (B, t) new ids at positions cache.length.. -> logits (B, t, V); appends them to the cache.
  torch::Tensor forward_cached(const torch::Tensor& x, KvCache& cache);
  // Continuous batching (gpt_rows.cpp): one new token for each of B independent sequences.
  // ids, positions: (B) int64; row b feeds ids[b] at position positions[b] (< max_seq_len) and
  // attends to keys [0, positions[b]] of cache row b. `cache` holds C >= B rows per layer,
  // (C, n_kv_heads, max_seq_len, head_dim) (cache.length is not used); rows [0, B) take the new
  // keys and values. -> logits (B, V). A row's logits are bit-identical whatever the other rows
  // hold: the linear layers run one row at a time (matrix-vector products) and attention always
  // spans max_seq_len keys under a mask, so no kernel's order of summation depends on the batch.
  torch::Tensor forward_rows(const torch::Tensor& ids, const torch::Tensor& positions, KvCache& cache);
  const GptOptions& options() const { return options_; }  // resolved: n_kv_heads, d_ff filled in
  int64_t head_dim() const { return options_.d_model() / options_.n_heads(); }

  torch::nn::Embedding tok_emb{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  RmsNorm norm{nullptr};
  torch::nn::Linear head{nullptr};  // null when tie_embeddings

 private:
  void check_ids(const torch::Tensor& x, int64_t start) const;
  // (T, head_dim) cos and sin for positions [start, start + T), on `like`'s device.
  std::pair<torch::Tensor, torch::Tensor> rope(int64_t start, int64_t T, const torch::Tensor& like);
  // h: (B, T, D) -> logits (B, T, V), after blocks
  torch::Tensor run(torch::Tensor h, int64_t start, KvCache* cache, torch::Tensor* final_hidden);

  GptOptions options_;
  // RoPE tables (max_seq_len, head_dim): float32 on the CPU, and copies on the device and in the
  // dtype last used. Not weights, so not registered (nor saved).
  torch::Tensor cos_, sin_, cos_at_, sin_at_;
};
TORCH_MODULE(Gpt);

}  // namespace retort

// gpt: the Llama-style decoder (see gpt.h) and its KV-cache path (student initialisation from a
// larger gpt teacher: gpt_init.cpp). Attention is written out (matmul + mask + softmax): libtorch 1.13
// has no scaled_dot_product_attention.
#include "gpt.h"

#include <cmath>
#include <limits>

#include "retort/error.h"

namespace retort {

namespace F = torch::nn::functional;

// ---- options ------------------------------------------------------------------

GptOptions resolve_gpt_options(GptOptions o) {
  auto positive = [](const char* what, int64_t v) {
    if (v < 1) fail("gpt: ", what, " must be >= 1, got ", v);
  };
  positive("vocab_size", o.vocab_size());
  positive("d_model", o.d_model());
  positive("n_layers", o.n_layers());
  positive("n_heads", o.n_heads());
  positive("max_seq_len", o.max_seq_len());
  if (o.n_kv_heads() < 0) fail("gpt: n_kv_heads must be >= 0 (0 = n_heads), got ", o.n_kv_heads());
  if (o.d_ff() < 0) fail("gpt: d_ff must be >= 0 (0 = automatic), got ", o.d_ff());
  if (!(o.rope_theta() > 0)) fail("gpt: rope_theta must be > 0, got ", o.rope_theta());
  if (!(o.dropout() >= 0 && o.dropout() < 1))
    fail("gpt: dropout must be in [0, 1), got ", o.dropout());
  if (!(o.norm_eps() > 0)) fail("gpt: norm_eps must be > 0, got ", o.norm_eps());
  if (o.d_model() % o.n_heads() != 0)
    fail("gpt: d_model ", o.d_model(), " is not divisible by n_heads ", o.n_heads());
  int64_t head_dim = o.d_model() / o.n_heads();
  if (head_dim % 2 != 0)
    fail("gpt: head dim d_model / n_heads = ", o.d_model(), " / ", o.n_heads(), " = ", head_dim,
         " is odd; rotary position embeddings need it even");
  if (o.n_kv_heads() == 0) o.n_kv_heads(o.n_heads());
  if (o.n_heads() % o.n_kv_heads() != 0)
    fail("gpt: n_heads ", o.n_heads(), " is not divisible by n_kv_heads ", o.n_kv_heads());
  if (o.d_ff() == 0) o.d_ff((8 * o.d_model() / 3 + 31) / 32 * 32);  // Llama's SwiGLU width
  return o;
}

// ---- layers -------------------------------------------------------------------

RmsNormImpl::RmsNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  // float32 statistics even when the model runs in half precision, as Llama does
  torch::Tensor xf = x.to(torch::kFloat32);
  torch::Tensor normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight * normed.to(x.scalar_type());
}

namespace {

// (..., hd) -> (..., hd) with halves (x1, x2) -> (-x2, x1): the HF Llama convention
torch::Tensor rotate_half(const torch::Tensor& x) {
  int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// x: (B, heads, T, hd); cos, sin: (T, hd)
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin) {
  return x * cos + rotate_half(x) * sin;
}

}  // namespace

GptAttentionImpl::GptAttentionImpl(const GptOptions& o)
    : n_heads_(o.n_heads()),
      n_kv_heads_(o.n_kv_heads()),
      head_dim_(o.d_model() / o.n_heads()),
      dropout_(o.dropout()) {
  int64_t qkv_out = (n_heads_ + 2 * n_kv_heads_) * head_dim_;
  qkv = register_module(
      "qkv", torch::nn::Linear(torch::nn::LinearOptions(o.d_model(), qkv_out).bias(false)));
  proj = register_module(
      "proj",
      torch::nn::Linear(torch::nn::LinearOptions(n_heads_ * head_dim_, o.d_model()).bias(false)));
}

torch::Tensor GptAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                        const torch::Tensor& sin, const torch::Tensor& mask,
                                        torch::Tensor* cache_k, torch::Tensor* cache_v,
                                        int64_t pos) {
  const int64_t B = x.size(0), T = x.size(1), hd = head_dim_, G = n_kv_heads_,
                rep = n_heads_ / n_kv_heads_;
  // qkv: (B, T, (H + 2G) * hd) -> q (B, H, T, hd), k and v (B, G, T, hd)
  auto parts = qkv->forward(x).split_with_sizes({n_heads_ * hd, G * hd, G * hd}, -1);
  torch::Tensor q = parts[0].view({B, T, n_heads_, hd}).transpose(1, 2);
  torch::Tensor k = parts[1].view({B, T, G, hd}).transpose(1, 2);
  torch::Tensor v = parts[2].view({B, T, G, hd}).transpose(1, 2);
  q = apply_rope(q, cos, sin) * (1.0 / std::sqrt(static_cast<double>(hd)));
  k = apply_rope(k, cos, sin);
  if (cache_k) {
    cache_k->narrow(2, pos, T).copy_(k);
    cache_v->narrow(2, pos, T).copy_(v);
    k = cache_k->narrow(2, 0, pos + T);
    v = cache_v->narrow(2, 0, pos + T);
  }
  const int64_t S = k.size(2);
  // Grouped-query attention without copying k and v per query head: query head h = g * rep + r
  // uses kv head g, so the rep query heads of a group become rep * T rows against that group's
  // keys.
  torch::Tensor qg = q.reshape({B, G, rep * T, hd});
  torch::Tensor scores = torch::matmul(qg, k.transpose(-2, -1));  // (B, G, rep * T, S)
  if (mask.defined())
    scores.view({B, G, rep, T, S}).masked_fill_(mask, -std::numeric_limits<float>::infinity());
  torch::Tensor probs = torch::softmax(scores, -1);
  if (dropout_ > 0) probs = torch::dropout(probs, dropout_, is_training());
  torch::Tensor out = torch::matmul(probs, v);  // (B, G, rep * T, hd)
  out = out.view({B, n_heads_, T, hd}).transpose(1, 2).reshape({B, T, n_heads_ * hd});
  return proj->forward(out);
}

SwiGluImpl::SwiGluImpl(int64_t d_model, int64_t d_ff) {
  w1 =
      register_module("w1", torch::nn::Linear(torch::nn::LinearOptions(d_model, d_ff).bias(false)));
  w3 =
      register_module("w3", torch::nn::Linear(torch::nn::LinearOptions(d_model, d_ff).bias(false)));
  w2 =
      register_module("w2", torch::nn::Linear(torch::nn::LinearOptions(d_ff, d_model).bias(false)));
}

torch::Tensor SwiGluImpl::forward(const torch::Tensor& x) {
  return w2->forward(F::silu(w1->forward(x)) * w3->forward(x));
}

GptBlockImpl::GptBlockImpl(const GptOptions& o) : dropout_(o.dropout()) {
  attn_norm = register_module("attn_norm", RmsNorm(o.d_model(), o.norm_eps()));
  attn = register_module("attn", GptAttention(o));
  mlp_norm = register_module("mlp_norm", RmsNorm(o.d_model(), o.norm_eps()));
  mlp = register_module("mlp", SwiGlu(o.d_model(), o.d_ff()));
}

torch::Tensor GptBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                    const torch::Tensor& sin, const torch::Tensor& mask,
                                    torch::Tensor* cache_k, torch::Tensor* cache_v, int64_t pos) {
  torch::Tensor a = attn->forward(attn_norm->forward(x), cos, sin, mask, cache_k, cache_v, pos);
  if (dropout_ > 0) a = torch::dropout(a, dropout_, is_training());
  torch::Tensor h = x + a;
  torch::Tensor m = mlp->forward(mlp_norm->forward(h));
  if (dropout_ > 0) m = torch::dropout(m, dropout_, is_training());
  return h + m;
}

// ---- the model ----------------------------------------------------------------

GptImpl::GptImpl(const GptOptions& o) : options_(resolve_gpt_options(o)) {
  const GptOptions& r = options_;
  tok_emb = register_module("tok_emb", torch::nn::Embedding(r.vocab_size(), r.d_model()));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < r.n_layers(); ++i) blocks->push_back(GptBlock(r));
  norm = register_module("norm", RmsNorm(r.d_model(), r.norm_eps()));
  if (!r.tie_embeddings())
    head = register_module(
        "head",
        torch::nn::Linear(torch::nn::LinearOptions(r.d_model(), r.vocab_size()).bias(false)));

  // GPT-2 / Llama initialisation: N(0, 0.02), the projections that write into the residual
  // stream scaled by 1/sqrt(2 * n_layers) so its variance does not grow with depth.
  torch::NoGradGuard no_grad;
  const double std = 0.02, residual_std = 0.02 / std::sqrt(2.0 * r.n_layers());
  tok_emb->weight.normal_(0, std);
  if (head) head->weight.normal_(0, std);
  for (int64_t i = 0; i < r.n_layers(); ++i) {
    auto& b = *blocks->ptr<GptBlockImpl>(i);
    b.attn->qkv->weight.normal_(0, std);
    b.attn->proj->weight.normal_(0, residual_std);
    b.mlp->w1->weight.normal_(0, std);
    b.mlp->w3->weight.normal_(0, std);
    b.mlp->w2->weight.normal_(0, residual_std);
  }

  // RoPE tables, made the way gpt_model.py makes them (float32 throughout)
  const int64_t hd = head_dim();
  torch::Tensor inv_freq =
      1.0 /
      torch::pow(r.rope_theta(), torch::arange(0, hd, 2, torch::kInt64).to(torch::kFloat32) / hd);
  torch::Tensor t = torch::arange(r.max_seq_len(), torch::kInt64).to(torch::kFloat32);
  torch::Tensor freqs = torch::outer(t, inv_freq);  // (max_seq_len, hd / 2)
  torch::Tensor emb = torch::cat({freqs, freqs}, -1);
  cos_ = emb.cos();
  sin_ = emb.sin();
}

void GptImpl::check_ids(const torch::Tensor& x, int64_t start) const {
  if (x.dim() != 2 || x.size(1) < 1)
    fail("gpt: input must be (batch, time) token ids with time >= 1, got shape ", x.sizes());
  if (x.is_floating_point() || x.is_complex())
    fail("gpt: input must be integer token ids, got ", x.scalar_type());
  if (start + x.size(1) > options_.max_seq_len()) {
    if (start == 0)
      fail("gpt: input has ", x.size(1), " tokens, more than max_seq_len ", options_.max_seq_len());
    fail("gpt: ", start, " cached + ", x.size(1), " new tokens exceed max_seq_len ",
         options_.max_seq_len());
  }
  auto [lo, hi] = torch::aminmax(x);
  int64_t min = lo.item<int64_t>(), max = hi.item<int64_t>();
  if (min < 0 || max >= options_.vocab_size())
    fail("gpt: token id ", min < 0 ? min : max, " is outside [0, ", options_.vocab_size(), ")");
}

std::pair<torch::Tensor, torch::Tensor> GptImpl::rope(int64_t start, int64_t T,
                                                      const torch::Tensor& like) {
  if (!cos_at_.defined() || cos_at_.device() != like.device() ||
      cos_at_.scalar_type() != like.scalar_type()) {
    cos_at_ = cos_.to(like.device(), like.scalar_type());
    sin_at_ = sin_.to(like.device(), like.scalar_type());
  }
  return {cos_at_.narrow(0, start, T), sin_at_.narrow(0, start, T)};
}

torch::Tensor GptImpl::run(torch::Tensor h, int64_t start, KvCache* cache,
                           torch::Tensor* final_hidden) {
  const int64_t T = h.size(1), S = start + T;
  auto [cos, sin] = rope(start, T, h);
  torch::Tensor
      mask;  // (T, S), true above the diagonal: query i (position start + i) sees keys <= start + i
  if (T > 1)
    mask = torch::ones({T, S}, torch::TensorOptions().dtype(torch::kBool).device(h.device()))
               .triu(S - T + 1);
  for (int64_t i = 0; i < options_.n_layers(); ++i) {
    auto& block = *blocks->ptr<GptBlockImpl>(i);
    if (cache)
      h = block.forward(h, cos, sin, mask, &cache->k[i], &cache->v[i], start);
    else
      h = block.forward(h, cos, sin, mask);
  }
  h = norm->forward(h);
  if (final_hidden) *final_hidden = h;
  return head ? head->forward(h) : F::linear(h, tok_emb->weight);  // (B, T, V)
}

ModelOutput GptImpl::forward(const torch::Tensor& x) {
  check_ids(x, 0);
  torch::Tensor hidden;
  torch::Tensor logits = run(tok_emb->forward(x.to(torch::kInt64)), 0, nullptr, &hidden);
  return {logits, {hidden}};
}

torch::Tensor GptImpl::forward_cached(const torch::Tensor& x, KvCache& cache) {
  check_ids(x, cache.length);
  const int64_t B = x.size(0);
  if (cache.k.empty()) {
    torch::TensorOptions like = tok_emb->weight.options().requires_grad(false);
    for (int64_t i = 0; i < options_.n_layers(); ++i) {
      cache.k.push_back(
          torch::zeros({B, options_.n_kv_heads(), options_.max_seq_len(), head_dim()}, like));
      cache.v.push_back(torch::zeros_like(cache.k.back()));
    }
    cache.length = 0;
  } else if (static_cast<int64_t>(cache.k.size()) != options_.n_layers() ||
             cache.k[0].size(0) != B) {
    fail("gpt: the KV cache holds ", cache.k.size(), " layers of batch ", cache.k[0].size(0),
         ", the input is ", options_.n_layers(), " layers of batch ", B, "; clear() it first");
  }
  torch::Tensor logits = run(tok_emb->forward(x.to(torch::kInt64)), cache.length, &cache, nullptr);
  cache.length += x.size(1);
  return logits;
}

}  // namespace retort

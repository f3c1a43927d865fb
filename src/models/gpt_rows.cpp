// gpt's batched one-token step for continuous batching (GptImpl::forward_rows, see gpt.h): every
// row is its own sequence at its own position, so requests can join and leave a running batch.
// Not here: prompts (forward_cached fills a request's cache first) and sampling (generate.cpp).
//
// Batch invariance is the point of the shapes below. A matrix product's kernel picks its tiling,
// and so its order of summation, from the number of rows (OpenBLAS sgemm gives row 0 different
// low bits at 5 rows than at 1), and a row's sum over keys from the number of keys. So the linear
// layers run as one matrix-vector product per row and attention spans all max_seq_len keys of a
// row under a mask (the hidden keys' weights are exactly 0), as products and sums whose order
// is fixed by hd and max_seq_len. Norms, softmax and the element-wise ops reduce or act within a row. Element-wise kernels vectorise over the whole (B, width)
// buffer; with widths that are multiples of 16 floats (d_ff's default is a multiple of 32) no row
// ever falls in a scalar tail, whose exp() may differ from the vector one in the last bit.
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "gpt.h"
#include "retort/error.h"

namespace retort {

namespace F = torch::nn::functional;

namespace {

// x (B, in) -> (B, out) = x W^T, one matrix-vector product per row (see above: not one gemm).
torch::Tensor rows_linear(const torch::Tensor& x, const torch::Tensor& w) {
  torch::Tensor out = torch::empty({x.size(0), w.size(0)}, x.options());
  for (int64_t b = 0; b < x.size(0); ++b) {
    torch::Tensor row = out[b];
    at::mv_out(row, w, x[b]);
  }
  return out;
}

// (..., hd) halves (x1, x2) -> (-x2, x1), as gpt.cpp's rotate_half (the HF Llama convention)
torch::Tensor rows_rotate_half(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

torch::Tensor GptImpl::forward_rows(const torch::Tensor& ids, const torch::Tensor& positions, KvCache& cache) {
  const GptOptions& o = options_;
  const int64_t B = ids.size(0), S = o.max_seq_len(), hd = head_dim(), H = o.n_heads(), G = o.n_kv_heads(),
                rep = H / G;
  if (ids.dim() != 1 || positions.dim() != 1 || positions.size(0) != B || B < 1)
    fail("gpt: forward_rows takes ids and positions of shape (B), got ", ids.sizes(), " and ", positions.sizes());
  if (int64_t(cache.k.size()) != o.n_layers() || cache.k[0].size(0) < B || cache.k[0].size(2) != S)
    fail("gpt: forward_rows needs a cache of ", o.n_layers(), " layers of at least ", B, " rows of ", S,
         " positions; it has ", cache.k.size(), " layers", cache.k.empty() ? "" : cat(" of shape ", cache.k[0].sizes()));
  torch::Tensor pos = positions.to(torch::kCPU, torch::kInt64);
  auto [lo, hi] = torch::aminmax(pos);
  if (lo.item<int64_t>() < 0 || hi.item<int64_t>() >= S)
    fail("gpt: position ", lo.item<int64_t>() < 0 ? lo.item<int64_t>() : hi.item<int64_t>(), " is outside the context [0, ", S, ")");
  check_ids(ids.view({B, 1}), 0);

  torch::Tensor h = tok_emb->forward(ids.to(tok_emb->weight.device(), torch::kInt64));  // (B, D)
  pos = pos.to(h.device());
  // RoPE at each row's own position: (B, 1, hd), broadcast over heads
  torch::Tensor cos = cos_.to(h.device(), h.scalar_type()).index_select(0, pos).unsqueeze(1);
  torch::Tensor sin = sin_.to(h.device(), h.scalar_type()).index_select(0, pos).unsqueeze(1);
  // key j of row b is hidden when j > positions[b]: (B, 1, 1, S)
  torch::Tensor hidden = (torch::arange(S, pos.options()).unsqueeze(0) > pos.unsqueeze(1)).view({B, 1, 1, S});
  torch::Tensor rows = torch::arange(B, pos.options());
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));

  for (int64_t i = 0; i < o.n_layers(); ++i) {
    GptBlockImpl& block = *blocks->ptr<GptBlockImpl>(i);
    GptAttentionImpl& attn = *block.attn;
    // qkv: (B, (H + 2G) * hd) -> q (B, H, hd), k and v (B, G, hd)
    auto parts = rows_linear(block.attn_norm->forward(h), attn.qkv->weight).split_with_sizes({H * hd, G * hd, G * hd}, -1);
    torch::Tensor q = parts[0].view({B, H, hd}), k = parts[1].view({B, G, hd}), v = parts[2].view({B, G, hd});
    q = (q * cos + rows_rotate_half(q) * sin) * scale;
    k = k * cos + rows_rotate_half(k) * sin;
    torch::Tensor ck = cache.k[size_t(i)].narrow(0, 0, B), cv = cache.v[size_t(i)].narrow(0, 0, B);  // (B, G, S, hd)
    ck.index_put_({rows, torch::indexing::Slice(), pos}, k);
    cv.index_put_({rows, torch::indexing::Slice(), pos}, v);
    // query head g * rep + r uses kv head g. Products and sums, not matmul: a (1 x hd) by (hd x S)
    // gemm per row and head repacks the keys every call, and costs twice as much here.
    // (B, G, rep, 1, hd) * (B, G, 1, S, hd) summed over hd -> scores (B, G, rep, S)
    torch::Tensor scores = (q.view({B, G, rep, 1, hd}) * ck.unsqueeze(2)).sum(-1);
    scores.masked_fill_(hidden, -std::numeric_limits<float>::infinity());
    // (B, G, rep, S, 1) * (B, G, 1, S, hd) summed over S -> (B, G, rep, hd)
    torch::Tensor out = (torch::softmax(scores, -1).unsqueeze(-1) * cv.unsqueeze(2)).sum(-2).reshape({B, H * hd});
    h = h + rows_linear(out, attn.proj->weight);
    torch::Tensor x = block.mlp_norm->forward(h);
    SwiGluImpl& mlp = *block.mlp;
    h = h + rows_linear(F::silu(rows_linear(x, mlp.w1->weight)) * rows_linear(x, mlp.w3->weight), mlp.w2->weight);
  }
  h = norm->forward(h);
  return rows_linear(h, head ? head->weight : tok_emb->weight);  // (B, V)
}

}  // namespace retort

// A gpt student initialised from a larger gpt teacher by weight selection ("Initializing
// Models with Larger Ones", Xu et al., ICLR 2024): a subset of the teacher's layers, and in every
// weight matrix the same evenly spaced subset of residual dims, SwiGLU units and head dims.
// Not a distillation loss: it only sets the starting weights (retort/model.h).
#include <string>
#include <vector>

#include "gpt.h"
#include "retort/error.h"

namespace retort {

namespace {

// `count` of `from` indices, evenly spaced and starting at 0: i * from / count. count <= from.
std::vector<int64_t> evenly_spaced(int64_t count, int64_t from) {
  std::vector<int64_t> out(count);
  for (int64_t i = 0; i < count; ++i) out[i] = i * from / count;
  return out;
}

// Query/key dims of one head under the rotate-half RoPE layout: dims [0, hd/2) and [hd/2, hd)
// pair up on frequency i = theta^(-2i/hd). Student frequency i is taken from teacher frequency
// i * (hd_t/2) / (hd_s/2) in both halves, so with an integer ratio the rotations match exactly.
std::vector<int64_t> rope_dims(int64_t hd_s, int64_t hd_t) {
  std::vector<int64_t> half = evenly_spaced(hd_s / 2, hd_t / 2), out = half;
  for (int64_t j : half) out.push_back(hd_t / 2 + j);
  return out;
}

torch::Tensor index_tensor(const std::vector<int64_t>& v) {
  return torch::tensor(v, torch::kInt64);
}

std::string shape_of(const GptOptions& o) {
  return cat("gpt(vocab ", o.vocab_size(), ", d_model ", o.d_model(), ", layers ", o.n_layers(), ", heads ",
             o.n_heads(), ", kv_heads ", o.n_kv_heads(), ", d_ff ", o.d_ff(), ")");
}

// w[rows][:, cols] (either may be undefined: all of that axis) copied into `dst`.
void copy_selected(torch::Tensor& dst, const torch::Tensor& src, const torch::Tensor& rows, const torch::Tensor& cols) {
  torch::Tensor w = src;
  if (rows.defined()) w = w.index_select(0, rows);
  if (cols.defined()) w = w.index_select(1, cols);
  dst.copy_(w);
}

}  // namespace

std::string init_student_from_teacher(ModelImpl& student, ModelImpl& teacher) {
  auto* s = dynamic_cast<GptImpl*>(&student);
  auto* t = dynamic_cast<GptImpl*>(&teacher);
  if (!s || !t)
    fail("init_student_from_teacher: both models must be gpt; the ", !s ? "student" : "teacher", " is not");
  const GptOptions &so = s->options(), &to = t->options();
  const std::string shapes = cat(" (student ", shape_of(so), ", teacher ", shape_of(to), ")");
  if (so.vocab_size() != to.vocab_size())
    fail("init_student_from_teacher: student vocab_size is ", so.vocab_size(), ", teacher vocab_size is ",
         to.vocab_size(), shapes);
  auto at_most = [&](const char* what, int64_t a, int64_t b) {
    if (a > b)
      fail("init_student_from_teacher: student ", what, " is ", a, ", teacher ", what, " is ", b,
           "; weight selection needs a student no larger than its teacher", shapes);
  };
  at_most("d_model", so.d_model(), to.d_model());
  at_most("n_layers", so.n_layers(), to.n_layers());
  at_most("n_heads", so.n_heads(), to.n_heads());
  at_most("n_kv_heads", so.n_kv_heads(), to.n_kv_heads());
  at_most("d_ff", so.d_ff(), to.d_ff());
  at_most("head dim", s->head_dim(), t->head_dim());
  const int64_t rep_s = so.n_heads() / so.n_kv_heads(), rep_t = to.n_heads() / to.n_kv_heads();
  if (rep_s != rep_t)  // query head h reads kv head h / rep: the first heads only pair up alike
    fail("init_student_from_teacher: student n_heads / n_kv_heads is ", rep_s, ", teacher n_heads / n_kv_heads is ",
         rep_t, "; the first heads keep their key/value heads only when both are equal", shapes);

  // Selections, as teacher indices: residual dims, SwiGLU units, head dims (q/k and v).
  const int64_t hd_s = s->head_dim(), hd_t = t->head_dim();
  const std::vector<int64_t> dm = evenly_spaced(so.d_model(), to.d_model()), ff = evenly_spaced(so.d_ff(), to.d_ff()),
                             qk = rope_dims(hd_s, hd_t), vd = evenly_spaced(hd_s, hd_t);
  // qkv rows: q heads [0, H), then k heads, then v heads, each hd wide; first heads kept.
  std::vector<int64_t> qkv_rows, v_cols;
  const int64_t k_at = to.n_heads() * hd_t, v_at = k_at + to.n_kv_heads() * hd_t;
  for (int64_t h = 0; h < so.n_heads(); ++h)
    for (int64_t e : qk) qkv_rows.push_back(h * hd_t + e);
  for (int64_t g = 0; g < so.n_kv_heads(); ++g)
    for (int64_t e : qk) qkv_rows.push_back(k_at + g * hd_t + e);
  for (int64_t g = 0; g < so.n_kv_heads(); ++g)
    for (int64_t e : vd) qkv_rows.push_back(v_at + g * hd_t + e);
  for (int64_t h = 0; h < so.n_heads(); ++h)  // proj reads head h's v dims
    for (int64_t e : vd) v_cols.push_back(h * hd_t + e);
  const torch::Tensor d_idx = index_tensor(dm), ff_idx = index_tensor(ff), qkv_idx = index_tensor(qkv_rows),
                      v_idx = index_tensor(v_cols), all;

  torch::NoGradGuard no_grad;
  copy_selected(s->tok_emb->weight, t->tok_emb->weight, all, d_idx);  // (V, d)
  copy_selected(s->norm->weight, t->norm->weight, d_idx, all);
  // A tied student keeps the teacher's embedding as its head; an untied teacher's head is dropped.
  if (s->head) copy_selected(s->head->weight, t->head ? t->head->weight : t->tok_emb->weight, all, d_idx);

  const int64_t Ls = so.n_layers(), Lt = to.n_layers();
  std::string layers;
  for (int64_t i = 0; i < Ls; ++i) {
    const int64_t j = i * Lt / Ls;
    GptBlockImpl &sb = *s->blocks->ptr<GptBlockImpl>(i), &tb = *t->blocks->ptr<GptBlockImpl>(j);
    copy_selected(sb.attn_norm->weight, tb.attn_norm->weight, d_idx, all);
    copy_selected(sb.mlp_norm->weight, tb.mlp_norm->weight, d_idx, all);
    copy_selected(sb.attn->qkv->weight, tb.attn->qkv->weight, qkv_idx, d_idx);  // ((H + 2G) hd, d)
    copy_selected(sb.attn->proj->weight, tb.attn->proj->weight, d_idx, v_idx);  // (d, H hd)
    copy_selected(sb.mlp->w1->weight, tb.mlp->w1->weight, ff_idx, d_idx);       // (d_ff, d)
    copy_selected(sb.mlp->w3->weight, tb.mlp->w3->weight, ff_idx, d_idx);
    copy_selected(sb.mlp->w2->weight, tb.mlp->w2->weight, d_idx, ff_idx);  // (d, d_ff)
    layers += (i ? "," : "") + std::to_string(j);
  }
  std::string out = cat("layers ", layers, " of ", Lt);
  if (so.d_model() < to.d_model() || so.d_ff() < to.d_ff() || so.n_heads() < to.n_heads())
    out += cat("; d_model ", so.d_model(), " of ", to.d_model(), ", heads ", so.n_heads(), " of ", to.n_heads(),
               " (head dim ", hd_s, " of ", hd_t, "), d_ff ", so.d_ff(), " of ", to.d_ff());
  return out;
}

}  // namespace retort

// Packed fixed-length token windows for language models, in deterministic shuffled batches.
#include "retort/error.h"
#include "retort/labels.h"
#include "retort/text.h"

namespace retort {

TokenBatcher::TokenBatcher(const TokenSet& set, int64_t seq_len, int64_t batch_size, bool shuffle,
                           uint64_t seed, bool pad_last)
    : set_(&set),
      seq_len_(seq_len),
      batch_size_(batch_size),
      shuffle_(shuffle),
      seed_(seed),
      pad_last_(pad_last) {
  if (seq_len < 1) fail("seq_len must be >= 1, got ", seq_len);
  if (batch_size < 1) fail("batch size must be >= 1, got ", batch_size);
  if (!set.tokens.defined() || set.tokens.dim() != 1 || set.tokens.scalar_type() != torch::kInt32)
    fail("token set ", set.source, " must hold a 1-D int32 tensor of tokens");
  int64_t n = set.size();
  // Window w needs tokens up to w*T + T, so the full windows are floor((N - 1) / T).
  windows_ = n > 0 ? (n - 1) / seq_len : 0;
  if (pad_last && n >= 2 && (n - 1) % seq_len != 0) ++windows_;
  if (windows_ == 0)
    fail("token set ", set.source, " has ", n,
         " tokens, too few for one window of seq_len + 1 = ", seq_len + 1,
         pad_last ? " (or 2 with pad_last)" : "");
}

int64_t TokenBatcher::windows() const { return windows_; }
int64_t TokenBatcher::seq_len() const { return seq_len_; }
int64_t TokenBatcher::batches_per_epoch() const {
  return (windows_ + batch_size_ - 1) / batch_size_;
}

Batch TokenBatcher::batch(int64_t epoch, int64_t b) const {
  if (b < 0 || b >= batches_per_epoch())
    fail("batch ", b, " out of range [0, ", batches_per_epoch(), ")");
  if (shuffle_ && order_epoch_ != epoch) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed_, epoch));
    order_ = torch::randperm(windows_, gen, torch::kInt64);
    order_epoch_ = epoch;
  }
  int64_t start = b * batch_size_, len = std::min(batch_size_, windows_ - start);
  torch::Tensor ids =
      shuffle_ ? order_.narrow(0, start, len) : torch::arange(start, start + len, torch::kInt64);
  return windows_batch(ids);
}

Batch TokenBatcher::windows_batch(const torch::Tensor& window_ids) const {
  if (window_ids.dim() != 1) fail("window ids must be 1-D, got ", window_ids.dim(), " dimensions");
  torch::Tensor ids = window_ids.to(torch::kInt64).contiguous();
  int64_t B = ids.size(0), T = seq_len_, N = set_->size();
  if (B > 0) {
    int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    if (lo < 0 || hi >= windows_)
      fail("window id ", lo < 0 ? lo : hi, " out of range [0, ", windows_, ") of ", set_->source);
  }
  // positions: (B, T+1) token indices of each window; past the end only in a pad_last window.
  torch::Tensor positions = ids.unsqueeze(1) * T + torch::arange(T + 1, torch::kInt64).unsqueeze(0);
  torch::Tensor valid = positions < N;
  torch::Tensor tokens = set_->tokens.index_select(0, positions.clamp_max(N - 1).reshape({-1}))
                             .view({B, T + 1})
                             .to(torch::kInt64);
  Batch out;
  // A position exists when its target does: x and y are padded at the same places.
  torch::Tensor pad = valid.narrow(1, 1, T).logical_not();
  out.x = tokens.narrow(1, 0, T).masked_fill(pad, 0);             // (B, T)
  out.y = tokens.narrow(1, 1, T).masked_fill(pad, kIgnoreLabel);  // (B, T)
  out.index = ids;
  return out;
}

}  // namespace retort

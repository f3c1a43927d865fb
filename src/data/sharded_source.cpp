// Each rank's slice of a batch, weighted by its share of the batch's targets (see
// sharded_source.h).
#include "retort/sharded_source.h"

#include <torch/torch.h>

#include "retort/error.h"
#include "retort/labels.h"

namespace retort {

ShardedSource::ShardedSource(const BatchSource& base, int rank, int world_size)
    : base_(base), rank_(rank), world_(world_size) {
  if (world_size < 1 || rank < 0 || rank >= world_size)
    fail("shard ", rank, " of ", world_size, " does not exist");
}

Batch ShardedSource::batch(int64_t epoch, int64_t b) const {
  Batch full = base_.batch(epoch, b);
  const int64_t B = full.x.size(0), begin = B * rank_ / world_, end = B * (rank_ + 1) / world_;
  auto targets = [](const torch::Tensor& y) -> double {
    return y.dim() <= 1 ? double(y.size(0)) : (y != kIgnoreLabel).sum().item<double>();
  };
  const double total = targets(full.y);
  Batch out;
  out.x = full.x.narrow(0, begin, end - begin);
  out.y = full.y.narrow(0, begin, end - begin);
  out.index = full.index.defined() ? full.index.narrow(0, begin, end - begin) : full.index;
  out.augmented = full.augmented;
  out.share = total > 0 ? targets(out.y) / total : 0.0;
  return out;
}

}  // namespace retort

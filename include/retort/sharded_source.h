// Data parallelism's view of the data: each rank's disjoint slice of every batch. The process
// group and the collectives that go with it are retort/distributed.h (core).
#pragma once
#include <cstdint>

#include "retort/data.h"

namespace retort {

// A rank's slice of each batch of `base`: rows [B*r/W, B*(r+1)/W) of the global batch b, so
// that the ranks together see exactly the batches one process would, in disjoint shards.
// batch.share is this slice's fraction of the global batch's targets (labels, or tokens not
// kIgnoreLabel), which weights its loss so that summed gradients equal the global-batch mean.
// A rank outside [0, world_size) -> Error.
class ShardedSource : public BatchSource {
 public:
  ShardedSource(const BatchSource& base, int rank, int world_size);
  int64_t batches_per_epoch() const override { return base_.batches_per_epoch(); }
  Batch batch(int64_t epoch, int64_t b) const override;

 private:
  const BatchSource& base_;
  int rank_, world_;
};

}  // namespace retort

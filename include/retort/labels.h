// Label conventions every floor shares (core; header only): what marks a target that
// nothing scores. Batches write it (data), losses and scores skip it (distill, eval).
#pragma once
#include <cstdint>

namespace retort {

// Rows whose label is this value are padding: PyTorch's ignore_index, which cross-entropy
// skips, and which the divergence terms, the scores and the data-parallel shares leave out.
constexpr int64_t kIgnoreLabel = -100;

}  // namespace retort

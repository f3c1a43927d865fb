// Evaluation: predictions over a set, accuracy, agreement, and speed.
#pragma once
#include <torch/types.h>

#include "retort/data.h"
#include "retort/model.h"

namespace retort {

// The model's logits on every example of `set`, in order: (N, V). Eval mode, no grad;
// the model's train/eval mode is restored afterwards.
torch::Tensor predict_logits(ModelImpl& model, const ImageSet& set, int64_t batch_size = 256,
                             const char* progress_label = nullptr);

double accuracy(const torch::Tensor& logits, const torch::Tensor& labels);    // fraction in [0, 1]
double agreement(const torch::Tensor& logits, const torch::Tensor& other);    // same top-1, in [0, 1]

struct SpeedStats {
  double single_ms = 0;           // median latency of one example, milliseconds
  double batch_throughput = 0;    // examples per second at `batch` examples per call
  int64_t batch = 0;
};
// Measures on random inputs shaped like one example of `example` (C, H, W).
SpeedStats measure_speed(ModelImpl& model, at::IntArrayRef example_shape, int64_t batch = 256,
                         double budget_seconds = 1.0);

}  // namespace retort

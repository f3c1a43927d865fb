// Concurrent /v1/classify calls for one classifier gathered into one forward pass (serve-private).
// No thread of its own: a call that finds no pass running runs one over every input waiting (its
// own and those that arrived while the last pass ran), then hands each call its rows.
#pragma once
#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>

#include "retort/model.h"

namespace retort::serve {

class ClassifyBatcher {
 public:
  // inputs_per_pass: the most inputs one pass takes (a call with more still runs whole).
  ClassifyBatcher(ModelImpl& model, int64_t inputs_per_pass) : model_(model), cap_(inputs_per_pass) {}
  // x: (N, C, H, W) float32 on the CPU, normalised -> probabilities (N, classes) float32, CPU.
  torch::Tensor probabilities(const torch::Tensor& x);

 private:
  struct Call {
    torch::Tensor x, probs;
    std::exception_ptr error;
    bool done = false;
  };
  ModelImpl& model_;
  const int64_t cap_;
  std::mutex mutex_;
  std::condition_variable done_;
  std::deque<Call*> waiting_;
  bool running_ = false;
};

}  // namespace retort::serve

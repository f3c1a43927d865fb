// cnn: per channel count [Conv3x3 -> BatchNorm -> ReLU -> MaxPool2], flatten,
// per hidden width [Linear -> ReLU -> Dropout], Linear.
#pragma once
#include <torch/nn.h>

#include "retort/model.h"

namespace retort {

struct CnnOptions {
  TORCH_ARG(int64_t, in_channels) = 1;
  TORCH_ARG(int64_t, height) = 28;
  TORCH_ARG(int64_t, width) = 28;
  TORCH_ARG(std::vector<int64_t>, channels) = std::vector<int64_t>{32, 64};
  TORCH_ARG(std::vector<int64_t>, hidden) = std::vector<int64_t>{256};
  TORCH_ARG(int64_t, num_classes) = 10;
  TORCH_ARG(double, dropout) = 0.0;
};

class CnnImpl : public ModelImpl {
 public:
  explicit CnnImpl(const CnnOptions& o);
  ModelOutput forward(const torch::Tensor& x) override;  // x: (B, C, H, W) -> (B, num_classes)

 private:
  torch::nn::Sequential features_{nullptr}, classifier_{nullptr};
  torch::nn::Linear head_{nullptr};
};

}  // namespace retort

// mlp: flatten -> [Linear -> ReLU (-> Dropout)] per hidden width -> Linear.
#pragma once
#include <torch/nn.h>

#include "retort/model.h"

namespace retort {

struct MlpOptions {
  TORCH_ARG(int64_t, in_features) = 784;
  TORCH_ARG(std::vector<int64_t>, hidden) = std::vector<int64_t>{128};
  TORCH_ARG(int64_t, num_classes) = 10;
  TORCH_ARG(double, dropout) = 0.0;  // probability; 0 = no dropout layers
};

class MlpImpl : public ModelImpl {
 public:
  explicit MlpImpl(const MlpOptions& o);
  ModelOutput forward(const torch::Tensor& x) override;  // x: (B, ...) -> logits (B, num_classes)

 private:
  torch::nn::Sequential body_{nullptr};
  torch::nn::Linear head_{nullptr};
};

}  // namespace retort

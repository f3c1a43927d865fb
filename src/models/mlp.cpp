#include "mlp.h"

namespace retort {

MlpImpl::MlpImpl(const MlpOptions& o) {
  body_ = register_module("body", torch::nn::Sequential());
  int64_t in = o.in_features();
  for (int64_t h : o.hidden()) {
    body_->push_back(torch::nn::Linear(in, h));
    body_->push_back(torch::nn::ReLU());
    if (o.dropout() > 0) body_->push_back(torch::nn::Dropout(o.dropout()));
    in = h;
  }
  head_ = register_module("head", torch::nn::Linear(in, o.num_classes()));
}

ModelOutput MlpImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = body_->is_empty() ? x.flatten(1) : body_->forward(x.flatten(1));
  return {head_->forward(h), {h}};
}

}  // namespace retort

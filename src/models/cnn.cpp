#include "cnn.h"

#include "retort/error.h"

namespace retort {

CnnImpl::CnnImpl(const CnnOptions& o) {
  features_ = register_module("features", torch::nn::Sequential());
  int64_t in = o.in_channels(), h = o.height(), w = o.width();
  for (int64_t c : o.channels()) {
    features_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, c, 3).padding(1)));
    features_->push_back(torch::nn::BatchNorm2d(c));
    features_->push_back(torch::nn::ReLU());
    features_->push_back(torch::nn::MaxPool2d(2));
    in = c;
    h /= 2;
    w /= 2;
    if (h == 0 || w == 0)
      fail("cnn: ", o.channels().size(), " pooling stages shrink a ", o.height(), "x", o.width(),
           " image to nothing");
  }
  classifier_ = register_module("classifier", torch::nn::Sequential());
  int64_t flat = in * h * w;
  for (int64_t width : o.hidden()) {
    classifier_->push_back(torch::nn::Linear(flat, width));
    classifier_->push_back(torch::nn::ReLU());
    if (o.dropout() > 0) classifier_->push_back(torch::nn::Dropout(o.dropout()));
    flat = width;
  }
  head_ = register_module("head", torch::nn::Linear(flat, o.num_classes()));
}

ModelOutput CnnImpl::forward(const torch::Tensor& x) {
  torch::Tensor f = features_->forward(x).flatten(1);
  torch::Tensor h = classifier_->is_empty() ? f : classifier_->forward(f);
  return {head_->forward(h), {h}};
}

}  // namespace retort

// Accuracy, agreement and speed measurements.
#include <torch/torch.h>

#include <chrono>

#include "retort/eval.h"
#include "retort/progress.h"

namespace retort {

torch::Tensor predict_logits(ModelImpl& model, const ImageSet& set, int64_t batch_size, const char* label) {
  torch::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  Batcher batches(set, batch_size, /*shuffle=*/false, /*seed=*/0);
  const torch::Device device = model_device(model);
  std::unique_ptr<ProgressBar> bar;
  if (label) bar = std::make_unique<ProgressBar>(label, batches.batches_per_epoch(), "ex");
  std::vector<torch::Tensor> parts;
  int64_t done = 0;
  for (int64_t b = 0; b < batches.batches_per_epoch(); ++b) {
    Batch batch = batches.batch(0, b);
    parts.push_back(model.forward(batch.x.to(device)).logits.to(torch::kCPU));
    done += batch.y.size(0);
    if (bar) bar->update(b + 1, done);
  }
  if (bar) bar->finish();
  model.train(was_training);
  return torch::cat(parts, 0);
}

double accuracy(const torch::Tensor& logits, const torch::Tensor& labels) {
  return logits.argmax(-1).eq(labels).to(torch::kFloat64).mean().item<double>();
}

double agreement(const torch::Tensor& logits, const torch::Tensor& other) {
  return logits.argmax(-1).eq(other.argmax(-1)).to(torch::kFloat64).mean().item<double>();
}

SpeedStats measure_speed(ModelImpl& model, at::IntArrayRef example_shape, int64_t batch, double budget) {
  torch::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  using clock = std::chrono::steady_clock;
  auto shape = [&](int64_t n) {
    std::vector<int64_t> s{n};
    s.insert(s.end(), example_shape.begin(), example_shape.end());
    return s;
  };
  SpeedStats out;
  out.batch = batch;
  torch::Tensor one = torch::randn(shape(1)).to(model_device(model)), many = torch::randn(shape(batch)).to(model_device(model));
  for (int i = 0; i < 5; ++i) model.forward(one);  // warm-up
  std::vector<double> ms;
  auto start = clock::now();
  while (ms.size() < 20 || (std::chrono::duration<double>(clock::now() - start).count() < budget / 2 && ms.size() < 2000)) {
    auto t = clock::now();
    model.forward(one);
    ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t).count());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  out.single_ms = ms[ms.size() / 2];
  model.forward(many);
  int64_t n = 0;
  start = clock::now();
  double elapsed = 0;
  while (n < 3 * batch || elapsed < budget / 2) {
    model.forward(many);
    n += batch;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  }
  out.batch_throughput = n / elapsed;
  model.train(was_training);
  return out;
}

}  // namespace retort

// Optimizer factory and the learning-rate schedule.
#include <cmath>

#include "retort/error.h"
#include "retort/trainer.h"

namespace retort {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                        const std::vector<torch::Tensor>& params) {
  if (!(o.lr > 0)) fail("learning rate must be > 0, got ", o.lr);
  if (o.weight_decay < 0) fail("weight decay must be >= 0, got ", o.weight_decay);
  if (o.optimizer == "adamw")
    return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  if (o.optimizer == "adam")
    return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(o.lr).weight_decay(o.weight_decay));
  if (o.optimizer == "sgd")
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
  fail("unknown optimizer '", o.optimizer, "'; known: adam, adamw, sgd");
}

double scheduled_lr(const TrainOptions& o, int64_t step, int64_t total) {
  if (step < o.warmup_steps) return o.lr * double(step + 1) / double(o.warmup_steps);
  if (o.schedule == "constant") return o.lr;
  if (o.schedule != "cosine") fail("unknown schedule '", o.schedule, "'; known: cosine, constant");
  int64_t span = std::max<int64_t>(1, total - o.warmup_steps);
  double progress = std::min(1.0, double(step - o.warmup_steps) / double(span));
  return o.lr * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace retort

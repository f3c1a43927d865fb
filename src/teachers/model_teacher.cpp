// Local-model teachers and the cache-backed teacher.
#include <torch/torch.h>

#include "retort/error.h"
#include "retort/hash.h"
#include "retort/eval.h"
#include "retort/divergence.h"
#include "retort/teacher.h"

namespace retort {

std::string CacheStatus::describe(int64_t tokens) const {
  std::string s = cat("teacher cache: ", path, " (", hit ? "hit" : "built", ", ", decimals(seconds, 1), " s");
  if (tokens > 0) s += cat(", ", decimals(double(bytes) / double(tokens), 1), " bytes/token");
  return s + ")";
}

std::string fingerprint_tensors(const std::vector<torch::Tensor>& tensors) {
  Hasher h;
  for (const auto& t0 : tensors) {
    torch::Tensor t = t0.detach().to(torch::kCPU).contiguous();
    for (auto s : t.sizes()) h.update(&s, sizeof s);
    h.update(t.data_ptr(), t.numel() * t.element_size());
  }
  return h.hex();
}

ModelTeacher::ModelTeacher(ModelPtr model, std::string description, int64_t top_k)
    : model_(std::move(model)), description_(std::move(description)), top_k_(top_k) {
  if (top_k < 0) fail("teacher top-k must be >= 0, got ", top_k);
  model_->eval();
  for (auto& p : model_->parameters()) p.set_requires_grad(false);
}

torch::Tensor ModelTeacher::logits(const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  const torch::Device device = model_device(*model_);
  AutocastScope autocast(precision_, device);
  return model_->forward(x.to(device)).logits.to(torch::kFloat);
}

TeacherSignal ModelTeacher::signal(const Batch& batch) {
  torch::Tensor l = logits(batch.x);
  return top_k_ > 0 ? top_k_signal(l, top_k_) : TeacherSignal::dense(l);
}

torch::Tensor ModelTeacher::logits_for(const ImageSet& set, int64_t batch_size, bool progress) {
  AutocastScope autocast(precision_, model_device(*model_));
  return predict_logits(*model_, set, batch_size, progress ? "teacher logits" : nullptr).to(torch::kFloat);
}

std::string ModelTeacher::fingerprint() const {
  // A bf16 teacher gives other numbers: caches and runs made from it are told apart.
  return fingerprint_tensors(model_state(*model_)) + (precision_ == Precision::Bf16 ? "-bf16" : "");
}

CachedTeacher::CachedTeacher(std::shared_ptr<ModelTeacher> model, torch::Tensor table, int64_t views)
    : model_(std::move(model)), table_(std::move(table)), views_(views) {
  if (views_ > 0 && table_.size(0) % views_ != 0)
    fail("teacher cache holds ", table_.size(0), " rows, not a multiple of its ", views_, " views");
}

TeacherSignal CachedTeacher::signal(const Batch& batch) {
  if (batch.augmented || batch.view.defined() != (views_ > 0)) {
    ++misses_;
    return model_->signal(batch);
  }
  const int64_t n = views_ > 0 ? table_.size(0) / views_ : table_.size(0);
  if (batch.index.max().item<int64_t>() >= n)
    fail("teacher cache holds ", n, " examples but the batch asks for index ", batch.index.max().item<int64_t>());
  if (views_ > 0 && batch.view.max().item<int64_t>() >= views_)
    fail("teacher cache holds ", views_, " views but the batch asks for view ", batch.view.max().item<int64_t>());
  ++hits_;
  torch::Tensor rows = views_ > 0 ? batch.view * n + batch.index : batch.index;
  TeacherSignal s;
  s.logits = table_.index_select(0, rows.to(table_.device()));
  return s;
}

}  // namespace retort

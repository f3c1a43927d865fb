// Loss terms and their weighted sum.
#include "retort/objective.h"

#include <torch/torch.h>

#include "retort/divergence.h"
#include "retort/error.h"
#include "retort/labels.h"

namespace retort {

TeacherSignal TeacherSignal::dense(torch::Tensor logits) {
  TeacherSignal s;
  s.kind = Kind::Dense;
  s.logits = std::move(logits);
  return s;
}

TeacherSignal TeacherSignal::top_k(torch::Tensor ids, torch::Tensor logprobs) {
  if (!ids.defined() || !logprobs.defined() || ids.sizes() != logprobs.sizes())
    fail("top-k signal: ids and logprobs must have the same shape, got ", ids.defined() ? ids.sizes() : c10::IntArrayRef{},
         " and ", logprobs.defined() ? logprobs.sizes() : c10::IntArrayRef{});
  TeacherSignal s;
  s.kind = Kind::TopK;
  s.ids = std::move(ids);
  s.logprobs = std::move(logprobs);
  return s;
}

TeacherSignal TeacherSignal::to(const torch::Device& device) const {
  TeacherSignal s = *this;
  for (torch::Tensor* t : {&s.logits, &s.ids, &s.logprobs, &s.tokens})
    if (t->defined()) *t = t->to(device);
  return s;
}

TeacherSignal top_k_signal(const torch::Tensor& logits, int64_t k) {
  if (!logits.defined() || logits.dim() < 1 || logits.size(-1) < 1)
    fail("top_k_signal: logits must be (..., V) with V >= 1, got shape ",
         logits.defined() ? logits.sizes() : c10::IntArrayRef{});
  if (k < 1) fail("top_k_signal: k must be >= 1, got ", k);
  torch::NoGradGuard no_grad;
  auto [logprobs, ids] = torch::log_softmax(logits.detach(), -1)
                             .topk(std::min(k, logits.size(-1)), -1, /*largest=*/true, /*sorted=*/true);
  return TeacherSignal::top_k(ids, logprobs);
}

const char* kind_name(TeacherSignal::Kind kind) {
  switch (kind) {
    case TeacherSignal::Kind::Dense: return "dense";
    case TeacherSignal::Kind::TopK: return "top-k";
    case TeacherSignal::Kind::Tokens: return "tokens";
  }
  return "?";
}

torch::Tensor CrossEntropyTerm::compute(const torch::Tensor& logits, const TeacherSignal*,
                                        const torch::Tensor& labels) const {
  if (logits.dim() != labels.dim() + 1 || logits.sizes().slice(0, labels.dim()) != labels.sizes())
    fail("cross-entropy: logits of shape ", logits.sizes(), " do not match labels of shape ", labels.sizes());
  torch::Tensor flat = logits.reshape({-1, logits.size(-1)}), y = labels.reshape({-1});
  if (!(y != kIgnoreLabel).any().item<bool>()) return flat.sum() * 0;  // nothing scored: 0, not NaN
  // mean over the scored targets
  return torch::nn::functional::cross_entropy(
      flat, y, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoreLabel));
}

Objective& Objective::add(double weight, std::shared_ptr<Term> term) {
  if (!std::isfinite(weight) || weight < 0) fail("objective weight for ", term->name(), " must be >= 0, got ", weight);
  terms_.emplace_back(weight, std::move(term));
  return *this;
}

LossParts Objective::compute(const torch::Tensor& logits, const TeacherSignal* teacher,
                             const torch::Tensor& labels) const {
  if (terms_.empty()) fail("objective has no terms");
  LossParts out;
  for (const auto& [w, term] : terms_) {
    torch::Tensor v = term->compute(logits, teacher, labels);
    out.terms.emplace_back(term->name(), v.item<double>());
    out.total = out.total.defined() ? out.total + w * v : w * v;
  }
  return out;
}

bool Objective::needs_teacher() const {
  for (const auto& [w, t] : terms_)
    if (t->needs_teacher()) return true;
  return false;
}

std::string Objective::describe() const {
  std::string s;
  for (const auto& [w, t] : terms_) {
    s += (s.empty() ? "" : " + ") + cat(w, "*", t->describe());
  }
  return s;
}

Objective make_kd_objective(double alpha, double temperature) {
  return make_distill_objective("kl", alpha, temperature, /*beta_or_alpha=*/0);
}

}  // namespace retort

// Scoring language models: cross-entropy, bits per byte, agreement, throughput.
#include <torch/torch.h>

#include <chrono>
#include <cmath>

#include "retort/error.h"
#include "retort/labels.h"
#include "retort/lm_score.h"
#include "retort/text_data.h"

namespace retort {

LmScore score_lm(ModelImpl& model, const TokenSet& set, const Tokenizer& tokenizer, int64_t seq_len,
                 int64_t batch_size, const torch::Tensor& teacher_top1, torch::Tensor* top1_out) {
  torch::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  const torch::Device device = model_device(model);
  TokenBatcher windows(set, seq_len, batch_size, /*shuffle=*/false, /*seed=*/0, /*pad_last=*/true);
  if (teacher_top1.defined() && teacher_top1.size(0) != windows.windows())
    fail("agreement: the teacher's predictions cover ", teacher_top1.size(0), " windows, the text has ",
         windows.windows());
  // Bytes each token id stands for: the denominator of bits per byte.
  const auto& per = tokenizer.token_bytes();
  torch::Tensor token_bytes = torch::tensor(std::vector<int64_t>(per.begin(), per.end()), torch::kInt64);
  double nll = 0, bytes = 0, agree = 0;
  int64_t tokens = 0;
  std::vector<torch::Tensor> top1s;
  for (int64_t b = 0; b < windows.batches_per_epoch(); ++b) {
    Batch batch = windows.batch(0, b);
    torch::Tensor logits = model.forward(batch.x.to(device)).logits.to(torch::kCPU).to(torch::kFloat32);  // (B, T, V)
    torch::Tensor y = batch.y, scored = y != kIgnoreLabel;
    torch::Tensor safe_y = y.clamp_min(0);
    torch::Tensor logp = torch::log_softmax(logits, -1).gather(-1, safe_y.unsqueeze(-1)).squeeze(-1);  // (B, T)
    nll -= logp.masked_select(scored).to(torch::kFloat64).sum().item<double>();
    bytes += token_bytes.index_select(0, safe_y.reshape(-1)).reshape(y.sizes()).masked_select(scored).sum().item<int64_t>();
    tokens += scored.sum().item<int64_t>();
    torch::Tensor top1 = logits.argmax(-1);  // (B, T)
    if (teacher_top1.defined()) {
      torch::Tensor t = teacher_top1.index_select(0, batch.index);
      agree += top1.eq(t).masked_select(scored).sum().item<int64_t>();
    }
    if (top1_out) top1s.push_back(top1);
  }
  model.train(was_training);
  LmScore s;
  s.tokens = tokens;
  s.loss = tokens ? nll / tokens : 0;
  s.bpb = bytes > 0 ? nll / std::log(2.0) / bytes : 0;
  if (teacher_top1.defined()) s.agreement = tokens ? agree / tokens : 0;
  if (top1_out) *top1_out = torch::cat(top1s, 0);
  return s;
}

double lm_tokens_per_second(ModelImpl& model, int64_t vocab_size, int64_t seq_len, int64_t batch_size,
                            double budget_seconds) {
  torch::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  torch::Tensor x = torch::randint(0, vocab_size, {batch_size, seq_len}, torch::kInt64).to(model_device(model));
  model.forward(x);  // warm-up
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  int64_t n = 0;
  double elapsed = 0;
  while (n < 3 * batch_size * seq_len || elapsed < budget_seconds) {
    model.forward(x);
    n += batch_size * seq_len;
    elapsed = std::chrono::duration<double>(clock::now() - start).count();
  }
  model.train(was_training);
  return n / elapsed;
}

// ---- the observer -------------------------------------------------------------------

LmEvalObserver::LmEvalObserver(const TextData& data, int64_t batch_size, int64_t every, torch::Tensor teacher_top1)
    : data_(data), batch_size_(batch_size), every_(every), teacher_top1_(std::move(teacher_top1)) {}

LmScore LmEvalObserver::evaluate(Trainer& t) {
  if (last_step_ != t.step()) {
    last_ = score_lm(t.model(), data_.validation, *data_.tokenizer, data_.seq_len, batch_size_, teacher_top1_);
    last_step_ = t.step();
    curve_.emplace_back(double(t.step()), last_.bpb);
  }
  return last_;
}

void LmEvalObserver::on_step(Trainer& t, const StepInfo& s) {
  if (every_ > 0 && s.step % every_ == 0 && s.step != s.total_steps) evaluate(t);
}

void LmEvalObserver::on_epoch(Trainer& t, EpochInfo& e) {
  LmScore s = evaluate(t);
  e.metrics["val_loss"] = s.loss;
  e.metrics["val_bpb"] = s.bpb;
  if (s.agreement >= 0) e.metrics["agreement"] = s.agreement;
}

}  // namespace retort

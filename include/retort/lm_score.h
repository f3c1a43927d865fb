// Scoring language models: bits per byte and agreement on held-out text, inference throughput,
// and the observer that validates during training.
#pragma once
#include <torch/types.h>
#include <utility>
#include <vector>

#include "retort/model.h"
#include "retort/text.h"
#include "retort/tokenizer.h"
#include "retort/trainer.h"

namespace retort {

struct LmScore {
  double loss = 0;        // mean next-token cross-entropy, nats per token
  double bpb = 0;         // bits per byte of text: sum of -log2 p over tokens / bytes they stand for
  double agreement = -1;  // share of positions whose top-1 token equals the teacher's; -1: not measured
  int64_t tokens = 0;     // positions scored
};

// Scores every token of `set` (windows of seq_len; the last one padded). `teacher_top1`
// (W, T) int64 from a previous call's `top1_out` gives agreement. Eval mode, no grad.
LmScore score_lm(ModelImpl& model, const TokenSet& set, const Tokenizer& tokenizer, int64_t seq_len,
                 int64_t batch_size, const torch::Tensor& teacher_top1 = {}, torch::Tensor* top1_out = nullptr);

// Inference throughput: tokens per second of full-window forward passes (batch x seq_len).
double lm_tokens_per_second(ModelImpl& model, int64_t vocab_size, int64_t seq_len, int64_t batch_size,
                            double budget_seconds = 2.0);

// Validation every `every` steps and at each epoch end: adds val_loss, val_bpb (and
// agreement) to the epoch metrics; keeps (step, val_bpb) points for learning curves.
class LmEvalObserver : public Observer {
 public:
  LmEvalObserver(const TextData& data, int64_t batch_size, int64_t every, torch::Tensor teacher_top1 = {});
  void on_step(Trainer& t, const StepInfo& s) override;
  void on_epoch(Trainer& t, EpochInfo& e) override;
  const std::vector<std::pair<double, double>>& curve() const { return curve_; }

 private:
  LmScore evaluate(Trainer& t);
  const TextData& data_;
  int64_t batch_size_, every_;
  torch::Tensor teacher_top1_;
  int64_t last_step_ = -1;
  LmScore last_;
  std::vector<std::pair<double, double>> curve_;
};

}  // namespace retort

// Objective = weighted sum of named terms over (student output, teacher signal,
// labels). Models make predictions; objectives turn them into a loss.
#pragma once
#include <torch/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "retort/labels.h"
#include "retort/model.h"

namespace retort {

// What a teacher says about a batch. A signal says what it is; a term that cannot
// use a kind refuses it with an error naming both.
//   Dense:  logits (B, V) or (B, T, V), raw, no temperature applied.
//   TopK:   the teacher's k most likely tokens per position: ids (B, T, k) int64 and
//           their log-probabilities logprobs (B, T, k) float (at temperature 1, sorted
//           descending); the rest of the vocabulary is one tail bucket with mass
//           1 - sum(exp(logprobs)), so divergences over k + 1 buckets are well defined.
//   Tokens: teacher-written sequences (B, T) int64 (sequence-level KD): the batch's x/y
//           already hold them, so terms that need a distribution refuse this kind.
struct TeacherSignal {
  enum class Kind { Dense, TopK, Tokens };
  Kind kind = Kind::Dense;
  torch::Tensor logits;    // Dense
  torch::Tensor ids;       // TopK
  torch::Tensor logprobs;  // TopK
  torch::Tensor tokens;    // Tokens

  static TeacherSignal dense(torch::Tensor logits);
  static TeacherSignal top_k(torch::Tensor ids, torch::Tensor logprobs);
  TeacherSignal to(const torch::Device& device) const;  // every defined tensor moved
  int64_t k() const { return ids.defined() ? ids.size(-1) : 0; }
};
const char* kind_name(TeacherSignal::Kind kind);  // "dense", "top-k", "tokens"

// The top-k signal of dense logits (..., V): log_softmax at temperature 1, then the k most
// likely tokens, sorted descending; k is clamped to V (k >= 1). No gradient flows back.
TeacherSignal top_k_signal(const torch::Tensor& logits, int64_t k);

// One term of an objective: a scalar loss averaged over the batch.
class Term {
 public:
  virtual ~Term() = default;
  virtual std::string name() const = 0;
  virtual std::string describe() const { return name(); }  // name and parameters: "kl(T=4)"
  virtual bool needs_teacher() const = 0;
  // logits: (B, V); teacher may be null when !needs_teacher(); labels: (B) int64.
  virtual torch::Tensor compute(const torch::Tensor& logits, const TeacherSignal* teacher,
                                const torch::Tensor& labels) const = 0;
};

// Cross-entropy against the labels, mean over the scored targets: logits (B, V) with
// labels (B), or (B, T, V) with labels (B, T); labels equal to kIgnoreLabel are not scored.
class CrossEntropyTerm : public Term {
 public:
  std::string name() const override { return "ce"; }
  bool needs_teacher() const override { return false; }
  torch::Tensor compute(const torch::Tensor& logits, const TeacherSignal*,
                        const torch::Tensor& labels) const override;
};

// Divergences between student and teacher (forward KL with temperature and T^2, reverse
// KL, JSD, ...) are terms too: DivergenceTerm and ForwardKlTerm in retort/divergence.h.

struct LossParts {
  torch::Tensor total;                               // scalar, differentiable
  std::vector<std::pair<std::string, double>> terms;  // each unweighted term's value, for logs
};

class Objective {
 public:
  Objective& add(double weight, std::shared_ptr<Term> term);
  LossParts compute(const torch::Tensor& logits, const TeacherSignal* teacher,
                    const torch::Tensor& labels) const;
  bool needs_teacher() const;
  std::string describe() const;  // "0.1*ce + 0.9*kl(T=4)"

 private:
  std::vector<std::pair<double, std::shared_ptr<Term>>> terms_;
};

// (1 - alpha) * CE + alpha * T^2 * KL; terms with zero weight are left out. Other
// divergences: make_distill_objective in retort/divergence.h.
Objective make_kd_objective(double alpha, double temperature);

}  // namespace retort

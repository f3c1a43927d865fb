// Text generation: sampling continuations of token-id prompts from a language model
// (greedy, temperature, top-k, top-p), with gpt's KV cache when the model has one.
// Tokenizing and detokenizing are not done here (see the tokenizers).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>

#include "retort/model.h"

namespace retort {

// Temperatures below this sample greedily: dividing logits by less can overflow float32 to inf.
inline constexpr double kGreedyTemperature = 1e-4;

// A keyed change to the next-token choice that sees each row's ids so far, such as an output
// watermark (retort/watermark.h). Row b of logits/probs is the position after row b of `seq`
// (B, L) int64 on the CPU.
class SamplingHook {
 public:
  virtual ~SamplingHook() = default;
  // Changes logits (B, V) (float32, CPU, owned by the caller) before temperature, top-k and
  // top-p: the distribution sampled, and the logprobs a server reports, are the changed one.
  virtual void adjust(torch::Tensor& logits, const torch::Tensor& seq) const = 0;
  // The ids (B) to take from probs (B, V) (after temperature, top-k and top-p) in place of a
  // draw from the generator: -1 in a row, or an undefined tensor for all, draws as usual.
  // Greedy sampling never asks.
  virtual torch::Tensor pick(const torch::Tensor& probs, const torch::Tensor& seq) const = 0;
};

struct SamplingOptions {
  double temperature = 1.0;  // 0 = greedy (argmax); below kGreedyTemperature greedy too
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = all
  double top_p = 1.0;        // nucleus: smallest set with cumulative probability >= top_p
  uint64_t seed = 0;         // same seed, same prompt, same model -> same tokens
  bool use_cache = true;     // KV cache when the model supports it (gpt); else full recompute
  const SamplingHook* hook = nullptr;  // not owned; must outlive the sampling
};

// prompts: (B, P) int64; returns (B, P + max_new_tokens) int64. Eval mode + NoGradGuard,
// the model's train/eval mode restored afterwards. Works for any ModelImpl whose forward maps
// (B, T) ids -> (B, T, V) (a full recompute each step); uses gpt's KV cache when possible.
// When the sequence would exceed the model's context, it keeps the last max_seq_len tokens.
// Sampling draws from a private generator seeded with options.seed, never the global RNG.
// `observe`, when set, sees each step's logits (B, V) (with a hook, the adjusted ones) and chosen
// ids (B) right after sampling; returning false stops early (the result then holds the tokens
// chosen so far).
using StepObserver = std::function<bool(const torch::Tensor& logits, const torch::Tensor& next)>;
torch::Tensor generate(ModelImpl& model, const torch::Tensor& prompts, int64_t max_new_tokens,
                       const SamplingOptions& options, const StepObserver& observe = {});

// The logits sampling uses after rows `seq` (B, L): with options.hook, a float32 CPU copy the
// hook adjusted; without one, `logits` itself.
torch::Tensor hooked_logits(const torch::Tensor& logits, const SamplingOptions& options,
                            const torch::Tensor& seq);

// The next-token choice on its own: logits (B, V) of any dtype and device (already through
// hooked_logits) -> ids (B) int64 on the logits' device. `seq` (B, L) is needed with a hook.
torch::Tensor sample_next(const torch::Tensor& logits, const SamplingOptions& options,
                          at::Generator& generator, const torch::Tensor& seq = {});

}  // namespace retort

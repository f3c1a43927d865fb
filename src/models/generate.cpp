// Sampling continuations from a language model (see retort/generate.h). Sampling happens on the
// CPU from float32 probabilities with a private generator, so a run's global RNG stream (which
// resumed training relies on) is never touched, and CUDA models give the same tokens as CPU ones.
#include "retort/generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>

#include "gpt.h"
#include "retort/error.h"

namespace retort {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void check_sampling(const SamplingOptions& o) {
  if (!(o.temperature >= 0))
    fail("sampling: temperature must be >= 0 (0 = greedy), got ", o.temperature);
  if (o.top_k < 0) fail("sampling: top_k must be >= 0 (0 = all tokens), got ", o.top_k);
  if (!(o.top_p > 0 && o.top_p <= 1)) fail("sampling: top_p must be in (0, 1], got ", o.top_p);
}

// Puts the model back in the mode it was in, also when generation throws.
class ModeRestorer {
 public:
  explicit ModeRestorer(ModelImpl& m) : model_(m), was_training_(m.is_training()) {}
  ~ModeRestorer() { model_.train(was_training_); }

 private:
  ModelImpl& model_;
  bool was_training_;
};

}  // namespace

torch::Tensor hooked_logits(const torch::Tensor& logits, const SamplingOptions& o,
                            const torch::Tensor& seq) {
  if (!o.hook) return logits;
  if (!seq.defined() || seq.dim() != 2 || seq.size(0) != logits.size(0))
    fail("sampling: a hook needs the ids so far, one row per row of logits");
  torch::Tensor l = logits.to(torch::kCPU, torch::kFloat32).clone();
  o.hook->adjust(l, seq.to(torch::kCPU, torch::kInt64));
  return l;
}

torch::Tensor sample_next(const torch::Tensor& logits, const SamplingOptions& o,
                          at::Generator& generator, const torch::Tensor& seq) {
  check_sampling(o);
  if (logits.dim() != 2)
    fail("sampling: logits must be (batch, vocab), got shape ", logits.sizes());
  // Below kGreedyTemperature logits / T can overflow to inf (1e-320 did, through the API): the
  // limit of sampling as T -> 0 is the argmax, so take it.
  if (o.temperature < kGreedyTemperature) return logits.argmax(-1);
  torch::Tensor l = logits.to(torch::kCPU, torch::kFloat32) / o.temperature;  // (B, V)
  const int64_t V = l.size(-1);
  if (o.top_k > 0 && o.top_k < V) {
    torch::Tensor kth = std::get<0>(l.topk(o.top_k, -1)).narrow(-1, o.top_k - 1, 1);  // (B, 1)
    l.masked_fill_(l < kth, kNegInf);
  }
  if (o.top_p < 1) {
    auto [sorted, order] = l.sort(-1, /*descending=*/true);
    torch::Tensor p = torch::softmax(sorted, -1);
    // drop a token when the more likely ones before it already reach top_p; the first always stays
    torch::Tensor drop = (p.cumsum(-1) - p) >= o.top_p;
    l = torch::empty_like(l).scatter_(-1, order, sorted.masked_fill(drop, kNegInf));
  }
  torch::Tensor probs = torch::softmax(l, -1);
  torch::Tensor picked;
  if (o.hook) {
    if (!seq.defined()) fail("sampling: a hook needs the ids so far");
    picked = o.hook->pick(probs, seq.to(torch::kCPU, torch::kInt64));
  }
  // the generator's stream advances the same with or without a hook's picks
  torch::Tensor ids =
      torch::multinomial(probs, 1, /*replacement=*/false, generator).squeeze(-1);  // (B)
  if (picked.defined()) ids = torch::where(picked >= 0, picked, ids);
  return ids.to(logits.device());
}

torch::Tensor generate(ModelImpl& model, const torch::Tensor& prompts, int64_t max_new_tokens,
                       const SamplingOptions& options, const StepObserver& observe) {
  check_sampling(options);
  if (prompts.dim() != 2 || prompts.size(1) < 1)
    fail("generate: prompts must be (batch, time) token ids with time >= 1, got shape ",
         prompts.sizes());
  if (prompts.is_floating_point())
    fail("generate: prompts must be integer token ids, got ", prompts.scalar_type());
  if (max_new_tokens < 0) fail("generate: max_new_tokens must be >= 0, got ", max_new_tokens);

  ModeRestorer restore(model);
  model.eval();
  torch::NoGradGuard no_grad;
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);

  auto* gpt = dynamic_cast<GptImpl*>(&model);
  const int64_t context = gpt ? gpt->options().max_seq_len() : std::numeric_limits<int64_t>::max();
  const bool cached = gpt && options.use_cache;
  KvCache cache;

  torch::Tensor seq =
      prompts.to(model_device(model), torch::kInt64);  // (B, L), grows by one per step
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    const int64_t L = seq.size(1);
    torch::Tensor logits;  // (B, V) at the last position
    if (cached && cache.length > 0 && cache.length < context) {
      // the cache holds every token but the newest: feed just that one
      logits = gpt->forward_cached(seq.narrow(1, L - 1, 1), cache).select(1, -1);
    } else {
      // first step, no cache, or the context is full: (re)start from the last `context` tokens.
      // Once full, each step recomputes the window, exactly as without the cache (RoPE positions
      // are absolute, so cached keys cannot slide).
      torch::Tensor window = seq.narrow(1, std::max<int64_t>(0, L - context), std::min(L, context));
      if (cached) {
        cache.clear();
        logits = gpt->forward_cached(window, cache).select(1, -1);
      } else {
        torch::Tensor all = model.forward(window).logits;
        if (all.dim() != 3 || all.size(0) != window.size(0) || all.size(1) != window.size(1))
          fail("generate: the model maps ids ", window.sizes(), " to logits ", all.sizes(),
               "; a language model gives (batch, time, vocab)");
        logits = all.select(1, -1);
      }
    }
    logits = hooked_logits(logits, options, seq);
    torch::Tensor next = sample_next(logits, options, generator, seq);  // (B)
    seq = torch::cat({seq, next.unsqueeze(1)}, 1);
    if (observe && !observe(logits, next)) break;
  }
  return seq.to(prompts.device());
}

}  // namespace retort

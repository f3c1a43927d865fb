// `retort generate`: text from a language model saved by retort (its folder holds the tokenizer).
#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>
#include <limits>

#include "common.h"
#include "retort/error.h"
#include "retort/generate.h"
#include "retort/text.h"
#include "retort/load_model.h"
#include "retort/runtime.h"

namespace retort::cli {

namespace {

// --top-logprobs: tokens sampled as generate() samples them (same options, same generator
// stream), each printed as a JSON line with its logprob and the k likeliest tokens. Logprobs are
// the log-softmax of the model's logits, before temperature, top-k and top-p. Recomputes the whole
// context each step: this is for inspecting a model (and comparing it with other runtimes), not
// for speed.
void print_top_logprobs(const LoadedModel& m, const Tokenizer& tok,
                        const std::vector<int32_t>& prompt_ids, int64_t max_tokens,
                        const SamplingOptions& s, int64_t k, int64_t sample, torch::Device device) {
  using nlohmann::json;
  auto text_of = [&](int64_t id) { return tok.decode({static_cast<int32_t>(id)}); };
  auto line = [](const json& j) {
    std::printf("%s\n", j.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  };
  const int64_t context = m.spec.options.value("max_seq_len", std::numeric_limits<int64_t>::max());
  const int64_t top = std::min<int64_t>(k, tok.vocab_size());
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(s.seed);
  torch::NoGradGuard no_grad;
  m.model->eval();
  std::vector<int64_t> seq(prompt_ids.begin(), prompt_ids.end());
  for (int64_t step = 0; step < max_tokens; ++step) {
    const int64_t L = static_cast<int64_t>(seq.size()), start = std::max<int64_t>(0, L - context);
    torch::Tensor window =
        torch::tensor(std::vector<int64_t>(seq.begin() + start, seq.end())).unsqueeze(0);
    torch::Tensor logits = m.model->forward(window.to(device)).logits.select(1, -1);  // (1, V)
    int64_t next = sample_next(logits, s, generator).item<int64_t>();
    torch::Tensor logprobs =
        torch::log_softmax(logits[0].to(torch::kCPU, torch::kFloat64), -1);  // (V)
    auto [values, ids] = logprobs.topk(top);
    json best = json::array();
    for (int64_t i = 0; i < top; ++i)
      best.push_back({{"id", ids[i].item<int64_t>()},
                      {"text", text_of(ids[i].item<int64_t>())},
                      {"logprob", values[i].item<double>()}});
    line({{"sample", sample}, {"position", L}, {"id", next}, {"text", text_of(next)},
          {"logprob", logprobs[next].item<double>()}, {"top_logprobs", best}});
    seq.push_back(next);
  }
}

}  // namespace

void register_generate(CLI::App& app) {
  struct Args {
    std::string model, prompt, device = "cpu";
    int64_t max_tokens = 80, top_k = 0, samples = 1, top_logprobs = 0;
    double temperature = 1.0, top_p = 1.0;
    uint64_t seed = 0;
    bool no_cache = false;
  };
  static Args a;
  auto* cmd = app.add_subcommand(
      "generate",
      "Continue a prompt with a language model trained by retort (a run folder or its model/).\n"
      "Sampling: --temperature 0 is greedy; --top-k keeps the k likeliest tokens; --top-p keeps the\n"
      "smallest set with that much probability. The same --seed gives the same text.\n"
      "Example: retort generate --model runs/demo-lm/teacher --prompt \"And God said\" --max-tokens 80 \\\n"
      "           --temperature 0.8 --top-p 0.95");
  cmd->add_option("--model", a.model, "run folder or model folder of a gpt")->required();
  cmd->add_option("--prompt", a.prompt, "text to continue")->required();
  cmd->add_option("--max-tokens", a.max_tokens, "tokens to write")->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--temperature", a.temperature, "sampling temperature; 0 = greedy")->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-k", a.top_k, "sample among the k most likely tokens (0 = all)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", a.top_p, "nucleus sampling threshold in (0, 1]")->check(CLI::Range(1e-9, 1.0));
  cmd->add_option("--seed", a.seed, "sampling seed");
  cmd->add_option("--samples", a.samples, "how many continuations (seeds seed, seed+1, ...)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000}));
  cmd->add_option("--device", a.device, "cpu | cuda[:N]");
  cmd->add_flag("--no-cache", a.no_cache, "recompute the whole context each token instead of using the KV cache");
  cmd->add_option("--top-logprobs", a.top_logprobs,
                  "print JSON lines instead of text: {\"prompt_ids\"} first, then per written token its id, text,\n"
                  "logprob and the K likeliest next tokens (log-softmax of the logits, before sampling options)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->callback([] {
    warn_if_reference_blas();
    configure_threads(0);
    LoadedModel m = load_model(a.model);
    std::shared_ptr<Tokenizer> tok = tokenizer_of_model(m);
    std::vector<int32_t> ids = tok->encode(a.prompt);
    if (ids.empty()) fail("the prompt is empty after tokenization");
    m.model->to(torch::Device(a.device));
    torch::Tensor prompt =
        torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).unsqueeze(0).to(torch::Device(a.device));
    if (a.top_logprobs > 0)
      std::printf("%s\n", nlohmann::json{{"prompt_ids", ids}}.dump().c_str());
    for (int64_t k = 0; k < a.samples; ++k) {
      SamplingOptions s;
      s.temperature = a.temperature;
      s.top_k = a.top_k;
      s.top_p = a.top_p;
      s.seed = a.seed + static_cast<uint64_t>(k);
      s.use_cache = !a.no_cache;
      if (a.top_logprobs > 0) {
        print_top_logprobs(m, *tok, ids, a.max_tokens, s, a.top_logprobs, k, torch::Device(a.device));
        continue;
      }
      torch::Tensor out = generate(*m.model, prompt, a.max_tokens, s).to(torch::kCPU)[0].to(torch::kInt32).contiguous();
      std::string text = tok->decode(std::vector<int32_t>(out.data_ptr<int32_t>(), out.data_ptr<int32_t>() + out.numel()));
      if (a.samples > 1) std::printf("--- sample %lld (seed %llu)\n", (long long)k, (unsigned long long)s.seed);
      std::printf("%s\n", text.c_str());
    }
  });
}

}  // namespace retort::cli

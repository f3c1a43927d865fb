// The serving engine (retort/serve.h): models loaded once, then generation with per-token
// logprobs, echo, stop strings and n samples (a gpt's requests batched: serve/batcher.h), and
// classification (concurrent calls in one pass: serve/classify_batch.h). No HTTP here.
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <random>

#include "retort/dawn.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/generate.h"
#include "retort/model.h"
#include "retort/normalisation.h"
#include "retort/serve.h"
#include "retort/teacher_source.h"
#include "retort/tokenizer.h"
#include "retort/watermark.h"
#include "models/gpt.h"
#include "serve/batcher.h"
#include "serve/classify_batch.h"

namespace retort {

struct Engine::Batchers {
  std::mutex mutex;
  serve::BatchingOptions options;
  std::map<const ServedModel*, std::unique_ptr<serve::GenerationBatcher>> of;
};

struct Engine::Classifiers {
  std::map<const ServedModel*, std::unique_ptr<serve::ClassifyBatcher>> of;  // filled at start, read-only after
};

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr int64_t kInputsPerPass = 256;  // classify: the most inputs of waiting calls one forward pass takes

// The id a model is served under: --model NAME=PATH, else the folder's name ("model" folders
// inside runs take the run's name).
std::string default_id(const std::string& path) {
  fs::path p = fs::path(teacher_source_location(path)).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  std::string name = p.stem().string();
  if (name == "model" && p.has_parent_path()) name = p.parent_path().filename().string();
  return name;
}

std::shared_ptr<ServedModel> load_served(const std::string& id, const std::string& path, const torch::Device& device) {
  auto m = std::make_shared<ServedModel>();
  m->id = id;
  m->path = path;
  m->created = static_cast<int64_t>(std::time(nullptr));
  LoadedModel loaded = open_teacher(path).local_model("retort serve --model");
  m->model = loaded.model;
  m->model->to(device);
  m->model->eval();
  const nlohmann::json& o = loaded.spec.options;
  if (loaded.spec.name == "gpt" || loaded.tokenizer) {
    m->kind = "language_model";
    m->tokenizer = loaded.spec.name == "gpt" ? tokenizer_of_model(loaded) : loaded.tokenizer;
    m->strings = std::make_shared<TokenStrings>(*m->tokenizer);
    m->vocab_size = m->tokenizer->vocab_size();
    m->context = o.contains("max_seq_len") ? o.at("max_seq_len").get<int64_t>() : 4096;
    if (o.contains("vocab_size") && o.at("vocab_size").get<int64_t>() != m->vocab_size)
      fail("the model at ", path, " predicts ", o.at("vocab_size").get<int64_t>(), " ids but its tokenizer has ",
           m->vocab_size);
  } else {
    m->kind = "classifier";
    auto get = [&](const char* k, int64_t d) { return o.contains(k) ? o.at(k).get<int64_t>() : d; };
    m->input_shape = {get("in_channels", 1), get("height", 28), get("width", 28)};
    m->classes = get("num_classes", 10);
    const InputNormalisation norm = input_normalisation(loaded.dir);
    m->mean = norm.mean;
    m->std = norm.std;
  }
  return m;
}

}  // namespace

Engine::Engine(const std::vector<std::pair<std::string, std::string>>& models, const std::string& device)
    : device_(device), batchers_(std::make_shared<Batchers>()), classifiers_(std::make_shared<Classifiers>()) {
  if (models.empty()) fail("serve needs at least one model: --model [NAME=]PATH");
  for (const auto& [id, path] : models) {
    std::string name = id.empty() ? default_id(path) : id;
    for (const auto& m : models_)
      if (m->id == name) fail("two models are served as '", name, "': name them with --model NAME=PATH");
    models_.push_back(load_served(name, path, torch::Device(device)));
    if (models_.back()->kind == "classifier")
      classifiers_->of[models_.back().get()] = std::make_unique<serve::ClassifyBatcher>(*models_.back()->model, kInputsPerPass);
  }
}

const ServedModel& Engine::model(const std::string& id) const {
  for (const auto& m : models_)
    if (m->id == id) return *m;
  std::string known;
  for (const auto& m : models_) known += (known.empty() ? "" : ", ") + m->id;
  throw ApiError(404, "invalid_request_error", "model_not_found",
                 cat("The model '", id, "' does not exist; this server has: ", known), "model");
}

void Engine::validate(const ServedModel& m, const GenerationRequest& r) const {
  if (m.kind != "language_model")
    bad_request("model", cat("'", m.id, "' is a classifier; use /v1/classify"));
  const int64_t P = int64_t(r.prompt.size());
  if (P < 1) bad_request("prompt", "the prompt is empty");
  for (int64_t i = 0; i < P; ++i)
    if (r.prompt[i] < 0 || r.prompt[i] >= m.vocab_size)
      bad_request("prompt", cat("token id ", r.prompt[i], " at position ", i, " is outside the vocabulary (", m.vocab_size, " ids)"));
  if (P > m.context || P + r.max_tokens > m.context + 1) {
    ApiError e(400, "invalid_request_error", "context_length_exceeded",
               cat("This model's maximum context length is ", m.context, " tokens. However, you requested ",
                   P + r.max_tokens, " tokens (", P, " in the prompt, ", r.max_tokens,
                   " for the completion). Please reduce the prompt or max_tokens."),
               P > m.context ? "prompt" : "max_tokens");
    throw e;
  }
  if (r.max_tokens == 0 && !r.echo) bad_request("max_tokens", "max_tokens = 0 needs echo = true (scoring the prompt)");
}

GenerationResult Engine::generate(const ServedModel& m, const GenerationRequest& r, const TokenSink& sink) const {
  validate(m, r);
  const int64_t P = int64_t(r.prompt.size());

  torch::NoGradGuard no_grad;
  ModelImpl& model = *m.model;
  const torch::Device device = model_device(model);
  torch::Tensor x = torch::tensor(std::vector<int64_t>(r.prompt.begin(), r.prompt.end()), torch::kInt64).view({1, P});
  GenerationResult res;
  res.choices.resize(r.n);
  const bool want_lp = r.logprobs >= 0;

  // One forward pass over the prompt gives the echoed logprobs and, for a single new token
  // (scoring and harvesting), the next-token distribution without starting generation.
  torch::Tensor last;  // (V) logits after the prompt
  if ((r.echo && want_lp) || r.max_tokens <= 1) {
    torch::Tensor logits = model.forward(x.to(device)).logits.to(torch::kCPU, torch::kFloat32)[0];  // (P, V)
    if (const WatermarkHook* hook = hook_for(r)) {
      // position t's logits are marked under the h ids before t + 1, as generation would mark them
      const int64_t h = watermark_->options().context;
      torch::Tensor padded = torch::cat({torch::full({h}, -1, torch::kInt64), x[0]});  // (h + P)
      hook->adjust(logits, padded.unfold(0, h, 1).narrow(0, 1, P).contiguous());  // row t: ids t-h+1..t
    }
    if (r.echo && want_lp) {
      torch::Tensor lsm = torch::log_softmax(logits, -1);
      res.prompt_logprobs.push_back({r.prompt[0], kNaN, {}});
      for (int64_t t = 1; t < P; ++t)
        res.prompt_logprobs.push_back(r.prompt_logprobs ? TokenLogprob{r.prompt[t], lsm[t - 1][r.prompt[t]].item<float>(), serve::top_of(lsm[t - 1], r.logprobs)}
                                                        : TokenLogprob{r.prompt[t], kNaN, {}});
    }
    last = logits[P - 1];
  }
  if (sink && r.echo && !sink(-1, "", want_lp ? &res.prompt_logprobs : nullptr)) return res;
  if (r.max_tokens == 0) return res;

  SamplingOptions s;
  s.temperature = r.temperature;
  s.top_p = r.top_p;
  s.seed = r.seed;
  s.hook = hook_for(r);
  torch::Tensor seq = x.expand({r.n, P}).contiguous();  // (n, P) on the CPU
  auto* gpt = dynamic_cast<GptImpl*>(&model);
  if (r.max_tokens == 1 || gpt) {
    // the first token here, from the prompt's logits; a gpt goes on in a batch (serve/batcher.h)
    auto job = std::make_shared<serve::GenerationJob>(m, r, res, s, bool(sink));
    job->generator = at::make_generator<at::CPUGeneratorImpl>(s.seed);
    torch::Tensor logits;  // (n, V)
    if (r.max_tokens == 1) {
      // `last` is already marked (above); the hook only picks (gumbel)
      logits = last.unsqueeze(0).expand({r.n, last.size(0)}).contiguous();
    } else {
      KvCache prompt;  // one row: the n choices share the prompt's keys and values
      logits = gpt->forward_cached(x.to(device), prompt).select(1, -1).expand({r.n, -1});
      logits = hooked_logits(logits, s, seq);
      job->prompt_k = std::move(prompt.k);
      job->prompt_v = std::move(prompt.v);
    }
    torch::Tensor next = sample_next(logits, s, job->generator, seq).to(torch::kCPU);
    job->seq = torch::cat({seq, next.unsqueeze(1)}, 1);
    std::vector<serve::StreamPiece> pieces;
    const bool more = job->writer.consume(logits, next, sink ? &pieces : nullptr);
    if (sink && !serve::deliver(pieces, sink)) return res;
    if (more) batcher(m, *gpt).run(job, sink);
    return res;
  }

  // other language models (TorchScript): the library's generate, one request at a time
  serve::ChoiceWriter writer(m, r, res);
  bool client_gone = false;
  retort::generate(model, seq.to(device), r.max_tokens, s, [&](const torch::Tensor& logits, const torch::Tensor& next) {
    std::vector<serve::StreamPiece> pieces;
    const bool more = writer.consume(logits, next, sink ? &pieces : nullptr);
    client_gone = sink && !serve::deliver(pieces, sink);
    return more && !client_gone;
  });
  return res;
}

serve::GenerationBatcher& Engine::batcher(const ServedModel& m, GptImpl& model) const {
  std::lock_guard<std::mutex> lock(batchers_->mutex);
  auto& b = batchers_->of[&m];
  if (!b) b = std::make_unique<serve::GenerationBatcher>(m, model, batchers_->options);
  return *b;
}

void Engine::set_batching(int64_t max_batch, int64_t batches) {
  if (max_batch < 1 || batches < 1) fail("serve: --max-batch and --workers must be >= 1, got ", max_batch, " and ", batches);
  std::lock_guard<std::mutex> lock(batchers_->mutex);
  if (!batchers_->of.empty()) fail("serve: set the batching before the first generation");
  batchers_->options = {max_batch, batches};
}

int64_t Engine::max_batch() const { return batchers_->options.max_batch; }

Engine::BatchStats Engine::batch_stats() const {
  std::lock_guard<std::mutex> lock(batchers_->mutex);
  BatchStats all;
  for (const auto& [m, b] : batchers_->of) {
    const BatchStats s = b->stats();
    all.steps += s.steps;
    all.rows += s.rows;
    all.largest = std::max(all.largest, s.largest);
  }
  return all;
}

std::vector<std::vector<float>> Engine::classify(const ServedModel& m, const std::vector<std::vector<float>>& pixels,
                                                 std::vector<std::pair<int64_t, int64_t>>* marked) const {
  if (m.kind != "classifier")
    bad_request("model", cat("'", m.id, "' is a language model; use /v1/completions or /v1/chat/completions"));
  const int64_t C = m.input_shape[0], H = m.input_shape[1], W = m.input_shape[2], D = C * H * W;
  const int64_t N = int64_t(pixels.size());
  if (N < 1) bad_request("input", "no inputs");
  std::vector<float> flat;
  flat.reserve(N * D);
  for (int64_t i = 0; i < N; ++i) {
    if (int64_t(pixels[i].size()) != D)
      bad_request("input", cat("input ", i, " has ", pixels[i].size(), " values; '", m.id, "' takes ", C, "x", H, "x", W,
                               " = ", D, " pixel values in [0, 255]"));
    for (float p : pixels[i]) {
      if (!(p >= 0 && p <= 255)) bad_request("input", cat("input ", i, " has the value ", p, "; pixels must be in [0, 255]"));
      flat.push_back(float((p / 255.0 - m.mean) / m.std));
    }
  }
  torch::Tensor p = classifiers_->of.at(&m)->probabilities(torch::from_blob(flat.data(), {N, C, H, W}, torch::kFloat32));
  std::vector<std::vector<float>> out(N);
  for (int64_t i = 0; i < N; ++i) out[i].assign(p[i].data_ptr<float>(), p[i].data_ptr<float>() + p.size(1));
  if (dawn_share() > 0)
    for (int64_t i = 0; i < N; ++i) {
      std::vector<float>& row = out[size_t(i)];
      const int64_t top = int64_t(std::max_element(row.begin(), row.end()) - row.begin());
      const int64_t wrong = dawn_class(watermark_->key(), dawn_share_, pixels[size_t(i)], top, int64_t(row.size()));
      if (wrong < 0) continue;
      std::swap(row[size_t(top)], row[size_t(wrong)]);  // the wrong class answers with the top probability
      if (marked) marked->emplace_back(i, wrong);
    }
  return out;
}

void Engine::set_watermark(std::shared_ptr<const Watermark> mark, double dawn_share, double harder_delta) {
  if (!(dawn_share >= 0 && dawn_share < 1)) fail("serve.dawn_share = ", dawn_share, " must be in [0, 1)");
  dawn_share_ = dawn_share;
  watermark_ = std::move(mark);
  hook_ = watermark_ ? std::make_shared<const WatermarkHook>(*watermark_) : nullptr;
  harder_ = nullptr;
  harder_hook_ = nullptr;
  if (watermark_ && harder_delta > 0 && watermark_->options().scheme == WatermarkScheme::Kgw) {
    WatermarkOptions o = watermark_->options();
    o.delta = harder_delta;
    harder_ = std::make_shared<const Watermark>(watermark_->key(), o);
    harder_hook_ = std::make_shared<const WatermarkHook>(*harder_);
  }
}

nlohmann::json ServedModel::describe() const {
  nlohmann::json r = {{"kind", kind}, {"path", path}};
  if (kind == "language_model") {
    r["vocab_size"] = vocab_size;
    r["context"] = context;
    r["tokenizer"] = tokenizer->fingerprint();
    r["tokenizer_kind"] = tokenizer->kind();
  } else {
    r["input_shape"] = input_shape;
    r["classes"] = classes;
  }
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "retort"}, {"retort", r}};
}

}  // namespace retort

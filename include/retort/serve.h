// `retort serve`: models behind OpenAI's HTTP API. Three layers, each unaware of the next:
//   Engine      runs models: generation with per-token logprobs, echo, stop strings, n samples;
//               classification. Knows nothing of HTTP or keys.
//   the schema  JSON bodies <-> engine requests/results in OpenAI's shapes (openai_schema.cpp);
//               every invalid field is an ApiError naming it.
//   Server      the transport (src/serve/transport.h: Boost.Beast's parser on an Asio event loop,
//               read deadlines, connection caps, keep-alive and pipelining), the guard chain every
//               request passes (src/serve/chain.h: auth -> parse -> limits -> admission -> model ->
//               settle -> audit, retort/guard.h) and the route families (src/serve/route_*.cpp).
// Handlers never throw: every failure becomes an OpenAI error object with a 4xx/5xx status.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "retort/error.h"
#include "retort/intel_options.h"
#include "retort/policy.h"
#include "retort/watermark.h"

namespace retort {

class GptImpl;
class ModelImpl;
class Tokenizer;
class TokenStrings;
namespace serve {
class GenerationBatcher;
}

// An answer the API gives instead of a result: status + {"error": {message, type, param, code}}.
class ApiError : public Error {
 public:
  ApiError(int status, std::string type, std::string code, const std::string& message, std::string param = "");
  int status;
  std::string type, code, param;
  double retry_after = 0;  // seconds; > 0 adds a Retry-After header
  nlohmann::json body() const;
};
// 400 invalid_request_error naming the offending parameter.
[[noreturn]] void bad_request(const std::string& param, const std::string& message);

struct ServedModel {
  std::string id;
  std::string kind;  // "language_model" | "classifier"
  std::string path;
  int64_t created = 0;
  std::shared_ptr<ModelImpl> model;
  // language models
  std::shared_ptr<Tokenizer> tokenizer;
  std::shared_ptr<TokenStrings> strings;
  int64_t context = 0, vocab_size = 0;
  // classifiers: input (C, H, W), pixels 0..255 normalised as in training ((p/255 - mean)/std)
  std::vector<int64_t> input_shape;
  int64_t classes = 0;
  double mean = 0, std = 1;
  nlohmann::json describe() const;  // the /v1/models entry
};

struct GenerationRequest {
  std::vector<int32_t> prompt;  // token ids, >= 1
  int64_t max_tokens = 16;      // 0 only with echo (scoring the prompt)
  double temperature = 1, top_p = 1;
  int64_t n = 1;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  int64_t logprobs = -1;  // top entries per position, 0..20; -1: no logprobs
  bool echo = false;      // prompt tokens (and their logprobs) come back first
  // The guard's responses (retort/actions.h): `strip` leaves echoed prompt tokens without
  // logprobs (null, no alternatives); `mark` samples with the stronger watermark.
  bool prompt_logprobs = true;
  bool mark_harder = false;
};

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0;                           // NaN for the first prompt token (nothing predicts it)
  std::vector<std::pair<int32_t, float>> top;  // most likely first; empty for the first prompt token
};

struct GeneratedChoice {
  std::vector<int32_t> ids;  // the completion's tokens (up to and excluding a stop string's)
  std::string text;          // their text, cut before the stop string
  std::string finish_reason = "length";  // "length" | "stop"
  std::vector<TokenLogprob> logprobs;    // per completion token when asked
};

struct GenerationResult {
  std::vector<TokenLogprob> prompt_logprobs;  // echo with logprobs
  std::vector<GeneratedChoice> choices;
  int64_t completion_tokens = 0;  // generated over all choices (what the caller pays for)
};

// Streaming: (choice, new text, its tokens' logprobs or null). Return false to stop (client gone).
using TokenSink = std::function<bool(int64_t choice, const std::string& text, const std::vector<TokenLogprob>* lp)>;

class Engine {
 public:
  // (id, path) pairs: retort model or run folders, or torchscript:FILE. Language models need a
  // tokenizer beside them. device: "cpu" or "cuda".
  Engine(const std::vector<std::pair<std::string, std::string>>& models, const std::string& device);
  const ServedModel& model(const std::string& id) const;  // unknown -> ApiError 404 model_not_found
  const std::vector<std::shared_ptr<ServedModel>>& models() const { return models_; }

  // Checks a request against the model (kind, vocabulary, context) -> ApiError 400.
  void validate(const ServedModel& m, const GenerationRequest& r) const;
  // validate(), then samples n choices. With echo the sink first sees choice -1 (the prompt,
  // empty text, its logprobs when asked). The sink is called on the calling thread. Thread-safe:
  // concurrent generations of a gpt run as one batch (continuous batching, set_batching); a fixed
  // seed gives the same tokens, logprobs and watermark whether a request ran alone or batched.
  GenerationResult generate(const ServedModel& m, const GenerationRequest& r, const TokenSink& sink = {}) const;
  // pixels: N rows of C*H*W values in [0, 255] -> probabilities (N rows of classes). With a
  // watermark and a DAWN share, the marked inputs' answers name a keyed wrong class
  // (retort/dawn.h); `marked` (when given) receives (input index, class answered) for each.
  // Thread-safe: concurrent calls for one model share a forward pass.
  std::vector<std::vector<float>> classify(const ServedModel& m, const std::vector<std::vector<float>>& pixels,
                                           std::vector<std::pair<int64_t, int64_t>>* marked = nullptr) const;

  // Continuous batching of gpt generation: up to `max_batch` rows (a request's n choices are n
  // rows) step together; `batches` batches step at once, each on its own thread. A request joins
  // a running batch between two tokens and leaves it when finished. max_batch 1: every request
  // runs alone. Before the first generation; default 16 rows, 1 batch.
  void set_batching(int64_t max_batch, int64_t batches);
  int64_t max_batch() const;
  // Generation steps run in batches so far, their rows in all (rows / steps: the mean batch) and
  // the most rows one step ran.
  struct BatchStats {
    int64_t steps = 0, rows = 0, largest = 0;
  };
  BatchStats batch_stats() const;

  // From now on every language model's answer is marked (retort/watermark.h): sampled tokens,
  // and the logprobs returned (echoed prompts included) are those of the marked distribution;
  // and a share `dawn_share` of classifier inputs is answered with DAWN's keyed wrong class.
  // Set before serving starts; null turns marking off.
  // `harder_delta` > 0 (kgw): requests with mark_harder use that delta instead.
  void set_watermark(std::shared_ptr<const Watermark> mark, double dawn_share = 0, double harder_delta = 0);
  double dawn_share() const { return watermark_ ? dawn_share_ : 0; }
  const Watermark* watermark() const { return watermark_.get(); }

 private:
  std::vector<std::shared_ptr<ServedModel>> models_;
  std::string device_;
  std::shared_ptr<const Watermark> watermark_;
  std::shared_ptr<const WatermarkHook> hook_;
  std::shared_ptr<const Watermark> harder_;
  std::shared_ptr<const WatermarkHook> harder_hook_;
  double dawn_share_ = 0;
  const WatermarkHook* hook_for(const GenerationRequest& r) const { return r.mark_harder && harder_hook_ ? harder_hook_.get() : hook_.get(); }
  struct Batchers;  // engine.cpp: one GenerationBatcher per gpt, made on its first generation
  std::shared_ptr<Batchers> batchers_;
  serve::GenerationBatcher& batcher(const ServedModel& m, GptImpl& model) const;
  struct Classifiers;  // engine.cpp: concurrent classify calls gathered into one forward pass
  std::shared_ptr<Classifiers> classifiers_;
};

// The chat template: messages -> one prompt text, and the stop string that ends a turn.
//   <|system|>\n...\n<|user|>\n...\n<|assistant|>\n
std::string chat_prompt(const nlohmann::json& messages);
inline constexpr const char* kChatStop = "\n<|";

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;               // 0: any free port (see Server::port)
  std::string db = "serve.db";   // keys, usage, audit log (SQLite)
  int64_t workers = 2;           // model executions (generation batches) at once
  int64_t max_batch = 16;        // rows (choices) per generation batch; 1: no batching
  int64_t queue = 32;            // requests waiting for a worker; beyond that 503 + Retry-After
  int64_t max_body = 1 << 20;    // bytes; a larger Content-Length gets 413 at once
  double timeout = 600;          // seconds a request may wait in the queue
  double header_timeout = 10;    // seconds from a request's first byte to its last header byte (408)
  double body_timeout = 30;      // seconds for the body once the header is in (408)
  double idle_timeout = 5;       // seconds a kept-alive connection may wait for its next request
  int64_t max_connections = 4096;            // open connections in all (503 beyond)
  int64_t max_connections_per_client = 256;  // open connections from one address (503 beyond)
  // serve.watermark*: answers marked with the database's current watermark key (Error at
  // start when the scheme is not none and the database has no key).
  WatermarkOptions watermark{WatermarkScheme::None};
  double dawn_share = 0.05;  // serve.dawn_share: classifiers' inputs answered with DAWN's wrong class
  // guard.*: campaign detection off the request path and the responses it earns (retort/policy.h).
  // Operators' actions (`retort guard act`) are enforced whether detection is on or not.
  DetectPolicy guard;
  // intel.*: TAXII 2.1 at /taxii2/, publishing the guard's findings, pulling partners (retort/intel.h).
  IntelOptions intel;
};

class Server {
 public:
  Server(std::shared_ptr<Engine> engine, ServeOptions options);
  ~Server();
  // Binds (throws Error naming host:port when it cannot: a port in use is refused, never
  // shared) and serves until stop(); blocking.
  void listen();
  bool bind();  // bind only (for tests: port() then listen_after_bind()); false when it cannot
  void listen_after_bind();
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace retort

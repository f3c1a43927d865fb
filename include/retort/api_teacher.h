// A black-box teacher: any endpoint that speaks OpenAI's API (retort serve, vLLM, llama.cpp,
// Ollama), reached as teacher.path = "openai:http://host:port/v1". Two language-model signals:
//   - top-k logprobs (distill.top_k 1..20): each training window is teacher-forced through
//     /v1/completions with the window's token ids as the prompt, echo = true, logprobs = k,
//     max_tokens = 1, temperature 0; the answers fill the same top-k cache a local teacher
//     fills (retort/topk_cache.h), shard by shard, so an interrupted harvest resumes without
//     asking again. Needs the student to share the endpoint's tokenizer (checked: a clear Error).
//   - text only (distill.method = sequence): the endpoint continues prompts; the continuations
//     are kept as JSONL, one record at a time, and re-tokenized by the student (any tokenizer).
// Requests run concurrently (teacher.api_concurrency), failures are retried with exponential
// backoff that honours Retry-After, and a budget (teacher.api_max_requests / api_max_tokens)
// stops the harvest with a clear Error, keeping what was harvested. The endpoint comes from the
// openai: teacher source (retort/teacher_source.h); `retort distill`'s flow through it is
// lm_distill_api (retort/lm_flows.h). An image classifier behind /classify is the third signal:
// retort/api_classify_teacher.h.
#pragma once
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "retort/api_endpoint.h"
#include "retort/error.h"
#include "retort/sequence_kd.h"
#include "retort/text.h"
#include "retort/teacher.h"
#include "retort/topk_cache.h"

namespace retort {

// Thrown when the budget would be exceeded; what was harvested is kept on disk.
struct BudgetExhausted : Error {
  using Error::Error;
};

// One endpoint, thread-safe. post()/get() retry connection errors, 408, 409, 429 and 5xx up to
// max_retries times, waiting Retry-After when the server sends it, else 0.5 s * 2^attempt
// (capped at 30 s; Retry-After capped at 60 s; Ctrl-C during a wait -> Interrupted); other 4xx
// answers -> Error with the status and the API's error message. The budget is checked before
// each send, retries included -> BudgetExhausted.
class ApiClient {
 public:
  explicit ApiClient(ApiEndpoint endpoint);
  ~ApiClient();
  nlohmann::json get(const std::string& path);  // path relative to base_url: "models"
  nlohmann::json post(const std::string& path, const nlohmann::json& body);
  const ApiEndpoint& endpoint() const { return endpoint_; }
  int64_t requests() const { return requests_; }  // answered (2xx) so far
  int64_t tokens() const { return tokens_; }      // usage.total_tokens summed
  int64_t retries() const { return retries_; }

 private:
  struct Impl;
  nlohmann::json request(const char* method, const std::string& path, const nlohmann::json* body);
  std::unique_ptr<Impl> impl_;
  ApiEndpoint endpoint_;
  std::atomic<int64_t> requests_{0}, tokens_{0}, retries_{0}, sent_{0};
};

// The endpoint's entry for its model in GET models ({"id", ..., "retort": {...}} on retort serve),
// or null when the list does not name it (some servers answer for any model name).
nlohmann::json api_model_entry(ApiClient& client);

// The endpoint's tokenizer when it publishes one (retort serve: GET models/{id}/tokenizer),
// else nullptr.
std::shared_ptr<Tokenizer> fetch_api_tokenizer(ApiClient& client);

// The endpoint's top-k for every window of `windows` (the top-k cache of a local teacher, same
// format, keyed by endpoint URL + model + data + k). Windows whose prompt would come back as
// other tokens, or top_logprobs naming a token `tokenizer` does not have -> Error (tokenizer
// mismatch); so does a retort endpoint whose GET models names another tokenizer fingerprint
// (checked before any harvest request). k in [1, 20]. Padded windows (pad_last) send only
// their positions that have a next token. Shards of windows_per_shard windows: a kill, Ctrl-C
// (Interrupted) or an exhausted budget (BudgetExhausted) loses at most one shard's answers.
TopkCache harvest_topk_cache(ApiClient& client, const Tokenizer& tokenizer, const TokenBatcher& windows,
                             const TokenSet& set, int64_t k, const std::filesystem::path& cache_dir,
                             CacheStatus* status = nullptr, int64_t windows_per_shard = 32);

// Sequence-level KD through the API: the endpoint's continuations of the prompts (as
// teacher_written_corpus), harvested concurrently into a JSONL file in `cache_dir` that grows
// one complete record at a time; a rerun asks only for the prompts not yet answered.
TextCorpus api_written_corpus(ApiClient& client, const Tokenizer& tokenizer, const TokenSet& train, int64_t seq_len,
                              const SequenceKdOptions& options, const std::filesystem::path& cache_dir);

// The endpoint's top-k from a harvested cache (harvest_topk_cache). Every batch must be a stored
// training window: there is no live model to ask about anything else (on-policy samples,
// augmented batches -> Error).
class ApiTopkTeacher : public Teacher {
 public:
  ApiTopkTeacher(TopkCache cache, std::string description);
  TeacherSignal signal(const Batch& batch) override;
  std::string describe() const override { return description_; }

 private:
  TopkCache cache_;
  std::string description_;
};

}  // namespace retort

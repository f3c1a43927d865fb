// Continuous batching of generation requests for one gpt model (serve-private; no HTTP here).
//
// A request starts on its own thread (Engine::generate): its prompt runs through the model once
// (prefill), which gives its keys and values and its first token. It then joins a batch: a
// thread that owns a KV cache of up to `max_batch` rows (a request's n choices are n rows) and
// steps every row at once, one token each (GptImpl::forward_rows, each row at its own position),
// samples each request with its own generator, temperature, top_p and watermark, records its
// tokens (ChoiceWriter) and retires it when its choices are finished, while other requests join.
// Streamed pieces go back to the request's own thread, which writes them to its client: a slow
// client never holds up the batch, and a request whose client has not taken its last pieces yet
// sits that step out (its row is recomputed, to the same bits, the next step), so a client that
// goes away stops its generation right there, as when it ran alone.
//
// Determinism: a row's logits do not depend on its batch-mates (see gpt_rows.cpp) and each
// request samples from its own generator, so a fixed seed gives the same tokens, logprobs and
// watermark alone or batched. A request whose sampling fails gets its error; its batch-mates go on.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "retort/generate.h"
#include "retort/serve.h"
#include "serve/choices.h"

namespace retort {

class GptImpl;

namespace serve {

// One request's generation after its prefill: what the batch needs to go on with it.
struct GenerationJob {
  GenerationJob(const ServedModel& m, const GenerationRequest& r, GenerationResult& res, SamplingOptions s, bool streaming)
      : request(r), sampling(s), writer(m, r, res), streaming(streaming) {}
  const GenerationRequest& request;
  SamplingOptions sampling;
  at::Generator generator;   // the request's own stream, seeded with request.seed
  torch::Tensor seq;         // (n, L) int64 on the CPU: prompt and tokens so far; the last column is fed next
  std::vector<torch::Tensor> prompt_k, prompt_v;  // per layer (1, G, max_seq_len, hd): the prefill's cache
  ChoiceWriter writer;
  const bool streaming;

  // Between the batch's thread and the request's (under the batcher's mutex):
  std::vector<StreamPiece> outbox;  // pieces not yet taken by the request's thread
  bool delivered = true;            // the request's thread wrote every piece it was given
  bool cancelled = false;           // its client went away: retire at the next step
  bool done = false;                // retired; `error` set when it failed
  std::exception_ptr error;
  std::condition_variable wake;     // the request's thread waits here

  // The batch's own (its thread only):
  std::vector<int64_t> slots;  // cache rows, one per choice
};

struct BatchingOptions {
  int64_t max_batch = 16;  // rows (choices) per batch; 1: every request runs alone
  int64_t batches = 1;     // batches stepping at once, each on its own thread
};

class GenerationBatcher {
 public:
  GenerationBatcher(const ServedModel& m, GptImpl& model, BatchingOptions o);
  ~GenerationBatcher();  // stops the batch threads (no request may be in flight)
  GenerationBatcher(const GenerationBatcher&) = delete;
  GenerationBatcher& operator=(const GenerationBatcher&) = delete;

  // Runs `job` (prefilled, with its first token consumed) to its end in a batch; blocks. Streamed
  // pieces go to `sink` on the calling thread. Rethrows the job's error.
  void run(const std::shared_ptr<GenerationJob>& job, const TokenSink& sink);
  Engine::BatchStats stats();

 private:
  struct Lane;
  void step_loop(Lane& lane);
  bool take_pending(Lane& lane);             // under mutex_: moves jobs that fit into the lane
  void retire(Lane& lane, GenerationJob& job);  // under mutex_
  int64_t rows_of(const GenerationJob& job) const { return job.request.n; }

  const ServedModel& m_;
  GptImpl& model_;
  const BatchingOptions o_;
  std::mutex mutex_;
  std::condition_variable work_;  // lanes wait here for jobs and deliveries
  std::deque<std::shared_ptr<GenerationJob>> pending_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  bool stopping_ = false;
  Engine::BatchStats stats_;
};

}  // namespace serve
}  // namespace retort

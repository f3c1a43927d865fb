// A generation request's choices as tokens arrive (serve-private): the ids, their text and
// logprobs, stop strings, and the pieces a stream may send so far. The engine feeds it one step
// at a time, whether the request runs alone or in a batch (batcher.h). No HTTP here.
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

#include "retort/serve.h"

namespace retort::serve {

// What a stream gets after a step: choice, new text (held back where a stop string or half a
// UTF-8 character could still be), and that step's logprobs when the request asked for them.
struct StreamPiece {
  int64_t choice = 0;
  std::string text;
  std::vector<TokenLogprob> logprobs;
  bool with_logprobs = false;
};

class ChoiceWriter {
 public:
  // `res` (owned by the caller) receives the choices; it must outlive the writer.
  ChoiceWriter(const ServedModel& m, const GenerationRequest& r, GenerationResult& res);
  // One step: logits (n, V) as sampled from (after the watermark), chosen ids (n). Records the
  // tokens of the unfinished choices; with `pieces`, appends one piece per choice that was
  // unfinished. False once every choice is finished.
  bool consume(const torch::Tensor& logits, const torch::Tensor& next, std::vector<StreamPiece>* pieces);

 private:
  const ServedModel& m_;
  const GenerationRequest& r_;
  GenerationResult& res_;
  size_t longest_stop_ = 0;
  std::vector<bool> finished_;
  std::vector<size_t> emitted_;  // bytes of text streamed per choice
};

// Hands `pieces` to `sink` in order until it reports the client gone; false then.
bool deliver(const std::vector<StreamPiece>& pieces, const TokenSink& sink);

// Top `k` of a row of log-probabilities, most likely first.
std::vector<std::pair<int32_t, float>> top_of(const torch::Tensor& row, int64_t k);

}  // namespace retort::serve

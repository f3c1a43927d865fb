// OpenAI's request and response bodies <-> the engine's requests and results. Every field is
// checked for type and range; a bad one is an ApiError (400) naming it. No HTTP, no torch.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "retort/json_depth.h"
#include "retort/serve.h"

namespace retort::serve {

using nlohmann::json;

// Request bodies nested deeper than kMaxJsonDepth (retort/json_depth.h) are refused while
// parsing (400).
// The body as a JSON object; malformed JSON, a value out of range, nesting deeper than
// kMaxJsonDepth, or another type -> 400 (naming the top-level key where one is known).
json parse_body(const std::string& body);
// body["model"]: a non-empty string -> 400 otherwise.
std::string model_of(const json& body);

struct CompletionCall {
  GenerationRequest gen;
  bool chat = false;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::string prompt_text;     // the prompt as text (echo, audit hash)
  int64_t top_logprobs = -1;   // chat: top_logprobs (gen.logprobs holds it when logprobs = true)
};
// /v1/completions and /v1/chat/completions bodies for language model `m`.
CompletionCall parse_completion(const json& body, const ServedModel& m);
CompletionCall parse_chat(const json& body, const ServedModel& m);

struct Ids {
  std::string id;    // "cmpl-..." / "chatcmpl-..."
  int64_t created;   // unix seconds
  std::string model;
};
json completion_response(const CompletionCall& call, const ServedModel& m, const GenerationResult& r, const Ids& ids);
json usage_of(const CompletionCall& call, const GenerationResult& r);
// Streaming chunks. Completions: the echoed prompt (choice c) and each piece of text;
// chat: the first chunk (role), each piece, and the last (finish_reason).
json completion_chunk(const ServedModel& m, const Ids& ids, int64_t choice, const std::string& text,
                      const std::vector<TokenLogprob>* lp, size_t text_offset, const char* finish_reason);
json chat_chunk(const ServedModel& m, const Ids& ids, int64_t choice, const json& delta,
                const std::vector<TokenLogprob>* lp, const char* finish_reason);

struct ClassifyCall {
  std::vector<std::vector<float>> inputs;
  int64_t top_k = 0;  // 0: full probabilities
};
ClassifyCall parse_classify(const json& body, const ServedModel& m);
json classify_response(const ClassifyCall& call, const ServedModel& m, const std::vector<std::vector<float>>& probs,
                       const Ids& ids);

}  // namespace retort::serve

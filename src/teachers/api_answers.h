// What an OpenAI-style endpoint answers, read and checked: the bodies the openai: teacher's client
// (api_client.cpp) and harvest (api_harvest.cpp) get back, as pure functions of the bytes (no
// HTTP), so that every answer parser can be tested and fuzzed alone. Any answer, however odd,
// gives a value or an Error naming `what` and the problem. Private to src/teachers.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "retort/tokenizer.h"

namespace retort {

// A 2xx body as JSON; not JSON -> Error naming `what`, the status and the body's start.
nlohmann::json answer_json(const std::string& body, const std::string& what, int status);
// usage.total_tokens of an answer when it is an integer >= 0, else 0.
int64_t answer_tokens(const nlohmann::json& answer);
// A Retry-After header in seconds ("2", "0.3"; capped at 60); an HTTP date or junk -> -1.
double parse_retry_after(const std::string& value);
// The message of an error body ({"error": {"message", "type"}} or {"error": "..."}), else the
// body's first 300 bytes.
std::string api_error_message(const std::string& body);

// The entry for `model` in a GET models answer ({"data": [{"id": ...}, ...]}); null when the list
// does not name it. No "data" list -> Error naming `what`.
nlohmann::json model_entry_of(const nlohmann::json& list, const std::string& model,
                              const std::string& what);
// The tokenizer fingerprint a retort endpoint's models entry names ({"retort": {"tokenizer"}});
// "" when it names none.
std::string entry_tokenizer_fingerprint(const nlohmann::json& entry);
// Whether a models entry is retort serve's (it then publishes its tokenizer).
bool entry_is_retort(const nlohmann::json& entry);

// A GET models/{model}/tokenizer answer: {"files": {"tokenizer.json": text, "tokenizer.model":
// base64}, "fingerprint": hex}. Missing files or fields of another type -> Error naming `origin`.
struct PublishedTokenizer {
  TokenizerFiles files;
  std::string fingerprint;  // "" when the answer gives none
};
PublishedTokenizer published_tokenizer(const nlohmann::json& answer, const std::string& origin,
                                       const std::string& model);

// The top-k of one teacher-forced window from a /completions answer with echo and logprobs
// (choices[0].logprobs.tokens and .top_logprobs): the echoed tokens must be `prompt`'s first n
// (as `strings` names them), and for each position t in [0, n) the k likeliest next tokens go to
// ids[t * k + j] / logprobs[t * k + j], likeliest first (logprobs above 0 stored as 0).
void read_topk_answer(const nlohmann::json& answer, const TokenStrings& strings,
                      const std::vector<int64_t>& prompt, int64_t n, int64_t k,
                      const std::string& what, int64_t* ids, float* logprobs);

// The text of a /completions answer's first choice.
std::string completion_text(const nlohmann::json& answer, const std::string& what);

}  // namespace retort

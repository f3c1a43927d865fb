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

// What a retort serve models entry says its model is ({"retort": {"kind", "input_shape",
// "classes"}}): kind "language_model" or "classifier" ("" when the entry is not retort's or names
// none); for classifiers the input shape (C, H, W) and the class count, each left empty / 0 when
// absent or not positive integers.
struct ServedModelShape {
  std::string kind;
  std::vector<int64_t> input_shape;
  int64_t classes = 0;
};
ServedModelShape entry_model_shape(const nlohmann::json& entry);
// Error when the entry says its model is a classifier: a language-model harvest (top-k, text)
// cannot use it. `model` and `url` name it in the message.
void refuse_classifier_entry(const nlohmann::json& entry, const std::string& model,
                             const std::string& url);

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

// A /classify answer for n images ({"data": [{"index", "probabilities": [classes numbers]}]}, in
// the order sent when an item has no index) as log-probabilities: log(max(p, 1e-12)) into
// log_probs[i * classes + c]. Every image answered once, `classes` probabilities each, every one a
// number in [0, 1] and each row summing to 1 within 1e-3 -- else an Error naming `what` and the
// item (a top_k-only answer, another class count, logits instead of probabilities).
void read_classify_answer(const nlohmann::json& answer, int64_t n, int64_t classes,
                          const std::string& what, float* log_probs);

}  // namespace retort

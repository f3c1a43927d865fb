// Reading what an OpenAI-style endpoint answers (api_answers.h): pure functions of the answer.
#include "teachers/api_answers.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "retort/base64.h"
#include "retort/error.h"
#include "retort/json_depth.h"

namespace retort {

namespace {

constexpr double kMaxRetryAfter = 60;  // seconds: a longer Retry-After is capped, not obeyed

std::string quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// obj[key] when it is a string, else `otherwise` (absent, null or another type).
std::string string_or(const nlohmann::json& obj, const char* key, const std::string& otherwise) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return otherwise;
  return obj[key].get<std::string>();
}

// obj[key] when it is a string; "" when absent or null; another type -> Error naming `what`.
std::string string_field(const nlohmann::json& obj, const char* key, const std::string& what) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return "";
  if (!obj[key].is_string())
    fail(what, ": \"", key, "\" is ", obj[key].dump().substr(0, 80), ", expected a string");
  return obj[key].get<std::string>();
}

const nlohmann::json& first_choice(const nlohmann::json& answer, const std::string& what) {
  if (!answer.is_object() || !answer.contains("choices") || !answer["choices"].is_array() ||
      answer["choices"].empty())
    fail(what, ": the answer has no choices: ", answer.dump().substr(0, 200));
  return answer["choices"][0];
}

}  // namespace

// ---- any answer ----------------------------------------------------------------------------

nlohmann::json answer_json(const std::string& body, const std::string& what, int status) {
  if (json_nests_deeper_than(body))
    fail(what, ": HTTP ", status, " but the body nests more than ", kMaxJsonDepth,
         " levels deep (an answer has a handful)");
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded())
    fail(what, ": HTTP ", status, " but the body is not JSON: ", body.substr(0, 200));
  return j;
}

int64_t answer_tokens(const nlohmann::json& j) {
  // Capped, so that a sum over many answers cannot overflow: no answer has 2^40 tokens.
  constexpr int64_t kMaxTokens = int64_t{1} << 40;
  if (!j.is_object() || !j.contains("usage") || !j["usage"].is_object()) return 0;
  const auto& u = j["usage"];
  if (!u.contains("total_tokens")) return 0;
  const auto& t = u["total_tokens"];
  if (t.is_number_unsigned()) return int64_t(std::min<uint64_t>(t.get<uint64_t>(), kMaxTokens));
  if (t.is_number_integer()) return std::clamp<int64_t>(t.get<int64_t>(), 0, kMaxTokens);
  return 0;
}

double parse_retry_after(const std::string& v) {
  if (v.empty()) return -1;
  char* end = nullptr;
  double s = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || !std::isfinite(s) || s < 0) return -1;
  return std::min(s, kMaxRetryAfter);
}

std::string api_error_message(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error")) {
    const auto& e = j["error"];
    if (e.is_object()) {
      std::string m = string_or(e, "message", "");
      if (e.contains("type") && e["type"].is_string())
        m += cat(" (", e["type"].get<std::string>(), ")");
      if (!m.empty()) return m;
    } else if (e.is_string()) {
      return e.get<std::string>();
    }
  }
  std::string b = body.substr(0, 300);
  return b.empty() ? "(empty body)" : b;
}

// ---- the endpoint's models and tokenizer ---------------------------------------------------

nlohmann::json model_entry_of(const nlohmann::json& list, const std::string& model,
                              const std::string& what) {
  if (!list.is_object() || !list.contains("data") || !list["data"].is_array())
    fail(what, " answered without a \"data\" list: ", list.dump().substr(0, 200));
  for (const auto& m : list["data"])
    if (m.is_object() && m.contains("id") && m["id"] == model) return m;
  return nullptr;  // not listed: some servers answer for any model name
}

bool entry_is_retort(const nlohmann::json& entry) {
  return entry.is_object() && entry.contains("retort") && entry["retort"].is_object();
}

std::string entry_tokenizer_fingerprint(const nlohmann::json& entry) {
  if (!entry_is_retort(entry)) return "";
  return string_or(entry["retort"], "tokenizer", "");
}

ServedModelShape entry_model_shape(const nlohmann::json& entry) {
  ServedModelShape out;
  if (!entry_is_retort(entry)) return out;
  const nlohmann::json& r = entry["retort"];
  out.kind = string_or(r, "kind", "");
  auto positive = [](const nlohmann::json& v) {
    return v.is_number_integer() && v.get<int64_t>() > 0 && v.get<int64_t>() <= (int64_t{1} << 40);
  };
  if (r.contains("classes") && positive(r["classes"])) out.classes = r["classes"].get<int64_t>();
  if (r.contains("input_shape") && r["input_shape"].is_array() && r["input_shape"].size() <= 8 &&
      std::all_of(r["input_shape"].begin(), r["input_shape"].end(), positive))
    for (const auto& d : r["input_shape"]) out.input_shape.push_back(d.get<int64_t>());
  return out;
}

void refuse_classifier_entry(const nlohmann::json& entry, const std::string& model,
                             const std::string& url) {
  if (entry_model_shape(entry).kind == "classifier")
    fail("the endpoint's model ", model, " at ", url,
         " is an image classifier, not a language model (it answers /classify); distil it with "
         "data.kind = images");
}

PublishedTokenizer published_tokenizer(const nlohmann::json& t, const std::string& origin,
                                       const std::string& model) {
  if (!t.is_object() || !t.contains("files") || !t["files"].is_object())
    fail(origin, " answered models/", model, "/tokenizer without \"files\"");
  const auto& files = t["files"];
  PublishedTokenizer out;
  out.files.json = string_field(files, "tokenizer.json", origin);
  out.files.model = base64_decode(string_field(files, "tokenizer.model", origin));
  out.fingerprint = string_field(t, "fingerprint", origin);
  return out;
}

// ---- completions ---------------------------------------------------------------------------

void read_topk_answer(const nlohmann::json& answer, const TokenStrings& strings,
                      const std::vector<int64_t>& x, int64_t n, int64_t k, const std::string& what,
                      int64_t* ids, float* logprobs) {
  const nlohmann::json& choice = first_choice(answer, what);
  if (!choice.contains("logprobs") || !choice["logprobs"].is_object())
    fail(what,
         ": the answer has no logprobs; the endpoint must support logprobs with echo = true "
         "(teacher forcing)");
  const auto& lp = choice["logprobs"];
  if (!lp.contains("tokens") || !lp["tokens"].is_array() || !lp.contains("top_logprobs") ||
      !lp["top_logprobs"].is_array())
    fail(what, ": logprobs without tokens / top_logprobs lists");
  const auto& tokens = lp["tokens"];
  const auto& top = lp["top_logprobs"];
  if (int64_t(tokens.size()) < n || int64_t(top.size()) < n)
    fail(what, ": the endpoint echoed ", tokens.size(), " tokens for a prompt of ", n,
         " (does it support echo = true with logprobs?)");
  if (int64_t(top.size()) < n + 1)
    fail(what, ": the endpoint wrote no token after the prompt (finish_reason ",
         string_or(choice, "finish_reason", "?"), "), so the last position's top-", k,
         " is missing");
  for (int64_t i = 0; i < n; ++i) {
    const std::string got = tokens[i].is_string() ? tokens[i].get<std::string>() : tokens[i].dump();
    const std::string& want = strings.text(int32_t(x[i]));
    if (got != want)
      fail("tokenizer mismatch: ", what, " came back as other tokens: at position ", i,
           " the endpoint has ", quoted(got), ", the student's tokenizer ", quoted(want),
           " (the student must use the endpoint's tokenizer: text.tokenizer = auto)");
  }
  std::vector<std::pair<float, int32_t>> entries;
  for (int64_t t = 0; t < n; ++t) {
    const auto& dict = top[t + 1];  // the distribution over x_{t+1}, after x_0..x_t
    if (!dict.is_object())
      fail(what, ": top_logprobs[", t + 1, "] is ", dict.dump().substr(0, 80),
           ", expected {token: logprob}");
    entries.clear();
    for (auto it = dict.begin(); it != dict.end(); ++it) {
      const int32_t id = strings.id(it.key());
      if (id < 0)
        fail("tokenizer mismatch: the endpoint's token ", quoted(it.key()),
             " is not in the student's tokenizer (", what, ", position ", t,
             "); the student must use the endpoint's tokenizer: text.tokenizer = auto");
      if (!it.value().is_number())
        fail(what, ": the logprob of ", quoted(it.key()), " is ", it.value().dump());
      // Converting a double beyond float's range is undefined; such a logprob is clamped first.
      const double lp =
          std::clamp(it.value().get<double>(), -double(std::numeric_limits<float>::max()),
                     double(std::numeric_limits<float>::max()));
      entries.emplace_back(static_cast<float>(lp), id);
    }
    if (int64_t(entries.size()) < k)
      fail(what, ": top_logprobs[", t + 1, "] has ", entries.size(), " entries, asked for ", k);
    std::partial_sort(entries.begin(), entries.begin() + k, entries.end(),
                      [](const auto& a, const auto& b) {
                        return a.first > b.first || (a.first == b.first && a.second < b.second);
                      });
    for (int64_t j = 0; j < k; ++j) {
      ids[t * k + j] = entries[j].second;
      logprobs[t * k + j] = std::min(0.0f, entries[j].first);
    }
  }
}

std::string completion_text(const nlohmann::json& answer, const std::string& what) {
  const nlohmann::json& choice = first_choice(answer, what);
  if (!choice.contains("text") || !choice["text"].is_string())
    fail(what, ": the answer's choice has no text: ", choice.dump().substr(0, 200));
  return choice["text"].get<std::string>();
}

// ---- classifiers ---------------------------------------------------------------------------

void read_classify_answer(const nlohmann::json& answer, int64_t n, int64_t classes,
                          const std::string& what, float* log_probs) {
  constexpr double kFloor = 1e-12;  // log(0) would be -inf: a class the teacher rules out
  if (!answer.is_object() || !answer.contains("data") || !answer["data"].is_array())
    fail(what, ": the answer has no \"data\" list: ", answer.dump().substr(0, 200));
  const nlohmann::json& data = answer["data"];
  if (int64_t(data.size()) != n)
    fail(what, ": ", n, " images sent, ", data.size(), " answered");
  std::vector<bool> seen(size_t(n), false);
  for (int64_t pos = 0; pos < n; ++pos) {
    const nlohmann::json& item = data[size_t(pos)];
    int64_t i = pos;
    if (item.is_object() && item.contains("index") && !item["index"].is_null()) {
      if (!item["index"].is_number_integer() || item["index"].get<int64_t>() < 0 ||
          item["index"].get<int64_t>() >= n)
        fail(what, ": answer ", pos, " has index ", item["index"].dump().substr(0, 40),
             ", not one of the ", n, " images sent");
      i = item["index"].get<int64_t>();
    }
    if (seen[size_t(i)]) fail(what, ": image ", i, " is answered twice");
    seen[size_t(i)] = true;
    if (!item.is_object() || !item.contains("probabilities") || !item["probabilities"].is_array())
      fail(what, ": image ", i, " is answered without \"probabilities\" (a top_k answer gives too few ",
           "to distil from): ", item.dump().substr(0, 120));
    const nlohmann::json& p = item["probabilities"];
    if (int64_t(p.size()) != classes)
      fail(what, ": image ", i, " has ", p.size(), " class probabilities; the data has ", classes,
           " classes");
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) {
      const nlohmann::json& v = p[size_t(c)];
      const double x = v.is_number() ? v.get<double>() : std::nan("");
      if (!(x >= 0 && x <= 1 + 1e-6))
        fail(what, ": image ", i, " class ", c, " has probability ", v.dump().substr(0, 40),
             "; probabilities are numbers in [0, 1]");
      sum += x;
      log_probs[i * classes + c] = float(std::log(std::clamp(x, kFloor, 1.0)));
    }
    if (std::abs(sum - 1) > 1e-3)
      fail(what, ": image ", i, "'s probabilities sum to ", sum, ", not 1");
  }
}

}  // namespace retort

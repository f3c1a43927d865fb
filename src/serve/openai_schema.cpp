// OpenAI request/response bodies (openai_schema.h).
#include "openai_schema.h"

#include <cmath>
#include <random>

#include "retort/tokenizer.h"

namespace retort {

ApiError::ApiError(int status_, std::string type_, std::string code_, const std::string& message, std::string param_)
    : Error(message), status(status_), type(std::move(type_)), code(std::move(code_)), param(std::move(param_)) {}

nlohmann::json ApiError::body() const {
  return {{"error",
           {{"message", what()}, {"type", type}, {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
            {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code)}}}};
}

void bad_request(const std::string& param, const std::string& message) {
  throw ApiError(400, "invalid_request_error", "invalid_value", message, param);
}

std::string chat_prompt(const nlohmann::json& messages) {
  if (!messages.is_array() || messages.empty()) bad_request("messages", "'messages' must be a non-empty array");
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const std::string where = cat("messages[", i, "]");
    if (!m.is_object() || !m.contains("role") || !m.at("role").is_string())
      bad_request(where, where + " must be an object with a string 'role'");
    const std::string role = m.at("role").get<std::string>();
    if (role != "system" && role != "developer" && role != "user" && role != "assistant")
      bad_request(where + ".role", cat("role '", role, "' is not one of system, developer, user, assistant"));
    std::string text;
    const nlohmann::json& c = m.contains("content") ? m.at("content") : nlohmann::json(nullptr);
    if (c.is_string()) {
      text = c.get<std::string>();
    } else if (c.is_array()) {  // content parts: only text
      for (const auto& part : c) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part.at("text").is_string())
          bad_request(where + ".content", "content parts must be {\"type\": \"text\", \"text\": ...}; retort models read text only");
        text += part.at("text").get<std::string>();
      }
    } else if (!(c.is_null() && role == "assistant")) {
      bad_request(where + ".content", where + ".content must be a string or an array of text parts");
    }
    out += cat("<|", role == "developer" ? "system" : role, "|>\n", text, "\n");
  }
  return out + "<|assistant|>\n";
}

namespace serve {

namespace {

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a number";
    default: return "an integer";
  }
}

// Optional fields: absent or null -> the default.
bool present(const json& b, const char* k) { return b.contains(k) && !b.at(k).is_null(); }

int64_t get_int(const json& b, const char* k, int64_t def, int64_t lo, int64_t hi) {
  if (!present(b, k)) return def;
  const json& v = b.at(k);
  if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
    bad_request(k, cat("'", k, "' must be an integer, got ", type_name(v)));
  double d = v.get<double>();
  if (d < double(lo) || d > double(hi))
    bad_request(k, cat("'", k, "' must be between ", lo, " and ", hi, ", got ", v.dump()));
  return v.get<int64_t>();
}

double get_number(const json& b, const char* k, double def, double lo, double hi, bool open_lo = false) {
  if (!present(b, k)) return def;
  const json& v = b.at(k);
  if (!v.is_number()) bad_request(k, cat("'", k, "' must be a number, got ", type_name(v)));
  double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi || (open_lo && d <= lo))
    bad_request(k, cat("'", k, "' must be ", open_lo ? "above " : "between ", lo, open_lo ? " and at most " : " and ", hi,
                       ", got ", v.dump()));
  return d;
}

bool get_bool(const json& b, const char* k, bool def) {
  if (!present(b, k)) return def;
  if (!b.at(k).is_boolean()) bad_request(k, cat("'", k, "' must be a boolean, got ", type_name(b.at(k))));
  return b.at(k).get<bool>();
}

std::vector<std::string> get_stop(const json& b) {
  std::vector<std::string> out;
  if (!present(b, "stop")) return out;
  const json& v = b.at("stop");
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > 4) bad_request("stop", cat("'stop' takes up to 4 strings, got ", v.size()));
    for (const auto& s : v) {
      if (!s.is_string()) bad_request("stop", cat("'stop' must hold strings, got ", type_name(s)));
      out.push_back(s.get<std::string>());
    }
  } else {
    bad_request("stop", cat("'stop' must be a string or an array of strings, got ", type_name(v)));
  }
  for (const auto& s : out)
    if (s.empty()) bad_request("stop", "'stop' strings must not be empty");
  return out;
}

// n, temperature, top_p, seed, stop, max_tokens: the same in both endpoints.
void sampling_fields(const json& b, const ServedModel& m, GenerationRequest& g, const char* max_key, int64_t max_default) {
  g.n = get_int(b, "n", 1, 1, 16);
  g.temperature = get_number(b, "temperature", 1.0, 0.0, 2.0);
  g.top_p = get_number(b, "top_p", 1.0, 0.0, 1.0, /*open_lo=*/true);
  if (present(b, "seed")) {
    g.seed = uint64_t(get_int(b, "seed", 0, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()));
  } else {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    g.seed = rng();
  }
  g.stop = get_stop(b);
  g.max_tokens = get_int(b, max_key, max_default, 0, 1 << 20);
}

void stream_fields(const json& b, CompletionCall& call) {
  call.stream = get_bool(b, "stream", false);
  if (present(b, "stream_options")) {
    const json& so = b.at("stream_options");
    if (!so.is_object()) bad_request("stream_options", cat("'stream_options' must be an object, got ", type_name(so)));
    call.include_usage = get_bool(so, "include_usage", false);
  }
}

json top_dict(const ServedModel& m, const std::vector<std::pair<int32_t, float>>& top) {
  json d = json::object();
  for (const auto& [id, lp] : top) d[m.strings->text(id)] = lp;
  return d;
}

json bytes_of(const ServedModel& m, int32_t id) {
  json a = json::array();
  for (unsigned char c : m.strings->bytes(id)) a.push_back(int(c));
  return a;
}

// Legacy completions logprobs over tokens, starting at text offset `offset`.
json legacy_logprobs(const ServedModel& m, const std::vector<TokenLogprob>& lp, size_t offset) {
  json tokens = json::array(), token_lp = json::array(), top = json::array(), offsets = json::array();
  for (const auto& e : lp) {
    tokens.push_back(m.strings->text(e.id));
    token_lp.push_back(std::isnan(e.logprob) ? json(nullptr) : json(e.logprob));
    top.push_back(e.top.empty() && std::isnan(e.logprob) ? json(nullptr) : top_dict(m, e.top));
    offsets.push_back(offset);
    offset += m.strings->bytes(e.id).size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lp}, {"top_logprobs", top}, {"text_offset", offsets}};
}

json chat_logprobs(const ServedModel& m, const std::vector<TokenLogprob>& lp, int64_t top_n) {
  json content = json::array();
  for (const auto& e : lp) {
    json tops = json::array();
    for (size_t j = 0; j < e.top.size() && int64_t(j) < top_n; ++j)
      tops.push_back({{"token", m.strings->text(e.top[j].first)}, {"logprob", e.top[j].second},
                      {"bytes", bytes_of(m, e.top[j].first)}});
    content.push_back({{"token", m.strings->text(e.id)}, {"logprob", e.logprob}, {"bytes", bytes_of(m, e.id)},
                       {"top_logprobs", tops}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

}  // namespace

json parse_body(const std::string& body) {
  // Parsed with a depth limit: nothing deeper than kMaxJsonDepth is ever built, so nothing
  // recursive (dump, copies, comparisons) can meet a body nested 100,000 deep. The last key
  // seen names the parameter when a value cannot be read (a number out of range).
  std::string last_key;
  auto guard = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxJsonDepth)
      throw ApiError(400, "invalid_request_error", "invalid_json",
                     cat("The JSON body is nested more than ", kMaxJsonDepth, " levels deep", last_key.empty() ? "" : " under '",
                         last_key, last_key.empty() ? "" : "'"),
                     last_key);
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) last_key = parsed.get<std::string>();
    return true;
  };
  json b;
  try {
    b = json::parse(body, guard);
  } catch (const json::parse_error& e) {
    throw ApiError(400, "invalid_request_error", "invalid_json",
                   cat("We could not parse the JSON body of your request: ", e.what()));
  } catch (const json::exception& e) {  // out_of_range: 1e999 and the like
    throw ApiError(400, "invalid_request_error", "invalid_value",
                   cat("A value in the JSON body cannot be read", last_key.empty() ? "" : cat(" ('", last_key, "')"), ": ", e.what()),
                   last_key);
  }
  if (!b.is_object())
    throw ApiError(400, "invalid_request_error", "invalid_json", cat("The body must be a JSON object, got ", type_name(b)));
  return b;
}

std::string model_of(const json& b) {
  if (!present(b, "model")) bad_request("model", "you must provide a model parameter");
  if (!b.at("model").is_string() || b.at("model").get<std::string>().empty())
    bad_request("model", cat("'model' must be a non-empty string, got ", type_name(b.at("model"))));
  return b.at("model").get<std::string>();
}

CompletionCall parse_completion(const json& b, const ServedModel& m) {
  CompletionCall call;
  if (!present(b, "prompt")) bad_request("prompt", "you must provide a prompt");
  const json& p = b.at("prompt");
  const json* one = &p;
  if (p.is_array() && !p.empty() && (p[0].is_string() || p[0].is_array())) {
    if (p.size() != 1) bad_request("prompt", cat("retort serves one prompt per request; got ", p.size()));
    one = &p[0];
  }
  if (one->is_string()) {
    call.prompt_text = one->get<std::string>();
    call.gen.prompt = m.tokenizer->encode(call.prompt_text);
  } else if (one->is_array()) {
    for (const auto& t : *one) {
      if (!t.is_number_integer()) bad_request("prompt", cat("a token-id prompt must hold integers, got ", type_name(t)));
      int64_t id = t.get<int64_t>();
      if (id < 0 || id >= m.vocab_size)
        bad_request("prompt", cat("token id ", id, " is outside the vocabulary (", m.vocab_size, " ids)"));
      call.gen.prompt.push_back(int32_t(id));
    }
    call.prompt_text = m.tokenizer->decode(call.gen.prompt);
  } else {
    bad_request("prompt", cat("'prompt' must be a string or an array of token ids, got ", type_name(*one)));
  }
  if (call.gen.prompt.empty()) bad_request("prompt", "the prompt is empty");
  sampling_fields(b, m, call.gen, "max_tokens", 16);
  call.gen.logprobs = present(b, "logprobs") ? get_int(b, "logprobs", 0, 0, 20) : -1;
  call.gen.echo = get_bool(b, "echo", false);
  stream_fields(b, call);
  if (present(b, "suffix")) bad_request("suffix", "suffix (insertion) is not supported");
  if (present(b, "best_of") && get_int(b, "best_of", 1, 1, 16) != call.gen.n)
    bad_request("best_of", "best_of other than n is not supported");
  return call;
}

CompletionCall parse_chat(const json& b, const ServedModel& m) {
  CompletionCall call;
  call.chat = true;
  if (!present(b, "messages")) bad_request("messages", "you must provide messages");
  call.prompt_text = chat_prompt(b.at("messages"));
  call.gen.prompt = m.tokenizer->encode(call.prompt_text);
  const char* max_key = present(b, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  sampling_fields(b, m, call.gen, max_key, std::max<int64_t>(1, m.context + 1 - int64_t(call.gen.prompt.size())));
  if (call.gen.max_tokens < 1) bad_request(max_key, cat("'", max_key, "' must be at least 1"));
  call.gen.stop.push_back(kChatStop);
  const bool logprobs = get_bool(b, "logprobs", false);
  call.top_logprobs = get_int(b, "top_logprobs", 0, 0, 20);
  if (present(b, "top_logprobs") && !logprobs) bad_request("top_logprobs", "'top_logprobs' needs 'logprobs' = true");
  call.gen.logprobs = logprobs ? call.top_logprobs : -1;
  stream_fields(b, call);
  return call;
}

json usage_of(const CompletionCall& call, const GenerationResult& r) {
  const int64_t p = int64_t(call.gen.prompt.size());
  return {{"prompt_tokens", p}, {"completion_tokens", r.completion_tokens}, {"total_tokens", p + r.completion_tokens}};
}

json completion_response(const CompletionCall& call, const ServedModel& m, const GenerationResult& r, const Ids& ids) {
  json choices = json::array();
  for (size_t c = 0; c < r.choices.size(); ++c) {
    const GeneratedChoice& ch = r.choices[c];
    json lp = nullptr;
    if (call.chat) {
      if (call.gen.logprobs >= 0) lp = chat_logprobs(m, ch.logprobs, call.top_logprobs);
      choices.push_back({{"index", c},
                         {"message", {{"role", "assistant"}, {"content", ch.text}, {"refusal", nullptr}}},
                         {"logprobs", lp},
                         {"finish_reason", ch.finish_reason}});
      continue;
    }
    std::string text = call.gen.echo ? call.prompt_text + ch.text : ch.text;
    if (call.gen.logprobs >= 0) {
      std::vector<TokenLogprob> all;
      if (call.gen.echo) all = r.prompt_logprobs;
      all.insert(all.end(), ch.logprobs.begin(), ch.logprobs.end());
      lp = legacy_logprobs(m, all, 0);
    }
    choices.push_back({{"index", c}, {"text", text}, {"logprobs", lp}, {"finish_reason", ch.finish_reason}});
  }
  if (r.choices.empty() && call.gen.echo) {  // max_tokens = 0: the prompt scored
    json lp = call.gen.logprobs >= 0 ? legacy_logprobs(m, r.prompt_logprobs, 0) : json(nullptr);
    for (int64_t c = 0; c < call.gen.n; ++c)
      choices.push_back({{"index", c}, {"text", call.prompt_text}, {"logprobs", lp}, {"finish_reason", "length"}});
  }
  return {{"id", ids.id},
          {"object", call.chat ? "chat.completion" : "text_completion"},
          {"created", ids.created},
          {"model", ids.model},
          {"system_fingerprint", nullptr},
          {"choices", choices},
          {"usage", usage_of(call, r)}};
}

json completion_chunk(const ServedModel& m, const Ids& ids, int64_t choice, const std::string& text,
                      const std::vector<TokenLogprob>* lp, size_t text_offset, const char* finish_reason) {
  json c = {{"index", choice},
            {"text", text},
            {"logprobs", lp ? legacy_logprobs(m, *lp, text_offset) : json(nullptr)},
            {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}};
  return {{"id", ids.id}, {"object", "text_completion"}, {"created", ids.created}, {"model", ids.model},
          {"choices", json::array({c})}};
}

json chat_chunk(const ServedModel& m, const Ids& ids, int64_t choice, const json& delta,
                const std::vector<TokenLogprob>* lp, const char* finish_reason) {
  json c = {{"index", choice},
            {"delta", delta},
            {"logprobs", lp ? chat_logprobs(m, *lp, 20) : json(nullptr)},
            {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}};
  return {{"id", ids.id}, {"object", "chat.completion.chunk"}, {"created", ids.created}, {"model", ids.model},
          {"system_fingerprint", nullptr}, {"choices", json::array({c})}};
}

ClassifyCall parse_classify(const json& b, const ServedModel& m) {
  ClassifyCall call;
  if (!present(b, "input")) bad_request("input", "you must provide input: pixel values, one image or an array of images");
  const json& in = b.at("input");
  if (!in.is_array() || in.empty()) bad_request("input", cat("'input' must be a non-empty array, got ", type_name(in)));
  auto row = [&](const json& r, size_t i) {
    std::vector<float> v;
    if (!r.is_array()) bad_request("input", cat("input ", i, " must be an array of numbers, got ", type_name(r)));
    v.reserve(r.size());
    for (const auto& x : r) {
      if (!x.is_number()) bad_request("input", cat("input ", i, " holds ", type_name(x), "; pixels are numbers in [0, 255]"));
      v.push_back(x.get<float>());
    }
    return v;
  };
  if (in[0].is_array()) {
    if (in.size() > 256) bad_request("input", cat("up to 256 images per request, got ", in.size()));
    for (size_t i = 0; i < in.size(); ++i) call.inputs.push_back(row(in[i], i));
  } else {
    call.inputs.push_back(row(in, 0));
  }
  call.top_k = get_int(b, "top_k", 0, 0, std::max<int64_t>(1, m.classes));
  return call;
}

json classify_response(const ClassifyCall& call, const ServedModel& m, const std::vector<std::vector<float>>& probs,
                       const Ids& ids) {
  json data = json::array();
  for (size_t i = 0; i < probs.size(); ++i) {
    const auto& p = probs[i];
    std::vector<int64_t> order(p.size());
    for (size_t j = 0; j < p.size(); ++j) order[j] = int64_t(j);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    json item = {{"index", i}, {"label", order[0]}};
    if (call.top_k > 0) {
      json top = json::array();
      for (int64_t j = 0; j < call.top_k; ++j) top.push_back({{"label", order[j]}, {"probability", p[order[j]]}});
      item["top"] = top;
    } else {
      item["probabilities"] = p;
    }
    data.push_back(item);
  }
  const int64_t n = int64_t(probs.size());
  return {{"id", ids.id}, {"object", "list"}, {"created", ids.created}, {"model", ids.model}, {"data", data},
          {"usage", {{"prompt_tokens", n}, {"total_tokens", n}}}};
}

}  // namespace serve
}  // namespace retort

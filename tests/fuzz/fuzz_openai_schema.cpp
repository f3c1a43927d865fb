// Fuzz target: the OpenAI request schema of retort serve (src/serve/openai_schema.cpp): a request
// body as it arrives, through parse_body and each route's parser (completions, chat, classify)
// for a byte-level language model and a small classifier. Every bad body must be an ApiError
// (a 4xx naming the parameter). Accepted requests carry values inside the documented ranges. The
// telemetry stage's fingerprints (retort/telemetry.h) take every body as a prompt and never throw.
#include <cmath>

#include "fuzz_support.h"
#include "retort/serve.h"
#include "retort/telemetry.h"
#include "retort/tokenizer.h"
#include "serve/openai_schema.h"

namespace {

using namespace retort;

const ServedModel& language_model() {
  static const ServedModel m = [] {
    ServedModel m;
    m.id = "kjv";
    m.kind = "language_model";
    m.tokenizer = make_byte_tokenizer();
    m.strings = std::make_shared<TokenStrings>(*m.tokenizer);
    m.context = 64;
    m.vocab_size = 256;
    return m;
  }();
  return m;
}

const ServedModel& classifier() {
  static const ServedModel m = [] {
    ServedModel m;
    m.id = "fashion";
    m.kind = "classifier";
    m.input_shape = {1, 2, 2};
    m.classes = 10;
    return m;
  }();
  return m;
}

void check_call(const serve::CompletionCall& call, int64_t vocab) {
  const GenerationRequest& g = call.gen;
  FUZZ_CHECK(!g.prompt.empty());
  for (int32_t id : g.prompt) FUZZ_CHECK(id >= 0 && id < vocab);
  FUZZ_CHECK(g.n >= 1 && g.n <= 16);
  FUZZ_CHECK(std::isfinite(g.temperature) && g.temperature >= 0 && g.temperature <= 2);
  FUZZ_CHECK(std::isfinite(g.top_p) && g.top_p > 0 && g.top_p <= 1);
  FUZZ_CHECK(g.max_tokens >= 0 && g.max_tokens <= (1 << 20));
  FUZZ_CHECK(g.logprobs >= -1 && g.logprobs <= 20);
  for (const std::string& s : g.stop) FUZZ_CHECK(!s.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(fuzz::as_text(data, size));
  static const ReferenceIndex reference({"in the beginning god created the heaven and the earth and the earth was without form"}, 8);
  const uint64_t h = prompt_simhash(body);
  FUZZ_CHECK((h == 0) == prompt_words(body).empty());
  FUZZ_CHECK((prompt_prefix(body) == 0) == prompt_words(body).empty());
  FUZZ_CHECK(reference.locate(body) >= -1 && reference.locate(body) < reference.chunks());
  serve::json b;
  try {
    b = serve::parse_body(body);
    serve::model_of(b);
  } catch (const ApiError& e) {
    FUZZ_CHECK(e.status >= 400 && e.status < 500);
    if (b.is_null()) return 0;
  }
  const ServedModel& lm = language_model();
  try {
    check_call(serve::parse_completion(b, lm), lm.vocab_size);
  } catch (const ApiError& e) {
    FUZZ_CHECK(e.status >= 400 && e.status < 500);
  }
  try {
    serve::CompletionCall call = serve::parse_chat(b, lm);
    check_call(call, lm.vocab_size);
    FUZZ_CHECK(call.gen.max_tokens >= 1);
  } catch (const ApiError& e) {
    FUZZ_CHECK(e.status >= 400 && e.status < 500);
  }
  try {
    serve::ClassifyCall call = serve::parse_classify(b, classifier());
    FUZZ_CHECK(!call.inputs.empty() && call.inputs.size() <= 256);
    FUZZ_CHECK(call.top_k >= 0 && call.top_k <= classifier().classes);
  } catch (const ApiError& e) {
    FUZZ_CHECK(e.status >= 400 && e.status < 500);
  }
  return 0;
}

// Fuzz target: what an OpenAI-style endpoint answers to the openai: teacher
// (src/teachers/api_answers.cpp): the body of any answer, read by every parser the client and
// the harvest use: error bodies, Retry-After, usage, the models list, the published tokenizer,
// a teacher-forced top-k answer for the window "And God " (k = 2), a written continuation and a
// /classify answer for 2 images of 3 classes. A bad answer must be an Error naming what was wrong.
// Accepted top-k: ids in the vocabulary, each position's logprobs descending and <= 0; accepted
// class log-probabilities: every cell written, in [log(1e-12), 0].
#include <cmath>

#include "fuzz_support.h"
#include "retort/error.h"
#include "retort/tokenizer.h"
#include "teachers/api_answers.h"

namespace {

using namespace retort;

template <typename F>
void quietly(F&& read) {
  try {
    read();
  } catch (const Error&) {
  }
}

const TokenStrings& byte_strings() {
  static const TokenStrings strings(*make_byte_tokenizer());
  return strings;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(fuzz::as_text(data, size));
  api_error_message(body);
  FUZZ_CHECK(parse_retry_after(body) <= 60);

  nlohmann::json answer;
  try {
    answer = answer_json(body, "fuzz", 200);
  } catch (const Error&) {
    return 0;
  }
  FUZZ_CHECK(answer_tokens(answer) >= 0);

  quietly([&] {
    nlohmann::json entry = model_entry_of(answer, "kjv", "fuzz/models");
    entry_is_retort(entry);
    entry_tokenizer_fingerprint(entry);
    const ServedModelShape shape = entry_model_shape(entry);
    FUZZ_CHECK(shape.classes >= 0);
    for (int64_t d : shape.input_shape) FUZZ_CHECK(d > 0);
  });
  quietly([&] {
    PublishedTokenizer published = published_tokenizer(answer, "fuzz", "kjv");
    tokenizer_from_files(published.files, "fuzz");
  });
  quietly([&] {
    const std::string prompt = "And God ";
    const std::vector<int64_t> x(prompt.begin(), prompt.end());
    const int64_t n = static_cast<int64_t>(x.size()), k = 2;
    std::vector<int64_t> ids(n * k, -1);
    std::vector<float> logprobs(n * k, NAN);
    read_topk_answer(answer, byte_strings(), x, n, k, "fuzz window", ids.data(), logprobs.data());
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < k; ++j) {
        FUZZ_CHECK(ids[t * k + j] >= 0 && ids[t * k + j] < 256);
        FUZZ_CHECK(logprobs[t * k + j] <= 0);
        FUZZ_CHECK(j == 0 || logprobs[t * k + j] <= logprobs[t * k + j - 1]);
      }
  });
  quietly([&] { completion_text(answer, "fuzz prompt"); });
  quietly([&] {
    const int64_t n = 2, classes = 3;
    std::vector<float> log_probs(n * classes, NAN);
    read_classify_answer(answer, n, classes, "fuzz images", log_probs.data());
    for (float v : log_probs) FUZZ_CHECK(v <= 0 && v >= -28);  // log(1e-12) = -27.6: every cell written
  });
  return 0;
}

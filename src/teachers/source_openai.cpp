// The openai: source: "openai:http://host:port/v1", an OpenAI-compatible endpoint reached by
// ApiClient (api_client.cpp): a language model (api_harvest.cpp) or an image classifier
// (api_classify_teacher.cpp). Opening checks the URL, the model id and the key; it sends nothing.
#include <cstdlib>

#include "retort/error.h"
#include "retort/teacher_source.h"

namespace retort {

bool matches_openai(const std::string& source) { return source.rfind(kApiTeacherPrefix, 0) == 0; }

OpenedTeacher open_openai(const std::string& source, const TeacherSourceOptions& options) {
  ApiEndpoint e = options.api;
  e.base_url = source.substr(std::string(kApiTeacherPrefix).size());
  while (!e.base_url.empty() && e.base_url.back() == '/') e.base_url.pop_back();
  if (e.base_url.rfind("http://", 0) != 0 && e.base_url.rfind("https://", 0) != 0)
    fail("teacher.path = '", source, "': the endpoint must be an http:// or https:// URL, e.g. ",
         kApiTeacherPrefix, "http://127.0.0.1:8080/v1");
  if (e.model.empty()) fail("--teacher-model / teacher.api_model is required for openai: teachers");
  const std::string& var = options.api_key_env;
  const char* key = var.empty() ? nullptr : std::getenv(var.c_str());
  if (!key || !*key)
    fail("the API key of ", e.base_url, " is read from the environment variable ",
         var.empty() ? "(none)" : var, ", which is ", key ? "empty" : "not set",
         "; export it, or name another with --api-key-env / teacher.api_key_env");
  e.api_key = key;

  OpenedTeacher t;
  t.source = source;
  t.kind = "openai";
  t.location = e.base_url;
  // A language model answers top-k logprobs (at most 20) and completions; a classifier its class
  // probabilities (/classify, kept as log-probabilities: dense). Which one the endpoint's model is,
  // GET models says when the harvest begins (a mismatch is an Error there), so both kinds of data
  // are accepted here and nothing is sent yet.
  t.signals.top_k = t.signals.text = t.signals.dense = true;
  t.for_text = t.for_images = true;
  t.api = std::move(e);
  return t;
}

}  // namespace retort

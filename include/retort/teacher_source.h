// Where a teacher comes from: teacher.path (--teacher) read by one registry of sources. Each
// source is one file under src/teachers/ (source_*.cpp) and one line in the table of
// src/teachers/teacher_source.cpp (name, prefix, example, matcher, opener, help):
//   folder       runs/demo/teacher            a retort run or model folder (model.json)
//   model_file   model.gguf, exported/        what `retort export` wrote: .gguf, safetensors folder
//   torchscript  torchscript:FILE.pt          a module traced or scripted in PyTorch
//   openai       openai:http://host:port/v1   an OpenAI-compatible endpoint: a language model
//                                             (top-k logprobs, text) or a classifier (/classify)
// Callers open a source and ask the result what it gives; none of them tests a prefix.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "retort/api_endpoint.h"
#include "retort/model.h"

namespace retort {

// What a teacher can answer with (TeacherSignal's kinds).
struct TeacherSignals {
  bool dense = false;  // full logits (B, classes) or (B, T, V): a local model; an openai:
                       // classifier's log-probabilities (B, classes)
  bool top_k = false;  // top-k ids + logprobs per position (language models)
  bool text = false;   // written continuations, for sequence-level KD (language models)
};

// What an opener needs besides the source: the openai: settings (teacher.api_*; retort/options.h).
struct TeacherSourceOptions {
  ApiEndpoint api;                             // model, concurrency, retries, timeout, budgets;
                                               // base_url and api_key are filled by the opener
  std::string api_key_env = "OPENAI_API_KEY";  // environment variable holding the API key
};

// An opened teacher source.
struct OpenedTeacher {
  std::string source;    // as given: "openai:http://127.0.0.1:8080/v1"
  std::string kind;      // the registry's name: "folder", "model_file", "torchscript", "openai"
  std::string location;  // the source without its prefix: a path or a URL
  TeacherSignals signals;
  bool for_images = false;  // answers image batches (a classifier)
  bool for_text = false;    // answers token windows (a language model); a TorchScript module
                            // without a tokenizer beside it may be either (probed when used), and
                            // so may an openai: endpoint (its GET models is asked at harvest)
  std::optional<LoadedModel> model;  // local teachers: the loaded model (on the CPU)
  std::optional<ApiEndpoint> api;    // openai: the endpoint, key read, nothing connected yet

  // The local model; a teacher without one (openai:) -> Error saying `purpose` needs its weights.
  LoadedModel& local_model(const std::string& purpose);
  // Error unless the teacher answers the data kind ("image" or "text"), naming what it answers.
  void check_data_kind(const std::string& data_kind) const;
};

// One entry of the registry.
struct TeacherSource {
  const char* name;     // "openai"
  const char* prefix;   // "openai:"; "" for plain paths
  const char* example;  // "openai:http://127.0.0.1:8080/v1": a spelling the matcher accepts
  bool (*matches)(const std::string& source);
  OpenedTeacher (*open)(const std::string& source, const TeacherSourceOptions& options);
  const char* help;  // one line
};

// The registry, in the order sources are tried (prefixes first, the plain path last).
const std::vector<TeacherSource>& teacher_sources();

// The entry that recognises `source`; none (an unknown "scheme:" prefix) -> Error listing the
// known sources with their examples.
const TeacherSource& teacher_source_of(const std::string& source);

// The teacher at `source`, opened by its entry: local models are loaded (a missing or damaged
// one -> that reader's Error), an openai: endpoint is checked (URL, model id, key) but not asked.
OpenedTeacher open_teacher(const std::string& source, const TeacherSourceOptions& options = {});

// The source without its prefix ("torchscript:a.pt" -> "a.pt"; a path is itself): no opening.
std::string teacher_source_location(const std::string& source);

}  // namespace retort

// The teacher sources: one table, one line per source (see retort/teacher_source.h). A new
// source is a source_<name>.cpp defining its matcher and opener, declared and listed here.
#include "retort/teacher_source.h"

#include "local_teacher.h"
#include "retort/error.h"

namespace retort {

// Each source's matcher and opener (src/teachers/source_<name>.cpp).
using Opener = OpenedTeacher(const std::string&, const TeacherSourceOptions&);
bool matches_torchscript(const std::string&);
Opener open_torchscript;
bool matches_openai(const std::string&);
Opener open_openai;
bool matches_model_file(const std::string&);
Opener open_model_file;
bool matches_folder(const std::string&);
Opener open_folder;

const std::vector<TeacherSource>& teacher_sources() {
  // Tried in order: the prefixes first, then files by their kind, then any other path.
  static const std::vector<TeacherSource> table = {
      {"torchscript", "torchscript:", "torchscript:teacher.pt", &matches_torchscript,
       &open_torchscript,
       "a module traced or scripted in PyTorch: images -> logits (B, classes) or ids (B, T) -> "
       "logits (B, T, V)"},
      {"openai", "openai:", "openai:http://127.0.0.1:8080/v1", &matches_openai, &open_openai,
       "an OpenAI-compatible endpoint (retort serve, vLLM, ...): a language model's top-k logprobs "
       "and text, or a classifier's probabilities (/classify)"},
      {"model_file", "", "model.gguf", &matches_model_file, &open_model_file,
       "what `retort export` wrote: a .gguf file or a safetensors folder"},
      {"folder", "", "runs/demo/teacher", &matches_folder, &open_folder,
       "a retort run or model folder (model.json there or in its model/ folder)"},
  };
  return table;
}

const TeacherSource& teacher_source_of(const std::string& source) {
  for (const TeacherSource& s : teacher_sources())
    if (s.matches(source)) return s;
  std::string known;
  for (const TeacherSource& s : teacher_sources())
    known += cat(known.empty() ? "" : ", ", s.name, " (", s.example, ")");
  fail("unknown teacher source '", source, "'; known sources: ", known);
}

OpenedTeacher open_teacher(const std::string& source, const TeacherSourceOptions& options) {
  return teacher_source_of(source).open(source, options);
}

std::string teacher_source_location(const std::string& source) {
  return source.substr(std::string(teacher_source_of(source).prefix).size());
}

// ---- what an opened teacher answers --------------------------------------------------------

namespace {

std::string signal_names(const TeacherSignals& s) {
  std::string out;
  for (auto [on, name] :
       {std::pair{s.dense, "dense logits"}, {s.top_k, "top-k logprobs"}, {s.text, "text"}})
    if (on) out += cat(out.empty() ? "" : ", ", name);
  return out.empty() ? "nothing" : out;
}

}  // namespace

LoadedModel& OpenedTeacher::local_model(const std::string& purpose) {
  if (!model)
    fail(purpose, " needs the teacher's weights, which the ", kind, " teacher ", source,
         " does not give (it answers ", signal_names(signals), ")");
  return *model;
}

void OpenedTeacher::check_data_kind(const std::string& data_kind) const {
  if (data_kind == "text" && !for_text)
    fail("the teacher at ", location, " is a ", model ? model->spec.name : kind,
         ", not a language model");
  if (data_kind != "text" && !for_images)
    fail("the ", kind, " teacher ", source, " answers with ", signal_names(signals),
         " for language models only: it needs data.kind = text");
}

OpenedTeacher local_teacher(const std::string& source, const std::string& kind,
                            const std::string& location, LoadedModel model) {
  OpenedTeacher t;
  t.source = source;
  t.kind = kind;
  t.location = location;
  const bool torchscript = model.spec.name == "torchscript";
  t.for_text = torchscript || model.spec.name == "gpt" || model.tokenizer != nullptr;
  t.for_images = torchscript || !t.for_text;
  t.signals.dense = true;
  t.signals.top_k = t.signals.text = t.for_text;
  t.model = std::move(model);
  return t;
}

}  // namespace retort

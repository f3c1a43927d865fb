// The two kinds of data a run learns from, behind one interface: images (classifiers,
// data.kind = images) and text (language models, data.kind = text). `retort train` and
// `retort distill` are written once against it (retort/commands.h); each kind owns its dataset,
// model family, metric and how a teacher is prepared for it (src/distill/image_kind.cpp,
// text_kind.cpp).
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "retort/options.h"
#include "retort/run_report.h"
#include "retort/teacher_source.h"

namespace retort {

// What a finished run tells its command.
struct RunOutcome {
  std::filesystem::path dir;
  std::string summary;    // one line for the terminal
  RunReportInput report;  // what report.html needs beyond the folder (the teacher's score)
};

// `retort eval` of one saved model: the figures as JSON and the lines a person reads.
struct Evaluation {
  nlohmann::json figures;                                   // {"model", "params", ...}
  std::vector<std::pair<std::string, std::string>> lines;  // ("accuracy", "88.12% on 10000 test examples")
};

class RunKind {
 public:
  virtual ~RunKind() = default;
  virtual const char* data_kind() const = 0;  // "images" | "text"
  virtual RunMetric metric() const = 0;
  // A model (model.*, train.*) on labels alone, in `dir`.
  virtual RunOutcome train(const Options& o, const std::filesystem::path& dir) const = 0;
  // A student from `teacher` (opened from teacher.path; checked to answer this kind of data).
  virtual RunOutcome distill(const Options& o, const std::filesystem::path& dir, OpenedTeacher& teacher) const = 0;
  // A saved model on this kind's held-out data: quality and speed, and with `teacher` (a source;
  // empty: none) top-1 agreement with it (eval_command adds what every model has: its size). `logits_out`: also write the logits there
  // (classifiers only).
  virtual Evaluation evaluate(const Options& o, const LoadedModel& model, const std::string& teacher,
                              const std::string& logits_out) const = 0;
};

// The kinds (defined in image_kind.cpp and text_kind.cpp).
const RunKind& image_runs();
const RunKind& text_runs();

// The kind for data.kind; any other value -> Error listing the kinds.
const RunKind& run_kind(const std::string& data_kind);
// The kind a saved model belongs to (a language model carries a tokenizer).
const RunKind& run_kind_of(const LoadedModel& model);

}  // namespace retort

// `retort train` and `retort distill` as library calls, for images and text alike (the kind
// comes from data.kind: retort/run_kind.h). Each writes one run folder with report.json and
// report.html; in a data-parallel job every rank trains and rank 0 writes.
#pragma once
#include <filesystem>
#include <string>

#include "retort/options.h"
#include "retort/run_kind.h"
#include "retort/run_report.h"

namespace retort {

struct CommandResult {
  std::filesystem::path dir;
  std::string summary;    // the terminal line (params, score, agreement, time)
  RunReportFiles report;  // empty paths on ranks other than 0
};

// A model on labels alone (model.*, train.*).
CommandResult train_command(const Options& o, const std::filesystem::path& dir);
// A student (model.*, train.*) from the teacher at teacher.path (any source: retort/teacher_source.h).
CommandResult distill_command(const Options& o, const std::filesystem::path& dir);

// `retort eval`: the saved model at `model` (any format load_model reads) on the held-out data
// of its kind; `teacher` (a source, optional) adds agreement; `logits_out` (classifiers) writes
// the logits.
Evaluation eval_command(const Options& o, const std::string& model, const std::string& teacher,
                        const std::string& logits_out);

}  // namespace retort

// report.json and report.html of one `retort train` or `retort distill` run, made from its
// folder (run.json, metrics.jsonl) so they describe what is on disk. The page says first what
// the model reached and, distilled, what it kept of its teacher; then the learning curves.
#pragma once
#include <cmath>
#include <filesystem>
#include <string>

namespace retort {

// The score a kind of run is judged by (image classifiers: test accuracy; language models:
// validation bits per byte).
struct RunMetric {
  std::string key;                // its key in run.json and in metrics.jsonl's epoch lines
  std::string label;              // "test accuracy"
  bool higher_is_better = true;
  double scale = 1;               // shown as value * scale (100 for a share shown in %)
  std::string unit;               // "%", " bits/byte"
  int digits = 2;                 // decimals shown
  std::string format(double value) const;  // "88.12%"
};

// What the folder does not hold: the command, and for distillation the teacher's score on the
// same data (NaN when unknown, e.g. an API teacher) and its size (0 when unknown).
struct RunReportInput {
  std::string command;  // "train" | "distill"
  RunMetric metric;
  double teacher_value = std::nan("");
  int64_t teacher_params = 0;
};

struct RunReportFiles {
  std::filesystem::path json, html;
  std::string headline;  // the first sentence of the page
};

// Writes dir/report.json and dir/report.html (atomically) from dir/run.json and dir/metrics.jsonl.
// A folder without a finished run.json -> Error.
RunReportFiles write_run_report(const std::filesystem::path& dir, const RunReportInput& input);

}  // namespace retort

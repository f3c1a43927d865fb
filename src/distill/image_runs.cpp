// Image classifiers as a kind of run (data.kind = images): IDX data, mlp/cnn models, test
// accuracy, a dense teacher whose logits on the training set are cached.
#include <torch/torch.h>

#include <cstdio>

#include "retort/distributed.h"
#include "retort/error.h"
#include "retort/eval.h"
#include "retort/run.h"
#include "retort/run_kind.h"

namespace retort {

namespace {

class ImageRuns : public RunKind {
 public:
  const char* data_kind() const override { return "images"; }

  RunMetric metric() const override { return {"test_accuracy", "test accuracy", true, 100, "%", 2}; }

  RunOutcome train(const Config& c, const std::filesystem::path& dir) const override {
    ImageSet train = load_split_from(c, "train"), test = load_split_from(c, "test");
    RunSpec spec = labels_run_spec(c, "model", "train", train, dir);
    spec.label = "train";
    RunResult r = execute_run(spec, train, test);
    return {dir, summary(r), {"train", metric()}};
  }

  RunOutcome distill(const Config& c, const std::filesystem::path& dir, OpenedTeacher& opened) const override {
    LoadedModel& t = opened.local_model("distilling an image classifier");
    ImageSet train = load_split_from(c, "train"), test = load_split_from(c, "test");
    PreparedTeacher prepared = prepare_teacher(c, t.model, t.dir.string(), train, test);
    if (!prepared.cache.path.empty() && dist::is_main())
      std::fprintf(stderr, "%s\n", prepared.cache.describe().c_str());
    RunSpec spec = labels_run_spec(c, "model", "train", train, dir);
    make_distill_spec(spec, c, prepared);
    spec.label = "distill";
    RunResult r = execute_run(spec, train, test);
    RunReportInput report{"distill", metric(), accuracy(prepared.test_logits, test.labels), count_parameters(*t.model)};
    return {dir, summary(r), report};
  }

 private:
  static std::string summary(const RunResult& r) {
    std::string s = cat(r.dir.string(), ": ", r.spec.name, ", ", r.params, " params, test accuracy ",
                        decimals(100 * r.test_accuracy, 2), "%");
    if (r.agreement >= 0) s += cat(", agreement with teacher ", decimals(100 * r.agreement, 2), "%");
    return s + cat(", ", decimals(r.train_seconds, 1), " s training");
  }
};

}  // namespace

const RunKind& image_runs() {
  static const ImageRuns kind;
  return kind;
}

}  // namespace retort

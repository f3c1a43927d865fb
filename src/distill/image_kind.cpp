// Image classifiers as a kind of run (data.kind = images): IDX data, mlp/cnn models, test
// accuracy, a dense teacher whose logits on the training set are cached.
#include <torch/torch.h>

#include <cstdio>

#include "retort/distributed.h"
#include "retort/error.h"
#include "retort/eval.h"
#include "retort/fs.h"
#include "retort/image_run.h"
#include "retort/run_kind.h"

namespace retort {

namespace {

class ImageRuns : public RunKind {
 public:
  const char* data_kind() const override { return "images"; }

  RunMetric metric() const override { return {"test_accuracy", "test accuracy", true, 100, "%", 2}; }

  RunOutcome train(const Options& o, const std::filesystem::path& dir) const override {
    ImageSet train = load_split_from(o.data, "train"), test = load_split_from(o.data, "test");
    RunSpec spec = labels_run_spec(o, o.model, o.train, train, dir);
    spec.label = "train";
    RunResult r = execute_run(spec, train, test);
    return {dir, summary(r), {"train", metric()}};
  }

  RunOutcome distill(const Options& o, const std::filesystem::path& dir, OpenedTeacher& opened) const override {
    ImageSet train = load_split_from(o.data, "train"), test = load_split_from(o.data, "test");
    PreparedTeacher prepared;
    int64_t teacher_params = 0;  // unknown behind an API
    if (opened.api) {
      prepared = prepare_api_teacher(o, *opened.api, train, test);
    } else {
      LoadedModel& t = opened.local_model("distilling an image classifier");
      prepared = prepare_teacher(o, t.model, t.dir.string(), train, test);
      teacher_params = count_parameters(*t.model);
    }
    if (!prepared.cache.path.empty() && dist::is_main())
      std::fprintf(stderr, "%s\n", prepared.cache.describe().c_str());
    RunSpec spec = labels_run_spec(o, o.model, o.train, train, dir);
    make_distill_spec(spec, o, prepared);
    spec.label = opened.api ? "distill (API)" : "distill";
    RunResult r = execute_run(spec, train, test);
    RunReportInput report{"distill", metric(), accuracy(prepared.test_logits, test.labels), teacher_params};
    return {dir, summary(r), report};
  }

  Evaluation evaluate(const Options& o, const LoadedModel& m, const std::string& teacher,
                      const std::string& logits_out) const override {
    ImageSet test = load_split_from(o.data, "test");
    check_model_fits(*m.model, test, "the model");
    const int64_t batch = o.data.eval_batch_size;
    torch::Tensor logits = predict_logits(*m.model, test, batch);
    if (!logits_out.empty()) write_logits(logits_out, logits, test.labels);
    Evaluation e;
    e.figures = {{"accuracy", accuracy(logits, test.labels)}, {"examples", test.size()}};
    if (!teacher.empty()) {
      LoadedModel t = open_teacher(teacher).local_model("retort eval --teacher");
      check_model_fits(*t.model, test, "the teacher");
      e.figures["agreement"] = agreement(logits, predict_logits(*t.model, test, batch));
    }
    SpeedStats speed = measure_speed(*m.model, test.images.sizes().slice(1));
    e.figures["latency_ms"] = speed.single_ms;
    e.figures["throughput"] = speed.batch_throughput;
    e.lines = {{"accuracy", cat(decimals(100 * e.figures["accuracy"].get<double>(), 2), "% on ", test.size(),
                                " test examples")}};
    if (e.figures.contains("agreement"))
      e.lines.push_back({"agreement", cat(decimals(100 * e.figures["agreement"].get<double>(), 2),
                                          "% top-1 with the teacher")});
    e.lines.push_back({"latency", cat(decimals(speed.single_ms, 3), " ms per example (batch 1, median)")});
    e.lines.push_back({"throughput", cat(decimals(speed.batch_throughput, 0), " examples/s (batch ", speed.batch, ")")});
    return e;
  }

 private:
  // logits (N, V) and labels (N) as JSON; each float prints exactly (as the double it widens to).
  static void write_logits(const std::string& path, const torch::Tensor& logits, const torch::Tensor& labels) {
    torch::Tensor l = logits.to(torch::kCPU, torch::kFloat32).contiguous();
    torch::Tensor y = labels.to(torch::kCPU, torch::kInt64).contiguous();
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t i = 0; i < l.size(0); ++i) {
      const float* row = l[i].data_ptr<float>();
      rows.push_back(std::vector<float>(row, row + l.size(1)));
    }
    std::vector<int64_t> ids(y.data_ptr<int64_t>(), y.data_ptr<int64_t>() + y.numel());
    atomic_write_text(path, nlohmann::json{{"logits", rows}, {"labels", ids}}.dump() + "\n");
  }

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

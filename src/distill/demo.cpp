// The demo pipeline: teacher, students over seeds, speed, report.
#include "retort/demo.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "retort/error.h"
#include "retort/eval.h"
#include "retort/fs.h"
#include "retort/report.h"
#include "retort/runtime.h"
#include "retort/image_run.h"

namespace retort {

namespace {

struct StudentGroup {
  std::string name, method;
  std::vector<RunResult> runs;
  double mean(double RunResult::*field) const {
    double s = 0;
    for (const auto& r : runs) s += r.*field;
    return s / runs.size();
  }
  // Sample standard deviation (n - 1); 0 for a single seed.
  double stddev(double RunResult::*field) const {
    if (runs.size() < 2) return 0;
    double m = mean(field), s = 0;
    for (const auto& r : runs) s += (r.*field - m) * (r.*field - m);
    return std::sqrt(s / (runs.size() - 1));
  }
};

std::string pct(double x, int digits = 2) { return decimals(100 * x, digits); }
std::string num(double x, int digits = 2) { return decimals(x, digits); }

}  // namespace

DemoReport run_demo(const Options& o) {
  fs::path dir = fs::path(o.run.dir) / o.run.name;
  ensure_writable_dir(dir);
  atomic_write_text(dir / "config.toml", o.toml());
  ImageSet train = load_split_from(o.data, "train"), test = load_split_from(o.data, "test");
  std::fprintf(stderr, "data: %s; %s\n", train.source.c_str(), test.source.c_str());

  // ---- teacher: trained once, reused while its configuration is unchanged ----
  RunSpec tspec = labels_run_spec(o, o.teacher.model, o.teacher.train, train, dir / "teacher");
  tspec.label = "teacher";
  tspec.on_mismatch = OnMismatch::Restart;
  RunResult teacher = execute_run(tspec, train, test);
  std::fprintf(stderr, "teacher: %s, %lld params, test accuracy %.2f%%%s\n", teacher.spec.name.c_str(),
               (long long)teacher.params, 100 * teacher.test_accuracy, teacher.reused ? " (reused)" : "");
  PreparedTeacher prepared = prepare_teacher(o, teacher.model, tspec.dir.string(), train, test, teacher.test_logits);
  std::fprintf(stderr, "%s\n", prepared.cache.describe().c_str());

  // ---- students: baseline (labels) and distilled (kd), several seeds each ----
  const int64_t seeds = o.demo_seeds, base_seed = o.run.seed;
  StudentGroup baseline{"baseline", "labels", {}}, distilled{"distilled", "kd", {}};
  for (int64_t k = 0; k < seeds; ++k) {
    const Options ok = o.with_seed(base_seed + k);
    for (StudentGroup* g : {&baseline, &distilled}) {
      RunSpec s = labels_run_spec(ok, ok.model, ok.train, train, dir / "students" / g->name / cat("seed-", k));
      if (g == &distilled) make_distill_spec(s, ok, prepared);
      s.teacher_test_logits = prepared.test_logits;
      s.resume = false;  // students are cheap: retrain them on every demo run
      s.label = cat(g->name, " seed ", k);
      g->runs.push_back(execute_run(s, train, test));
    }
  }
  for (StudentGroup* g : {&baseline, &distilled})
    save_model(*g->runs.front().model, g->runs.front().spec, dir / "students" / g->name / "model");

  // ---- speed ----
  auto example = test.images.sizes().slice(1);
  SpeedStats tspeed = measure_speed(*teacher.model, example), sspeed = measure_speed(*distilled.runs[0].model, example);

  // ---- report.json ----
  using json = nlohmann::json;
  const double T = o.distill.temperature, alpha = o.distill.alpha;
  auto group_json = [&](const StudentGroup& g) {
    json j = {{"name", g.name},
              {"method", g.method},
              {"model", g.runs[0].spec.name},
              {"params", g.runs[0].params},
              {"bytes_on_disk", g.runs[0].bytes_on_disk},
              {"accuracy_mean", g.mean(&RunResult::test_accuracy)},
              {"accuracy_std", g.stddev(&RunResult::test_accuracy)},
              {"seeds", g.runs.size()},
              {"agreement_mean", g.mean(&RunResult::agreement)},
              {"train_seconds", g.mean(&RunResult::train_seconds)},
              {"epochs", o.train.train.epochs},
              {"accuracy_per_seed", json::array()}};
    for (const auto& r : g.runs) j["accuracy_per_seed"].push_back(r.test_accuracy);
    if (g.method == "kd") j["temperature"] = T, j["alpha"] = alpha;
    return j;
  };
  // The three numbers a user asks first: what share of the teacher the student kept, what share
  // of the teacher-baseline gap distillation recovered, and how much smaller and faster it is.
  const double acc_t = teacher.test_accuracy, acc_b = baseline.mean(&RunResult::test_accuracy),
               acc_d = distilled.mean(&RunResult::test_accuracy);
  const double gain = acc_d - acc_b, kept = acc_d / acc_t;
  const double recovered = acc_t > acc_b ? gain / (acc_t - acc_b) : std::nan("");
  const double size_ratio = double(teacher.bytes_on_disk) / double(distilled.runs[0].bytes_on_disk);
  const double speed_ratio = tspeed.single_ms / sspeed.single_ms;
  const std::string on = o.data.validation > 0 ? "validation" : "test";
  const std::string headline = cat(
      "The distilled student kept ", pct(kept, 1), "% of the teacher's ", on, " accuracy (", pct(acc_d), "% vs ",
      pct(acc_t), "%) and recovered ", std::isnan(recovered) ? std::string("-") : pct(recovered, 1),
      "% of the gap between the teacher and the same student trained on labels (", pct(acc_b), "%, ", seeds,
      " seeds each), at 1/", num(size_ratio, 1), " of the teacher's size on disk and ", num(speed_ratio, 0),
      "x its speed on one example (", num(sspeed.single_ms, 3), " ms vs ", num(tspeed.single_ms, 3), " ms).");
  json report = {
      {"task", o.data.dataset},
      {"teacher",
       {{"model", teacher.spec.name},
        {"params", teacher.params},
        {"bytes_on_disk", teacher.bytes_on_disk},
        {"accuracy", teacher.test_accuracy},
        {"train_seconds", teacher.train_seconds},
        {"reused", teacher.reused}}},
      {"students", {group_json(baseline), group_json(distilled)}},
      {"latency",
       {{"teacher_ms", tspeed.single_ms},
        {"student_ms", sspeed.single_ms},
        {"teacher_throughput", tspeed.batch_throughput},
        {"student_throughput", sspeed.batch_throughput},
        {"throughput_batch", tspeed.batch}}},
      {"headline", headline},
      {"evaluated_on", on},
      {"distillation_gain", gain},
      {"share_kept", kept},
      {"gap_recovered", std::isnan(recovered) ? json(nullptr) : json(recovered)},
      {"size_ratio", size_ratio},
      {"latency_ratio", speed_ratio},
      {"compression", double(teacher.params) / double(distilled.runs[0].params)},
      {"cache", {{"path", prepared.cache.path}, {"hit", prepared.cache.hit}, {"bytes", prepared.cache.bytes},
                 {"seconds", prepared.cache.seconds}}},
      {"environment", {{"threads", at::get_num_threads()}, {"blas", blas_backend()}}},
      {"data", {{"train", train.source}, {"test", test.source}}},
  };
  DemoReport out;
  out.json_path = (dir / "report.json").string();
  atomic_write_text(out.json_path, report.dump(2) + "\n");

  // ---- tables and report.html ----
  std::vector<std::vector<std::string>> rows = {
      {"model", "method", "params", "size KiB", on + " acc %", "agreement %", "latency ms", "train s"}};
  rows.push_back({cat("teacher (", teacher.spec.name, ")"), "labels", cat(teacher.params),
                  num(teacher.bytes_on_disk / 1024.0, 0), pct(teacher.test_accuracy), "-", num(tspeed.single_ms, 3),
                  num(teacher.train_seconds, 1)});
  for (const StudentGroup* g : {&baseline, &distilled}) {
    std::string method = g->method == "kd" ? cat("kd T=", T, " a=", alpha) : g->method;
    rows.push_back({cat(g->name, " (", g->runs[0].spec.name, ")"), method, cat(g->runs[0].params),
                    num(g->runs[0].bytes_on_disk / 1024.0, 0),
                    pct(g->mean(&RunResult::test_accuracy)) + " +- " + pct(g->stddev(&RunResult::test_accuracy)),
                    pct(g->mean(&RunResult::agreement)), num(sspeed.single_ms, 3),
                    num(g->mean(&RunResult::train_seconds), 1)});
  }
  out.table = headline + "\n\n" + render_text_table(rows) +
              cat("\ndistillation gain: ", gain >= 0 ? "+" : "", pct(gain), " points of ", on, " accuracy (mean of ",
                  seeds, " seeds), student is 1/", num(double(teacher.params) / distilled.runs[0].params, 1),
                  " of the teacher's parameters\n");

  Plot curves{"Accuracy per epoch (" + on + ")", "epoch", on + " accuracy (%)", {}, false};
  Series tcurve{"teacher", epoch_curve(dir / "teacher" / "metrics.jsonl", "test_accuracy"), {}};
  for (auto& p : tcurve.xy) p.second *= 100;
  curves.series.push_back(tcurve);
  for (const StudentGroup* g : {&baseline, &distilled})
    for (size_t k = 0; k < g->runs.size(); ++k) {
      Series s{cat(g->name, " seed ", k), epoch_curve(g->runs[k].dir / "metrics.jsonl", "test_accuracy"), {}};
      for (auto& p : s.xy) p.second *= 100;
      curves.series.push_back(s);
    }
  Plot size_plot{"Accuracy vs size", "parameters (log scale)", on + " accuracy (%)", {}, true};
  size_plot.series.push_back({"teacher", {{double(teacher.params), 100 * teacher.test_accuracy}}, {0.0}});
  for (const StudentGroup* g : {&baseline, &distilled})
    size_plot.series.push_back({cat(g->name, " (mean +- std)"),
                                {{double(g->runs[0].params), 100 * g->mean(&RunResult::test_accuracy)}},
                                {100 * g->stddev(&RunResult::test_accuracy)}});
  std::string notes = cat(headline, "\n", "Teacher ", teacher.spec.name, " distilled into ", distilled.runs[0].spec.name, " (1/",
                          num(double(teacher.params) / distilled.runs[0].params, 1), " of the parameters). ",
                          "Students: ", seeds, " seeds each, mean +- sample std. Distillation gain: ", pct(gain),
                          " points.");
  out.html_path = (dir / "report.html").string();
  atomic_write_text(out.html_path, render_html("retort demo: " + o.data.dataset, rows,
                                                {curves, size_plot}, report, notes));
  return out;
}

}  // namespace retort

// `retort demo lm`: teacher LM -> baseline and distilled students on the King James Bible, over
// demo.seeds seeds each (with distill.init_from_teacher, a labels student started from the teacher
// too, as the control), with generation samples and a report that opens with what was kept.
#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "retort/demo.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/generate.h"
#include "retort/lm_run.h"
#include "retort/text_data.h"
#include "retort/report.h"
#include "retort/runtime.h"

namespace retort {

const std::string& lm_recipe_toml() {
  // Keep configs/kjv-lm.toml identical (a unit test compares them).
  static const std::string recipe = R"(# The language-model recipe: `retort demo lm` starts from these settings.
[data]
kind = "text"
dataset = "kjv-lm"
batch_size = 32
eval_batch_size = 32

[text]
corpus = "kjv"
tokenizer = "auto"
vocab_size = 2048
seq_len = 128
validation_fraction = 0.05

[teacher.model]
name = "gpt"
d_model = 192
layers = 4
heads = 4
dropout = 0.0

[teacher.train]
epochs = 2
optimizer = "adamw"
lr = 0.002
weight_decay = 0.1
warmup_steps = 100

[model]
name = "gpt"
d_model = 96
layers = 3
heads = 4
dropout = 0.0

[train]
epochs = 1
optimizer = "adamw"
lr = 0.006
weight_decay = 0.1
warmup_steps = 100

[distill]
loss = "kl"
temperature = 1.0
alpha = 0.5
top_k = 20
init_from_teacher = true

[demo]
seeds = 2
)";
  return recipe;
}

namespace {

std::string sample_text(ModelImpl& model, const Tokenizer& tok, const std::string& prompt, uint64_t seed) {
  std::vector<int32_t> ids = tok.encode(prompt);
  torch::Tensor p = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).unsqueeze(0);
  SamplingOptions s;
  s.temperature = 0.8;
  s.top_p = 0.95;
  s.seed = seed;
  torch::Tensor out = generate(model, p.to(model_device(model)), 60, s).to(torch::kCPU)[0].to(torch::kInt32).contiguous();
  std::string text = tok.decode(std::vector<int32_t>(out.data_ptr<int32_t>(), out.data_ptr<int32_t>() + out.numel()));
  // Sampled byte pieces need not form valid UTF-8; JSON and HTML need it: bad bytes -> U+FFFD.
  return nlohmann::json::parse(
             nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
      .get<std::string>();
}

// One student recipe over the seeds.
struct LmStudents {
  std::string name, method;
  std::vector<LmRunResult> runs;
  template <class F>
  double mean(F f) const {
    double s = 0;
    for (const auto& r : runs) s += f(r);
    return s / runs.size();
  }
  // Sample standard deviation (n - 1); 0 for a single seed.
  template <class F>
  double stddev(F f) const {
    if (runs.size() < 2) return 0;
    double m = mean(f), s = 0;
    for (const auto& r : runs) s += (f(r) - m) * (f(r) - m);
    return std::sqrt(s / (runs.size() - 1));
  }
  double bpb() const { return mean([](const LmRunResult& r) { return r.val.bpb; }); }
  double bpb_std() const { return stddev([](const LmRunResult& r) { return r.val.bpb; }); }
};

// Share of the teacher-`base` gap that `student` closes, seed by seed (-> mean, sample std).
std::pair<double, double> gap_recovered(const LmStudents& base, const LmStudents& student, double teacher_bpb) {
  std::vector<double> g;
  for (size_t k = 0; k < student.runs.size(); ++k) {
    double gap = base.runs[k].val.bpb - teacher_bpb;
    g.push_back(gap > 0 ? (base.runs[k].val.bpb - student.runs[k].val.bpb) / gap : 0);
  }
  double m = 0, v = 0;
  for (double x : g) m += x / g.size();
  for (double x : g) v += (x - m) * (x - m);
  return {m, g.size() > 1 ? std::sqrt(v / (g.size() - 1)) : 0};
}

nlohmann::json lm_json(const LmRunResult& r) {
  nlohmann::json j = {{"model", r.spec.name},          {"params", r.params},
                      {"bytes_on_disk", r.bytes_on_disk}, {"val_bpb", r.val.bpb},
                      {"val_loss", r.val.loss},         {"tokens_per_second", r.tokens_per_second},
                      {"train_tokens_per_second", r.train_tokens_per_second},
                      {"train_seconds", r.train_seconds}, {"reused", r.reused}};
  if (r.val.agreement >= 0) j["agreement"] = r.val.agreement;
  return j;
}

// A student recipe: the means over seeds in the fields one run has, plus stds and every seed.
nlohmann::json lm_group_json(const LmStudents& g) {
  auto of = [&](double LmScore::*f) { return g.mean([f](const LmRunResult& r) { return r.val.*f; }); };
  nlohmann::json j = lm_json(g.runs[0]);
  j["name"] = g.name;
  j["method"] = g.method;
  j["val_bpb"] = g.bpb();
  j["val_bpb_std"] = g.bpb_std();
  j["val_loss"] = of(&LmScore::loss);
  if (g.runs[0].val.agreement >= 0) j["agreement"] = of(&LmScore::agreement);
  j["tokens_per_second"] = g.mean([](const LmRunResult& r) { return r.tokens_per_second; });
  j["train_seconds"] = g.mean([](const LmRunResult& r) { return r.train_seconds; });
  j["seeds"] = nlohmann::json::array();
  for (const auto& r : g.runs) j["seeds"].push_back(lm_json(r));
  return j;
}

std::string pm(double mean, double std, int digits) { return cat(decimals(mean, digits), " +- ", decimals(std, digits)); }

}  // namespace

DemoReport run_demo_lm(const Options& o) {
  fs::path dir = fs::path(o.run.dir) / o.run.name;
  ensure_writable_dir(dir);
  atomic_write_text(dir / "config.toml", o.toml());
  TextData data = load_text_data(o.text, nullptr, dir / "tokenizer");

  // ---- teacher: trained once, reused while its configuration is unchanged ----
  RunSpec tspec = lm_labels_run_spec(o, o.teacher.model, o.teacher.train, data, dir / "teacher");
  tspec.label = "teacher";
  tspec.on_mismatch = OnMismatch::Restart;
  LmRunResult teacher = execute_lm_run(tspec, data);
  std::fprintf(stderr, "teacher: %lld params, validation %.4f bits/byte%s\n", (long long)teacher.params,
               teacher.val.bpb, teacher.reused ? " (reused)" : "");
  PreparedLmTeacher prepared = prepare_lm_teacher(o, teacher.model, tspec.dir.string(), data);
  if (!prepared.cache.path.empty())
    std::fprintf(stderr, "%s\n", prepared.cache.describe(data.train.size()).c_str());

  // ---- students: same model, steps and tokens per seed; labels vs the teacher ----
  // The first seed keeps the folders students/baseline and students/distilled; seed k > 0 adds "-seedk".
  const bool init = o.distill.init_from_teacher;
  const std::function<std::string(ModelImpl&)> from_teacher = [&](ModelImpl& s) {
    return init_student_from_teacher(s, *teacher.model);
  };
  const std::string& loss = o.distill.loss;
  LmStudents baseline{"baseline", "labels", {}}, control{"baseline-init", "labels", {}},
      distilled{"distilled", loss, {}};
  RunSpec dspec;
  const int64_t seeds = o.demo_seeds, base_seed = o.run.seed;
  for (int64_t k = 0; k < seeds; ++k) {
    const Options ok = o.with_seed(base_seed + k);
    auto folder = [&](const std::string& name) { return dir / "students" / (k == 0 ? name : cat(name, "-seed", k)); };
    RunSpec b = lm_labels_run_spec(ok, ok.model, ok.train, data, folder("baseline"));
    b.teacher_test_logits = prepared.val_top1;
    b.on_mismatch = OnMismatch::Restart;
    b.label = cat("baseline, seed ", base_seed + k);
    baseline.runs.push_back(execute_lm_run(b, data));
    if (init) {  // the control: is the gain the start or the distillation?
      RunSpec c = lm_labels_run_spec(ok, ok.model, ok.train, data, folder("baseline-init"));
      c.teacher_test_logits = prepared.val_top1;
      c.on_mismatch = OnMismatch::Restart;
      c.digest += "init:" + prepared.model->fingerprint();
      c.extra["init"] = "teacher";
      c.label = cat("baseline-init, seed ", base_seed + k);
      control.runs.push_back(execute_lm_run(c, data, from_teacher));
    }
    RunSpec d = lm_labels_run_spec(ok, ok.model, ok.train, data, folder("distilled"));
    make_lm_distill_spec(d, ok, prepared);
    d.on_mismatch = OnMismatch::Restart;
    d.label = cat("distilled, seed ", base_seed + k);
    distilled.runs.push_back(execute_lm_run(d, data, init ? from_teacher : std::function<std::string(ModelImpl&)>()));
    if (k == 0) dspec = d;
  }

  // ---- samples (first seed) ----
  std::vector<std::pair<std::string, std::string>> samples;
  nlohmann::json samples_json = nlohmann::json::array();
  const std::vector<std::string> prompts = {"And God said", "In the beginning"};
  struct Who {
    const char* name;
    ModelImpl* model;
  };
  for (const Who& w : {Who{"teacher", teacher.model.get()}, Who{"baseline", baseline.runs[0].model.get()},
                       Who{"distilled", distilled.runs[0].model.get()}})
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::string text = sample_text(*w.model, *data.tokenizer, prompts[i], 1000 + i);
      samples.emplace_back(cat(w.name, ": \"", prompts[i], "\""), text);
      samples_json.push_back({{"model", w.name}, {"prompt", prompts[i]}, {"text", text}});
    }

  // ---- what was kept: the first lines of report.json and report.html ----
  const double t_bpb = teacher.val.bpb, d_bpb = distilled.bpb(), b_bpb = baseline.bpb();
  const auto [recovered, recovered_std] = gap_recovered(baseline, distilled, t_bpb);
  const double student_params = double(distilled.runs[0].params);
  const double student_tps = distilled.mean([](const LmRunResult& r) { return r.tokens_per_second; });
  const double size_ratio = student_params / double(teacher.params);
  const double latency_ratio = student_tps > 0 ? teacher.tokens_per_second / student_tps : 0;
  std::string headline = cat(
      "The distilled student keeps ", decimals(100 * t_bpb / d_bpb, 1), "% of the teacher's bits/byte (teacher / student: ",
      decimals(t_bpb, 4), " / ", pm(d_bpb, distilled.bpb_std(), 4), ") and recovers ", pm(100 * recovered, 100 * recovered_std, 1),
      "% of the gap between the teacher and the baseline (labels only, random start, same steps: ", pm(b_bpb, baseline.bpb_std(), 4),
      "), mean +- sample std over ", seeds, seeds == 1 ? " seed" : " seeds", "; at ", decimals(100 * size_ratio, 1),
      "% of the teacher's parameters (1/", decimals(1 / size_ratio, 2), ") and ", decimals(100 * latency_ratio, 1),
      "% of its time per token (", decimals(1 / latency_ratio, 2), "x its throughput).");
  nlohmann::ordered_json kept = {{"headline", headline},
                                 {"teacher_bpb_kept", t_bpb / d_bpb},
                                 {"gap_recovered", recovered},
                                 {"gap_recovered_std", recovered_std},
                                 {"gap_against", "baseline: labels only, random start, same steps and tokens"},
                                 {"size_ratio", size_ratio},
                                 {"latency_ratio", latency_ratio},
                                 {"seeds", seeds}};
  if (init) {
    const auto [vs_init, vs_init_std] = gap_recovered(control, distilled, t_bpb);
    const auto [by_init, by_init_std] = gap_recovered(baseline, control, t_bpb);
    kept["gap_recovered_vs_baseline_init"] = vs_init;
    kept["gap_recovered_vs_baseline_init_std"] = vs_init_std;
    kept["gap_recovered_by_init_alone"] = by_init;
    kept["gap_recovered_by_init_alone_std"] = by_init_std;
    headline += cat(" Starting from the teacher's weights alone (labels only) recovers ", pm(100 * by_init, 100 * by_init_std, 1),
                    "%; against that student, distillation recovers ", pm(100 * vs_init, 100 * vs_init_std, 1), "%.");
    kept["headline"] = headline;
  }

  // ---- report.json ----
  const int64_t cached_tokens = (data.train.size() - 1) / data.seq_len * data.seq_len;  // whole windows only
  nlohmann::json tj = lm_json(teacher), bj = lm_group_json(baseline), dj = lm_group_json(distilled);
  dj["objective"] = dspec.objective.describe();
  dj["top_k"] = prepared.top_k;
  if (init) dj["init"] = "teacher";  // the control (report["controls"]) starts the same way
  nlohmann::json report = {
      {"task", o.data.dataset},
      {"tokenizer", data.tokenizer->describe()},
      {"corpus", data.corpus},
      {"seq_len", data.seq_len},
      {"train_tokens", data.train.size()},
      {"val_tokens", data.validation.size()},
      {"teacher", tj},
      {"students", {bj, dj}},
      {"bpb_gain", b_bpb - d_bpb},
      {"gap_recovered", recovered},
      {"compression", double(teacher.params) / student_params},
      {"cache",
       {{"top_k", prepared.top_k},
        {"bytes_per_token", prepared.cache.bytes > 0 ? double(prepared.cache.bytes) / cached_tokens : 0.0},
        {"bytes", prepared.cache.bytes},
        {"path", prepared.cache.path},
        {"hit", prepared.cache.hit},
        {"seconds", prepared.cache.seconds}}},
      {"samples", samples_json},
      {"environment", {{"threads", at::get_num_threads()}, {"blas", blas_backend()}}},
  };
  if (init) {
    nlohmann::json cj = lm_group_json(control);
    cj["init"] = "teacher";
    report["controls"] = {cj};
  }
  nlohmann::ordered_json ordered = {{"kept", kept}};  // what was kept comes first
  for (auto& [key, value] : report.items()) ordered[key] = value;
  DemoReport out;
  out.json_path = (dir / "report.json").string();
  atomic_write_text(out.json_path, ordered.dump(2) + "\n");

  // ---- tables and report.html ----
  std::vector<std::vector<std::string>> rows = {{"model", "method", "params", "val bits/byte", "val loss",
                                                 "agreement %", "tokens/s", "train s"}};
  rows.push_back({"teacher (gpt)", "labels", cat(teacher.params), decimals(t_bpb, 4), decimals(teacher.val.loss, 4), "-",
                  decimals(teacher.tokens_per_second, 0), decimals(teacher.train_seconds, 1)});
  auto row = [&](const std::string& name, const std::string& method, const LmStudents& g) {
    auto m = [&](auto f, int digits, double scale = 1) { return decimals(scale * g.mean(f), digits); };
    rows.push_back({name, method, cat(g.runs[0].params), pm(g.bpb(), g.bpb_std(), 4),
                    m([](const LmRunResult& r) { return r.val.loss; }, 4),
                    m([](const LmRunResult& r) { return r.val.agreement; }, 2, 100),
                    m([](const LmRunResult& r) { return r.tokens_per_second; }, 0),
                    m([](const LmRunResult& r) { return r.train_seconds; }, 1)});
  };
  row("baseline (gpt)", "labels", baseline);
  if (init) row("control (gpt)", "labels, teacher init", control);
  row("distilled (gpt)", cat(loss, prepared.top_k > 0 ? cat(" top-", prepared.top_k) : " dense", init ? ", teacher init" : ""),
      distilled);
  out.table = render_text_table(rows) + cat("\n", headline, "\nstudent is 1/", decimals(1 / size_ratio, 1),
                                            " of the teacher; distillation gain ", decimals(b_bpb - d_bpb, 4), " bits/byte, ",
                                            decimals(100 * recovered, 1), "% of the teacher-baseline gap recovered\n");

  Plot curves{"Validation bits per byte during training (first seed)", "optimizer step", "bits per byte", {}, false};
  curves.series.push_back({"teacher", teacher.curve, {}});
  curves.series.push_back({"baseline student", baseline.runs[0].curve, {}});
  if (init) curves.series.push_back({"baseline student, teacher init", control.runs[0].curve, {}});
  curves.series.push_back({"distilled student", distilled.runs[0].curve, {}});
  Plot size_plot{"Quality vs size (students: mean +- std)", "parameters (log scale)", "validation bits per byte", {}, true};
  size_plot.series.push_back({"teacher", {{double(teacher.params), t_bpb}}, {}});
  size_plot.series.push_back({"baseline", {{student_params, b_bpb}}, {baseline.bpb_std()}});
  if (init) size_plot.series.push_back({"baseline, teacher init", {{student_params, control.bpb()}}, {control.bpb_std()}});
  size_plot.series.push_back({"distilled", {{student_params, d_bpb}}, {distilled.bpb_std()}});
  std::string notes = cat(headline, "\nA gpt teacher (", teacher.params, " params) distilled into a gpt student (",
                          distilled.runs[0].params, " params) on ", data.corpus, ", tokenizer ", data.tokenizer->describe(),
                          ". Objective: ", dspec.objective.describe(),
                          prepared.top_k > 0 ? cat(" against the teacher's top-", prepared.top_k, " tokens + tail (cache ",
                                                   decimals(report["cache"]["bytes_per_token"].get<double>(), 1), " bytes/token)")
                                             : std::string(" against dense logits"),
                          init ? "; the student starts from a selection of the teacher's weights" : "",
                          ". Every student: same steps and tokens; seeds ", base_seed, "..", base_seed + seeds - 1, ".");
  out.html_path = (dir / "report.html").string();
  atomic_write_text(out.html_path, render_html("retort demo lm: " + o.data.dataset, rows, {curves, size_plot},
                                                nlohmann::json::parse(ordered.dump()), notes, samples));
  return out;
}

}  // namespace retort

// `retort demo lm`: teacher LM -> baseline and distilled students on the King James Bible,
// with generation samples and a report.
#include <torch/torch.h>

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
lr = 0.003
weight_decay = 0.1
warmup_steps = 100

[distill]
loss = "kl"
temperature = 1.0
alpha = 0.5
top_k = 20
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

nlohmann::json lm_json(const LmRunResult& r) {
  nlohmann::json j = {{"model", r.spec.name},          {"params", r.params},
                      {"bytes_on_disk", r.bytes_on_disk}, {"val_bpb", r.val.bpb},
                      {"val_loss", r.val.loss},         {"tokens_per_second", r.tokens_per_second},
                      {"train_tokens_per_second", r.train_tokens_per_second},
                      {"train_seconds", r.train_seconds}, {"reused", r.reused}};
  if (r.val.agreement >= 0) j["agreement"] = r.val.agreement;
  return j;
}

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

  // ---- students: same model, steps, tokens and seed; labels vs the teacher ----
  RunSpec bspec = lm_labels_run_spec(o, o.model, o.train, data, dir / "students" / "baseline");
  bspec.teacher_test_logits = prepared.val_top1;
  bspec.on_mismatch = OnMismatch::Restart;
  bspec.label = "baseline";
  LmRunResult baseline = execute_lm_run(bspec, data);
  RunSpec dspec = lm_labels_run_spec(o, o.model, o.train, data, dir / "students" / "distilled");
  make_lm_distill_spec(dspec, o, prepared);
  dspec.on_mismatch = OnMismatch::Restart;
  dspec.label = "distilled";
  LmRunResult distilled = execute_lm_run(dspec, data);

  // ---- samples ----
  std::vector<std::pair<std::string, std::string>> samples;
  nlohmann::json samples_json = nlohmann::json::array();
  const std::vector<std::string> prompts = {"And God said", "In the beginning"};
  struct Who {
    const char* name;
    ModelImpl* model;
  };
  for (const Who& w : {Who{"teacher", teacher.model.get()}, Who{"baseline", baseline.model.get()},
                       Who{"distilled", distilled.model.get()}})
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::string text = sample_text(*w.model, *data.tokenizer, prompts[i], 1000 + i);
      samples.emplace_back(cat(w.name, ": \"", prompts[i], "\""), text);
      samples_json.push_back({{"model", w.name}, {"prompt", prompts[i]}, {"text", text}});
    }

  // ---- report.json ----
  const std::string& loss = o.distill.loss;
  double gap = baseline.val.bpb - teacher.val.bpb;
  double recovered = gap > 0 ? (baseline.val.bpb - distilled.val.bpb) / gap : 0;
  const int64_t cached_tokens = (data.train.size() - 1) / data.seq_len * data.seq_len;  // whole windows only
  nlohmann::json tj = lm_json(teacher), bj = lm_json(baseline), dj = lm_json(distilled);
  bj["name"] = "baseline";
  bj["method"] = "labels";
  dj["name"] = "distilled";
  dj["method"] = loss;
  dj["objective"] = dspec.objective.describe();
  dj["top_k"] = prepared.top_k;
  nlohmann::json report = {
      {"task", o.data.dataset},
      {"tokenizer", data.tokenizer->describe()},
      {"corpus", data.corpus},
      {"seq_len", data.seq_len},
      {"train_tokens", data.train.size()},
      {"val_tokens", data.validation.size()},
      {"teacher", tj},
      {"students", {bj, dj}},
      {"bpb_gain", baseline.val.bpb - distilled.val.bpb},
      {"gap_recovered", recovered},
      {"compression", double(teacher.params) / double(distilled.params)},
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
  DemoReport out;
  out.json_path = (dir / "report.json").string();
  atomic_write_text(out.json_path, report.dump(2) + "\n");

  // ---- tables and report.html ----
  std::vector<std::vector<std::string>> rows = {{"model", "method", "params", "val bits/byte", "val loss",
                                                 "agreement %", "tokens/s", "train s"}};
  auto row = [&](const std::string& name, const std::string& method, const LmRunResult& r) {
    rows.push_back({name, method, cat(r.params), decimals(r.val.bpb, 4), decimals(r.val.loss, 4),
                    r.val.agreement >= 0 ? decimals(100 * r.val.agreement, 2) : "-", decimals(r.tokens_per_second, 0),
                    decimals(r.train_seconds, 1)});
  };
  row("teacher (gpt)", "labels", teacher);
  row("baseline (gpt)", "labels", baseline);
  row("distilled (gpt)", cat(loss, prepared.top_k > 0 ? cat(" top-", prepared.top_k) : " dense"), distilled);
  out.table = render_text_table(rows) +
              cat("\nstudent is 1/", decimals(double(teacher.params) / distilled.params, 1), " of the teacher; ",
                  "distillation gain ", decimals(baseline.val.bpb - distilled.val.bpb, 4), " bits/byte, ",
                  decimals(100 * recovered, 1), "% of the teacher-baseline gap recovered\n");

  Plot curves{"Validation bits per byte during training", "optimizer step", "bits per byte", {}, false};
  curves.series.push_back({"teacher", teacher.curve, {}});
  curves.series.push_back({"baseline student", baseline.curve, {}});
  curves.series.push_back({"distilled student", distilled.curve, {}});
  Plot size_plot{"Quality vs size", "parameters (log scale)", "validation bits per byte", {}, true};
  size_plot.series.push_back({"teacher", {{double(teacher.params), teacher.val.bpb}}, {}});
  size_plot.series.push_back({"baseline", {{double(baseline.params), baseline.val.bpb}}, {}});
  size_plot.series.push_back({"distilled", {{double(distilled.params), distilled.val.bpb}}, {}});
  std::string notes = cat("A gpt teacher (", teacher.params, " params) distilled into a gpt student (", distilled.params,
                          " params) on ", data.corpus, ", tokenizer ", data.tokenizer->describe(), ". Objective: ",
                          dspec.objective.describe(), prepared.top_k > 0 ? cat(" against the teacher's top-", prepared.top_k,
                          " tokens + tail (cache ", decimals(report["cache"]["bytes_per_token"].get<double>(), 1),
                          " bytes/token)") : std::string(" against dense logits"),
                          ". Both students: same steps, tokens and seed. Recovered ", decimals(100 * recovered, 1),
                          "% of the teacher-baseline gap.");
  out.html_path = (dir / "report.html").string();
  atomic_write_text(out.html_path, render_html("retort demo lm: " + o.data.dataset, rows,
                                                {curves, size_plot}, report, notes, samples));
  return out;
}

}  // namespace retort

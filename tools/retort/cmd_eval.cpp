// `retort eval`: quality (accuracy, or bits per byte for language models), agreement, size and
// speed of a saved model.
#include <cstdio>

#include "common.h"
#include "retort/eval.h"
#include "retort/fs.h"
#include "retort/lm.h"
#include "retort/lm_flows.h"
#include "retort/load_model.h"
#include "retort/model.h"
#include "retort/run.h"
#include "retort/teacher_source.h"

namespace retort::cli {

namespace {

// logits (N, V) and labels (N) as JSON; each float prints exactly (as the double it widens to).
void write_logits(const std::string& path, const torch::Tensor& logits,
                  const torch::Tensor& labels) {
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

// A language model on the held-out text of text.corpus, read with the model's own tokenizer.
nlohmann::json eval_language_model(const Config& c, const LoadedModel& m, const std::string& teacher_path) {
  TextData data = load_text_data(c, m.tokenizer);
  int64_t seq_len = data.seq_len;
  if (m.spec.options.contains("max_seq_len"))
    seq_len = std::min(seq_len, m.spec.options.at("max_seq_len").get<int64_t>());
  const int64_t batch = c.get_int("data.eval_batch_size");
  torch::Tensor teacher_top1;
  if (!teacher_path.empty()) {
    LoadedModel t = open_teacher(teacher_path).local_model("retort eval --teacher");
    int64_t teacher_vocab = 0;
    lm_teacher_tokenizer(t, c, &teacher_vocab);
    check_same_vocabulary(teacher_vocab, m.tokenizer->vocab_size(), "agreement is measured token by token");
    score_lm(*t.model, data.validation, *data.tokenizer, seq_len, batch, {}, &teacher_top1);
  }
  LmScore score = score_lm(*m.model, data.validation, *data.tokenizer, seq_len, batch, teacher_top1);
  nlohmann::json out = {{"model", m.dir.string()}, {"name", m.spec.name}, {"params", count_parameters(*m.model)},
                        {"bytes_on_disk", model_size_on_disk(m.dir)}, {"tokenizer", m.tokenizer->describe()},
                        {"val_bpb", score.bpb}, {"val_loss", score.loss}, {"tokens", score.tokens},
                        {"tokens_per_second", lm_tokens_per_second(*m.model, m.tokenizer->vocab_size(), seq_len, batch)}};
  if (score.agreement >= 0) out["agreement"] = score.agreement;
  return out;
}

}  // namespace

void register_eval(CLI::App& app) {
  static ConfigArgs args;
  static std::string model_path, teacher_path, logits_path;
  static bool as_json = false;
  auto* cmd = app.add_subcommand("eval",
                                 "Evaluate a saved model on the test split (data.* keys): accuracy, agreement\n"
                                 "with a teacher, parameters, size on disk, latency and throughput.\n"
                                 "Language models (they carry a tokenizer) are scored on the held-out text of\n"
                                 "text.corpus instead: bits per byte, loss, agreement, tokens/s.\n"
                                 "What `retort export --format safetensors|gguf` wrote is read back too.\n"
                                 "Example: retort eval --model runs/demo/students/distilled --teacher runs/demo/teacher\n"
                                 "         retort eval --model student.gguf --teacher runs/demo-lm/teacher");
  cmd->add_option("--model", model_path,
                  "model folder (or a run folder holding model/), an exported safetensors folder or .gguf file")
      ->required();
  cmd->add_option("--teacher", teacher_path,
                  "optional teacher (folder or torchscript:FILE.pt): also report top-1 agreement with it");
  cmd->add_flag("--json", as_json, "print one JSON object instead of a table");
  cmd->add_option("--logits-out", logits_path,
                  "also write the model's logits on the evaluated test examples (in order;\n"
                  "data.test_subset limits them) to this JSON file:\n"
                  "{\"logits\": [[...] per example], \"labels\": [...]}");
  add_config_args(cmd, args);
  cmd->callback([] {
    Config c = resolve_config(args);
    setup_runtime(c);
    LoadedModel m = load_model(model_path);
    if (m.tokenizer) {
      if (!logits_path.empty()) fail("--logits-out is for classifiers; ", model_path, " is a language model");
      nlohmann::json out = eval_language_model(c, m, teacher_path);
      if (as_json) {
        std::printf("%s\n", out.dump(2).c_str());
        return;
      }
      std::printf("model       %s (%s, %s)\n", m.dir.c_str(), m.spec.name.c_str(), out["tokenizer"].get<std::string>().c_str());
      std::printf("params      %lld (%.1f KiB on disk)\n", (long long)out["params"].get<int64_t>(),
                  out["bytes_on_disk"].get<int64_t>() / 1024.0);
      std::printf("validation  %.4f bits/byte (loss %.4f nats/token) on %lld tokens\n", out["val_bpb"].get<double>(),
                  out["val_loss"].get<double>(), (long long)out["tokens"].get<int64_t>());
      if (out.contains("agreement"))
        std::printf("agreement   %.2f%% top-1 with the teacher\n", 100 * out["agreement"].get<double>());
      std::printf("throughput  %.0f tokens/s\n", out["tokens_per_second"].get<double>());
      return;
    }
    ImageSet test = load_split_from(c, "test");
    check_model_fits(*m.model, test, "the model");
    torch::Tensor logits = predict_logits(*m.model, test, c.get_int("data.eval_batch_size"));
    if (!logits_path.empty()) write_logits(logits_path, logits, test.labels);
    nlohmann::json out = {{"model", m.dir.string()}, {"name", m.spec.name}, {"params", count_parameters(*m.model)},
                          {"bytes_on_disk", model_size_on_disk(m.dir)}, {"accuracy", accuracy(logits, test.labels)},
                          {"examples", test.size()}};
    if (!teacher_path.empty()) {
      LoadedModel t = open_teacher(teacher_path).local_model("retort eval --teacher");
      check_model_fits(*t.model, test, "the teacher");
      out["agreement"] = agreement(logits, predict_logits(*t.model, test, c.get_int("data.eval_batch_size")));
    }
    SpeedStats speed = measure_speed(*m.model, test.images.sizes().slice(1));
    out["latency_ms"] = speed.single_ms;
    out["throughput"] = speed.batch_throughput;
    if (as_json) {
      std::printf("%s\n", out.dump(2).c_str());
      return;
    }
    std::printf("model       %s (%s)\n", m.dir.c_str(), m.spec.name.c_str());
    std::printf("params      %lld (%.1f KiB on disk)\n", (long long)out["params"].get<int64_t>(),
                out["bytes_on_disk"].get<int64_t>() / 1024.0);
    std::printf("accuracy    %.2f%% on %lld test examples\n", 100 * out["accuracy"].get<double>(),
                (long long)test.size());
    if (out.contains("agreement")) std::printf("agreement   %.2f%% top-1 with the teacher\n", 100 * out["agreement"].get<double>());
    std::printf("latency     %.3f ms per example (batch 1, median)\n", speed.single_ms);
    std::printf("throughput  %.0f examples/s (batch %lld)\n", speed.batch_throughput, (long long)speed.batch);
  });
}

}  // namespace retort::cli

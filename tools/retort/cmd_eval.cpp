// `retort eval`: accuracy, agreement, size and speed of a saved model.
#include <cstdio>

#include "common.h"
#include "retort/eval.h"
#include "retort/model.h"
#include "retort/run.h"

namespace retort::cli {

void register_eval(CLI::App& app) {
  static ConfigArgs args;
  static std::string model_path, teacher_path;
  static bool as_json = false;
  auto* cmd = app.add_subcommand("eval",
                                 "Evaluate a saved model on the test split (data.* keys): accuracy, agreement\n"
                                 "with a teacher, parameters, size on disk, latency and throughput.\n"
                                 "Example: retort eval --model runs/demo/students/distilled --teacher runs/demo/teacher");
  cmd->add_option("--model", model_path, "model folder (or a run folder holding model/)")->required();
  cmd->add_option("--teacher", teacher_path, "optional teacher folder: also report top-1 agreement with it");
  cmd->add_flag("--json", as_json, "print one JSON object instead of a table");
  add_config_args(cmd, args);
  cmd->callback([] {
    Config c = resolve_config(args);
    setup_runtime(c);
    ImageSet test = load_split_from(c, "test");
    LoadedModel m = load_model(model_path);
    check_model_fits(*m.model, test, "the model");
    torch::Tensor logits = predict_logits(*m.model, test, c.get_int("data.eval_batch_size"));
    nlohmann::json out = {{"model", m.dir.string()}, {"name", m.spec.name}, {"params", count_parameters(*m.model)},
                          {"bytes_on_disk", model_size_on_disk(m.dir)}, {"accuracy", accuracy(logits, test.labels)},
                          {"examples", test.size()}};
    if (!teacher_path.empty()) {
      LoadedModel t = load_model(teacher_path);
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

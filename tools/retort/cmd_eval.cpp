// `retort eval`: quality (accuracy, or bits per byte for language models), agreement, size and
// speed of a saved model.
#include <cstdio>

#include "common.h"
#include "retort/commands.h"

namespace retort::cli {

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
    const Options o = read_options(resolve_config(args));
    setup_runtime(o.run);
    Evaluation e = eval_command(o, model_path, teacher_path, logits_path);
    if (as_json) {
      std::printf("%s\n", e.figures.dump(2).c_str());
      return;
    }
    for (const auto& [what, text] : e.lines) std::printf("%-12s%s\n", what.c_str(), text.c_str());
  });
}

}  // namespace retort::cli

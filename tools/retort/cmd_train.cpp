// `retort train`: a model on labels alone (a teacher, or a baseline student).
#include <cstdio>

#include "retort/run.h"
#include "run_args.h"

namespace retort::cli {

void register_train(CLI::App& app) {
  static RunArgs args;
  auto* cmd = app.add_subcommand("train",
                                 "Train a model on labels alone (model.* and train.* keys).\n"
                                 "Writes runs/<run.name>/ (default runs/train): config.toml, metrics.jsonl,\n"
                                 "checkpoints/last.pt, model/, run.json.\n"
                                 "Example: retort train --set model.name=cnn --set train.epochs=5");
  add_run_args(cmd, args);
  cmd->callback([] {
    Config c = resolve_config(args.config);
    std::filesystem::path dir = run_dir_for(c, args, "train");
    setup_runtime(c);
    ImageSet train = load_split_from(c, "train"), test = load_split_from(c, "test");
    RunSpec spec = labels_run_spec(c, "model", "train", train, dir);
    spec.label = "train";
    RunResult r = execute_run(spec, train, test);
    std::printf("%s: %s, %lld params, test accuracy %.2f%%, %.1f s training\n", dir.c_str(), r.spec.name.c_str(),
                (long long)r.params, 100 * r.test_accuracy, r.train_seconds);
  });
}

}  // namespace retort::cli

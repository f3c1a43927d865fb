// `retort train`: a model on labels alone (a teacher, or a baseline student).
#include <cstdio>

#include "retort/lm_flows.h"
#include "retort/run.h"
#include "run_args.h"

namespace retort::cli {

void register_train(CLI::App& app) {
  static RunArgs args;
  auto* cmd = app.add_subcommand("train",
                                 "Train a model on labels alone (model.* and train.* keys).\n"
                                 "Writes runs/<run.name>/ (default runs/train): config.toml, metrics.jsonl,\n"
                                 "checkpoints/last.pt, model/, run.json.\n"
                                 "Data parallel: scripts/torchrun --nproc_per_node=N --no_python retort train ... (or srun,\n"
                                 "or RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT); data.batch_size is the global batch.\n"
                                 "With data.kind = text, a gpt language model on next-token labels of text.corpus\n"
                                 "(validation bits per byte reported; model/ holds the tokenizer too).\n"
                                 "Examples: retort train --set model.name=cnn --set train.epochs=5\n"
                                 "          retort train --config configs/kjv-lm.toml");
  add_run_args(cmd, args);
  cmd->callback([] {
    Config c = resolve_config(args.config);
    std::filesystem::path dir = run_dir_for(c, args, "train");
    setup_runtime(c, /*data_parallel=*/true);
    if (c.get_string("data.kind") == "text") {
      print_result(describe_lm_result(lm_train(c, dir)));
      return;
    }
    ImageSet train = load_split_from(c, "train"), test = load_split_from(c, "test");
    RunSpec spec = labels_run_spec(c, "model", "train", train, dir);
    spec.label = "train";
    RunResult r = execute_run(spec, train, test);
    print_result(cat(dir.string(), ": ", r.spec.name, ", ", r.params, " params, test accuracy ",
                     decimals(100 * r.test_accuracy, 2), "%, ", decimals(r.train_seconds, 1), " s training"));
  });
}

}  // namespace retort::cli

// `retort train`: a model on labels alone (a teacher, or a baseline student).
#include <cstdio>

#include "retort/commands.h"
#include "run_args.h"

namespace retort::cli {

void register_train(CLI::App& app) {
  static RunArgs args;
  auto* cmd = app.add_subcommand("train",
                                 "Train a model on labels alone (model.* and train.* keys).\n"
                                 "Writes runs/<run.name>/ (default runs/train): config.toml, metrics.jsonl,\n"
                                 "checkpoints/last.pt, model/, run.json, report.json and report.html.\n"
                                 "Data parallel: scripts/torchrun --nproc_per_node=N --no_python retort train ... (or srun,\n"
                                 "or RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT); data.batch_size is the global batch.\n"
                                 "With data.kind = text, a gpt language model on next-token labels of text.corpus\n"
                                 "(validation bits per byte reported; model/ holds the tokenizer too).\n"
                                 "Examples: retort train --set model.name=cnn --set train.epochs=5\n"
                                 "          retort train --config configs/kjv-lm.toml");
  add_run_args(cmd, args);
  cmd->callback([] {
    const Options o = read_options(resolve_config(args.config));
    std::filesystem::path dir = run_dir_for(o, args, "train");
    setup_runtime(o.run, /*data_parallel=*/true);
    print_command_result(train_command(o, dir));
  });
}

}  // namespace retort::cli

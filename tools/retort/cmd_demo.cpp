// `retort demo`: the main job, end to end on Fashion-MNIST.
#include <cstdio>

#include "retort/config_schema.h"
#include "retort/demo.h"
#include "common.h"

namespace retort::cli {

void register_demo(CLI::App& app) {
  static ConfigArgs args;
  static std::string task = "images";
  auto* cmd = app.add_subcommand(
      "demo",
      "retort demo [images]: the main job on Fashion-MNIST: train a CNN teacher (teacher.*),\n"
      "train the MLP student (model.*, train.*) on labels alone (the baseline) and distilled\n"
      "from the teacher (distill.*), demo.seeds seeds each; write runs/demo/report.json + .html.\n"
      "retort demo lm: the same for language models on the King James Bible: a gpt teacher,\n"
      "a 4x smaller gpt student on labels and distilled from the teacher's cached top-k\n"
      "(the recipe is configs/kjv-lm.toml); writes runs/demo-lm/report.json + .html.\n"
      "A second run reuses the trained teacher and its cache.");
  cmd->add_option("task", task, "images (Fashion-MNIST classifiers) | lm (language models)")
      ->check(CLI::IsMember({"images", "lm"}));
  add_config_args(cmd, args);
  cmd->callback([] {
    bool lm = task == "lm";
    Config c = Config::load(retort_schema(), args.file, args.sets, lm ? lm_recipe_toml() : "");
    if (c.get_string("run.name").empty()) c.set_value("run.name", std::string(lm ? "demo-lm" : "demo"));
    const Options o = read_options(c);
    setup_runtime(o.run);
    DemoReport r = lm ? run_demo_lm(o) : run_demo(o);
    std::fputs(r.table.c_str(), stdout);
    std::printf("\nreport: %s\n        %s\n", r.json_path.c_str(), r.html_path.c_str());
  });
}

}  // namespace retort::cli

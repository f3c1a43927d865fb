// `retort demo`: the main job, end to end on Fashion-MNIST.
#include <cstdio>

#include "retort/demo.h"
#include "common.h"

namespace retort::cli {

void register_demo(CLI::App& app) {
  static ConfigArgs args;
  auto* cmd = app.add_subcommand(
      "demo",
      "The main job on Fashion-MNIST: train a CNN teacher (teacher.*), train the MLP student\n"
      "(model.*, train.*) on labels alone (the baseline) and distilled from the teacher\n"
      "(distill.*), demo.seeds seeds each; then write runs/demo/report.json and report.html.\n"
      "A second run reuses the trained teacher and its cached logits.");
  add_config_args(cmd, args);
  cmd->callback([] {
    Config c = resolve_config(args);
    if (c.get_string("run.name").empty()) c.set_value("run.name", std::string("demo"));
    setup_runtime(c);
    DemoReport r = run_demo(c);
    std::fputs(r.table.c_str(), stdout);
    std::printf("\nreport: %s\n        %s\n", r.json_path.c_str(), r.html_path.c_str());
  });
}

}  // namespace retort::cli

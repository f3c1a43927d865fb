// `retort demo`: the main job, end to end on Fashion-MNIST.
#include <cstdio>
#include <filesystem>

#include "retort/config_schema.h"
#include "retort/demo_guard.h"
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
      "a 4x smaller gpt student on labels and distilled from the teacher's cached top-k, demo.seeds\n"
      "seeds each; with distill.init_from_teacher (the recipe's) students start from a selection of the\n"
      "teacher's weights and a labels student started the same way is the control (the recipe is\n"
      "configs/kjv-lm.toml); writes runs/demo-lm/report.json + .html.\n"
      "retort demo guard: the provider side: three `retort serve` providers on loopback sharing\n"
      "STIX 2.1 over TAXII 2.1, people at all three, a hydra campaign that starts at A; shows A\n"
      "detecting and publishing, B and C refusing the actor on first contact, a student distilled\n"
      "from what the hydra got, and `retort guard verify` on it; writes runs/demo-guard/report.json\n"
      "+ .html (its keys are the simulator's sim.*: see `retort guard simulate --help`).\n"
      "A second run reuses the trained teacher and its cache.");
  cmd->add_option("task", task, "images (Fashion-MNIST classifiers) | lm (language models) | guard (the provider side)")
      ->check(CLI::IsMember({"images", "lm", "guard"}));
  add_config_args(cmd, args);
  cmd->callback([] {
    if (task == "guard") {
      const Config c = Config::load(sim_schema(), args.file, args.sets, guard_demo_toml());
      const nlohmann::json r = run_guard_demo(read_guard_demo_options(c), "runs/demo-guard", std::filesystem::read_symlink("/proc/self/exe"));
      for (const auto& line : r["summary"]) std::printf("%s\n", line.get<std::string>().c_str());
      std::printf("\nreport: runs/demo-guard/report.json\n        runs/demo-guard/report.html\n");
      return;
    }
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

// `retort guard simulate`: benign users and distillation campaigns against a live `retort serve`
// with detection on; report.json / report.html say what was detected, when, and at what cost.
#include <cstdio>
#include <string>
#include <vector>

#include "common.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/simulate.h"

namespace retort::cli {

namespace {

struct SimArgs {
  ConfigArgs config;
  std::string out = "runs/guard-sim";
  std::string model;
  int64_t seed = -1;  // -1: sim.seed
};

std::string sim_keys_help() {
  std::string s;
  for (const ConfigKey& k : sim_schema().keys()) s += "  " + k.name + " = " + value_to_string(k.def) + "\n      " + k.help + "\n";
  return s;
}

void simulate(const SimArgs& a) {
  std::vector<std::string> sets = a.config.sets;
  if (!a.model.empty()) sets.push_back("sim.model=" + a.model);
  if (a.seed >= 0) sets.push_back("sim.seed=" + std::to_string(a.seed));
  const Config c = Config::load(sim_schema(), a.config.file, sets);
  const SimOptions o = read_sim_options(c);
  fs::create_directories(a.out);
  atomic_write_text(fs::path(a.out) / "config.toml", c.to_toml());
  const fs::path self = fs::read_symlink("/proc/self/exe");
  const nlohmann::json report = run_simulation(o, a.out, self);
  for (const auto& line : report["summary"]) std::printf("%s\n", line.get<std::string>().c_str());
  std::printf("report: %s\n        %s\n", (fs::path(a.out) / "report.json").c_str(), (fs::path(a.out) / "report.html").c_str());
}

}  // namespace

void register_guard_simulate(CLI::App& guard) {
  static SimArgs a;
  auto* cmd = guard.add_subcommand(
      "simulate",
      "Prove the guard against traffic: a live `retort serve` (a child process on 127.0.0.1, a fresh database\n"
      "OUT/serve.db, guard.detect on) is driven by benign users and four distillation campaigns at once.\n"
      "Benign: sim.benign_keys people, each with a key, an address (sent as X-Forwarded-For; some share an\n"
      "office address) and a common user agent, keeping working hours of a simulated day (sim.hour seconds\n"
      "per hour), asking about held-out KJV verses in sessions of chats that carry their history, with bursty\n"
      "think times and idle gaps, a few wanting logprobs; evaluation jobs scoring a fixed passage set with echo +\n"
      "logprobs, again and again; an app backend sending many short chats from one address.\n"
      "Campaigns, all through retort's own openai: teacher code (the harvest of `retort distill --teacher\n"
      "openai:URL`): c1 one key harvesting top-k logprobs by teacher forcing over training windows; c2 a hydra\n"
      "of many keys from a few addresses, each harvesting a shard of one plan; c3 text only, templated\n"
      "'Continue the passage: ...' prompts; c4 low and slow, one window every few seconds round the clock,\n"
      "under every rate limit. A refused key (403) stops; throttling only slows a campaign.\n"
      "The report is computed from the server's own audit and actions tables. report.json and report.html\n"
      "(OUT) start with what was found: per campaign, whether and when it was detected and responded to\n"
      "(throttle, strip, mark, block), the requests and tokens it had harvested by then and their share of its\n"
      "plan; every benign key the guard acted on; and the bar: each campaign detected before 10% of its\n"
      "harvest, no benign key blocked, at most 1% throttled. A timeline per campaign plots its harvested share\n"
      "against time with the detection and response marked. --seed changes the benign mix and timing.\n"
      "Without sim.model a tiny byte-level gpt is trained into OUT/teacher first (once).\n"
      "Example: retort guard simulate --config configs/guard-sim.toml --out runs/guard-sim --seed 1\n"
      "         retort guard simulate --out /tmp/sim --set sim.duration=40 --set sim.benign_keys=100\n"
      "Keys (--config FILE.toml, then --set sim.KEY=VALUE):\n" +
          sim_keys_help());
  add_config_args(cmd, a.config);
  cmd->add_option("--out", a.out, "folder of the run: teacher/, serve.db, serve.log, harvest/, report.json, report.html")
      ->capture_default_str();
  cmd->add_option("--model", a.model, "the served teacher (a model or run folder); the same as --set sim.model=PATH");
  cmd->add_option("--seed", a.seed, "seed of the benign mix and timing (sim.seed)")->check(CLI::Range(int64_t(0), int64_t(1) << 50));
  cmd->callback([] { simulate(a); });
}

}  // namespace retort::cli

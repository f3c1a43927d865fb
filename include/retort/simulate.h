// `retort guard simulate`: benign users and distillation campaigns against a live `retort serve`
// with detection on, scored from the server's own database. This header is the simulator's
// public face: its options (the sim.* keys of configs/guard-sim.toml), the run, and what it found.
// Not the detector: that lives in the server (guard.detect); the simulator only drives traffic
// and reads the `audit` and `actions` tables back.
#pragma once
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "retort/config.h"

namespace retort {

// Everything a simulation is set by (one field per sim.* key; defaults in sim_schema()).
struct SimOptions {
  std::string model;        // served teacher (folder); "" = train a tiny gpt into OUT/teacher
  std::string server_config;  // a TOML file for `retort serve --config` (policy, guard.*); "" none
  int64_t seed = 0;          // benign mix and timing
  double duration = 180;     // seconds of traffic (wall time); campaigns stop at the end
  double hour = 0;           // seconds per simulated hour (guard.hour); 0 = duration / 24
  int64_t workers = 2;       // `retort serve --workers`
  int64_t seq_len = 128;     // tokens per harvested window (at most the teacher's context)
  // benign side
  int64_t benign_keys = 120;      // ordinary users, one key each
  double benign_requests = 8;     // mean requests per ordinary user over the run
  int64_t offices = 6;            // office NAT addresses shared by several users
  double office_share = 0.3;      // share of users behind an office address
  double chat_share = 0.7;        // share of users on /v1/chat/completions (others: /v1/completions)
  double logprobs_share = 0.1;    // share of users who ask for logprobs
  int64_t eval_jobs = 2;          // heavy legitimate keys: an evaluation job (echo + logprobs on a fixed set)
  int64_t eval_set = 40;          // passages in the evaluation set
  int64_t eval_rounds = 3;        // times each evaluation job scores its set
  int64_t apps = 1;               // heavy legitimate keys: an app backend serving many end users
  double app_requests = 150;      // requests of each app over the run
  int64_t user_rpm = 60, user_tpm = 40000;  // limits of every key but the campaigns' own tier
  // campaigns (0 windows / prompts / keys: that campaign is off)
  int64_t campaign_rpm = 300, campaign_tpm = 200000;  // limits of the top-k and sequence-KD keys
  int64_t topk_windows = 400;     // (1) one key: echo + logprobs=k + max_tokens 0 over corpus windows
  int64_t topk_k = 10;
  int64_t topk_concurrency = 4;
  double topk_start = 0.15;       // share of the duration before a campaign starts
  int64_t hydra_keys = 24;        // (2) many keys from a few addresses, each a shard of one harvest
  int64_t hydra_addresses = 3;
  int64_t hydra_windows = 480;    // over all its keys
  int64_t hydra_parallel = 6;     // keys harvesting at once
  double hydra_start = 0.3;
  int64_t seqkd_prompts = 240;    // (3) text only: templated "Continue the passage: ..." prompts
  int64_t seqkd_new_tokens = 48;
  int64_t seqkd_concurrency = 3;
  double seqkd_start = 0.45;
  double slow_interval = 3;       // (4) low and slow: one window every this many seconds, round the clock
  int64_t slow_windows = 0;       // planned; 0 = as many as the duration allows
  double slow_start = 0;
  bool students = false;          // train students on what each top-k campaign got vs everything (slow)
};

// The sim.* keys with defaults, ranges and help (its own schema: `retort config` lists retort's).
const ConfigSchema& sim_schema();
// Options from a loaded sim configuration.
SimOptions read_sim_options(const Config& c);

// One run: makes `out` (the teacher when needed, keys and the server's database serve.db), serves,
// drives the traffic, stops the server, and writes out/report.json and out/report.html.
// `retort_binary`: the executable that serves, trains and distils (/proc/self/exe from the CLI).
// Returns report.json's content.
nlohmann::json run_simulation(const SimOptions& o, const std::filesystem::path& out,
                              const std::filesystem::path& retort_binary);

}  // namespace retort

// The sim.* keys of `retort guard simulate` (configs/guard-sim.toml): defaults, ranges, help, and
// their one reader. Kept apart from retort's schema: no other command reads them.
#include "retort/simulate.h"

namespace retort {

namespace {

ConfigSchema build_sim_schema() {
  ConfigSchema s;
  using K = ValueKind;
  auto str = [&](const char* n, const char* def, const char* help) { s.add({n, K::String, std::string(def), help}); };
  auto num = [&](const char* n, double def, double lo, double hi, const char* help) {
    s.add({n, K::Float, def, help, lo, hi});
  };
  auto cnt = [&](const char* n, int64_t def, double lo, double hi, const char* help) {
    s.add({n, K::Int, def, help, lo, hi});
  };
  str("sim.model", "", "the served teacher (a model or run folder); empty: a tiny gpt trained into OUT/teacher once");
  str("sim.server_config", "", "a TOML file passed to `retort serve --config` (the detection policy, guard.*)");
  cnt("sim.seed", 0, 0, 1e15, "seed of the benign mix and timing (--seed)");
  num("sim.duration", 180, 5, 86400, "seconds of traffic; campaigns still running then are stopped");
  num("sim.hour", 0, 0, 3600, "seconds per simulated hour (the server's guard.hour); 0: duration / 24, one day per run");
  cnt("sim.workers", 2, 1, 256, "model executions at once in the server (retort serve --workers)");
  cnt("sim.seq_len", 128, 8, 1 << 20, "tokens per harvested window (at most the teacher's context)");
  cnt("sim.benign_keys", 120, 1, 100000, "ordinary users, one key each");
  num("sim.benign_requests", 8, 1, 1e5, "mean requests per ordinary user over the run (heavy-tailed per user)");
  cnt("sim.offices", 6, 0, 10000, "office NAT addresses shared by several users");
  num("sim.office_share", 0.3, 0, 1, "share of users behind an office address");
  num("sim.chat_share", 0.7, 0, 1, "share of users on /v1/chat/completions (the others: /v1/completions)");
  num("sim.logprobs_share", 0.1, 0, 1, "share of users who ask for logprobs");
  cnt("sim.eval_jobs", 2, 0, 1000, "heavy legitimate keys: an evaluation job scoring a fixed set (echo + logprobs)");
  cnt("sim.eval_set", 40, 1, 100000, "passages in each evaluation set");
  cnt("sim.eval_rounds", 3, 1, 1000, "times each evaluation job scores its set");
  cnt("sim.apps", 1, 0, 1000, "heavy legitimate keys: an app backend serving many end users from one address");
  num("sim.app_requests", 150, 1, 1e7, "requests of each app over the run");
  cnt("sim.user_rpm", 60, 0, 1e9, "requests per minute of ordinary keys (and the hydra's)");
  cnt("sim.user_tpm", 40000, 0, 1e12, "tokens per minute of ordinary keys (and the hydra's)");
  cnt("sim.campaign_rpm", 300, 0, 1e9, "requests per minute of the paid tier: campaigns 1, 3, 4, evaluation jobs, apps");
  cnt("sim.campaign_tpm", 200000, 0, 1e12, "tokens per minute of the paid tier");
  cnt("sim.topk_windows", 400, 0, 1e9, "campaign 1 (one key, top-k logprobs by teacher forcing): windows planned; 0: off");
  cnt("sim.topk_k", 10, 1, 20, "top-k campaigns: logprobs asked per position");
  cnt("sim.topk_concurrency", 4, 1, 256, "campaign 1: requests in flight");
  num("sim.topk_start", 0.15, 0, 0.95, "campaign 1 starts after this share of the duration");
  cnt("sim.hydra_keys", 24, 0, 100000, "campaign 2 (hydra): keys splitting one harvest; 0: off");
  cnt("sim.hydra_addresses", 3, 1, 1000, "campaign 2: addresses its keys come from");
  cnt("sim.hydra_windows", 480, 1, 1e9, "campaign 2: windows planned over all its keys");
  cnt("sim.hydra_parallel", 6, 1, 1000, "campaign 2: keys harvesting at once");
  num("sim.hydra_start", 0.3, 0, 0.95, "campaign 2 starts after this share of the duration");
  cnt("sim.seqkd_prompts", 240, 0, 1e9, "campaign 3 (text only, templated 'Continue the passage: ...' prompts); 0: off");
  cnt("sim.seqkd_new_tokens", 48, 1, 4096, "campaign 3: tokens asked per prompt");
  cnt("sim.seqkd_concurrency", 3, 1, 256, "campaign 3: requests in flight");
  num("sim.seqkd_start", 0.45, 0, 0.95, "campaign 3 starts after this share of the duration");
  num("sim.slow_interval", 3, 0, 86400, "campaign 4 (low and slow, round the clock): seconds between windows; 0: off");
  cnt("sim.slow_windows", 400, 0, 1e9, "campaign 4: windows its student needs (it harvests what its pace allows in the duration; 0: only that)");
  num("sim.slow_start", 0, 0, 0.95, "campaign 4 starts after this share of the duration");
  s.add({"sim.students", K::Bool, false,
         "after the run, train a student per top-k campaign on what it harvested before the response and one on its "
         "whole plan (val bits per byte; minutes)"});
  return s;
}

}  // namespace

const ConfigSchema& sim_schema() {
  static const ConfigSchema s = build_sim_schema();
  return s;
}

SimOptions read_sim_options(const Config& c) {
  SimOptions o;
  o.model = c.get_string("sim.model");
  o.server_config = c.get_string("sim.server_config");
  o.seed = c.get_int("sim.seed");
  o.duration = c.get_float("sim.duration");
  o.hour = c.get_float("sim.hour");
  o.workers = c.get_int("sim.workers");
  o.seq_len = c.get_int("sim.seq_len");
  o.benign_keys = c.get_int("sim.benign_keys");
  o.benign_requests = c.get_float("sim.benign_requests");
  o.offices = c.get_int("sim.offices");
  o.office_share = c.get_float("sim.office_share");
  o.chat_share = c.get_float("sim.chat_share");
  o.logprobs_share = c.get_float("sim.logprobs_share");
  o.eval_jobs = c.get_int("sim.eval_jobs");
  o.eval_set = c.get_int("sim.eval_set");
  o.eval_rounds = c.get_int("sim.eval_rounds");
  o.apps = c.get_int("sim.apps");
  o.app_requests = c.get_float("sim.app_requests");
  o.user_rpm = c.get_int("sim.user_rpm");
  o.user_tpm = c.get_int("sim.user_tpm");
  o.campaign_rpm = c.get_int("sim.campaign_rpm");
  o.campaign_tpm = c.get_int("sim.campaign_tpm");
  o.topk_windows = c.get_int("sim.topk_windows");
  o.topk_k = c.get_int("sim.topk_k");
  o.topk_concurrency = c.get_int("sim.topk_concurrency");
  o.topk_start = c.get_float("sim.topk_start");
  o.hydra_keys = c.get_int("sim.hydra_keys");
  o.hydra_addresses = c.get_int("sim.hydra_addresses");
  o.hydra_windows = c.get_int("sim.hydra_windows");
  o.hydra_parallel = c.get_int("sim.hydra_parallel");
  o.hydra_start = c.get_float("sim.hydra_start");
  o.seqkd_prompts = c.get_int("sim.seqkd_prompts");
  o.seqkd_new_tokens = c.get_int("sim.seqkd_new_tokens");
  o.seqkd_concurrency = c.get_int("sim.seqkd_concurrency");
  o.seqkd_start = c.get_float("sim.seqkd_start");
  o.slow_interval = c.get_float("sim.slow_interval");
  o.slow_windows = c.get_int("sim.slow_windows");
  o.slow_start = c.get_float("sim.slow_start");
  o.students = c.get_bool("sim.students");
  return o;
}

}  // namespace retort

// Who takes part: the benign keys (ordinary users, some behind office addresses, evaluation
// jobs, app backends) drawn from the seed, and the four campaigns with their keys and plans.
// Campaigns are the same for every seed: the seed changes the crowd they hide in.
#include <algorithm>
#include <cmath>

#include "detect/simulate_parts.h"
#include "retort/error.h"

namespace retort::sim {

namespace {

// Common clients of OpenAI-compatible APIs, most frequent first.
const std::vector<std::string> kUserAgents = {
    "OpenAI/Python 1.40.0",
    "OpenAI/Python 1.35.3",
    "OpenAI/NodeJS/4.52.0",
    "python-requests/2.31.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0 Safari/537.36",
    "curl/8.5.0",
    "langchain-openai/0.1.8 python-httpx/0.27.0",
    "axios/1.6.8",
    "Go-http-client/1.1",
};
const std::vector<double> kAgentWeights = {30, 12, 14, 10, 8, 6, 5, 7, 5, 3};

std::string name_of(const char* prefix, int64_t i, int digits = 4) {
  char b[64];
  std::snprintf(b, sizeof b, "%s-%0*lld", prefix, digits, static_cast<long long>(i));
  return b;
}

}  // namespace

std::vector<SimKey> plan_benign_keys(const SimOptions& o, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  std::discrete_distribution<size_t> agent(kAgentWeights.begin(), kAgentWeights.end());
  std::vector<SimKey> keys;
  for (int64_t i = 0; i < o.benign_keys; ++i) {
    SimKey k;
    k.name = name_of("u", i);
    k.user_agent = kUserAgents[agent(rng)];
    if (o.offices > 0 && u(rng) < o.office_share) {
      const int64_t office = int64_t(rng() % uint64_t(o.offices));
      k.role = "office user";
      k.address = cat("10.20.", office / 250, ".", 1 + office % 250);
    } else {
      k.role = "user";
      k.address = cat("10.", 30 + i / 62500, ".", (i / 250) % 250, ".", 1 + i % 250);
    }
    keys.push_back(k);
  }
  for (int64_t i = 0; i < o.eval_jobs; ++i)
    keys.push_back({name_of("eval", i, 2), "", 0, "eval job", "", cat("10.40.0.", 1 + i), "python-requests/2.31.0"});
  for (int64_t i = 0; i < o.apps; ++i)
    keys.push_back({name_of("app", i, 2), "", 0, "app", "", cat("10.50.0.", 1 + i), "OpenAI/Python 1.40.0"});
  return keys;
}

std::vector<std::unique_ptr<Campaign>> plan_campaigns(const SimOptions& o, const Material& m) {
  std::vector<std::unique_ptr<Campaign>> out;
  const int64_t T = m.seq_len;
  const int64_t available = (m.train.size() - 1) / T;  // whole training windows in the corpus
  int64_t next_window = 0;                              // campaigns harvest disjoint regions
  auto windows_for = [&](Campaign& c, int64_t n) {
    if (next_window + n > available)
      fail("the campaigns plan ", next_window + n, " windows of ", T, " tokens; the KJV training text holds ", available,
           ": lower sim.topk_windows / sim.hydra_windows / sim.slow_windows or sim.seq_len");
    c.first_window = next_window;
    c.windows = n;
    next_window += n;
    c.planned_requests = n;
    c.planned_tokens = n * (T + 1);  // echo: the window's tokens, plus one written
  };
  auto key = [&](Campaign& c, const std::string& name, const std::string& address, const std::string& agent) {
    c.keys.push_back({name, "", 0, c.id, c.id, address, agent});
  };
  if (o.topk_windows > 0) {
    auto c = std::make_unique<Campaign>();
    c->id = "c1-topk";
    c->kind = "topk";
    c->title = cat("one key harvesting top-", o.topk_k, " logprobs by teacher forcing (echo, max_tokens 1)");
    c->k = o.topk_k;
    c->start = o.topk_start * o.duration;
    windows_for(*c, o.topk_windows);
    key(*c, "c1-topk", "203.0.113.10", "OpenAI/Python 1.40.0");
    out.push_back(std::move(c));
  }
  if (o.hydra_keys > 0) {
    auto c = std::make_unique<Campaign>();
    c->id = "c2-hydra";
    c->kind = "hydra";
    c->title = cat("a hydra of ", o.hydra_keys, " keys from ", o.hydra_addresses, " addresses splitting one top-", o.topk_k,
                   " harvest");
    c->k = o.topk_k;
    c->start = o.hydra_start * o.duration;
    windows_for(*c, std::max(o.hydra_windows, o.hydra_keys));
    for (int64_t i = 0; i < o.hydra_keys; ++i)
      key(*c, name_of("c2-hydra", i, 2), cat("198.51.100.", 10 + i % o.hydra_addresses), "python-requests/2.31.0");
    out.push_back(std::move(c));
  }
  if (o.seqkd_prompts > 0) {
    auto c = std::make_unique<Campaign>();
    c->id = "c3-seqkd";
    c->kind = "seqkd";
    c->title = cat("text only: ", o.seqkd_prompts, " templated 'Continue the passage: ...' prompts, ", o.seqkd_new_tokens,
                   " tokens each");
    c->start = o.seqkd_start * o.duration;
    c->planned_requests = o.seqkd_prompts;
    c->planned_tokens = 0;  // known once the prompts are made (run_campaign)
    key(*c, "c3-seqkd", "203.0.113.77", "OpenAI/Python 1.35.3");
    out.push_back(std::move(c));
  }
  if (o.slow_interval > 0) {
    auto c = std::make_unique<Campaign>();
    c->id = "c4-slow";
    c->kind = "slow";
    c->start = o.slow_start * o.duration;
    const int64_t n = o.slow_windows > 0 ? o.slow_windows
                                         : std::max<int64_t>(1, int64_t((o.duration - c->start) / o.slow_interval));
    c->title = cat("low and slow: one top-", o.topk_k, " window every ", o.slow_interval, " s, round the clock, under every limit");
    c->k = o.topk_k;
    windows_for(*c, n);
    key(*c, "c4-slow", "192.0.2.45", "OpenAI/NodeJS/4.52.0");
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace retort::sim

// The harvesting side, through retort's own openai: teacher code: each campaign key asks for the
// endpoint's tokenizer (GET models, GET models/ID/tokenizer) and harvests with
// harvest_topk_cache or api_written_corpus exactly as `retort distill --teacher openai:URL` does,
// into its own cache folder under OUT/harvest/. Each paces itself to its key's requests per minute
// (as a harvester reading x-ratelimit-* does: never a 429 of its own making); the low-and-slow one
// goes slower still. A key the server refuses (403), or whose answers come back stripped, stops;
// throttling (429 + Retry-After) only slows it; the end of the run stops every key (ApiEndpoint::stop).
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <thread>

#include "detect/simulate_parts.h"
#include "retort/api_teacher.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/progress.h"

namespace retort::sim {

namespace {

// Seconds between requests that keep a key just under `rpm`, 5% to spare (0: no limit, no pacing).
double pace(int64_t rpm) { return rpm > 0 ? 1.05 * 60.0 / double(rpm) : 0; }

ApiEndpoint endpoint_of(const Traffic& t, const SimKey& key, int64_t concurrency, double min_interval) {
  ApiEndpoint e;
  e.base_url = t.base_url;
  e.model = t.model;
  e.api_key = key.secret;
  e.concurrency = concurrency;
  e.max_retries = 1000000;  // a harvester waits out throttling (Retry-After) until the run ends
  e.timeout = 60;
  e.headers = {{"User-Agent", key.user_agent}, {"X-Forwarded-For", key.address}};
  e.min_interval = min_interval;
  e.stop = t.stop;
  return e;
}

// Windows [first, first + n) of the training tokens, as their own token set.
TokenSet windows_of(const Material& m, int64_t first, int64_t n) {
  TokenSet s = m.train;
  s.tokens = m.train.tokens.narrow(0, first * m.seq_len, n * m.seq_len + 1).contiguous();
  s.bytes = m.train.size() > 0 ? m.train.bytes * s.size() / m.train.size() : 0;
  s.source = cat(m.train.source, " (windows ", first, "..", first + n - 1, ")");
  return s;
}

// Runs one key's harvest and says how it ended.
std::string ended_by(const std::function<void()>& harvest) {
  try {
    harvest();
    return "finished";
  } catch (const Interrupted&) {
    return "stopped at the end of the run";
  } catch (const Error& e) {
    return cat("refused: ", e.what());
  }
}

void record(Campaign& c, const SimKey& key, const std::string& how) {
  std::lock_guard<std::mutex> lock(c.mutex);
  c.ended.push_back(key.name + ": " + how);
}

// One key's top-k harvest of windows [first, first + n): `retort distill --teacher openai:URL
// --set distill.top_k=k --set text.tokenizer=auto` up to the point where training would start.
void topk_key(const Traffic& t, Campaign& c, const SimKey& key, int64_t first, int64_t n, int64_t concurrency,
              double min_interval, int64_t windows_per_shard) {
  record(c, key, ended_by([&] {
           ApiClient client(endpoint_of(t, key, concurrency, min_interval));
           std::shared_ptr<Tokenizer> tokenizer = fetch_api_tokenizer(client);
           if (!tokenizer) fail("the endpoint publishes no tokenizer");
           const TokenSet set = windows_of(*t.material, first, n);
           TokenBatcher windows(set, t.material->seq_len, 64, /*shuffle=*/false, /*seed=*/0);
           harvest_topk_cache(client, *tokenizer, windows, set, c.k, t.out / "harvest" / key.name, nullptr,
                              windows_per_shard);
         }));
}

// The hydra: its keys take consecutive shards of the one harvest, `parallel` keys at a time.
void hydra(const Traffic& t, const SimOptions& o, Campaign& c) {
  const int64_t K = int64_t(c.keys.size());
  std::atomic<int64_t> next{0};
  std::vector<std::thread> pool;
  for (int64_t p = 0; p < std::min(o.hydra_parallel, K); ++p)
    pool.emplace_back([&] {
      for (int64_t i = next.fetch_add(1); i < K && !t.stop->load(); i = next.fetch_add(1)) {
        const int64_t a = c.windows * i / K, b = c.windows * (i + 1) / K;
        topk_key(t, c, c.keys[size_t(i)], c.first_window + a, b - a, 1, pace(o.user_rpm), 8);
      }
    });
  for (auto& th : pool) th.join();
}

// Text only: templated prompts cut from the training text, continued by the endpoint.
void seqkd(const Traffic& t, const SimOptions& o, Campaign& c) {
  const Material& m = *t.material;
  const SimKey& key = c.keys[0];
  const fs::path dir = t.out / "harvest" / key.name;
  fs::create_directories(dir);
  const fs::path prompts = dir / "prompts.jsonl";
  std::string lines;
  int64_t planned = 0;
  // Prompt i: the start of a training window, evenly spaced over the whole training text.
  const int64_t available = (m.train.size() - 1) / m.seq_len;
  torch::Tensor all = m.train.tokens.contiguous();
  for (int64_t i = 0; i < c.planned_requests; ++i) {
    const int32_t* p = all.data_ptr<int32_t>() + (i * available / c.planned_requests) * m.seq_len;
    std::string text = m.tokenizer->decode(std::vector<int32_t>(p, p + m.seq_len));
    std::replace(text.begin(), text.end(), '\n', ' ');
    text = text.substr(0, std::min<size_t>(text.size(), 100));
    std::string prompt = "Continue the passage: " + text;
    while (!prompt.empty() && int64_t(m.tokenizer->encode(prompt).size()) + o.seqkd_new_tokens > m.context)
      prompt.resize(prompt.size() * 3 / 4);
    planned += int64_t(m.tokenizer->encode(prompt).size()) + o.seqkd_new_tokens;
    lines += nlohmann::json{{"text", prompt}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  atomic_write_text(prompts, lines);
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    c.planned_tokens = planned;
  }
  record(c, key, ended_by([&] {
           ApiClient client(endpoint_of(t, key, o.seqkd_concurrency, pace(o.campaign_rpm)));
           std::shared_ptr<Tokenizer> tokenizer = fetch_api_tokenizer(client);
           if (!tokenizer) fail("the endpoint publishes no tokenizer");
           SequenceKdOptions so;
           so.new_tokens = o.seqkd_new_tokens;
           so.prompts_file = prompts.string();
           so.sampling.temperature = 1.0;
           api_written_corpus(client, *tokenizer, windows_of(m, 0, 1), m.seq_len, so, dir);
         }));
}

}  // namespace

void run_campaign(const Traffic& t, const SimOptions& o, Campaign& c) {
  if (!t.clock.sleep_until(c.start, *t.stop)) {
    for (const SimKey& k : c.keys) record(c, k, "never started (the run ended first)");
    return;
  }
  if (c.kind == "topk")
    topk_key(t, c, c.keys[0], c.first_window, c.windows, o.topk_concurrency, pace(o.campaign_rpm), 32);
  else if (c.kind == "hydra")
    hydra(t, o, c);
  else if (c.kind == "seqkd")
    seqkd(t, o, c);
  else if (c.kind == "slow")
    topk_key(t, c, c.keys[0], c.first_window, c.windows, 1, o.slow_interval, 4);
  else
    fail("unknown campaign kind '", c.kind, "'");
}

}  // namespace retort::sim

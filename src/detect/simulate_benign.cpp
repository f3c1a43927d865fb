// The benign side: people and legitimate heavy users, one thread per key. People keep a working
// day (their hours of the simulated day), talk in sessions of a few turns with bursty think times
// and long idle gaps, carry their conversation's history, and ask about held-out verses in their
// own words; a few want logprobs. An evaluation job scores a fixed passage set with echo + logprobs
// (a teacher-forcing shape, but the same passages again and again); an app backend sends many
// short chats from one address through the day.
#include <algorithm>
#include <cmath>

#include "detect/simulate_parts.h"
#include "retort/api_teacher.h"
#include "retort/error.h"

namespace retort::sim {

namespace {

using json = nlohmann::json;

const std::vector<std::string> kOpeners = {
    "What does this verse mean: \"%\"",
    "Explain in simple words: %",
    "Who is speaking here? %",
    "Can you help me summarize this for a sermon? %",
    "Translate into modern English: %",
    "%\nWhat is the lesson here?",
    "I read this today: \"%\" Any thoughts?",
    "Is this from the Old or the New Testament? %",
    "Write a short prayer inspired by: %",
    "help me understand %",
    "%",
    "Compare this with what Jesus taught: %",
};
const std::vector<std::string> kFollowUps = {
    "Can you say more?", "Why?", "Give me an example.", "Shorter please.", "And what about this one: \"%\"",
    "thanks! one more: %", "How does that apply today?", "ok", "What is the context of that chapter?",
};
const std::vector<std::string> kSystems = {
    "You are a helpful assistant.", "You are a patient Bible study helper. Answer briefly.",
    "Answer in the style of the King James Bible.",
};

std::string fill(const std::string& pattern, const std::string& verse) {
  std::string out;
  for (char ch : pattern) out += ch == '%' ? verse : std::string(1, ch);
  return out;
}

template <class T>
const T& pick(const std::vector<T>& v, std::mt19937_64& rng) {
  return v[rng() % v.size()];
}

// A verse cut to at most `chars` characters at a word boundary.
std::string verse_of(const Material& m, std::mt19937_64& rng, size_t chars) {
  std::string v = pick(m.verses, rng);
  if (v.size() <= chars) return v;
  size_t cut = v.rfind(' ', chars);
  return v.substr(0, cut == std::string::npos || cut < chars / 2 ? chars : cut);
}

// Tokens of the prompt the chat template makes of `messages` (as retort serve renders them).
int64_t chat_tokens(const Material& m, const json& messages) {
  std::string s;
  for (const json& msg : messages)
    s += cat("<|", msg["role"].get<std::string>(), "|>\n", msg["content"].get<std::string>(), "\n");
  return int64_t(m.tokenizer->encode(s + "<|assistant|>\n").size());
}

// A person's (or program's) key talking to the server; each call is one request, whatever it gets.
struct Speaker {
  const Traffic& t;
  ApiClient client;
  int64_t failures = 0;

  Speaker(const Traffic& traffic, const SimKey& key)
      : t(traffic), client([&] {
          ApiEndpoint e;
          e.base_url = traffic.base_url;
          e.model = traffic.model;
          e.api_key = key.secret;
          e.concurrency = 1;
          e.max_retries = 3;  // people retry a 429 or a dropped connection a few times, then give up
          e.timeout = 60;
          e.headers = {{"User-Agent", key.user_agent}, {"X-Forwarded-For", key.address}};
          e.stop = traffic.stop;
          return e;
        }()) {}

  // The answer, or null when refused (the audit row says why); Interrupted passes (the end).
  json post(const std::string& path, const json& body) {
    try {
      return client.post(path, body);
    } catch (const Interrupted&) {
      throw;
    } catch (const Error&) {
      ++failures;
      return nullptr;
    }
  }
};

// Seconds of thought before the next turn: bursty (log-normal, median 3 s, long tail to 30 s).
double think(std::mt19937_64& rng) {
  std::lognormal_distribution<double> d(std::log(3.0), 0.9);
  return std::min(30.0, d(rng));
}

// Session start times inside the key's working hours of the simulated day: `hours` to
// `hours + spread` hours from a random first hour (rejection sampling over the run; a key whose
// hours the run never reaches keeps its last draws).
std::vector<double> session_starts(const Traffic& t, const SimOptions& o, double hour, int64_t sessions, double hours,
                                   double spread, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  const double first_hour = double(int64_t(std::floor(u(rng) * 24)));
  const double length = hours + std::floor(u(rng) * (spread + 1));
  auto working = [&](double s) {
    const double h = std::fmod(std::floor((t.clock.start_unix + s) / hour), 24.0);
    return std::fmod(h - first_hour + 24, 24.0) < length;
  };
  std::vector<double> out;
  for (int64_t i = 0; i < sessions; ++i) {
    double s = u(rng) * o.duration * 0.95;
    for (int tries = 0; tries < 50 && !working(s); ++tries) s = u(rng) * o.duration * 0.95;
    out.push_back(s);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// ---- people ------------------------------------------------------------------------------------

void chat_session(Speaker& sp, const Material& m, int64_t turns, bool logprobs, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  json messages = json::array();
  if (u(rng) < 0.3) messages.push_back({{"role", "system"}, {"content", pick(kSystems, rng)}});
  const double temperature = u(rng) < 0.5 ? 0.7 : 1.0;
  for (int64_t turn = 0; turn < turns; ++turn) {
    const std::string& pattern = turn == 0 ? pick(kOpeners, rng) : pick(kFollowUps, rng);
    messages.push_back({{"role", "user"}, {"content", fill(pattern, verse_of(m, rng, 40 + rng() % 80))}});
    const int64_t want = 24 + int64_t(rng() % 41);  // 24..64 tokens
    // Keep what fits the model's context, oldest turns first out (as chat clients do).
    while (messages.size() > 1 && chat_tokens(m, messages) + want > m.context) {
      const size_t first = messages[0]["role"] == "system" ? 1 : 0;
      if (messages.size() - first <= 1) break;
      messages.erase(first);
    }
    const int64_t room = m.context - chat_tokens(m, messages);
    if (room < 4) return;
    json body = {{"model", sp.t.model}, {"messages", messages}, {"max_tokens", std::min(want, room)}};
    if (u(rng) < 0.8) body["temperature"] = temperature;
    if (logprobs) body.update({{"logprobs", true}, {"top_logprobs", 1 + int64_t(rng() % 5)}});
    json answer = sp.post("chat/completions", body);
    std::string reply = "...";
    if (answer.is_object() && answer.contains("choices") && !answer["choices"].empty())
      reply = answer["choices"][0]["message"].value("content", "...");
    messages.push_back({{"role", "assistant"}, {"content", reply}});
    if (turn + 1 < turns && !sp.t.clock.sleep_until(sp.t.clock.elapsed() + think(rng), *sp.t.stop)) return;
  }
}

void completion_session(Speaker& sp, const Material& m, int64_t turns, bool logprobs, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  for (int64_t turn = 0; turn < turns; ++turn) {
    std::string prompt = verse_of(m, rng, 20 + rng() % 60);
    if (u(rng) < 0.3) prompt = "Q: What comes after \"" + prompt + "\"?\nA:";
    const int64_t room = m.context - int64_t(m.tokenizer->encode(prompt).size());
    if (room < 4) continue;
    json body = {{"model", sp.t.model}, {"prompt", prompt}, {"max_tokens", std::min<int64_t>(room, 16 + rng() % 49)}};
    if (u(rng) < 0.7) body["temperature"] = u(rng) < 0.5 ? 0.8 : 1.0;
    if (logprobs) body["logprobs"] = 1 + int64_t(rng() % 5);
    sp.post("completions", body);
    if (turn + 1 < turns && !sp.t.clock.sleep_until(sp.t.clock.elapsed() + think(rng), *sp.t.stop)) return;
  }
}

void person(Speaker& sp, const SimOptions& o, double hour, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  const Material& m = *sp.t.material;
  const bool chat = u(rng) < o.chat_share, logprobs = u(rng) < o.logprobs_share;
  // Requests over the run: log-normal around the mean (most ask a little, a few a lot).
  std::lognormal_distribution<double> volume(std::log(o.benign_requests) - 0.32, 0.8);
  int64_t left = std::max<int64_t>(1, std::llround(volume(rng)));
  std::vector<int64_t> turns;
  while (left > 0) {
    std::geometric_distribution<int64_t> g(chat ? 0.35 : 0.5);
    const int64_t n = std::min(left, 1 + g(rng));
    turns.push_back(n);
    left -= n;
  }
  const std::vector<double> starts = session_starts(sp.t, o, hour, int64_t(turns.size()), 8, 6, rng);  // 8..14 h
  for (size_t s = 0; s < turns.size(); ++s) {
    if (!sp.t.clock.sleep_until(starts[s], *sp.t.stop)) return;
    if (chat)
      chat_session(sp, m, turns[s], logprobs, rng);
    else
      completion_session(sp, m, turns[s], logprobs, rng);
  }
}

// ---- heavy legitimate users --------------------------------------------------------------------

// Scores its fixed passage set as lm-evaluation-harness's loglikelihood requests do (echo,
// max_tokens 0, logprobs 1: the token's own logprob and whether it was the greedy one), eval_rounds times, spread over
// the run, each round as fast as its answers come.
void eval_job(Speaker& sp, const SimOptions& o, std::mt19937_64& rng) {
  const Material& m = *sp.t.material;
  std::vector<std::string> passages;
  for (int64_t i = 0; i < o.eval_set; ++i) {
    std::string v = verse_of(m, rng, 200);
    if (int64_t(m.tokenizer->encode(v).size()) < m.context) passages.push_back(v);
  }
  std::uniform_real_distribution<double> u(0, 1);
  for (int64_t r = 0; r < o.eval_rounds; ++r) {
    const double span = o.duration * 0.9 / double(o.eval_rounds);
    if (!sp.t.clock.sleep_until(span * (double(r) + 0.6 * u(rng)), *sp.t.stop)) return;
    for (const std::string& p : passages) {
      sp.post("completions", {{"model", sp.t.model}, {"prompt", p}, {"max_tokens", 0}, {"echo", true},
                              {"logprobs", 1}, {"temperature", 0}});
      if (sp.t.stop->load()) return;
    }
  }
}

// A product's backend: short chats for its many end users, arriving at random through 16 hours of
// the simulated day, behind one address and one system prompt.
void app(Speaker& sp, const SimOptions& o, double hour, std::mt19937_64& rng) {
  const Material& m = *sp.t.material;
  const std::vector<double> starts = session_starts(sp.t, o, hour, std::llround(o.app_requests), 16, 0, rng);
  for (double s : starts) {
    if (!sp.t.clock.sleep_until(s, *sp.t.stop)) return;
    json messages = {{{"role", "system"}, {"content", "You are Verse of the Day. Answer in two sentences."}},
                     {{"role", "user"}, {"content", fill(pick(kOpeners, rng), verse_of(m, rng, 80))}}};
    const int64_t room = m.context - chat_tokens(m, messages);
    if (room < 4) continue;
    sp.post("chat/completions", {{"model", sp.t.model}, {"messages", messages},
                                 {"max_tokens", std::min<int64_t>(room, 40)}, {"temperature", 0.7}});
  }
}

}  // namespace

void run_benign(const Traffic& t, const SimOptions& o, const SimKey& key, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const double hour = o.hour > 0 ? o.hour : o.duration / 24;
  Speaker sp(t, key);
  try {
    if (key.role == "eval job")
      eval_job(sp, o, rng);
    else if (key.role == "app")
      app(sp, o, hour, rng);
    else
      person(sp, o, hour, rng);
  } catch (const Interrupted&) {
    // the end of the run
  }
}

}  // namespace retort::sim

// Per-key request and token limits over sliding 60-second windows, and the lifetime quota
// (retort/guard.h). The windows live in memory; the quota's total is durable in the KeyStore.
#include <algorithm>
#include <chrono>
#include <iomanip>
#include <map>
#include <vector>

#include "retort/error.h"
#include "retort/guard.h"

namespace retort {

namespace {

constexpr double kWindow = 60.0;  // seconds

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// "0.8", "12.3", "0.001": seconds for messages.
std::string seconds_text(double s) { return cat(std::setprecision(3), s); }
// "1.234s": seconds for the x-ratelimit-reset-* headers.
std::string reset_text(double s) { return decimals(std::max(0.0, s), 3) + "s"; }

// Seconds from `now` until the oldest items (time, amount) have left the window and freed at
// least `excess`; never less than 1 ms.
double wait_to_free(std::vector<std::pair<double, int64_t>> items, int64_t excess, double now) {
  std::sort(items.begin(), items.end());
  int64_t freed = 0;
  for (const auto& [time, amount] : items) {
    freed += amount;
    if (freed >= excess) return std::max(0.001, time + kWindow - now);
  }
  return kWindow;
}

}  // namespace

struct RateLimiter::State {
  struct Event {
    double time = 0;       // steady seconds
    int64_t requests = 0;  // 1 for a request, 0 for settled tokens
    int64_t tokens = 0;    // settled tokens, counted at the time they were reserved
  };
  struct Pending {
    double time = 0;
    int64_t tokens = 0;
  };
  std::string name;
  KeyLimits limits;
  int64_t used = 0;                    // settled tokens over the key's life (as in the store)
  std::vector<Event> events;           // in the window (pruned on reserve); not sorted
  std::map<int64_t, Pending> pending;  // ticket -> reservation in flight

  void prune(double now) {
    events.erase(std::remove_if(events.begin(), events.end(),
                                [&](const Event& e) { return e.time <= now - kWindow; }),
                 events.end());
  }
  bool in_window(double time, double now) const { return time > now - kWindow; }

  // What the window holds at `now`: requests and their times, tokens (settled + in flight).
  struct Window {
    std::vector<std::pair<double, int64_t>> requests, tokens;
    int64_t request_count = 0, token_count = 0, in_flight = 0;  // in_flight: all reservations
  };
  Window window(double now) const {
    Window w;
    for (const Event& e : events) {
      if (!in_window(e.time, now)) continue;
      if (e.requests) w.requests.emplace_back(e.time, e.requests), w.request_count += e.requests;
      if (e.tokens) w.tokens.emplace_back(e.time, e.tokens), w.token_count += e.tokens;
    }
    for (const auto& [ticket, p] : pending) {
      w.in_flight += p.tokens;
      if (in_window(p.time, now) && p.tokens)
        w.tokens.emplace_back(p.time, p.tokens), w.token_count += p.tokens;
    }
    return w;
  }

  HeaderList headers(const Window& w, double now) const {
    auto newest = [](const std::vector<std::pair<double, int64_t>>& items) {
      double t = -1e300;
      for (const auto& item : items) t = std::max(t, item.first);
      return t;
    };
    HeaderList h;
    if (limits.rpm > 0) {
      h.emplace_back("x-ratelimit-limit-requests", std::to_string(limits.rpm));
      h.emplace_back("x-ratelimit-remaining-requests",
                     std::to_string(std::max<int64_t>(0, limits.rpm - w.request_count)));
      h.emplace_back("x-ratelimit-reset-requests",
                     reset_text(w.requests.empty() ? 0 : newest(w.requests) + kWindow - now));
    }
    if (limits.tpm > 0) {
      h.emplace_back("x-ratelimit-limit-tokens", std::to_string(limits.tpm));
      h.emplace_back("x-ratelimit-remaining-tokens",
                     std::to_string(std::max<int64_t>(0, limits.tpm - w.token_count)));
      h.emplace_back("x-ratelimit-reset-tokens",
                     reset_text(w.tokens.empty() ? 0 : newest(w.tokens) + kWindow - now));
    }
    return h;
  }
};

RateLimiter::RateLimiter(KeyStore& store) : store_(store) {}

LimitDecision RateLimiter::reserve(const ApiKey& key, int64_t tokens, double now) {
  if (now < 0) now = steady_seconds();
  if (tokens < 0) fail("cannot reserve ", tokens, " tokens for key '", key.name, "' (negative)");

  // The durable total is read once, when the key is first seen, outside the limiter's lock.
  std::shared_ptr<State> st;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = keys_.find(key.id); it != keys_.end()) st = it->second;
  }
  if (!st) {
    auto fresh = std::make_shared<State>();
    const std::optional<ApiKey> stored = store_.find_id(key.id);
    fresh->used = stored ? stored->used_tokens : key.used_tokens;
    std::lock_guard<std::mutex> lock(mutex_);
    st = keys_.try_emplace(key.id, fresh).first->second;
  }

  std::lock_guard<std::mutex> lock(mutex_);
  State& s = *st;
  s.name = key.name;
  s.limits = key.limits;
  s.prune(now);
  const KeyLimits& l = key.limits;
  State::Window w = s.window(now);
  LimitDecision d;

  auto refuse = [&](const char* code, double retry, std::string message) {
    d.code = code;
    d.retry_after = retry;
    d.message = std::move(message);
    d.headers = s.headers(w, now);
    return d;
  };
  // Refusals that waiting cannot cure come first.
  if (l.tpm > 0 && tokens > l.tpm)
    return refuse("rate_limit_exceeded", kWindow,
                  cat("this request needs up to ", tokens,
                      " tokens (prompt + max_tokens * n), more than the rate limit of ", l.tpm,
                      " tokens per minute of key '", key.name,
                      "'; it can never pass: lower max_tokens or n, or shorten the prompt"));
  if (l.quota_tokens > 0) {
    const int64_t left = std::max<int64_t>(0, l.quota_tokens - s.used);
    if (tokens > left || left == 0)
      return refuse("insufficient_quota", 0,
                    cat("quota of ", l.quota_tokens, " tokens of key '", key.name, "' has ", left,
                        " tokens left and this request needs up to ", tokens,
                        " (prompt + max_tokens * n); ask for fewer tokens or a larger quota"));
    if (tokens > left - w.in_flight)
      return refuse(
          "insufficient_quota", 0,
          cat("quota of ", l.quota_tokens, " tokens of key '", key.name, "' has ", left,
              " tokens left, ", w.in_flight,
              " of them reserved by requests in flight, and this request needs up to ", tokens));
  }
  double retry_requests = 0, retry_tokens = 0;
  if (l.rpm > 0 && w.request_count + 1 > l.rpm)
    retry_requests = wait_to_free(w.requests, w.request_count + 1 - l.rpm, now);
  if (l.tpm > 0 && w.token_count + tokens > l.tpm)
    retry_tokens = wait_to_free(w.tokens, w.token_count + tokens - l.tpm, now);
  if (retry_requests > 0 && retry_requests >= retry_tokens)
    return refuse("rate_limit_exceeded", retry_requests,
                  cat("rate limit of ", l.rpm, " requests per minute reached for key '", key.name,
                      "'; retry after ", seconds_text(retry_requests), " s"));
  if (retry_tokens > 0)
    return refuse(
        "rate_limit_exceeded", retry_tokens,
        cat("rate limit of ", l.tpm, " tokens per minute reached for key '", key.name, "' (",
            w.token_count, " used or reserved in the last 60 s, this request needs up to ", tokens,
            "); retry after ", seconds_text(retry_tokens), " s"));

  const int64_t ticket = next_ticket_++;
  s.events.push_back({now, 1, 0});
  s.pending[ticket] = {now, tokens};
  w.requests.emplace_back(now, 1);
  w.request_count += 1;
  if (tokens) w.tokens.emplace_back(now, tokens);
  w.token_count += tokens;
  w.in_flight += tokens;
  d.ok = true;
  d.reservation = {key.id, tokens, ticket};
  d.headers = s.headers(w, now);
  return d;
}

void RateLimiter::settle(const Reservation& r, int64_t used_tokens, double /*now*/) {
  const int64_t settled = settle_for_audit(r, used_tokens);
  if (settled) store_.add_usage(r.key_id, settled);
}

int64_t RateLimiter::settle_for_audit(const Reservation& r, int64_t used_tokens) {
  if (r.ticket == 0) return 0;
  if (used_tokens < 0)
    fail("cannot settle ", used_tokens, " tokens for key id ", r.key_id, " (negative)");
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = keys_.find(r.key_id);
  if (it == keys_.end()) return 0;
  State& s = *it->second;
  auto p = s.pending.find(r.ticket);
  if (p == s.pending.end()) return 0;  // settled or released already
  // The tokens count at the time they were reserved: the window the request was admitted in.
  if (used_tokens) s.events.push_back({p->second.time, 0, used_tokens});
  s.used += used_tokens;
  s.pending.erase(p);
  return used_tokens;
}

void RateLimiter::release(const Reservation& r, double /*now*/) {
  if (r.ticket == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = keys_.find(r.key_id);
  if (it != keys_.end()) it->second->pending.erase(r.ticket);
}

}  // namespace retort

// A key's activity and the signals read from it (retort/detect.h).
#include <algorithm>
#include <cmath>

#include "retort/detect.h"
#include "retort/error.h"
#include "retort/telemetry.h"

namespace retort {

namespace {

constexpr size_t kRecentPrompts = 128, kRecentTimes = 256;
constexpr int kNovelBits = 12;  // SimHash distance beyond which a prompt is new ground

std::string percent(double share) { return cat(int64_t(std::lround(100 * share)), "%"); }

template <typename T>
void trim_front(std::set<T>& s, size_t keep) {
  while (s.size() > keep) s.erase(s.begin());
}

}  // namespace

void Activity::add(const AuditRow& r, const DetectPolicy& p) {
  if (requests == 0) first = r.time;
  ++requests;
  last = std::max(last, r.time);
  const int64_t t = r.prompt_tokens + r.completion_tokens;
  tokens += t;
  if (r.echo && r.logprobs >= 0 && r.max_tokens <= 1) ++forcing_;
  if (r.logprobs >= 5) ++hungry_;
  if (!r.client.empty()) ++clients[r.client];
  ++agents[r.user_agent];
  // Shapes that ask for logprobs (the only ones that link keys), at most 32 distinct per key.
  if (r.logprobs >= 0) {
    std::string shape = cat(r.endpoint, r.echo ? " echo" : "", " lp=", r.logprobs, " max=", r.max_tokens, " t=", r.temperature, " n=", r.n);
    auto it = shapes.find(shape);
    if (it != shapes.end())
      ++it->second;
    else if (shapes.size() < 32)
      shapes.emplace(std::move(shape), 1);
  }
  if (r.prompt_simhash != 0) {
    ++worded_;
    int nearest = 64;
    for (uint64_t h : recent_) nearest = std::min(nearest, hamming(h, r.prompt_simhash));
    if (nearest > kNovelBits) ++novel_;
    recent_.push_back(r.prompt_simhash);
    if (recent_.size() > kRecentPrompts) recent_.pop_front();
  }
  if (r.prompt_prefix != 0) ++prefixes_[r.prompt_prefix];
  if (r.ref_chunk >= 0) chunks_.insert(r.ref_chunk);
  times_.push_back(r.time);
  if (times_.size() > kRecentTimes) times_.pop_front();
  window_.emplace_back(r.time, t);
  while (!window_.empty() && window_.front().first < r.time - p.hour) window_.pop_front();
  hours_.insert(int64_t(std::floor(r.time / p.hour)));
  trim_front(hours_, 48);
  buckets_.insert(int64_t(std::floor(r.time / (p.hour / 12))));
  trim_front(buckets_, 288);
}

void Activity::merge(const Activity& o) {
  if (o.requests == 0) return;
  first = requests ? std::min(first, o.first) : o.first;
  last = std::max(last, o.last);
  requests += o.requests;
  tokens += o.tokens;
  forcing_ += o.forcing_;
  hungry_ += o.hungry_;
  worded_ += o.worded_;
  novel_ += o.novel_;
  for (const auto& [k, v] : o.clients) clients[k] += v;
  for (const auto& [k, v] : o.agents) agents[k] += v;
  for (const auto& [k, v] : o.shapes) shapes[k] += v;
  for (const auto& [k, v] : o.prefixes_) prefixes_[k] += v;
  chunks_.insert(o.chunks_.begin(), o.chunks_.end());
  std::deque<double> times(times_.begin(), times_.end());
  times.insert(times.end(), o.times_.begin(), o.times_.end());
  std::sort(times.begin(), times.end());
  while (times.size() > kRecentTimes) times.pop_front();
  times_ = std::move(times);
  std::deque<std::pair<double, int64_t>> window(window_.begin(), window_.end());
  window.insert(window.end(), o.window_.begin(), o.window_.end());
  std::sort(window.begin(), window.end());
  window_ = std::move(window);
  hours_.insert(o.hours_.begin(), o.hours_.end());
  trim_front(hours_, 48);
  buckets_.insert(o.buckets_.begin(), o.buckets_.end());
  trim_front(buckets_, 288);
}

std::pair<std::string, double> Activity::top_shape() const {
  std::pair<std::string, double> best{"", 0};
  int64_t n = 0;
  for (const auto& [k, v] : shapes)
    if (v > n) best.first = k, n = v;
  best.second = requests ? double(n) / double(requests) : 0;
  return best;
}

uint64_t Activity::top_prefix() const {
  uint64_t best = 0;
  int64_t n = 0;
  for (const auto& [k, v] : prefixes_)
    if (v > n || (v == n && k < best)) best = k, n = v;
  return best;
}

double Activity::top_prefix_share() const {
  int64_t n = 0, all = 0;
  for (const auto& [k, v] : prefixes_) n = std::max(n, v), all += v;
  return all ? double(n) / double(all) : 0;
}

std::vector<SignalValue> Activity::signals(const DetectPolicy& p, int64_t reference_chunks, double now) const {
  double weights = 0;
  for (const SignalRule& r : p.signals) weights += r.weight;
  std::vector<SignalValue> out;
  auto add = [&](SignalKind k, double value, std::string sentence) {
    const SignalRule& rule = p.signals[size_t(k)];
    SignalValue s;
    s.kind = k;
    s.value = value;
    s.threshold = rule.threshold;
    s.weight = weights > 0 ? rule.weight / weights : 0;
    s.fired = rule.weight > 0 && value >= rule.threshold;
    s.sentence = std::move(sentence);
    out.push_back(std::move(s));
  };
  const double n = double(std::max<int64_t>(requests, 1));
  add(SignalKind::forcing_share, double(forcing_) / n,
      cat(percent(double(forcing_) / n), " of ", requests, " requests had the teacher-forcing shape (echo + logprobs + max_tokens <= 1)"));
  add(SignalKind::logprob_appetite, double(hungry_) / n,
      cat(percent(double(hungry_) / n), " of ", requests, " requests asked for 5 or more top logprobs"));
  const double tshare = worded_ >= 5 ? top_prefix_share() : 0;
  add(SignalKind::template_repetition, tshare,
      worded_ >= 5 ? cat(percent(tshare), " of ", worded_, " prompts open with the same three words")
                   : cat("too few prompts with words (", worded_, ") to judge templates"));
  const double nshare = worded_ >= 5 ? double(novel_) / double(worded_) : 0;
  add(SignalKind::novelty, nshare,
      worded_ >= 5 ? cat(percent(nshare), " of ", worded_, " prompts were far from every earlier prompt of the key (new ground each time)")
                   : cat("too few prompts with words (", worded_, ") to judge novelty"));
  add(SignalKind::coverage, double(chunks_.size()),
      reference_chunks > 0 ? cat("the prompts reached ", chunks_.size(), " distinct passages of the reference corpus (of ", reference_chunks, ")")
                           : std::string("no reference corpus (guard.reference) to measure coverage against"));
  int64_t recent_tokens = 0;
  for (const auto& [t, k] : window_)
    if (t >= now - p.hour) recent_tokens += k;
  add(SignalKind::volume, double(recent_tokens), cat(recent_tokens, " tokens in the last ", p.hour, " s"));
  double regular = 0;
  std::string rsentence = cat("too few requests (", times_.size(), ") to judge timing");
  if (times_.size() >= 9) {
    double sum = 0, sq = 0;
    const size_t g = times_.size() - 1;
    for (size_t i = 1; i < times_.size(); ++i) {
      const double d = times_[i] - times_[i - 1];
      sum += d;
      sq += d * d;
    }
    const double mean = sum / double(g), var = std::max(0.0, sq / double(g) - mean * mean);
    const double cv = mean > 0 ? std::sqrt(var) / mean : 0;
    regular = 1 / (1 + cv);
    rsentence = cat("gaps between requests average ", std::lround(mean * 1000), " ms with a coefficient of variation of ",
                    std::lround(cv * 100) / 100.0, " (people are bursty: > 1)");
  }
  add(SignalKind::regularity, regular, rsentence);
  double clock = 0;
  std::string csentence = "seen for fewer than 6 periods of guard.hour";
  if (!hours_.empty()) {
    const int64_t newest = int64_t(std::floor(now / p.hour)), oldest = int64_t(std::floor(first / p.hour));
    const int64_t span = std::min<int64_t>(24, newest - oldest + 1);
    if (span >= 6) {
      int64_t active = 0;
      for (int64_t h : hours_) active += h > newest - span && h <= newest;
      clock = double(active) / double(span);
      csentence = cat("active in ", active, " of the last ", span, " hours");
    }
  }
  add(SignalKind::round_the_clock, clock, csentence);
  return out;
}

}  // namespace retort

// The campaign detector: reads audit rows (retort/guard.h, with the telemetry of
// retort/telemetry.h) as they arrive, keeps each key's activity, turns it into signals (one
// number each, with a threshold and a sentence a person can check: retort/policy.h names them),
// links keys that look like one actor (shared address, rare user agent, prompt template,
// correlated timing) into clusters scored as one, and says which response each key earns.
// Incremental: observe() is O(1) per row but for the novelty scan over the key's last 128
// prompts. No torch, no HTTP, no database (the worker, retort/detect_worker.h, feeds it).
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "retort/guard.h"
#include "retort/policy.h"

namespace retort {

struct SignalValue {
  SignalKind kind = SignalKind::forcing_share;
  double value = 0, threshold = 0, weight = 0;  // weight normalised (all weights sum to 1)
  bool fired = false;
  std::string sentence;  // what the number means for this key, in words
};

// One key's (or, merged, a cluster's) requests so far: counts, sets and short histories.
class Activity {
 public:
  void add(const AuditRow& r, const DetectPolicy& p);
  void merge(const Activity& other);  // a cluster is the merge of its keys
  std::vector<SignalValue> signals(const DetectPolicy& p, int64_t reference_chunks, double now) const;

  int64_t requests = 0, tokens = 0;
  double first = 0, last = 0;
  std::map<std::string, int64_t> clients, agents;
  // shapes of the requests that asked for logprobs: "endpoint echo lp max temperature n" (<= 32)
  std::map<std::string, int64_t> shapes;
  std::pair<std::string, double> top_shape() const;  // the most common and its share of all requests
  uint64_t top_prefix() const;   // the most common opening (0: none)
  double top_prefix_share() const;
  const std::set<int64_t>& buckets() const { return buckets_; }  // active periods of hour/12

 private:
  int64_t forcing_ = 0, hungry_ = 0, worded_ = 0, novel_ = 0;
  std::unordered_map<uint64_t, int64_t> prefixes_;
  std::unordered_set<int64_t> chunks_;
  std::deque<uint64_t> recent_;              // last 128 SimHashes
  std::deque<double> times_;                 // last 256 arrival times
  std::deque<std::pair<double, int64_t>> window_;  // (time, tokens) within the last hour
  std::set<int64_t> hours_, buckets_;        // active hours / hour-twelfths (last 48 / 288)
};

struct Assessment {
  std::string name;  // the key's name, or "cluster of N: first key, ..."
  bool cluster = false;
  std::vector<int64_t> key_ids;
  std::vector<std::string> key_names;
  int64_t requests = 0, tokens = 0;
  double first = 0, last = 0;
  double score = 0;  // 0..1: the normalised weight of the signals that fired (0 below min_requests)
  Response response = Response::none;
  std::vector<SignalValue> signals;
  std::vector<std::string> links;  // clusters: what ties the keys together
  std::string reason() const;      // the fired signals' sentences (and the links), joined
  nlohmann::json to_json() const;
};

// What a key earns now: the higher of its own score and its cluster's.
struct Verdict {
  int64_t key_id = 0;
  std::string key_name;
  double score = 0;
  Response response = Response::none;
  const Assessment* from = nullptr;  // the assessment behind it (in the vector verdicts() was given)
};

class Detector {
 public:
  explicit Detector(DetectPolicy policy, int64_t reference_chunks = 0);
  // Rows in id order. Only the model routes count (completions, chat, classify); rows without a
  // key (failed authentication) or refused as blocked (the request was never read) are skipped.
  void observe(const AuditRow& row);
  static bool counts(const AuditRow& row);  // whether observe() counts the row
  int64_t observed() const { return observed_; }
  double now() const { return now_; }  // the newest row's time: replays score as they ran

  Assessment assess_key(int64_t key_id) const;  // unknown key -> Error
  std::vector<Assessment> keys() const;         // every key seen, highest score first
  std::vector<Assessment> take_touched();       // the keys with rows since the last call
  std::vector<Assessment> clusters() const;     // linked groups of >= 2 keys, highest score first
  // One verdict per key in `keys` (ids) from the key and cluster assessments given.
  static std::vector<Verdict> verdicts(const std::vector<Assessment>& keys, const std::vector<Assessment>& clusters);
  bool knows(int64_t key_id) const { return activity_.count(key_id) != 0; }
  const DetectPolicy& policy() const { return policy_; }

 private:
  Assessment assess(const std::vector<int64_t>& ids, const Activity& a) const;
  DetectPolicy policy_;
  int64_t reference_chunks_ = 0;
  std::unordered_map<int64_t, Activity> activity_;
  std::unordered_map<int64_t, std::string> names_;
  std::unordered_set<int64_t> touched_;
  int64_t observed_ = 0;
  double now_ = 0;
};

}  // namespace retort

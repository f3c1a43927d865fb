// The detector off the request path: a thread of `retort serve` that reads new audit rows from
// the guard database every guard.interval seconds (its own connection: WAL lets it read while
// requests write), feeds the Detector (retort/detect.h), assesses the keys with new rows (and the
// key graph of all keys at most once a second), and where a key or its cluster earns a stronger
// response than the one in force, commits an action row (source "policy", with the score, the
// reasons and the signals) and only then enforces it. It also picks up rows others wrote
// (`retort guard act` in another process), so an operator's decision takes effect within one
// interval; with guard.detect off it does only that. After a pass that read rows (at most once a
// second) it also publishes a snapshot of every key's and cluster's assessment that other threads
// may read (the dashboard); the detector itself is the worker's alone. The policy only escalates; an operator's
// action (allow included) stands until an operator changes it. One pass never throws: an error is
// printed and the next pass retries.
#pragma once
#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "retort/actions.h"
#include "retort/detect.h"

namespace retort {

struct PassStats {
  int64_t rows = 0;     // audit rows read
  int64_t actions = 0;  // action rows written by the policy
  double seconds = 0;
};

class DetectWorker {
 public:
  // `in_force` is shared with the request path; rows already in the database are applied first.
  DetectWorker(const std::filesystem::path& db, const DetectPolicy& policy, int64_t reference_chunks,
               std::shared_ptr<ActionsInForce> in_force);
  ~DetectWorker();
  void start();  // the thread: pass() every policy.interval seconds
  void stop();
  PassStats pass();  // one pass, on the caller's thread (tests, `retort guard campaigns`)
  const Detector& detector() const { return detector_; }  // the worker's thread (or pass()'s caller) only
  // A copy of the last published assessments, safe from any thread:
  //   {"enabled", "observed" (audit rows read), "updated" (unix seconds, 0: never), "now" (the
  //    newest row's time), "keys": [Assessment::to_json() + "ids"], highest score first, "clusters": [...]}
  nlohmann::json snapshot() const;
  int64_t last_audit_id() const { return last_audit_; }

 private:
  std::shared_ptr<GuardDb> db_;
  AuditLog audit_;
  ActionStore actions_;
  Detector detector_;
  std::shared_ptr<ActionsInForce> in_force_;
  int64_t last_audit_ = 0;
  std::vector<Assessment> clusters_;  // the key graph's last assessment
  double clustered_at_ = -1e18;
  void publish(const std::vector<Assessment>& clusters, double now);
  mutable std::mutex snapshot_mutex_;
  nlohmann::json snapshot_;
  bool snapshot_stale_ = false;  // rows were read since the last snapshot
  double snapshot_at_ = -1e18;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace retort

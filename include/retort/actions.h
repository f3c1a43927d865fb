// What the guard does about a key: durable action rows (who, what, why, when, by whom, until
// when) in the guard database, and the table of actions in force that the request path reads.
// The detector (retort/detect.h) writes rows with source "policy", `retort guard act` with
// "operator"; a row is committed before it is enforced, so a kill -9 never loses one, and a
// restart enforces them again. No torch, no HTTP.
//
//   actions (id, time, key_id, key_name, cluster, action, score, reason, signals, source, until)
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "retort/guard.h"
#include "retort/policy.h"

namespace retort {

struct ActionRow {
  int64_t id = 0;        // set by ActionStore::append
  double time = 0;       // unix seconds
  int64_t key_id = 0;
  std::string key_name;
  std::string cluster;   // "" for a key alone; else the cluster's name (its lowest key's name + size)
  Response action = Response::none;
  double score = 0;      // 0..1 (operator rows: the score when the operator acted, or 0)
  std::string reason;    // sentences a person can check
  std::string signals;   // JSON array of the signals behind the score
  std::string source;    // "policy" | "operator" | "partner"
  double until = 0;      // unix seconds; 0: until another action replaces it
};

class ActionStore {
 public:
  explicit ActionStore(std::shared_ptr<GuardDb> db);
  // Commits the row (durable on return) and returns it with its id.
  ActionRow append(ActionRow row);
  std::vector<ActionRow> since(int64_t after_id, int64_t limit = 1 << 30) const;  // oldest first
  std::vector<ActionRow> for_key(int64_t key_id) const;                           // oldest first

 private:
  std::shared_ptr<GuardDb> db_;
};

// The newest row per key, as the request path enforces it. Thread-safe; apply() rows in id order.
class ActionsInForce {
 public:
  void apply(const ActionRow& row);
  // The action in force for a key at `now` (unix seconds); nullopt when none or it has expired.
  std::optional<ActionRow> find(int64_t key_id, double now) const;
  int64_t last_id() const;
  std::vector<ActionRow> all() const;

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<int64_t, ActionRow> rows_;
  int64_t last_id_ = 0;
};

// `retort guard act`: commits an operator's row for the key named (unknown key -> Error naming
// it); a running server enforces it within one detector interval.
ActionRow operator_action(const std::shared_ptr<GuardDb>& db, const std::string& key_name, Response action,
                          const std::string& reason, double until = 0);

}  // namespace retort

// Action rows and the actions in force (retort/actions.h).
#include "retort/actions.h"

#include <chrono>
#include <mutex>

#include "guard/statement.h"
#include "retort/error.h"

namespace retort {

using guard_detail::Statement;
using guard_detail::Transaction;

namespace {

constexpr const char* kColumns = "id, time, key_id, key_name, cluster, action, score, reason, signals, source, until";

ActionRow read_row(const Statement& s) {
  ActionRow r;
  r.id = s.integer(0);
  r.time = s.real(1);
  r.key_id = s.integer(2);
  r.key_name = s.text(3);
  r.cluster = s.text(4);
  r.action = response_from_name(s.text(5));
  r.score = s.real(6);
  r.reason = s.text(7);
  r.signals = s.text(8);
  r.source = s.text(9);
  r.until = s.real(10);
  return r;
}

}  // namespace

ActionStore::ActionStore(std::shared_ptr<GuardDb> db) : db_(std::move(db)) {
  if (!db_) fail("ActionStore needs an open guard database");
}

ActionRow ActionStore::append(ActionRow r) {
  if (r.action == Response::none) fail("an action row needs an action (observe | throttle | strip | mark | block | allow)");
  if (r.source != "policy" && r.source != "operator" && r.source != "partner")
    fail("an action's source is policy, operator or partner, not '", r.source, "'");
  std::lock_guard<std::mutex> lock(db_->mutex());
  Transaction t(*db_);
  Statement s(*db_,
              "INSERT INTO actions (time, key_id, key_name, cluster, action, score, reason, signals, source, until) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, r.time).bind(2, r.key_id).bind(3, r.key_name).bind(4, r.cluster).bind(5, std::string(response_name(r.action)));
  s.bind(6, r.score).bind(7, r.reason).bind(8, r.signals).bind(9, r.source).bind(10, r.until);
  s.run();
  r.id = sqlite3_last_insert_rowid(db_->handle());
  t.commit();
  return r;
}

std::vector<ActionRow> ActionStore::since(int64_t after_id, int64_t limit) const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, (std::string("SELECT ") + kColumns + " FROM actions WHERE id > ? ORDER BY id LIMIT ?").c_str());
  s.bind(1, after_id).bind(2, limit);
  std::vector<ActionRow> out;
  while (s.step()) out.push_back(read_row(s));
  return out;
}

std::vector<ActionRow> ActionStore::for_key(int64_t key_id) const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, (std::string("SELECT ") + kColumns + " FROM actions WHERE key_id = ? ORDER BY id").c_str());
  s.bind(1, key_id);
  std::vector<ActionRow> out;
  while (s.step()) out.push_back(read_row(s));
  return out;
}

void ActionsInForce::apply(const ActionRow& row) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  if (row.id <= last_id_) return;
  last_id_ = row.id;
  rows_[row.key_id] = row;
}

std::optional<ActionRow> ActionsInForce::find(int64_t key_id, double now) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  auto it = rows_.find(key_id);
  if (it == rows_.end() || (it->second.until > 0 && now >= it->second.until)) return std::nullopt;
  return it->second;
}

int64_t ActionsInForce::last_id() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return last_id_;
}

std::vector<ActionRow> ActionsInForce::all() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  std::vector<ActionRow> out;
  for (const auto& [k, r] : rows_) out.push_back(r);
  return out;
}

ActionRow operator_action(const std::shared_ptr<GuardDb>& db, const std::string& key_name, Response action,
                          const std::string& reason, double until) {
  if (action == Response::none) fail("retort guard act: name an action (observe | throttle | strip | mark | block | allow)");
  if (reason.empty()) fail("retort guard act: say why (--reason): the row is what a colleague reads later");
  KeyStore keys(db);
  const std::optional<ApiKey> key = keys.find(key_name);
  if (!key) fail("no API key named '", key_name, "' in ", db->file().string(), " (retort keys list shows them)");
  ActionRow row;
  row.time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  row.key_id = key->id;
  row.key_name = key->name;
  row.action = action;
  row.reason = reason;
  row.signals = "[]";
  row.source = "operator";
  row.until = until;
  return ActionStore(db).append(row);
}

}  // namespace retort

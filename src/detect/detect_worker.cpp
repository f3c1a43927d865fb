// The detector's worker thread (retort/detect_worker.h).
#include "retort/detect_worker.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "retort/error.h"

namespace retort {

namespace {

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// An escalation the policy may write: stronger than what is in force, which no operator decided
// (an operator's row, allow included, stands) and which is not an allow.
bool policy_may_act(const std::optional<ActionRow>& current, Response earned) {
  if (earned == Response::none) return false;
  if (!current) return true;
  if (current->source == "operator") return false;
  return earned > current->action && current->action != Response::allow;
}

}  // namespace

DetectWorker::DetectWorker(const std::filesystem::path& db, const DetectPolicy& policy, int64_t reference_chunks,
                           std::shared_ptr<ActionsInForce> in_force)
    : db_(std::make_shared<GuardDb>(db)),
      audit_(db_),
      actions_(db_),
      detector_(policy, reference_chunks),
      in_force_(std::move(in_force)) {
  if (!in_force_) fail("DetectWorker needs the table of actions in force");
  snapshot_ = {{"enabled", policy.enabled}, {"observed", 0},  {"updated", 0},
               {"now", 0},                  {"keys", nlohmann::json::array()}, {"clusters", nlohmann::json::array()}};
  for (const ActionRow& r : actions_.since(in_force_->last_id())) in_force_->apply(r);
}

DetectWorker::~DetectWorker() { stop(); }

void DetectWorker::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] {
    for (int timed = 0; !stop_;) {
      try {
        const PassStats st = pass();
        // The first two passes that read rows (catch-up, then one on top of it): bench-detect.
        if (st.rows > 0 && timed++ < 2)
          std::fprintf(stderr,
                       "guard: detector pass: %lld audit rows read and scored in %.3f s "
                       "(%.0f rows/s), %lld action rows\n",
                       static_cast<long long>(st.rows), st.seconds,
                       double(st.rows) / std::max(st.seconds, 1e-9),
                       static_cast<long long>(st.actions));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "guard: detector pass failed (retrying): %s\n", e.what());
      }
      const auto wait = std::chrono::duration<double>(detector_.policy().interval);
      const auto until = std::chrono::steady_clock::now() + wait;
      while (!stop_ && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
}

void DetectWorker::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

PassStats DetectWorker::pass() {
  const auto t0 = std::chrono::steady_clock::now();
  PassStats st;
  for (; detector_.policy().enabled;) {
    const std::vector<AuditRow> rows = audit_.since(last_audit_, 20000);
    for (const AuditRow& r : rows) detector_.observe(r);
    st.rows += int64_t(rows.size());
    if (!rows.empty()) last_audit_ = rows.back().id;
    if (rows.size() < 20000) break;
  }
  // Others' rows first (an operator's decision wins over what this pass would do).
  for (const ActionRow& r : actions_.since(in_force_->last_id())) in_force_->apply(r);
  const double now = unix_seconds();
  bool graph = false;
  if (st.rows > 0) {
    // Keys with new rows are assessed every pass; the key graph (all keys) at most once a second.
    const std::vector<Assessment> keys = detector_.take_touched();
    graph = now - clustered_at_ >= std::max(1.0, detector_.policy().interval);
    if (graph) clusters_ = detector_.clusters(), clustered_at_ = now;
    const std::vector<Assessment> none;
    const std::vector<Assessment>& clusters = graph ? clusters_ : none;
    for (const Verdict& v : Detector::verdicts(keys, clusters)) {
      const std::optional<ActionRow> current = in_force_->find(v.key_id, now);
      if (!policy_may_act(current, v.response)) continue;
      ActionRow row;
      row.time = now;
      row.key_id = v.key_id;
      row.key_name = v.key_name;
      row.cluster = v.from->cluster ? v.from->name : "";
      row.action = v.response;
      row.score = v.score;
      row.reason = v.from->reason();
      row.signals = v.from->to_json().at("signals").dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      row.source = "policy";
      in_force_->apply(actions_.append(row));
      ++st.actions;
    }
    snapshot_stale_ = true;
  }
  // The snapshot for other threads, at most once a second: the graph of this pass, or a fresh one.
  if (snapshot_stale_ && now - snapshot_at_ >= 1.0) publish(graph ? clusters_ : detector_.clusters(), now);
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

nlohmann::json DetectWorker::snapshot() const {
  std::lock_guard<std::mutex> lock(snapshot_mutex_);
  return snapshot_;
}

void DetectWorker::publish(const std::vector<Assessment>& clusters, double now) {
  auto with_ids = [](const Assessment& a) {
    nlohmann::json j = a.to_json();
    j["ids"] = a.key_ids;
    return j;
  };
  nlohmann::json keys = nlohmann::json::array(), groups = nlohmann::json::array();
  for (const Assessment& a : detector_.keys()) keys.push_back(with_ids(a));
  for (const Assessment& a : clusters) groups.push_back(with_ids(a));
  nlohmann::json s = {{"enabled", detector_.policy().enabled}, {"observed", detector_.observed()}, {"updated", now},
                      {"now", detector_.now()},                {"keys", std::move(keys)},            {"clusters", std::move(groups)}};
  std::lock_guard<std::mutex> lock(snapshot_mutex_);
  snapshot_ = std::move(s);
  snapshot_stale_ = false;
  snapshot_at_ = now;
}

}  // namespace retort

// The durable rows of `retort guard verify` (retort/verifications.h).
#include "retort/verifications.h"

#include <sqlite3.h>

#include <chrono>
#include <mutex>

#include "guard/statement.h"
#include "retort/error.h"

namespace retort {

using guard_detail::exec;
using guard_detail::Statement;
using guard_detail::Transaction;

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS verifications (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  time            REAL NOT NULL,
  suspect         TEXT NOT NULL,
  method          TEXT NOT NULL,
  p_value         REAL NOT NULL,
  tokens          INTEGER NOT NULL,
  watermark_key   TEXT NOT NULL,
  control_p_value REAL NOT NULL,
  headline        TEXT NOT NULL,
  evidence_path   TEXT NOT NULL,
  usage           TEXT NOT NULL        -- JSON list of the keys that received marked answers
);
)sql";

}  // namespace

VerificationStore::VerificationStore(std::shared_ptr<GuardDb> db) : db_(std::move(db)) {
  if (!db_) fail("VerificationStore needs an open guard database");
  std::lock_guard<std::mutex> lock(db_->mutex());
  exec(*db_, kSchema);
}

VerificationRow VerificationStore::append(VerificationRow r) {
  if (r.time <= 0)
    r.time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (r.usage.empty()) r.usage = "[]";
  std::lock_guard<std::mutex> lock(db_->mutex());
  Transaction t(*db_);
  Statement s(*db_,
              "INSERT INTO verifications (time, suspect, method, p_value, tokens, watermark_key, control_p_value, "
              "headline, evidence_path, usage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, r.time).bind(2, r.suspect).bind(3, r.method).bind(4, r.p_value).bind(5, r.tokens);
  s.bind(6, r.watermark_key).bind(7, r.control_p_value).bind(8, r.headline).bind(9, r.evidence_path).bind(10, r.usage);
  s.run();
  r.id = sqlite3_last_insert_rowid(db_->handle());
  t.commit();
  return r;
}

std::vector<VerificationRow> VerificationStore::recent(int64_t limit) const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_,
              "SELECT id, time, suspect, method, p_value, tokens, watermark_key, control_p_value, headline, "
              "evidence_path, usage FROM verifications ORDER BY id DESC LIMIT ?");
  s.bind(1, limit);
  std::vector<VerificationRow> out;
  while (s.step()) {
    VerificationRow r;
    r.id = s.integer(0);
    r.time = s.real(1);
    r.suspect = s.text(2);
    r.method = s.text(3);
    r.p_value = s.real(4);
    r.tokens = s.integer(5);
    r.watermark_key = s.text(6);
    r.control_p_value = s.real(7);
    r.headline = s.text(8);
    r.evidence_path = s.text(9);
    r.usage = s.text(10);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace retort

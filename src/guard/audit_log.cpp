// The audit log (retort/guard.h): one row per request, committed (with the key's settled usage)
// before its answer leaves, so an answer that has left never lacks its row; rows that arrive
// together may share a transaction (retort serve's group commit, src/serve/audit_group.h).
#include "guard/statement.h"
#include "retort/error.h"
#include "retort/guard.h"

namespace retort {

using guard_detail::Statement;
using guard_detail::Transaction;

namespace {

constexpr const char* kAuditColumns =
    "time, key_id, key_name, endpoint, model, status, error_code, prompt_hash, prompt_chars, prompt_tokens, "
    "completion_tokens, n, max_tokens, logprobs, echo, stream, temperature, latency_ms, client, user_agent, "
    "watermark, watermark_key, prompt_simhash, prompt_prefix, ref_chunk, prompt_text, action, id";
constexpr int kInserted = 27;  // every column but id

AuditRow read_row(const Statement& s) {
  AuditRow r;
  r.time = s.real(0);
  r.key_id = s.integer(1);
  r.key_name = s.text(2);
  r.endpoint = s.text(3);
  r.model = s.text(4);
  r.status = int(s.integer(5));
  r.error_code = s.text(6);
  r.prompt_hash = s.text(7);
  r.prompt_chars = s.integer(8);
  r.prompt_tokens = s.integer(9);
  r.completion_tokens = s.integer(10);
  r.n = s.integer(11);
  r.max_tokens = s.integer(12);
  r.logprobs = s.integer(13);
  r.echo = s.integer(14) != 0;
  r.stream = s.integer(15) != 0;
  r.temperature = s.real(16);
  r.latency_ms = s.real(17);
  r.client = s.text(18);
  r.user_agent = s.text(19);
  r.watermark = s.text(20);
  r.watermark_key = s.text(21);
  r.prompt_simhash = uint64_t(s.integer(22));
  r.prompt_prefix = uint64_t(s.integer(23));
  r.ref_chunk = s.integer(24);
  r.prompt_text = s.text(25);
  r.action = s.text(26);
  r.id = s.integer(27);
  return r;
}

std::string insert_sql() {
  std::string columns = kAuditColumns;
  columns.resize(columns.rfind(", id"));
  std::string marks;
  for (int i = 0; i < kInserted; ++i) marks += i ? ", ?" : "?";
  return "INSERT INTO audit (" + columns + ") VALUES (" + marks + ")";
}

}  // namespace

AuditLog::AuditLog(std::shared_ptr<GuardDb> db) : db_(std::move(db)) {
  if (!db_) fail("AuditLog needs an open guard database");
}

void AuditLog::append(const AuditRow& r) { append(std::vector<AuditRow>{r}); }

void AuditLog::append(const std::vector<AuditRow>& rows) {
  for (const AuditRow& r : rows)
    if (r.settled_tokens < 0) fail("cannot settle ", r.settled_tokens, " tokens with an audit row (negative)");
  static const std::string sql = insert_sql();
  std::lock_guard<std::mutex> lock(db_->mutex());
  Transaction t(*db_);
  Statement u(*db_, "UPDATE keys SET used_tokens = used_tokens + ? WHERE id = ?");
  Statement s(*db_, sql.c_str());
  for (const AuditRow& r : rows) {
    if (r.settled_tokens > 0) {
      u.reset();
      u.bind(1, r.settled_tokens).bind(2, r.key_id);
      u.run();
    }
    s.reset();
    s.bind(1, r.time).bind(2, r.key_id).bind(3, r.key_name).bind(4, r.endpoint).bind(5, r.model);
    s.bind(6, r.status).bind(7, r.error_code).bind(8, r.prompt_hash).bind(9, r.prompt_chars);
    s.bind(10, r.prompt_tokens).bind(11, r.completion_tokens).bind(12, r.n).bind(13, r.max_tokens);
    s.bind(14, r.logprobs).bind(15, r.echo).bind(16, r.stream).bind(17, r.temperature);
    s.bind(18, r.latency_ms).bind(19, r.client).bind(20, r.user_agent).bind(21, r.watermark).bind(22, r.watermark_key);
    s.bind(23, int64_t(r.prompt_simhash)).bind(24, int64_t(r.prompt_prefix)).bind(25, r.ref_chunk);
    s.bind(26, r.prompt_text).bind(27, r.action);
    s.run();
  }
  t.commit();
}

int64_t AuditLog::count() const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, "SELECT COUNT(*) FROM audit");
  return s.step() ? s.integer(0) : 0;
}

std::vector<AuditRow> AuditLog::recent(int64_t limit) const {
  if (limit < 0) fail("cannot list ", limit, " audit rows (negative)");
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, (std::string("SELECT ") + kAuditColumns + " FROM audit ORDER BY id DESC LIMIT ?").c_str());
  s.bind(1, limit);
  std::vector<AuditRow> out;
  while (s.step()) out.push_back(read_row(s));
  return out;
}

std::vector<AuditRow> AuditLog::since(int64_t after_id, int64_t limit) const {
  if (limit < 0) fail("cannot list ", limit, " audit rows (negative)");
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, (std::string("SELECT ") + kAuditColumns + " FROM audit WHERE id > ? ORDER BY id LIMIT ?").c_str());
  s.bind(1, after_id).bind(2, limit);
  std::vector<AuditRow> out;
  while (s.step()) out.push_back(read_row(s));
  return out;
}

}  // namespace retort

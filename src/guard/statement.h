// A prepared SQLite statement with RAII and errors that name the database file (guard-private).
// Not thread-safe by itself: callers hold GuardDb::mutex() while a statement lives.
#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "retort/error.h"
#include "retort/guard.h"

namespace retort::guard_detail {

// 'serve.db': how messages name the database file.
inline std::string quoted(const std::filesystem::path& file) { return "'" + file.string() + "'"; }

class Statement {
 public:
  Statement(GuardDb& db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db.handle(), sql, -1, &stmt_, nullptr) != SQLITE_OK)
      fail("guard database ", quoted(db.file()), ": cannot prepare '", sql,
           "': ", sqlite3_errmsg(db.handle()));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are numbered from 1, as in SQLite.
  Statement& bind(int i, int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  Statement& bind(int i, int v) { return bind(i, int64_t{v}); }
  Statement& bind(int i, bool v) { return bind(i, int64_t{v ? 1 : 0}); }
  Statement& bind(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
  Statement& bind(int i, const std::string& v) {
    return check(sqlite3_bind_text(stmt_, i, v.data(), int(v.size()), SQLITE_TRANSIENT));
  }

  // True while there is a row to read; false when done. Errors -> Error (constraint names kept).
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    code_ = rc;
    fail("guard database ", quoted(db_.file()), ": ", sqlite3_errmsg(db_.handle()));
  }
  void run() {
    while (step()) {
    }
  }
  // Ready to run again with new bindings.
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    code_ = SQLITE_OK;
  }
  int error_code() const { return code_; }

  // Columns are numbered from 0.
  int64_t integer(int c) const { return sqlite3_column_int64(stmt_, c); }
  double real(int c) const { return sqlite3_column_double(stmt_, c); }
  std::string text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    return p ? std::string(p, size_t(sqlite3_column_bytes(stmt_, c))) : std::string();
  }

 private:
  Statement& check(int rc) {
    if (rc != SQLITE_OK)
      fail("guard database ", quoted(db_.file()),
           ": cannot bind a value: ", sqlite3_errmsg(db_.handle()));
    return *this;
  }
  GuardDb& db_;
  sqlite3_stmt* stmt_ = nullptr;
  int code_ = SQLITE_OK;
};

// Runs SQL without results (schema, pragmas, BEGIN/COMMIT).
inline void exec(GuardDb& db, const std::string& sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db.handle(), sql.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
    const std::string why = msg ? msg : sqlite3_errmsg(db.handle());
    sqlite3_free(msg);
    fail("guard database ", quoted(db.file()), ": ", why, " (in '", sql, "')");
  }
}

// BEGIN IMMEDIATE ... COMMIT; rolled back unless commit() was reached. Caller holds the mutex.
class Transaction {
 public:
  explicit Transaction(GuardDb& db) : db_(db) { exec(db_, "BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    exec(db_, "COMMIT");
    done_ = true;
  }

 private:
  GuardDb& db_;
  bool done_ = false;
};

}  // namespace retort::guard_detail

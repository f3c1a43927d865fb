// The guard's SQLite database (retort/guard.h): opening, pragmas, schema and its format check.
// Not here: what is stored in it (key_store.cpp, audit_log.cpp).
#include <sqlite3.h>


#include "guard/statement.h"
#include "retort/error.h"
#include "retort/guard.h"

namespace retort {

using guard_detail::exec;
using guard_detail::quoted;
using guard_detail::Statement;

namespace {

constexpr const char* kFormat = "retort-guard";
constexpr int64_t kVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
  id           INTEGER PRIMARY KEY,
  name         TEXT NOT NULL UNIQUE,
  key_hash     TEXT NOT NULL UNIQUE,     -- sha256 of the key, 64 hex digits; never the key
  prefix       TEXT NOT NULL,            -- first 8 characters of the key
  created      INTEGER NOT NULL,         -- unix seconds
  rpm          INTEGER NOT NULL DEFAULT 0,
  tpm          INTEGER NOT NULL DEFAULT 0,
  quota_tokens INTEGER NOT NULL DEFAULT 0,
  used_tokens  INTEGER NOT NULL DEFAULT 0,
  admin        INTEGER NOT NULL DEFAULT 0,
  revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS audit (
  id                INTEGER PRIMARY KEY,
  time              REAL NOT NULL,       -- unix seconds
  key_id            INTEGER NOT NULL,    -- 0: no valid key
  key_name          TEXT NOT NULL,
  endpoint          TEXT NOT NULL,
  model             TEXT NOT NULL,
  status            INTEGER NOT NULL,
  error_code        TEXT NOT NULL,
  prompt_hash       TEXT NOT NULL,
  prompt_chars      INTEGER NOT NULL,
  prompt_tokens     INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  n                 INTEGER NOT NULL,
  max_tokens        INTEGER NOT NULL,
  logprobs          INTEGER NOT NULL,
  echo              INTEGER NOT NULL,
  stream            INTEGER NOT NULL,
  temperature       REAL NOT NULL,
  latency_ms        REAL NOT NULL,
  client            TEXT NOT NULL,
  user_agent        TEXT NOT NULL,
  watermark         TEXT NOT NULL DEFAULT '',  -- scheme that marked the answer ('' none)
  watermark_key     TEXT NOT NULL DEFAULT '',  -- its key's public id
  prompt_simhash    INTEGER NOT NULL DEFAULT 0,  -- retort/telemetry.h: SimHash of the prompt's words
  prompt_prefix     INTEGER NOT NULL DEFAULT 0,  -- hash of its first three words
  ref_chunk         INTEGER NOT NULL DEFAULT -1, -- passage of guard.reference it comes from (-1 none)
  prompt_text       TEXT NOT NULL DEFAULT '',    -- only with guard.store_prompts
  action            TEXT NOT NULL DEFAULT ''     -- the guard's action in force when it was answered
);
CREATE INDEX IF NOT EXISTS audit_key_time ON audit (key_id, time);
CREATE TABLE IF NOT EXISTS watermark_keys (
  id      TEXT PRIMARY KEY,                  -- public: 'wm-' + 8 hex digits
  created INTEGER NOT NULL,                  -- unix seconds
  secret  TEXT NOT NULL                      -- 32 hex digits; only ever here
);
CREATE TABLE IF NOT EXISTS serving (
  id        INTEGER PRIMARY KEY,
  started   REAL NOT NULL,                   -- unix seconds
  model     TEXT NOT NULL,
  path      TEXT NOT NULL,
  tokenizer TEXT NOT NULL,                   -- fingerprint ('' for classifiers)
  scheme    TEXT NOT NULL,
  key_id    TEXT NOT NULL,
  gamma     REAL NOT NULL,
  delta     REAL NOT NULL,
  context   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dawn_marks (
  id         INTEGER PRIMARY KEY,
  time       REAL NOT NULL,                  -- unix seconds
  key_id     TEXT NOT NULL,                  -- the watermark key
  api_key_id INTEGER NOT NULL,               -- who was answered
  model      TEXT NOT NULL,
  classes    INTEGER NOT NULL,
  input      TEXT NOT NULL,                  -- the pixels (0..255 bytes), base64
  answered   INTEGER NOT NULL                -- the wrong class answered
);
CREATE INDEX IF NOT EXISTS dawn_marks_key ON dawn_marks (key_id);
CREATE TABLE IF NOT EXISTS actions (           -- retort/actions.h
  id       INTEGER PRIMARY KEY,
  time     REAL NOT NULL,                      -- unix seconds
  key_id   INTEGER NOT NULL,
  key_name TEXT NOT NULL,
  cluster  TEXT NOT NULL,                      -- '' for a key alone
  action   TEXT NOT NULL,                      -- observe | throttle | strip | mark | block | allow
  score    REAL NOT NULL,
  reason   TEXT NOT NULL,
  signals  TEXT NOT NULL,                      -- JSON
  source   TEXT NOT NULL,                      -- policy | operator | partner
  until    REAL NOT NULL DEFAULT 0             -- unix seconds; 0: until replaced
);
CREATE INDEX IF NOT EXISTS actions_key ON actions (key_id, id);
)sql";

// A directory is named as such. A file that is not an SQLite database is found by SQLite's first
// read (SQLITE_NOTADB), never by reading its header here: opening and closing another descriptor
// on a database this process has open would drop the process's POSIX locks on it, and another
// process closing its connection would then delete the WAL under the open connections (their
// later commits would be lost).
void check_not_directory(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) fail("guard database ", quoted(file), " is a directory");
}

[[noreturn]] void not_sqlite(const std::filesystem::path& file) {
  fail(quoted(file), " is not a retort guard database (not an SQLite file); name another --db or move it away");
}

std::string pragma_text(GuardDb& db, const char* sql) {
  Statement s(db, sql);
  return s.step() ? s.text(0) : std::string();
}

// A database with a `meta` table must be ours; one without it must have none of another
// program's tables (an empty file or an old retort database gets the schema).
void check_format(GuardDb& db) {
  bool has_meta = false;
  std::string foreign;
  {
    Statement s(db,
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
    while (s.step()) {
      const std::string name = s.text(0);
      if (name == "meta")
        has_meta = true;
      else if (name != "keys" && name != "audit" && name != "watermark_keys" && name != "serving" &&
               name != "dawn_marks" && name != "actions" &&
               foreign.empty())
        foreign = name;
    }
  }
  if (!has_meta) {
    if (!foreign.empty())
      fail(quoted(db.file()), " is an SQLite database of another program (it has a table '",
           foreign, "' and no retort meta table); name another --db");
    return;
  }
  std::string format, version;
  Statement s(db, "SELECT key, value FROM meta WHERE key IN ('format', 'version')");
  while (s.step()) (s.text(0) == "format" ? format : version) = s.text(1);
  if (format.empty() && version.empty()) return;  // created by a run that stopped half-way
  if (format != kFormat)
    fail(quoted(db.file()), " is not a retort guard database: its meta format is '", format,
         "', expected '", kFormat, "'");
  if (version != std::to_string(kVersion))
    fail("guard database ", quoted(db.file()), " has format version ", version,
         "; this retort reads version ", kVersion, " (a newer retort wrote it?)");
}

// Columns added to a table after databases were made with it: added to older databases on open.
void add_missing_columns(GuardDb& db) {
  struct Added {
    const char *table, *column, *declaration;
  };
  static constexpr Added kAdded[] = {
      {"audit", "watermark", "TEXT NOT NULL DEFAULT ''"},
      {"audit", "watermark_key", "TEXT NOT NULL DEFAULT ''"},
      {"audit", "prompt_simhash", "INTEGER NOT NULL DEFAULT 0"},
      {"audit", "prompt_prefix", "INTEGER NOT NULL DEFAULT 0"},
      {"audit", "ref_chunk", "INTEGER NOT NULL DEFAULT -1"},
      {"audit", "prompt_text", "TEXT NOT NULL DEFAULT ''"},
      {"audit", "action", "TEXT NOT NULL DEFAULT ''"},
  };
  for (const Added& a : kAdded) {
    bool present = false;
    {
      Statement s(db, (std::string("PRAGMA table_info(") + a.table + ")").c_str());
      while (s.step()) present |= s.text(1) == a.column;
    }
    if (!present)
      exec(db, std::string("ALTER TABLE ") + a.table + " ADD COLUMN " + a.column + " " + a.declaration);
  }
}

}  // namespace

GuardDb::GuardDb(const std::filesystem::path& file) : file_(file) {
  check_not_directory(file_);
  const int rc =
      sqlite3_open_v2(file_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    fail("cannot open guard database ", quoted(file_), ": ", why);
  }
  try {
    sqlite3_extended_result_codes(db_, 1);
    exec(*this, "PRAGMA busy_timeout = 5000");
    if ((sqlite3_exec(db_, "PRAGMA schema_version", nullptr, nullptr, nullptr) & 0xff) == SQLITE_NOTADB) not_sqlite(file_);
    const std::string mode = pragma_text(*this, "PRAGMA journal_mode = WAL");
    if (mode != "wal")
      fail("guard database ", quoted(file_), ": cannot switch to WAL journaling (journal_mode is '",
           mode, "'); is it on a file system without shared memory, such as NFS?");
    exec(*this, "PRAGMA synchronous = NORMAL");
    exec(*this, "PRAGMA foreign_keys = ON");
    exec(*this, "BEGIN IMMEDIATE");
    try {
      check_format(*this);
      exec(*this, kSchema);
      add_missing_columns(*this);
      exec(*this, std::string("INSERT OR IGNORE INTO meta (key, value) VALUES ('format', '") +
                      kFormat + "'), ('version', '" + std::to_string(kVersion) + "')");
      exec(*this, "COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

GuardDb::~GuardDb() { sqlite3_close(db_); }

}  // namespace retort

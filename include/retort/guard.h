// The guard: what every request to `retort serve` passes before and after the model runs
// (auth -> limits -> audit; detection and watermarks will join the chain). State that must
// survive a restart (keys, total usage, the audit log) lives in one SQLite database (WAL);
// the per-minute windows live in memory. No torch and no HTTP here: the server composes these.
//
// The database (`--db serve.db`):
//   keys   (id, name UNIQUE, key_hash UNIQUE, prefix, created, rpm, tpm, quota_tokens,
//           used_tokens, admin, revoked)      a key is stored as sha256(key) only, never in clear
//   audit  (id, time, key_id, key_name, endpoint, model, status, error_code, prompt_hash,
//           prompt_chars, prompt_tokens, completion_tokens, n, max_tokens, logprobs, echo,
//           stream, temperature, latency_ms, client, user_agent, watermark, watermark_key,
//           prompt_simhash, prompt_prefix, ref_chunk, prompt_text, action)
//   actions                                     see retort/actions.h
//   watermark_keys, serving                    see retort/watermark_store.h
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

struct sqlite3;

namespace retort {

// One SQLite connection shared by the guard's parts, serialized by a mutex: journal_mode=WAL,
// synchronous=NORMAL (a committed row survives kill -9 of the process), busy_timeout 5 s.
// Opening creates the schema (and any missing table) and refuses a file that is not a retort
// database with an Error naming it.
class GuardDb {
 public:
  explicit GuardDb(const std::filesystem::path& file);
  ~GuardDb();
  GuardDb(const GuardDb&) = delete;
  GuardDb& operator=(const GuardDb&) = delete;
  sqlite3* handle() { return db_; }
  std::mutex& mutex() { return mutex_; }
  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  sqlite3* db_ = nullptr;
  std::mutex mutex_;
};

struct KeyLimits {
  int64_t rpm = 0;           // requests per minute; 0 = unlimited
  int64_t tpm = 0;           // tokens (prompt + completion) per minute; 0 = unlimited
  int64_t quota_tokens = 0;  // tokens over the key's life; 0 = unlimited
};

struct ApiKey {
  int64_t id = 0;
  std::string name;
  std::string prefix;  // first 8 characters of the key, to recognise it in listings
  int64_t created = 0;  // unix seconds
  KeyLimits limits;
  int64_t used_tokens = 0;  // settled, durable
  bool admin = false;       // may manage keys over HTTP
  bool revoked = false;
};

class KeyStore {
 public:
  explicit KeyStore(std::shared_ptr<GuardDb> db);
  // A new key "rt-" + 48 hex digits from /dev/urandom; returns the record and the key in clear
  // (shown once, never stored). Name: 1-64 of [A-Za-z0-9._-], unique -> Error otherwise.
  std::pair<ApiKey, std::string> create(const std::string& name, const KeyLimits& limits, bool admin = false);
  // The key a bearer token stands for; nullopt for unknown or revoked keys.
  std::optional<ApiKey> authenticate(const std::string& token) const;
  std::vector<ApiKey> list() const;
  std::optional<ApiKey> find(const std::string& name) const;
  std::optional<ApiKey> find_id(int64_t id) const;  // by ApiKey::id; nullopt when none
  bool revoke(const std::string& name);  // false when no such key
  // Adds settled tokens to the key's durable total.
  void add_usage(int64_t key_id, int64_t tokens);

 private:
  std::shared_ptr<GuardDb> db_;
};

// Headers of OpenAI's rate limits: x-ratelimit-limit-requests, -remaining-requests,
// -reset-requests, -limit-tokens, -remaining-tokens, -reset-tokens (resets as "1.5s").
using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Reservation {
  int64_t key_id = 0;
  int64_t tokens = 0;  // reserved; settled later to what was used
  int64_t ticket = 0;  // 0: nothing reserved
};

struct LimitDecision {
  bool ok = false;
  std::string code;        // "rate_limit_exceeded" | "insufficient_quota" when refused
  std::string message;     // says which limit, its value and when to retry
  double retry_after = 0;  // seconds until the request could pass (refused only)
  HeaderList headers;      // x-ratelimit-* (also on success)
  Reservation reservation; // set when ok
};

// Per-key sliding 60-second windows of requests and tokens, plus the total quota. reserve()
// counts a request and its worst-case tokens (prompt + max_tokens * n) atomically before the
// model runs, so concurrent requests can never together exceed a limit; settle() replaces the
// reservation by what was used (and adds that to the key's durable total through the KeyStore);
// release() drops a reservation whose request failed before using anything (the request still
// counts against rpm). Thread-safe. `now` is injectable for tests (seconds, steady).
class RateLimiter {
 public:
  explicit RateLimiter(KeyStore& store);
  LimitDecision reserve(const ApiKey& key, int64_t tokens, double now = -1);
  void settle(const Reservation& r, int64_t used_tokens, double now = -1);
  // settle() in memory only; returns the tokens to add to the key's durable total, which
  // AuditLog::append writes in the same transaction as the request's row (AuditRow::settled_tokens),
  // so a kill -9 can never leave usage that no audit row accounts for. 0 when already settled.
  int64_t settle_for_audit(const Reservation& r, int64_t used_tokens);
  void release(const Reservation& r, double now = -1);

 private:
  struct State;
  KeyStore& store_;
  std::mutex mutex_;
  std::unordered_map<int64_t, std::shared_ptr<State>> keys_;
  int64_t next_ticket_ = 1;
};

struct AuditRow {
  double time = 0;  // unix seconds, when the request arrived
  int64_t key_id = 0;  // 0: no valid key
  std::string key_name;
  std::string endpoint;  // "/v1/completions", ...
  std::string model;
  int status = 0;          // HTTP status answered
  std::string error_code;  // OpenAI error code when status >= 400
  std::string prompt_hash; // 16 hex digits of the prompt text / messages / input (retort/hash.h)
  int64_t prompt_chars = 0, prompt_tokens = 0, completion_tokens = 0;
  int64_t n = 1, max_tokens = 0;
  int64_t logprobs = 0;  // top logprobs asked per position (completions: logprobs, chat: top_logprobs; -1 none)
  bool echo = false, stream = false;
  double temperature = 1;
  double latency_ms = 0;
  std::string client;      // remote address
  std::string user_agent;
  int64_t settled_tokens = 0;  // added to the key's used_tokens in the row's own transaction
  std::string watermark;       // scheme that marked the answer ("" none)
  std::string watermark_key;   // the watermark key's public id
  // Telemetry for the campaign detector (retort/telemetry.h, retort/detect.h).
  uint64_t prompt_simhash = 0;  // SimHash of the prompt's words (0: none)
  uint64_t prompt_prefix = 0;   // hash of its first three words (0: none)
  int64_t ref_chunk = -1;       // passage of guard.reference it comes from (-1: none)
  std::string prompt_text;      // only with guard.store_prompts
  std::string action;           // the guard's action in force for the key ("" none)
  int64_t id = 0;               // the row's id (read back; append() ignores it)
};

// One durable row per request, committed before the answer leaves (a kill -9 after an answer
// never loses its row), in one transaction with the usage it settles (row.settled_tokens).
class AuditLog {
 public:
  explicit AuditLog(std::shared_ptr<GuardDb> db);
  void append(const AuditRow& row);
  // Several rows (and their keys' settled usage) in one transaction: all or none.
  void append(const std::vector<AuditRow>& rows);
  int64_t count() const;
  std::vector<AuditRow> recent(int64_t limit) const;  // newest first
  std::vector<AuditRow> since(int64_t after_id, int64_t limit) const;  // oldest first, with ids

 private:
  std::shared_ptr<GuardDb> db_;
};

// sha256 of a string as 64 hex digits (keys are stored as this).
std::string sha256_hex(const std::string& data);

}  // namespace retort

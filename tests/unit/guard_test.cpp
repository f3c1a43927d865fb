// The guard of `retort serve` (keys, limits, audit in SQLite) and two small pieces the server
// leans on: Base64 and the token strings of logprobs. No torch here.
#include "retort/guard.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <thread>

#include "retort/base64.h"
#include "retort/error.h"
#include "retort/tokenizer.h"

namespace retort {
namespace {

namespace fs = std::filesystem;

// A fresh folder under /tmp, removed with everything in it at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "retort-guard-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The message of the Error `f` throws, or "" when it throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

struct Guard {
  std::shared_ptr<GuardDb> db;
  KeyStore keys;
  explicit Guard(const fs::path& file) : db(std::make_shared<GuardDb>(file)), keys(db) {}
};

// ---- KeyStore ----------------------------------------------------------------------

TEST(KeyStore, Sha256HexMatchesTheStandardVector) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(KeyStore, KeyIsRtPlus48HexAndOnlyItsHashReachesTheFile) {
  TempDir dir;
  const fs::path file = dir.path / "serve.db";
  std::string key;
  {
    Guard g(file);
    auto [rec, clear] = g.keys.create("alice", {/*rpm=*/60, /*tpm=*/1000, /*quota_tokens=*/5000});
    key = clear;
    ASSERT_EQ(key.size(), 51u) << key;
    EXPECT_EQ(key.substr(0, 3), "rt-");
    EXPECT_EQ(key.find_first_not_of("0123456789abcdef", 3), std::string::npos) << key;
    EXPECT_EQ(rec.prefix, key.substr(0, 8));
    EXPECT_EQ(rec.name, "alice");
    EXPECT_GT(rec.id, 0);
    EXPECT_EQ(rec.limits.rpm, 60);
    EXPECT_EQ(rec.limits.tpm, 1000);
    EXPECT_EQ(rec.limits.quota_tokens, 5000);
    EXPECT_NE(g.keys.create("bob", {}).second, key);
  }
  // Closing the last connection checkpoints the WAL into the main file.
  std::string bytes = file_bytes(file);
  for (const char* extra : {"-wal", "-shm"})
    if (fs::exists(file.string() + extra)) bytes += file_bytes(file.string() + extra);
  EXPECT_EQ(bytes.find(key), std::string::npos) << "the clear key is in the database file";
  EXPECT_EQ(bytes.find(key.substr(3)), std::string::npos)
      << "the key's hex digits are in the database file";
  EXPECT_NE(bytes.find(sha256_hex(key)), std::string::npos)
      << "the key's sha256 is not in the file";
}

TEST(KeyStore, AuthenticateAcceptsTheKeyAndRefusesWrongOrRevokedOnes) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const auto [alice, alice_key] = g.keys.create("alice", {}, /*admin=*/true);
  const auto [bob, bob_key] = g.keys.create("bob", {});
  auto who = g.keys.authenticate(alice_key);
  ASSERT_TRUE(who);
  EXPECT_EQ(who->id, alice.id);
  EXPECT_EQ(who->name, "alice");
  EXPECT_TRUE(who->admin);
  EXPECT_FALSE(g.keys.authenticate(bob_key)->admin);
  EXPECT_FALSE(g.keys.authenticate(""));
  EXPECT_FALSE(g.keys.authenticate(alice_key + "0"));
  EXPECT_FALSE(g.keys.authenticate(alice_key.substr(0, 50)));
  EXPECT_FALSE(g.keys.authenticate(sha256_hex(alice_key)));  // the stored hash is no key

  EXPECT_TRUE(g.keys.revoke("alice"));
  EXPECT_FALSE(g.keys.revoke("nobody"));
  EXPECT_FALSE(g.keys.authenticate(alice_key));
  EXPECT_TRUE(g.keys.authenticate(bob_key));
  ASSERT_TRUE(g.keys.find("alice"));
  EXPECT_TRUE(g.keys.find("alice")->revoked);
  EXPECT_FALSE(g.keys.find("nobody"));
  ASSERT_TRUE(g.keys.find_id(bob.id));
  EXPECT_EQ(g.keys.find_id(bob.id)->name, "bob");
}

TEST(KeyStore, DuplicateNameIsAnErrorNamingIt) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  g.keys.create("alice", {});
  const std::string msg = error_of([&] { g.keys.create("alice", {}); });
  EXPECT_NE(msg.find("'alice' already exists"), std::string::npos) << msg;
  g.keys.revoke("alice");
  EXPECT_NE(error_of([&] { g.keys.create("alice", {}); }).find("revoked"), std::string::npos);
  EXPECT_EQ(g.keys.list().size(), 1u);
}

TEST(KeyStore, BadNamesAndNegativeLimitsAreErrors) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  for (const std::string& bad : std::vector<std::string>{"", "a b", "x/y", "caf\xc3\xa9",
                                                         "semi;colon", std::string(65, 'a')}) {
    const std::string msg = error_of([&] { g.keys.create(bad, {}); });
    EXPECT_NE(msg.find("key name '" + bad + "'"), std::string::npos)
        << "name '" << bad << "': " << msg;
  }
  EXPECT_NO_THROW(g.keys.create(std::string(64, 'a'), {}));
  EXPECT_NO_THROW(g.keys.create("team-1.prod_A", {}));
  EXPECT_THROW(g.keys.create("neg", {/*rpm=*/-1, 0, 0}), Error);
  EXPECT_EQ(g.keys.list().size(), 2u);
}

TEST(KeyStore, NonDatabaseFileIsAnErrorNamingTheFile) {
  TempDir dir;
  const fs::path file = dir.path / "notes.txt";
  std::ofstream(file) << "these are my notes, not a database\n";
  const std::string msg = error_of([&] { GuardDb db(file); });
  EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a retort guard database"), std::string::npos) << msg;
  EXPECT_EQ(file_bytes(file), "these are my notes, not a database\n");  // left untouched
}

TEST(KeyStore, DatabaseOfAnotherFormatOrProgramIsAnError) {
  TempDir dir;
  auto make = [&](const fs::path& file, const char* sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  };
  const fs::path other = dir.path / "other.db";
  make(other,
       "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('format', "
       "'other-tool');");
  std::string msg = error_of([&] { GuardDb db(other); });
  EXPECT_NE(msg.find(other.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("'other-tool'"), std::string::npos) << msg;

  const fs::path foreign = dir.path / "foreign.db";
  make(foreign, "CREATE TABLE customers (id INTEGER);");
  msg = error_of([&] { GuardDb db(foreign); });
  EXPECT_NE(msg.find(foreign.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("'customers'"), std::string::npos) << msg;

  const fs::path newer = dir.path / "newer.db";
  make(newer,
       "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
       "INSERT INTO meta VALUES ('format', 'retort-guard'), ('version', '2');");
  msg = error_of([&] { GuardDb db(newer); });
  EXPECT_NE(msg.find("version 2"), std::string::npos) << msg;
}

TEST(KeyStore, DatabaseIsInWalModeWithTheRetortMeta) {
  TempDir dir;
  GuardDb db(dir.path / "serve.db");
  auto one = [&](const char* sql) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db.handle(), sql, -1, &s, nullptr), SQLITE_OK) << sql;
    std::string out;
    if (sqlite3_step(s) == SQLITE_ROW)
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return out;
  };
  EXPECT_EQ(one("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(one("PRAGMA synchronous"), "1");  // NORMAL
  EXPECT_EQ(one("PRAGMA foreign_keys"), "1");
  EXPECT_EQ(one("PRAGMA busy_timeout"), "5000");
  EXPECT_EQ(one("SELECT value FROM meta WHERE key = 'format'"), "retort-guard");
  EXPECT_EQ(one("SELECT value FROM meta WHERE key = 'version'"), "1");
  EXPECT_EQ(one("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'audit_key_time'"),
            "audit_key_time");
}

TEST(KeyStore, ReopeningKeepsKeysAndUsedTokens) {
  TempDir dir;
  const fs::path file = dir.path / "serve.db";
  std::string key;
  int64_t id = 0;
  {
    Guard g(file);
    auto [rec, clear] = g.keys.create("alice", {10, 2000, 9000}, /*admin=*/true);
    key = clear;
    id = rec.id;
    g.keys.add_usage(id, 123);
    g.keys.add_usage(id, 77);
    g.keys.create("bob", {});
  }
  Guard g(file);
  auto alice = g.keys.authenticate(key);
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->id, id);
  EXPECT_EQ(alice->used_tokens, 200);
  EXPECT_EQ(alice->limits.rpm, 10);
  EXPECT_EQ(alice->limits.tpm, 2000);
  EXPECT_EQ(alice->limits.quota_tokens, 9000);
  EXPECT_TRUE(alice->admin);
  const auto all = g.keys.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "alice");
  EXPECT_EQ(all[1].name, "bob");
  EXPECT_NEAR(double(all[0].created), double(std::time(nullptr)), 60);
}

// ---- RateLimiter ---------------------------------------------------------------------

std::string header(const LimitDecision& d, const std::string& name) {
  for (const auto& [k, v] : d.headers)
    if (k == name) return v;
  return "(none)";
}

TEST(RateLimiter, RpmAdmitsExactlyNThenRefusesUntilTheOldestLeavesTheWindow) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {/*rpm=*/3, 0, 0}).first;
  RateLimiter limiter(g.keys);
  EXPECT_TRUE(limiter.reserve(key, 10, 1000.0).ok);
  EXPECT_TRUE(limiter.reserve(key, 10, 1000.5).ok);
  const LimitDecision third = limiter.reserve(key, 10, 1001.0);
  ASSERT_TRUE(third.ok);
  EXPECT_EQ(header(third, "x-ratelimit-limit-requests"), "3");
  EXPECT_EQ(header(third, "x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(header(third, "x-ratelimit-reset-requests"), "60.000s");
  EXPECT_EQ(header(third, "x-ratelimit-limit-tokens"), "(none)");  // no tpm set

  const LimitDecision fourth = limiter.reserve(key, 10, 1010.0);
  EXPECT_FALSE(fourth.ok);
  EXPECT_EQ(fourth.code, "rate_limit_exceeded");
  EXPECT_NEAR(fourth.retry_after, 50.0, 1e-9);  // the request at 1000 leaves at 1060
  EXPECT_NE(fourth.message.find(
                "rate limit of 3 requests per minute reached for key 'alice'; retry after 50 s"),
            std::string::npos)
      << fourth.message;
  EXPECT_EQ(fourth.reservation.ticket, 0);
  EXPECT_EQ(header(fourth, "x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(header(fourth, "x-ratelimit-reset-requests"), "51.000s");

  // A refusal is not counted: at 1060 the first request has left, one slot is free.
  const LimitDecision later = limiter.reserve(key, 10, 1059.9);
  EXPECT_FALSE(later.ok);
  EXPECT_NEAR(later.retry_after, 0.1, 1e-9);
  EXPECT_TRUE(limiter.reserve(key, 10, 1060.0).ok);
  const LimitDecision next = limiter.reserve(key, 10, 1060.2);
  EXPECT_FALSE(next.ok);
  EXPECT_NEAR(next.retry_after, 0.3, 1e-9);  // the one at 1000.5 leaves at 1060.5
  EXPECT_TRUE(limiter.reserve(key, 10, 1060.5).ok);
  EXPECT_TRUE(limiter.reserve(key, 10, 1061.0).ok);
  EXPECT_FALSE(limiter.reserve(key, 10, 1061.0).ok);
}

TEST(RateLimiter, RetryAfterIsAtLeastOneMillisecond) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {/*rpm=*/1, 0, 0}).first;
  RateLimiter limiter(g.keys);
  ASSERT_TRUE(limiter.reserve(key, 0, 1000.0).ok);
  const LimitDecision d = limiter.reserve(key, 0, 1059.99999999);
  EXPECT_FALSE(d.ok);
  EXPECT_DOUBLE_EQ(d.retry_after, 0.001);
}

TEST(RateLimiter, TpmCountsReservationsInFlight) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {0, /*tpm=*/100, 0}).first;
  RateLimiter limiter(g.keys);
  const LimitDecision a = limiter.reserve(key, 60, 1000.0);
  ASSERT_TRUE(a.ok);
  EXPECT_EQ(a.reservation.tokens, 60);
  EXPECT_EQ(header(a, "x-ratelimit-limit-tokens"), "100");
  EXPECT_EQ(header(a, "x-ratelimit-remaining-tokens"), "40");
  EXPECT_EQ(header(a, "x-ratelimit-reset-tokens"), "60.000s");
  const LimitDecision b = limiter.reserve(key, 50, 1010.0);  // 60 in flight + 50 > 100
  EXPECT_FALSE(b.ok);
  EXPECT_EQ(b.code, "rate_limit_exceeded");
  EXPECT_NEAR(b.retry_after, 50.0, 1e-9);
  EXPECT_NE(b.message.find("rate limit of 100 tokens per minute reached for key 'alice'"),
            std::string::npos)
      << b.message;
  EXPECT_TRUE(limiter.reserve(key, 40, 1010.0).ok);  // exactly 100
  EXPECT_FALSE(limiter.reserve(key, 1, 1010.0).ok);
  limiter.release(a.reservation);
  EXPECT_TRUE(limiter.reserve(key, 60, 1011.0).ok);  // the released 60 are free again
}

TEST(RateLimiter, SettleReplacesTheReservationByWhatWasUsed) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {0, /*tpm=*/100, 0}).first;
  RateLimiter limiter(g.keys);
  const LimitDecision a = limiter.reserve(key, 80, 1000.0);
  ASSERT_TRUE(a.ok);
  EXPECT_FALSE(limiter.reserve(key, 80, 1001.0).ok);
  limiter.settle(a.reservation, 20);
  EXPECT_EQ(g.keys.find("alice")->used_tokens, 20);
  const LimitDecision b = limiter.reserve(key, 80, 1001.0);  // 20 settled + 80 = 100
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(header(b, "x-ratelimit-remaining-tokens"), "0");
  // The 20 settled tokens count at 1000 (when reserved): they leave the window at 1060.
  limiter.settle(b.reservation, 80);
  EXPECT_FALSE(limiter.reserve(key, 20, 1059.0).ok);
  const LimitDecision c = limiter.reserve(key, 20, 1060.0);
  EXPECT_TRUE(c.ok) << c.message;
}

TEST(RateLimiter, SettlingTwiceCountsOnceAndTicketZeroIsIgnored) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {0, /*tpm=*/100, /*quota_tokens=*/1000}).first;
  RateLimiter limiter(g.keys);
  const LimitDecision a = limiter.reserve(key, 100, 1000.0);
  ASSERT_TRUE(a.ok);
  limiter.settle(a.reservation, 50);
  limiter.settle(a.reservation, 50);
  limiter.release(a.reservation);
  limiter.settle(Reservation{}, 500);
  limiter.release(Reservation{});
  EXPECT_EQ(g.keys.find("alice")->used_tokens, 50);
  EXPECT_TRUE(limiter.reserve(key, 50, 1001.0).ok);  // 50 settled + 50 = 100
  EXPECT_FALSE(limiter.reserve(key, 1, 1001.0).ok);
}

TEST(RateLimiter, ReleasedRequestStillCountsAgainstRpm) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {/*rpm=*/1, /*tpm=*/100, 0}).first;
  RateLimiter limiter(g.keys);
  const LimitDecision a = limiter.reserve(key, 100, 1000.0);
  ASSERT_TRUE(a.ok);
  limiter.release(a.reservation);
  EXPECT_EQ(g.keys.find("alice")->used_tokens, 0);
  const LimitDecision b = limiter.reserve(key, 1, 1030.0);
  EXPECT_FALSE(b.ok);
  EXPECT_NE(b.message.find("1 requests per minute"), std::string::npos) << b.message;
  EXPECT_NEAR(b.retry_after, 30.0, 1e-9);
}

TEST(RateLimiter, RequestAboveTheTpmCanNeverPass) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("alice", {0, /*tpm=*/100, 0}).first;
  RateLimiter limiter(g.keys);
  const LimitDecision d = limiter.reserve(key, 101, 1000.0);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.code, "rate_limit_exceeded");
  EXPECT_DOUBLE_EQ(d.retry_after, 60.0);
  EXPECT_NE(d.message.find("can never pass"), std::string::npos) << d.message;
  EXPECT_NE(d.message.find("101"), std::string::npos) << d.message;
  EXPECT_NE(d.message.find("100 tokens per minute"), std::string::npos) << d.message;
  EXPECT_TRUE(limiter.reserve(key, 100, 1000.0).ok);
}

TEST(RateLimiter, QuotaCountsInFlightAndSurvivesARestart) {
  TempDir dir;
  const fs::path file = dir.path / "serve.db";
  std::string clear;
  {
    Guard g(file);
    clear = g.keys.create("alice", {0, 0, /*quota_tokens=*/100}).second;
    RateLimiter limiter(g.keys);
    const ApiKey key = *g.keys.authenticate(clear);
    const LimitDecision a = limiter.reserve(key, 70, 1000.0);
    ASSERT_TRUE(a.ok);
    const LimitDecision b = limiter.reserve(key, 40, 1000.0);  // 70 in flight + 40 > 100
    EXPECT_FALSE(b.ok);
    EXPECT_EQ(b.code, "insufficient_quota");
    EXPECT_EQ(b.retry_after, 0);
    EXPECT_NE(b.message.find("quota of 100 tokens"), std::string::npos) << b.message;
    limiter.settle(a.reservation, 70);
  }
  Guard g(file);  // a restarted server: a new limiter reads the durable total
  RateLimiter limiter(g.keys);
  const ApiKey key = *g.keys.authenticate(clear);
  EXPECT_EQ(key.used_tokens, 70);
  const LimitDecision c = limiter.reserve(key, 31, 5.0);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.code, "insufficient_quota");
  EXPECT_NE(c.message.find("30 tokens left"), std::string::npos) << c.message;
  const LimitDecision d = limiter.reserve(key, 30, 5.0);
  ASSERT_TRUE(d.ok) << d.message;
  limiter.settle(d.reservation, 30);
  EXPECT_EQ(g.keys.find("alice")->used_tokens, 100);
  EXPECT_EQ(limiter.reserve(key, 0, 6.0).code, "insufficient_quota");  // nothing left at all
}

TEST(RateLimiter, UnlimitedKeyPassesWithoutHeaders) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("free", {}).first;
  RateLimiter limiter(g.keys);
  for (int i = 0; i < 1000; ++i) {
    const LimitDecision d = limiter.reserve(key, 1000000, 1000.0);
    ASSERT_TRUE(d.ok);
    EXPECT_TRUE(d.headers.empty());
  }
}

TEST(RateLimiter, EightThreadsGetExactlyTheRpmWithinOneWindow) {
  TempDir dir;
  Guard g(dir.path / "serve.db");
  const ApiKey key = g.keys.create("busy", {/*rpm=*/50, /*tpm=*/0, /*quota_tokens=*/0}).first;
  RateLimiter limiter(g.keys);
  std::atomic<int> passed{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const double now = 1000.0 + 0.01 * (t * 25 + i) / 200.0;  // all within one second
        const LimitDecision d = limiter.reserve(key, 3, now);
        if (d.ok) {
          ++passed;
          limiter.settle(d.reservation, 2, now);
        } else {
          ++refused;
          EXPECT_EQ(d.code, "rate_limit_exceeded");
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(passed.load(), 50);
  EXPECT_EQ(refused.load(), 150);
  EXPECT_EQ(g.keys.find("busy")->used_tokens, 100);
}

// ---- AuditLog ------------------------------------------------------------------------

AuditRow sample_row(int i) {
  AuditRow r;
  r.time = 1700000000.25 + i;
  r.key_id = 7;
  r.key_name = "alice";
  r.endpoint = "/v1/chat/completions";
  r.model = "student-" + std::to_string(i);
  r.status = 429;
  r.error_code = "rate_limit_exceeded";
  r.prompt_hash = "0123456789abcdef";
  r.prompt_chars = 1234;
  r.prompt_tokens = 321;
  r.completion_tokens = 45;
  r.n = 3;
  r.max_tokens = 64;
  r.logprobs = 5;
  r.echo = true;
  r.stream = true;
  r.temperature = 0.7;
  r.latency_ms = 12.5;
  r.client = "10.0.0.2";
  r.user_agent = "curl/7.88 \"quoted\" \xc3\xa9";
  return r;
}

TEST(AuditLog, RowsAreDurableAcrossReopen) {
  TempDir dir;
  const fs::path file = dir.path / "serve.db";
  {
    AuditLog log(std::make_shared<GuardDb>(file));
    EXPECT_EQ(log.count(), 0);
    for (int i = 0; i < 3; ++i) log.append(sample_row(i));
    EXPECT_EQ(log.count(), 3);
  }
  AuditLog log(std::make_shared<GuardDb>(file));
  EXPECT_EQ(log.count(), 3);
  log.append(sample_row(3));
  EXPECT_EQ(log.count(), 4);
}

TEST(AuditLog, FieldsRoundTripAndRecentIsNewestFirst) {
  TempDir dir;
  AuditLog log(std::make_shared<GuardDb>(dir.path / "serve.db"));
  AuditRow plain;
  plain.endpoint = "/v1/models";
  plain.status = 401;
  plain.logprobs = -1;
  log.append(plain);
  for (int i = 0; i < 3; ++i) log.append(sample_row(i));
  const auto rows = log.recent(2);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].model, "student-2");
  EXPECT_EQ(rows[1].model, "student-1");
  const AuditRow want = sample_row(2), &got = rows[0];
  EXPECT_DOUBLE_EQ(got.time, want.time);
  EXPECT_EQ(got.key_id, want.key_id);
  EXPECT_EQ(got.key_name, want.key_name);
  EXPECT_EQ(got.endpoint, want.endpoint);
  EXPECT_EQ(got.status, want.status);
  EXPECT_EQ(got.error_code, want.error_code);
  EXPECT_EQ(got.prompt_hash, want.prompt_hash);
  EXPECT_EQ(got.prompt_chars, want.prompt_chars);
  EXPECT_EQ(got.prompt_tokens, want.prompt_tokens);
  EXPECT_EQ(got.completion_tokens, want.completion_tokens);
  EXPECT_EQ(got.n, want.n);
  EXPECT_EQ(got.max_tokens, want.max_tokens);
  EXPECT_EQ(got.logprobs, want.logprobs);
  EXPECT_EQ(got.echo, want.echo);
  EXPECT_EQ(got.stream, want.stream);
  EXPECT_DOUBLE_EQ(got.temperature, want.temperature);
  EXPECT_DOUBLE_EQ(got.latency_ms, want.latency_ms);
  EXPECT_EQ(got.client, want.client);
  EXPECT_EQ(got.user_agent, want.user_agent);
  const auto all = log.recent(100);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[3].endpoint, "/v1/models");
  EXPECT_EQ(all[3].key_id, 0);
  EXPECT_EQ(all[3].logprobs, -1);
  EXPECT_EQ(all[3].status, 401);
  EXPECT_FALSE(all[3].echo);
}

// ---- Base64 --------------------------------------------------------------------------

TEST(Base64, RoundTripsRandomBytesOfLength0To20) {
  std::mt19937 rng(12345);
  for (size_t n = 0; n <= 20; ++n) {
    std::string bytes(n, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
    const std::string text = base64_encode(bytes);
    EXPECT_EQ(text.size(), (n + 2) / 3 * 4) << "length " << n;
    EXPECT_EQ(base64_decode(text), bytes) << "length " << n << ": " << text;
  }
}

TEST(Base64, MatchesRfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, coded] : vectors) {
    EXPECT_EQ(base64_encode(plain), coded);
    EXPECT_EQ(base64_decode(coded), plain);
  }
  EXPECT_EQ(base64_decode("Zm9v\nYmFy "), "foobar");  // whitespace is skipped
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Base64, BadInputIsAnError) {
  for (const char* bad : {"Zm9v!", "Z", "Zg=A", "Zg===", "Zm9v-_"}) {
    const std::string msg = error_of([&] { base64_decode(bad); });
    EXPECT_NE(msg.find("base64"), std::string::npos) << "'" << bad << "' gave: " << msg;
  }
}

// ---- TokenStrings --------------------------------------------------------------------

TEST(TokenStrings, ByteTokenizerStringsRoundTripAndAreDistinct) {
  const auto tok = make_byte_tokenizer();
  const TokenStrings strings(*tok);
  ASSERT_EQ(strings.size(), 256);
  std::set<std::string> seen;
  for (int32_t id = 0; id < 256; ++id) {
    const std::string& text = strings.text(id);
    EXPECT_EQ(strings.id(text), id) << "'" << text << "'";
    EXPECT_EQ(strings.bytes(id), std::string(1, static_cast<char>(id)));
    seen.insert(text);
  }
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(strings.text('a'), "a");
  EXPECT_EQ(strings.text(' '), " ");
  EXPECT_EQ(strings.text('\n'), "\n");
  for (int32_t id = 0; id < 0x80; ++id)
    EXPECT_EQ(strings.text(id), std::string(1, static_cast<char>(id))) << id;
  EXPECT_EQ(strings.text(0x80), "bytes:\\x80");
  EXPECT_EQ(strings.text(0xc3), "bytes:\\xc3");
  EXPECT_EQ(strings.text(0xff), "bytes:\\xff");
  EXPECT_EQ(strings.id("no such"), -1);
  EXPECT_EQ(strings.id(""), -1);
  EXPECT_THROW(strings.text(256), Error);
  EXPECT_THROW(strings.text(-1), Error);
}

// SentencePiece: byte-fallback pieces decode to the same text as real pieces; the piece the
// tokenizer itself produces must keep the plain string, so an echoed prompt reads as its text.
TEST(TokenStrings, SentencePiecesKeepTheirTextAndByteFallbacksYield) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "And God said, Let there be light: and there was light.\n";
  SentencePieceOptions o;
  o.vocab_size = 300;
  const auto tok = train_sentencepiece(text, o);
  const TokenStrings strings(*tok);
  std::set<std::string> seen;
  for (int32_t id = 0; id < tok->vocab_size(); ++id) {
    EXPECT_EQ(strings.id(strings.text(id)), id) << id;
    seen.insert(strings.text(id));
  }
  EXPECT_EQ(int64_t(seen.size()), tok->vocab_size());
  std::string joined;
  for (int32_t id : tok->encode("And God said, Let there be light")) {
    EXPECT_EQ(strings.text(id).rfind("bytes:", 0), std::string::npos) << "'" << strings.text(id) << "'";
    joined += strings.text(id);
  }
  EXPECT_EQ(joined, "And God said, Let there be light");
}

}  // namespace
}  // namespace retort

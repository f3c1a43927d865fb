// The guard's durable state: API keys (hashed, named, limited, revocable), the audit log, and
// the Base64 the key routes use. SQLite, no torch.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "retort/base64.h"
#include "guard_fixture.h"
#include "retort/guard.h"

namespace retort {
namespace {

using namespace guard_testing;

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

}  // namespace
}  // namespace retort

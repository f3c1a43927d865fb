// API keys (retort/guard.h): made from /dev/urandom, stored only as sha256, looked up by hash.
// Not here: what a key may do per minute (rate_limiter.cpp).
#include <openssl/evp.h>
#include <sqlite3.h>

#include <ctime>
#include <fstream>

#include "guard/random_hex.h"
#include "guard/statement.h"
#include "retort/error.h"
#include "retort/guard.h"

namespace retort {

using guard_detail::quoted;
using guard_detail::random_hex;
using guard_detail::to_hex;
using guard_detail::Statement;

namespace {

constexpr const char* kKeyColumns =
    "id, name, prefix, created, rpm, tpm, quota_tokens, used_tokens, admin, revoked";

ApiKey read_key(const Statement& s) {
  ApiKey k;
  k.id = s.integer(0);
  k.name = s.text(1);
  k.prefix = s.text(2);
  k.created = s.integer(3);
  k.limits.rpm = s.integer(4);
  k.limits.tpm = s.integer(5);
  k.limits.quota_tokens = s.integer(6);
  k.used_tokens = s.integer(7);
  k.admin = s.integer(8) != 0;
  k.revoked = s.integer(9) != 0;
  return k;
}

void check_name(const std::string& name) {
  if (name.empty() || name.size() > 64)
    fail("key name '", name, "' has ", name.size(), " characters; a name has 1 to 64");
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok)
      fail("key name '", name, "' has the character '", c, "' at position ", i,
           "; a name may hold only letters, digits, '.', '_' and '-'");
  }
}

void check_limits(const KeyLimits& l) {
  if (l.rpm < 0 || l.tpm < 0 || l.quota_tokens < 0)
    fail("key limits must be 0 (unlimited) or positive: rpm ", l.rpm, ", tpm ", l.tpm, ", quota ",
         l.quota_tokens);
}

}  // namespace

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr) != 1)
    fail("sha256 of ", data.size(), " bytes failed in OpenSSL");
  return to_hex(md, n);
}

KeyStore::KeyStore(std::shared_ptr<GuardDb> db) : db_(std::move(db)) {
  if (!db_) fail("KeyStore needs an open guard database");
}

std::pair<ApiKey, std::string> KeyStore::create(const std::string& name, const KeyLimits& limits,
                                                bool admin) {
  check_name(name);
  check_limits(limits);
  const std::string key = "rt-" + random_hex(24);
  ApiKey k;
  k.name = name;
  k.prefix = key.substr(0, 8);
  k.created = static_cast<int64_t>(std::time(nullptr));
  k.limits = limits;
  k.admin = admin;
  std::lock_guard<std::mutex> lock(db_->mutex());
  {
    Statement exists(*db_, "SELECT revoked FROM keys WHERE name = ?");
    exists.bind(1, name);
    if (exists.step())
      fail("a key named '", name, "' already exists",
           exists.integer(0) ? " (revoked; names are not reused)" : "", " in ", quoted(db_->file()),
           "; choose another name");
  }
  Statement s(*db_,
              "INSERT INTO keys (name, key_hash, prefix, created, rpm, tpm, quota_tokens, "
              "used_tokens, admin, revoked)"
              " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 0)");
  s.bind(1, name).bind(2, sha256_hex(key)).bind(3, k.prefix).bind(4, k.created);
  s.bind(5, limits.rpm).bind(6, limits.tpm).bind(7, limits.quota_tokens).bind(8, admin);
  s.run();
  k.id = sqlite3_last_insert_rowid(db_->handle());
  return {k, key};
}

std::optional<ApiKey> KeyStore::authenticate(const std::string& token) const {
  if (token.empty()) return std::nullopt;
  const std::string hash = sha256_hex(token);
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(
      *db_, (std::string("SELECT ") + kKeyColumns + " FROM keys WHERE key_hash = ? AND revoked = 0")
                .c_str());
  s.bind(1, hash);
  if (!s.step()) return std::nullopt;
  return read_key(s);
}

std::vector<ApiKey> KeyStore::list() const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, (std::string("SELECT ") + kKeyColumns + " FROM keys ORDER BY id").c_str());
  std::vector<ApiKey> out;
  while (s.step()) out.push_back(read_key(s));
  return out;
}

std::optional<ApiKey> KeyStore::find(const std::string& name) const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, (std::string("SELECT ") + kKeyColumns + " FROM keys WHERE name = ?").c_str());
  s.bind(1, name);
  if (!s.step()) return std::nullopt;
  return read_key(s);
}

std::optional<ApiKey> KeyStore::find_id(int64_t id) const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, (std::string("SELECT ") + kKeyColumns + " FROM keys WHERE id = ?").c_str());
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_key(s);
}

bool KeyStore::revoke(const std::string& name) {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, "UPDATE keys SET revoked = 1 WHERE name = ?");
  s.bind(1, name);
  s.run();
  return sqlite3_changes(db_->handle()) > 0;
}

void KeyStore::add_usage(int64_t key_id, int64_t tokens) {
  if (tokens < 0) fail("cannot add ", tokens, " tokens of usage to key id ", key_id, " (negative)");
  if (tokens == 0) return;
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, "UPDATE keys SET used_tokens = used_tokens + ? WHERE id = ?");
  s.bind(1, tokens).bind(2, key_id);
  s.run();
}

}  // namespace retort

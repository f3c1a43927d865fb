// Watermark keys, serving records and marked usage in the guard database
// (retort/watermark_store.h).
#include "retort/watermark_store.h"

#include <ctime>

#include <cmath>

#include "guard/random_hex.h"
#include "retort/base64.h"
#include "guard/statement.h"
#include "retort/error.h"

namespace retort {

using guard_detail::quoted;
using guard_detail::random_bytes;
using guard_detail::random_hex;
using guard_detail::Statement;
using guard_detail::to_hex;

namespace {

StoredWatermarkKey read_key(const Statement& s, const GuardDb& db) {
  StoredWatermarkKey k;
  k.key.id = s.text(0);
  k.created = s.integer(1);
  const std::string hex = s.text(2);
  if (hex.size() != 32) fail("guard database ", quoted(db.file()), ": watermark key ", k.key.id, " is damaged");
  for (size_t i = 0; i < 16; ++i) k.key.secret[i] = uint8_t(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return k;
}

}  // namespace

WatermarkStore::WatermarkStore(std::shared_ptr<GuardDb> db) : db_(std::move(db)) {
  if (!db_) fail("WatermarkStore needs an open guard database");
}

StoredWatermarkKey WatermarkStore::rotate() {
  StoredWatermarkKey k;
  k.key.id = "wm-" + random_hex(4);
  const std::string secret = random_bytes(16);
  for (size_t i = 0; i < 16; ++i) k.key.secret[i] = uint8_t(secret[i]);
  k.created = int64_t(std::time(nullptr));
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, "INSERT INTO watermark_keys (id, created, secret) VALUES (?, ?, ?)");
  s.bind(1, k.key.id).bind(2, k.created).bind(3, to_hex(k.key.secret.data(), 16));
  s.run();
  return k;
}

std::vector<StoredWatermarkKey> WatermarkStore::all() const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  // rowid breaks ties between keys made in the same second: the later one is current
  Statement s(*db_, "SELECT id, created, secret FROM watermark_keys ORDER BY created DESC, rowid DESC");
  std::vector<StoredWatermarkKey> out;
  while (s.step()) out.push_back(read_key(s, *db_));
  return out;
}

std::optional<StoredWatermarkKey> WatermarkStore::current() const {
  std::vector<StoredWatermarkKey> keys = all();
  if (keys.empty()) return std::nullopt;
  return keys.front();
}

StoredWatermarkKey WatermarkStore::require_current() const {
  std::optional<StoredWatermarkKey> k = current();
  if (!k)
    fail("the guard database ", quoted(db_->file()), " has no watermark key; make one: retort guard keys rotate --db ",
         db_->file().string());
  return *k;
}

void WatermarkStore::record_serving(const ServingRecord& r) {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_,
              "INSERT INTO serving (started, model, path, tokenizer, scheme, key_id, gamma, delta, context) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, r.started).bind(2, r.model).bind(3, r.path).bind(4, r.tokenizer);
  s.bind(5, std::string(watermark_scheme_name(r.options.scheme))).bind(6, r.key_id);
  s.bind(7, r.options.gamma).bind(8, r.options.delta).bind(9, r.options.context);
  s.run();
}

std::vector<ServingRecord> WatermarkStore::serving() const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_,
              "SELECT started, model, path, tokenizer, scheme, key_id, gamma, delta, context FROM serving "
              "ORDER BY id DESC");
  std::vector<ServingRecord> out;
  while (s.step()) {
    ServingRecord r;
    r.started = s.real(0);
    r.model = s.text(1);
    r.path = s.text(2);
    r.tokenizer = s.text(3);
    r.options.scheme = parse_watermark_scheme(s.text(4));
    r.key_id = s.text(5);
    r.options.gamma = s.real(6);
    r.options.delta = s.real(7);
    r.options.context = s.integer(8);
    out.push_back(std::move(r));
  }
  return out;
}

void WatermarkStore::record_dawn(const std::vector<DawnMark>& marks) {
  if (marks.empty()) return;
  std::lock_guard<std::mutex> lock(db_->mutex());
  guard_detail::Transaction t(*db_);
  for (const DawnMark& m : marks) {
    std::string bytes;
    for (float p : m.pixels) bytes.push_back(char(uint8_t(std::lround(std::min(255.0f, std::max(0.0f, p))))));
    Statement s(*db_,
                "INSERT INTO dawn_marks (time, key_id, api_key_id, model, classes, input, answered) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, m.time).bind(2, m.key_id).bind(3, m.api_key_id).bind(4, m.model).bind(5, m.classes);
    s.bind(6, base64_encode(bytes)).bind(7, m.answered);
    s.run();
  }
  t.commit();
}

std::vector<DawnMark> WatermarkStore::dawn_marks(const std::string& key_id) const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_,
              "SELECT time, key_id, api_key_id, model, classes, input, answered FROM dawn_marks WHERE key_id = ? "
              "ORDER BY id");
  s.bind(1, key_id);
  std::vector<DawnMark> out;
  while (s.step()) {
    DawnMark m;
    m.time = s.real(0);
    m.key_id = s.text(1);
    m.api_key_id = s.integer(2);
    m.model = s.text(3);
    m.classes = s.integer(4);
    const std::string bytes = base64_decode(s.text(5));
    for (char c : bytes) m.pixels.push_back(float(uint8_t(c)));
    m.answered = s.integer(6);
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<MarkedUsage> WatermarkStore::marked_usage(const std::string& key_id) const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_,
              "SELECT key_id, key_name, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), MIN(time), MAX(time) "
              "FROM audit WHERE watermark_key = ? AND status = 200 GROUP BY key_id "
              "ORDER BY SUM(prompt_tokens) + SUM(completion_tokens) DESC");
  s.bind(1, key_id);
  std::vector<MarkedUsage> out;
  while (s.step()) {
    MarkedUsage u;
    u.api_key_id = s.integer(0);
    u.api_key_name = s.text(1);
    u.requests = s.integer(2);
    u.prompt_tokens = s.integer(3);
    u.completion_tokens = s.integer(4);
    u.first = s.real(5);
    u.last = s.real(6);
    out.push_back(std::move(u));
  }
  return out;
}

}  // namespace retort

// The intel store's exchange tables (retort/intel.h): rights per key and collection, pull cursors,
// partners, partner rules (with the version the request path's cache follows), the exchange's
// events, and the database's own pseudonym secret. Each write one transaction under the mutex.
#include <mutex>

#include "guard/random_hex.h"
#include "guard/statement.h"
#include "intel/store_detail.h"
#include "retort/error.h"
#include "retort/intel.h"

namespace retort {

using guard_detail::exec;
using guard_detail::Statement;
using guard_detail::Transaction;
using intel_detail::collection_id;
using intel_detail::now_seconds;

void IntelStore::grant(const std::string& collection, const std::string& key_name, bool read, bool write) {
  const std::string cid = collection_id(collection);
  if (key_name.empty()) fail("a grant names a key");
  std::lock_guard<std::mutex> lock(db_->mutex());
  Transaction t(*db_);
  Statement s(*db_, "INSERT OR REPLACE INTO intel_rights (collection, key_name, can_read, can_write) VALUES (?, ?, ?, ?)");
  s.bind(1, cid).bind(2, key_name).bind(3, read).bind(4, write);
  s.run();
  t.commit();
}

namespace {

bool right(GuardDb& db, const std::string& cid, const ApiKey& key, const char* column) {
  if (key.revoked) return false;
  if (key.admin) return true;
  std::lock_guard<std::mutex> lock(db.mutex());
  Statement s(db, (std::string("SELECT ") + column + " FROM intel_rights WHERE collection = ? AND key_name = ?").c_str());
  s.bind(1, cid).bind(2, key.name);
  return s.step() && s.integer(0) != 0;
}

}  // namespace

bool IntelStore::can_read(const std::string& collection, const ApiKey& key) const {
  const IntelCollection* c = find_collection(collection);
  return c && right(*db_, c->id, key, "can_read");
}

bool IntelStore::can_write(const std::string& collection, const ApiKey& key) const {
  const IntelCollection* c = find_collection(collection);
  return c && right(*db_, c->id, key, "can_write");
}

std::string IntelStore::cursor(const std::string& url, const std::string& collection) const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, "SELECT added_after FROM intel_cursors WHERE url = ? AND collection = ?");
  s.bind(1, url).bind(2, collection);
  return s.step() ? s.text(0) : std::string();
}

void IntelStore::set_cursor(const std::string& url, const std::string& collection, const std::string& added_after) {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Transaction t(*db_);
  Statement s(*db_, "INSERT OR REPLACE INTO intel_cursors (url, collection, added_after, updated) VALUES (?, ?, ?, ?)");
  s.bind(1, url).bind(2, collection).bind(3, added_after).bind(4, now_seconds());
  s.run();
  t.commit();
}

void IntelStore::add_partner(const Partner& p) {
  if (p.name.empty() || p.url.empty() || p.collection.empty()) fail("a partner needs a name, a URL and a collection");
  std::lock_guard<std::mutex> lock(db_->mutex());
  Transaction t(*db_);
  Statement s(*db_, "INSERT OR REPLACE INTO intel_partners (name, url, collection, token, added) VALUES (?, ?, ?, ?, ?)");
  s.bind(1, p.name).bind(2, p.url).bind(3, p.collection).bind(4, p.token).bind(5, p.added > 0 ? p.added : now_seconds());
  s.run();
  t.commit();
}

std::vector<IntelStore::Partner> IntelStore::partners() const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, "SELECT name, url, collection, token, added FROM intel_partners ORDER BY name");
  std::vector<Partner> out;
  while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.real(4)});
  return out;
}

void IntelStore::replace_rules(const std::string& indicator, const std::vector<IntelRule>& rules) {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Transaction t(*db_);
  {
    Statement del(*db_, "DELETE FROM intel_rules WHERE indicator = ?");
    del.bind(1, indicator);
    del.run();
  }
  const double created = now_seconds();
  for (const IntelRule& r : rules) {
    Statement s(*db_,
                "INSERT INTO intel_rules (indicator, version, source, kind, value, action, confidence, tlp, "
                "valid_until, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, indicator).bind(2, r.version).bind(3, r.source).bind(4, r.kind).bind(5, r.value);
    s.bind(6, std::string(response_name(r.action))).bind(7, r.confidence).bind(8, r.tlp).bind(9, r.valid_until);
    s.bind(10, r.created > 0 ? r.created : created);
    s.run();
  }
  exec(*db_,
       "INSERT INTO intel_meta (key, value) VALUES ('rules_version', '1') "
       "ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)");
  t.commit();
}

std::vector<IntelRule> IntelStore::rules() const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_,
              "SELECT id, indicator, version, source, kind, value, action, confidence, tlp, valid_until, created "
              "FROM intel_rules ORDER BY id");
  std::vector<IntelRule> out;
  while (s.step()) {
    IntelRule r;
    r.id = s.integer(0);
    r.indicator = s.text(1);
    r.version = s.text(2);
    r.source = s.text(3);
    r.kind = s.text(4);
    r.value = s.text(5);
    r.action = response_from_name(s.text(6));
    r.confidence = s.integer(7);
    r.tlp = s.text(8);
    r.valid_until = s.real(9);
    r.created = s.real(10);
    out.push_back(std::move(r));
  }
  return out;
}

int64_t IntelStore::rules_version() const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, "SELECT CAST(value AS INTEGER) FROM intel_meta WHERE key = 'rules_version'");
  return s.step() ? s.integer(0) : 0;
}

void IntelStore::log(const IntelEvent& e) {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Transaction t(*db_);
  Statement s(*db_,
              "INSERT INTO intel_events (time, direction, peer, collection, object_id, detail) VALUES (?, ?, ?, ?, ?, ?)");
  s.bind(1, e.time > 0 ? e.time : now_seconds()).bind(2, e.direction).bind(3, e.peer).bind(4, e.collection);
  s.bind(5, e.object_id).bind(6, e.detail);
  s.run();
  t.commit();
}

std::vector<IntelEvent> IntelStore::events(int64_t limit) const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_,
              "SELECT id, time, direction, peer, collection, object_id, detail FROM intel_events ORDER BY id DESC LIMIT ?");
  s.bind(1, limit);
  std::vector<IntelEvent> out;
  while (s.step()) out.push_back({s.integer(0), s.real(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6)});
  return out;
}

std::string IntelStore::own_secret() {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Transaction t(*db_);
  {
    Statement s(*db_, "INSERT OR IGNORE INTO intel_meta (key, value) VALUES ('secret', ?)");
    s.bind(1, guard_detail::random_hex(32));
    s.run();
  }
  Statement s(*db_, "SELECT value FROM intel_meta WHERE key = 'secret'");
  if (!s.step()) fail("guard database ", guard_detail::quoted(db_->file()), ": no intel secret after making one");
  std::string secret = s.text(0);
  t.commit();
  return secret;
}

}  // namespace retort

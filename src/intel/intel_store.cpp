// The intel tables of the guard database (retort/intel.h): object versions in TAXII collections,
// status resources, rights, pull cursors, partners, partner rules and the exchange's events.
// Every write is one transaction under the database's mutex.
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "guard/random_hex.h"
#include "guard/statement.h"
#include "retort/error.h"
#include "retort/intel.h"
#include "retort/stix.h"

namespace retort {

using guard_detail::exec;
using guard_detail::Statement;
using guard_detail::Transaction;

namespace {

// added_us / version_us: the same instants as integers (microseconds since the epoch), so that
// filters and ordering do not depend on how many fractional digits a partner wrote.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS intel_objects (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  collection   TEXT NOT NULL,
  id           TEXT NOT NULL,
  type         TEXT NOT NULL,
  version      TEXT NOT NULL,
  version_us   INTEGER NOT NULL,
  spec_version TEXT NOT NULL,
  date_added   TEXT NOT NULL,
  added_us     INTEGER NOT NULL,
  source       TEXT NOT NULL,
  object       TEXT NOT NULL,
  UNIQUE (collection, id, version_us)
);
CREATE INDEX IF NOT EXISTS intel_objects_id ON intel_objects (collection, id, version_us);
CREATE TABLE IF NOT EXISTS intel_status (
  id                TEXT PRIMARY KEY,
  collection        TEXT NOT NULL,
  created           REAL NOT NULL,
  request_timestamp TEXT NOT NULL,
  total             INTEGER NOT NULL,
  success           INTEGER NOT NULL,
  failure           INTEGER NOT NULL,
  pending           INTEGER NOT NULL,
  details           TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS intel_cursors (
  url         TEXT NOT NULL,
  collection  TEXT NOT NULL,
  added_after TEXT NOT NULL,
  updated     REAL NOT NULL,
  PRIMARY KEY (url, collection)
);
CREATE TABLE IF NOT EXISTS intel_rights (
  collection TEXT NOT NULL,
  key_name   TEXT NOT NULL,
  can_read   INTEGER NOT NULL,
  can_write  INTEGER NOT NULL,
  PRIMARY KEY (collection, key_name)
);
CREATE TABLE IF NOT EXISTS intel_partners (
  name       TEXT PRIMARY KEY,
  url        TEXT NOT NULL,
  collection TEXT NOT NULL,
  token      TEXT NOT NULL,
  added      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS intel_rules (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  indicator   TEXT NOT NULL,
  version     TEXT NOT NULL,
  source      TEXT NOT NULL,
  kind        TEXT NOT NULL,
  value       TEXT NOT NULL,
  action      TEXT NOT NULL,
  confidence  INTEGER NOT NULL,
  tlp         TEXT NOT NULL,
  valid_until REAL NOT NULL,
  created     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS intel_rules_indicator ON intel_rules (indicator);
CREATE TABLE IF NOT EXISTS intel_events (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  time       REAL NOT NULL,
  direction  TEXT NOT NULL,
  peer       TEXT NOT NULL,
  collection TEXT NOT NULL,
  object_id  TEXT NOT NULL,
  detail     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS intel_meta (      -- rules_version, secret
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql";

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The id of a collection named by id or alias; Error naming it when unknown.
std::string collection_id(const std::string& id_or_alias) {
  const IntelCollection* c = find_collection(id_or_alias);
  if (!c) fail("no intel collection '", id_or_alias, "' (", kPublishedCollection, " or ", kInboxCollection, ")");
  return c->id;
}

StoredObject read_object(const Statement& s) {
  StoredObject o;
  o.seq = s.integer(0);
  o.collection = s.text(1);
  o.id = s.text(2);
  o.type = s.text(3);
  o.version = s.text(4);
  o.spec_version = s.text(5);
  o.date_added = s.text(6);
  o.source = s.text(7);
  o.object = nlohmann::json::parse(s.text(8));
  return o;
}

constexpr const char* kObjectColumns = "seq, collection, id, type, version, spec_version, date_added, source, object";

std::string placeholders(size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += i ? ", ?" : "?";
  return out;
}

}  // namespace

const std::vector<IntelCollection>& intel_collections() {
  // uuid5(kRetortNamespace, alias): fixed, so partners can name them in their configuration.
  static const std::vector<IntelCollection> kCollections = {
      {"a8d137a5-ee2b-52d2-bf12-631d93236b39", kPublishedCollection, "Distillation campaigns",
       "What this provider's guard found: campaigns of model extraction, their indicators and sightings (STIX 2.1)."},
      {"e306b8d9-8515-5947-9314-e79d548216a5", kInboxCollection, "Partner reports",
       "An inbox partner providers may add STIX 2.1 objects to; read by this provider's operators."},
  };
  return kCollections;
}

const IntelCollection* find_collection(const std::string& id_or_alias) {
  for (const IntelCollection& c : intel_collections())
    if (c.id == id_or_alias || c.alias == id_or_alias) return &c;
  return nullptr;
}

IntelStore::IntelStore(std::shared_ptr<GuardDb> db) : db_(std::move(db)) {
  if (!db_) fail("IntelStore needs an open guard database");
  std::lock_guard<std::mutex> lock(db_->mutex());
  exec(*db_, kSchema);
}

bool IntelStore::add(StoredObject o) {
  o.collection = collection_id(o.collection);
  if (!o.object.is_object()) fail("an intel object must be a JSON object");
  if (o.id.empty()) o.id = o.object.value("id", "");
  if (o.type.empty()) o.type = o.object.value("type", "");
  if (o.id.empty() || o.type.empty()) fail("an intel object needs an id and a type");
  if (o.object.contains("spec_version") && o.object["spec_version"].is_string())
    o.spec_version = o.object["spec_version"].get<std::string>();
  if (o.source.empty()) o.source = "local";

  std::lock_guard<std::mutex> lock(db_->mutex());
  Transaction t(*db_);
  int64_t added_ms = now_ms();
  {
    Statement last(*db_, "SELECT MAX(added_us) FROM intel_objects WHERE collection = ?");
    last.bind(1, o.collection);
    if (last.step()) {
      const int64_t last_ms = last.integer(0) / 1000;
      if (added_ms <= last_ms) added_ms = last_ms + 1;
    }
  }
  o.date_added = stix_time(double(added_ms) / 1000.0);
  if (o.version.empty()) {
    if (o.object.contains("modified") && o.object["modified"].is_string())
      o.version = o.object["modified"].get<std::string>();
    else if (o.object.contains("created") && o.object["created"].is_string())
      o.version = o.object["created"].get<std::string>();
    else
      o.version = o.date_added;  // SCOs and others without versions: the date added
  }
  const int64_t version_us = parse_stix_time_us(o.version);
  {
    Statement seen(*db_, "SELECT 1 FROM intel_objects WHERE collection = ? AND id = ? AND version_us = ?");
    seen.bind(1, o.collection).bind(2, o.id).bind(3, version_us);
    if (seen.step()) return false;  // the transaction rolls back: nothing written
  }
  Statement s(*db_,
              "INSERT INTO intel_objects (collection, id, type, version, version_us, spec_version, date_added, "
              "added_us, source, object) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, o.collection).bind(2, o.id).bind(3, o.type).bind(4, o.version).bind(5, version_us);
  s.bind(6, o.spec_version).bind(7, o.date_added).bind(8, added_ms * 1000).bind(9, o.source).bind(10, o.object.dump());
  s.run();
  t.commit();
  return true;
}

ObjectPage IntelStore::objects(const std::string& collection, const ObjectQuery& q) const {
  const std::string cid = collection_id(collection);
  if (q.limit <= 0) fail("an object query's limit must be positive, not ", q.limit);

  // The SQL and its parameters in order (texts and integers).
  std::string sql = std::string("SELECT ") + kObjectColumns + " FROM intel_objects o WHERE collection = ? AND seq > ?";
  std::vector<std::pair<int, int64_t>> ints;  // (parameter index, value)
  int index = 3;
  // Parameters from 3 on, each recorded with its index.
  std::vector<std::pair<int, std::string>> text_params;
  auto add_text = [&](const std::string& v) { text_params.push_back({index++, v}); };
  auto add_int = [&](int64_t v) { ints.push_back({index++, v}); };
  auto in_texts = [&](const char* column, const std::vector<std::string>& values) {
    if (values.empty()) return;
    sql += std::string(" AND ") + column + " IN (" + placeholders(values.size()) + ")";
    for (const std::string& v : values) add_text(v);
  };
  in_texts("id", q.ids);
  in_texts("type", q.types);
  in_texts("spec_version", q.spec_versions);
  if (!q.added_after.empty()) {
    sql += " AND added_us > ?";
    add_int(parse_stix_time_us(q.added_after));
  }
  // match[version]: the union of what each value selects; "last" when none is given.
  std::vector<std::string> versions = q.versions.empty() ? std::vector<std::string>{"last"} : q.versions;
  if (std::find(versions.begin(), versions.end(), "all") == versions.end()) {
    std::vector<std::string> terms;
    std::vector<int64_t> stamps;
    for (const std::string& v : versions) {
      if (v == "last")
        terms.push_back(
            "NOT EXISTS (SELECT 1 FROM intel_objects p WHERE p.collection = o.collection AND p.id = o.id AND "
            "p.version_us > o.version_us)");
      else if (v == "first")
        terms.push_back(
            "NOT EXISTS (SELECT 1 FROM intel_objects p WHERE p.collection = o.collection AND p.id = o.id AND "
            "p.version_us < o.version_us)");
      else
        stamps.push_back(parse_stix_time_us(v));
    }
    if (!stamps.empty()) terms.push_back("version_us IN (" + placeholders(stamps.size()) + ")");
    sql += " AND (";
    for (size_t i = 0; i < terms.size(); ++i) sql += (i ? " OR " : "") + terms[i];
    sql += ")";
    for (int64_t v : stamps) add_int(v);
  }
  sql += " ORDER BY seq LIMIT ?";
  add_int(q.limit + 1);

  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, sql.c_str());
  s.bind(1, cid).bind(2, q.after_seq);
  for (const auto& [i, v] : text_params) s.bind(i, v);
  for (const auto& [i, v] : ints) s.bind(i, v);
  ObjectPage page;
  while (s.step()) {
    if (int64_t(page.objects.size()) == q.limit) {
      page.more = true;
      break;
    }
    page.objects.push_back(read_object(s));
  }
  page.next = page.objects.empty() ? q.after_seq : page.objects.back().seq;
  return page;
}

std::optional<StoredObject> IntelStore::latest(const std::string& collection, const std::string& id) const {
  const std::string cid = collection_id(collection);
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, (std::string("SELECT ") + kObjectColumns +
                     " FROM intel_objects WHERE collection = ? AND id = ? ORDER BY version_us DESC, seq DESC LIMIT 1")
                        .c_str());
  s.bind(1, cid).bind(2, id);
  if (!s.step()) return std::nullopt;
  return read_object(s);
}

void IntelStore::put_status(const std::string& id, const std::string& collection, const nlohmann::json& status) {
  auto count = [&](const char* name) -> int64_t {
    return status.contains(name) && status[name].is_number_integer() ? status[name].get<int64_t>() : 0;
  };
  std::lock_guard<std::mutex> lock(db_->mutex());
  Transaction t(*db_);
  Statement s(*db_,
              "INSERT OR REPLACE INTO intel_status (id, collection, created, request_timestamp, total, success, "
              "failure, pending, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.bind(1, id).bind(2, collection).bind(3, now_seconds()).bind(4, status.value("request_timestamp", ""));
  s.bind(5, count("total_count")).bind(6, count("success_count")).bind(7, count("failure_count"));
  s.bind(8, count("pending_count")).bind(9, status.dump());
  s.run();
  t.commit();
}

std::optional<nlohmann::json> IntelStore::status(const std::string& id) const {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Statement s(*db_, "SELECT details FROM intel_status WHERE id = ?");
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return nlohmann::json::parse(s.text(0));
}

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

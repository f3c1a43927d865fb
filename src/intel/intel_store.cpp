// The intel tables of the guard database (retort/intel.h): the schema, object versions in TAXII
// collections and status resources. Rights, cursors, partners, rules, events: intel_store_exchange.cpp.
// Every write is one transaction under the database's mutex.
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "guard/statement.h"
#include "retort/error.h"
#include "retort/intel.h"
#include "retort/stix.h"
#include "intel/store_detail.h"

namespace retort {

using guard_detail::exec;
using guard_detail::Statement;
using guard_detail::Transaction;
using intel_detail::collection_id;
using intel_detail::now_ms;
using intel_detail::now_seconds;

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

void IntelStore::remove(const std::vector<int64_t>& seqs) {
  std::lock_guard<std::mutex> lock(db_->mutex());
  Transaction t(*db_);
  for (int64_t seq : seqs) {
    Statement s(*db_, "DELETE FROM intel_objects WHERE seq = ?");
    s.bind(1, seq);
    s.run();
  }
  t.commit();
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

}  // namespace retort

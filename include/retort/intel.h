// Threat intelligence between providers (DESIGN.md, "intel"): what the guard found, as STIX 2.1
// objects (retort/stix.h) kept in TAXII 2.1 collections, served at /taxii2/ (retort/taxii.h),
// pulled from partners (retort/taxii_client.h) and turned into rules for the "actions in force"
// stage (retort/partner_rules.h). This header holds the store (the options, intel.*, are retort/intel_options.h): the
// intel tables of the guard database. No torch, no HTTP.
//
//   intel_objects  (seq, collection, id, type, version, spec_version, date_added, source, object)
//                  one row per object version; `seq` orders the collection (TAXII's date added)
//   intel_status   (id, collection, created, request_timestamp, total, success, failure, pending, details)
//   intel_cursors  (url, collection, added_after, updated)   where a pull from a partner stopped
//   intel_rights   (collection, key_name, can_read, can_write)
//   intel_partners (name, url, collection, token, added)       partners this provider pulls from
//   intel_rules    (id, indicator, version, source, kind, value, action, confidence, tlp, valid_until, created)
//   intel_events   (id, time, direction, peer, collection, object_id, detail)  sent / received / rejected
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "retort/guard.h"
#include "retort/intel_options.h"

namespace retort {

// The collections every provider has (ids are fixed UUIDs, intel_store.cpp):
//   distillation-campaigns  what this provider publishes; readers per intel_rights, written only by publish()
//   partner-reports         an inbox partners may push to (writers per intel_rights), read by admins
inline constexpr const char* kPublishedCollection = "distillation-campaigns";
inline constexpr const char* kInboxCollection = "partner-reports";

struct IntelCollection {
  std::string id;     // a UUID
  std::string alias;  // kPublishedCollection | kInboxCollection
  std::string title, description;
};
const std::vector<IntelCollection>& intel_collections();
const IntelCollection* find_collection(const std::string& id_or_alias);  // nullptr when unknown

struct StoredObject {
  int64_t seq = 0;
  std::string collection;   // the collection's id
  std::string id, type;
  std::string version;      // the object's `modified` (or `created`; for SCOs the date added)
  std::string spec_version = "2.1";
  std::string date_added;   // RFC 3339 with milliseconds; strictly increasing per collection
  std::string source;       // "local" or the partner's name
  nlohmann::json object;
};

struct ObjectQuery {
  std::string added_after;         // RFC 3339; "" none
  std::vector<std::string> ids, types, versions, spec_versions;  // match[...]; versions: "last" (default) | "first" | "all" | timestamps
  int64_t limit = 100;
  int64_t after_seq = 0;           // paging: the `next` token is the last seq returned
};

struct ObjectPage {
  std::vector<StoredObject> objects;  // by seq
  bool more = false;
  int64_t next = 0;                   // the last seq returned (for `next`)
};

struct IntelRule {
  int64_t id = 0;
  std::string indicator;   // the STIX indicator's id
  std::string version;     // its `modified`
  std::string source;      // the partner's name
  std::string kind;        // address | user_agent | account | template | simhash | shape
  std::string value;
  Response action = Response::none;  // what a match earns (intel.act.<kind>, none below min_confidence)
  int64_t confidence = 0;
  std::string tlp;
  double valid_until = 0;  // unix seconds; 0: no end
  double created = 0;
};

struct IntelEvent {
  int64_t id = 0;
  double time = 0;
  std::string direction;   // published | sent | received | rejected | acted
  std::string peer, collection, object_id, detail;
};

// The intel tables (made on first use). Thread-safe through the database's mutex; every write
// is one transaction, durable on return.
class IntelStore {
 public:
  explicit IntelStore(std::shared_ptr<GuardDb> db);
  const std::shared_ptr<GuardDb>& db() const { return db_; }

  // Adds one version of an object to a collection. Returns false (and stores nothing) when that
  // (id, version) is already there. date_added is set here.
  bool add(StoredObject o);
  ObjectPage objects(const std::string& collection, const ObjectQuery& q) const;
  std::optional<StoredObject> latest(const std::string& collection, const std::string& id) const;
  // Removes the object versions with these seqs (TAXII DELETE), in one transaction.
  void remove(const std::vector<int64_t>& seqs);

  // TAXII status resources of POSTed envelopes.
  void put_status(const std::string& id, const std::string& collection, const nlohmann::json& status);
  std::optional<nlohmann::json> status(const std::string& id) const;

  // Rights of a guard key (by name) on a collection; admin keys may do everything.
  void grant(const std::string& collection, const std::string& key_name, bool read, bool write);
  bool can_read(const std::string& collection, const ApiKey& key) const;
  bool can_write(const std::string& collection, const ApiKey& key) const;

  // Pull cursors: the `added_after` to ask for next, per (partner URL, collection).
  std::string cursor(const std::string& url, const std::string& collection) const;
  void set_cursor(const std::string& url, const std::string& collection, const std::string& added_after);

  // Partners to pull from (`retort intel partner add`); the token is never printed.
  struct Partner {
    std::string name, url, collection, token;
    double added = 0;
  };
  void add_partner(const Partner& p);
  std::vector<Partner> partners() const;

  // Rules from partner indicators; a newer version of an indicator replaces its rules.
  void replace_rules(const std::string& indicator, const std::vector<IntelRule>& rules);
  std::vector<IntelRule> rules() const;
  int64_t rules_version() const;  // changes whenever rules change (for the request path's cache)

  void log(const IntelEvent& e);
  std::vector<IntelEvent> events(int64_t limit) const;  // newest first

  // The secret pseudonyms are keyed with when intel.group_secret is empty (made on first use).
  std::string own_secret();

 private:
  std::shared_ptr<GuardDb> db_;
};

}  // namespace retort

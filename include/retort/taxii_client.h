// The TAXII 2.1 client (DESIGN.md, "intel"): pulls a partner's collection into the intel store
// (retort/intel.h) from where the last pull stopped, validating every object, and turns the
// partner's indicators into guard rules (retort/partner_rules.h); pushes this provider's
// published collection to a partner. `retort intel pull | push` and serve's intel worker
// (retort/intel_worker.h) call it. http:// and https:// (cpp-httplib). No torch.
//
// Where pulled objects go: the inbox collection (kInboxCollection, "partner-reports"), each with
// source = the partner's name. A pull's cursor (IntelStore::cursor, keyed by the partner's API
// root and its collection id) moves only after every object of a page is stored, so a pull killed
// mid-way resumes from the last stored page; objects fetched twice are stored once ((id, version)).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "retort/intel.h"

namespace retort {

// A partner's TAXII collection, as the client addresses it.
struct TaxiiPeer {
  std::string name;  // the partner's name: the source of what is stored, in every message
  std::string url;   // its API root, e.g. "http://127.0.0.1:8080/taxii2/api1/" (https works too)
  std::string
      collection;       // the collection's id, alias or title (resolved through GET collections/)
  std::string token;    // bearer token for it ("" none); never printed
  double timeout = 30;  // seconds per HTTP request
  int64_t page_size = 100;  // objects asked for per page (`limit`)
  // When set and true, a pull stops between pages (what it stored stays; the cursor is where it
  // stopped): serve's intel worker on shutdown.
  std::shared_ptr<const std::atomic<bool>> stop;
};

struct PullResult {
  std::string collection_id;  // the partner's collection, resolved
  int64_t pages = 0;
  int64_t received = 0;    // objects in the envelopes
  int64_t stored = 0;      // new (id, version)s stored
  int64_t duplicates = 0;  // already stored (a resumed pull)
  int64_t rejected = 0;    // failed validation: logged (IntelStore::log "rejected"), not stored
  int64_t indicators = 0;  // indicator versions among the stored
  int64_t rules = 0;       // rules written from them
  std::string cursor;      // added_after for the next pull ("" when the partner sent no dates)
};

// Pulls `peer` into `store`. Objects that fail validation are skipped, each logged with its reason
// (and one line to `log`). A response that is not a TAXII envelope (wrong status or media type,
// not JSON, wrong shape) stores nothing of it, moves no cursor, writes no rule, and is an Error
// naming the partner and what was wrong (pages before it stay stored). `log` gets one line per
// page and per rejected object (may be empty).
PullResult taxii_pull(IntelStore& store, const TaxiiPeer& peer, const IntelOptions& o,
                      const std::function<void(const std::string&)>& log = {});

struct PushResult {
  std::string collection_id;
  int64_t objects = 0;  // objects sent
  int64_t envelopes = 0;
  int64_t success = 0, failure = 0, pending = 0;  // from the status resources
  std::vector<std::string> failures;              // "id: message" of objects the partner refused
};

// POSTs the newest version of every object of this provider's published collection to `peer`'s
// collection, in envelopes of at most `per_envelope` objects, and polls each status resource until
// it completes (or `peer.timeout` passes). Error when the partner refuses an envelope.
PushResult taxii_push(IntelStore& store, const TaxiiPeer& peer, int64_t per_envelope = 100,
                      const std::function<void(const std::string&)>& log = {});

}  // namespace retort

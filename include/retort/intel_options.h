// intel.*: how this provider shares what its guard finds and acts on what partners share
// (retort/intel.h). Plain data, read by retort/options.h from the config; owned by the guard so
// that the options layer may hold it. No torch, no HTTP.
#pragma once
#include <cstdint>
#include <string>

#include "retort/policy.h"

namespace retort {

// intel.* (retort/config_schema.h documents each key).
struct IntelOptions {
  bool taxii = false;              // intel.taxii: serve TAXII 2.1 at /taxii2/ and publish the guard's findings
  std::string provider = "retort"; // intel.provider: the name of this provider's STIX identity
  bool pseudonymise = true;        // intel.pseudonymise: accounts as keyed hashes (off: key names in clear)
  std::string group_secret;        // intel.group_secret: the sharing group's key for those hashes ("": the database's own)
  std::string tlp = "amber";       // intel.tlp: marking of what this provider publishes: white | green | amber | red
  Response share_at = Response::block;  // intel.share_at: keys whose action reached this are published
  int64_t min_confidence = 50;     // intel.min_confidence: partner indicators below it are stored, never acted on
  // intel.act.<kind>: what a partner's indicator of each kind earns a key that matches it.
  Response act_address = Response::block, act_user_agent = Response::throttle, act_account = Response::block,
           act_template = Response::throttle, act_shape = Response::observe;
  bool pull = false;               // intel.pull: serve pulls every partner of `retort intel partner add`
  double pull_interval = 30;       // intel.pull_interval: seconds between those pulls
  double publish_interval = 2;     // intel.publish_interval: seconds between republishing the guard's findings
};

}  // namespace retort

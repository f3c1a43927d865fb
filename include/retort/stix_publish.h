// What this provider's guard found, as STIX 2.1 objects in the published collection
// (kPublishedCollection, retort/intel.h), and the bundle `retort intel export` writes.
//
// publish() reads the action rows (retort/actions.h), the audit rows (retort/guard.h) and the
// verifications (retort/verifications.h) and adds, with source "local":
//   identity (intel.provider), the TLP marking-definition (intel.tlp), retort's extension-definition,
//   attack-pattern  MITRE ATLAS AML.T0024.002 "Extract ML Model"
//   per group of keys whose newest action (source policy or operator, never partner) reached
//   intel.share_at (a group: the action's cluster, else the key alone):
//     campaign, intrusion-set, relationships (campaign attributed-to intrusion-set, campaign uses
//     attack-pattern, intrusion-set uses attack-pattern, indicator indicates campaign),
//     indicators of what a partner can match that no key below share_at used (addresses, user
//     agents, prompt openings, request shapes) plus each key's account (a pseudonym unless
//     intel.pseudonymise=false), and a sighting per indicator (count, first/last seen)
//   a note per verification that names a published key (p-value, tokens, method, watermark key)
// Everything carries created_by_ref = the identity and object_marking_refs = [the TLP marking].
// Ids are deterministic (retort_id), so publishing again gives the same ids; a new version
// (same id, later `modified`) is added only when something other than `modified` changed.
// Never a prompt's text or an answer. No torch, no HTTP.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>

#include "retort/intel.h"
#include "retort/intel_options.h"

namespace retort {

struct PublishResult {
  int64_t objects = 0;       // objects considered
  int64_t new_versions = 0;  // versions added by this call
  int64_t campaigns = 0, indicators = 0;
};

// `now`: unix seconds (the `modified` of new versions). Options it reads: provider, tlp,
// pseudonymise, group_secret, share_at. Error for a bad intel.tlp.
PublishResult publish(IntelStore& store, const IntelOptions& options, double now);

// A STIX bundle (id bundle--uuid4) of the newest version of every published object modified at
// or after `since_unix` (0: all), with the identity, markings and extension-definition they name.
nlohmann::json export_bundle(IntelStore& store, double since_unix);

}  // namespace retort

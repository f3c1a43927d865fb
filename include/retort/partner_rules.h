// Partners' indicators as guard rules (DESIGN.md, "intel"): a STIX indicator pulled from a partner
// (retort/taxii_client.h) becomes an IntelRule (kind, value, the action intel.act.<kind> earns),
// kept in the intel store (retort/intel.h); the request path matches a request against an
// in-memory index of them (PartnerRules) and, when the match is stronger than what is in force
// for the key, writes an action row with source "partner" (src/serve/stage_partner.cpp).
// No torch, no HTTP.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "retort/actions.h"
#include "retort/intel.h"

namespace retort {

// What intel.act.<kind> says a match of `kind` earns (simhash: intel.act.template, both are
// prompt fingerprints); Response::none for an unknown kind.
Response partner_action(const std::string& kind, const IntelOptions& o);

// The rules one version of a STIX indicator makes: one per pattern (retort/stix.h's six kinds),
// none when the object is not an indicator or its pattern is not one retort can match (the
// reason in *why). The action is Response::none (stored, never acted on) when the confidence is
// below intel.min_confidence, the indicator is revoked or its valid_until is before `now`.
// TLP from object_marking_refs, version from `modified`. Never throws.
std::vector<IntelRule> rules_from_indicator(const nlohmann::json& indicator,
                                            const std::string& source, const IntelOptions& o,
                                            double now, std::string* why = nullptr);

// Rules for the newest stored version of each indicator id in `ids` (collection: where the pull
// stored them): IntelStore::replace_rules per indicator, skipped when the rules already hold that
// version or a newer one. Returns the number of rules written.
int64_t update_partner_rules(IntelStore& store, const std::string& collection,
                             const std::vector<std::string>& ids, const IntelOptions& o,
                             double now);

// Whether a partner's match may write an action row over `current` (the key's row in force): an
// operator's row (allow included) stands, an allow stands, and only a stronger action is written.
bool partner_may_act(const std::optional<ActionRow>& current, Response earned);

// What a refused client may read of a "partner" action row: its reason only when the partner's
// indicator was TLP:WHITE (or CLEAR); else that a partner's intelligence matched, with the TLP, the
// details withheld (they stay in the row, for the operator). TLP from the row's signals.
std::string partner_reason_for_client(const ActionRow& row);

// What the request path knows of a request; empty / 0 fields are not matched.
struct PartnerProbe {
  std::string address;  // the client address (X-Forwarded-For when guard.trust_forwarded)
  std::string user_agent;
  std::string account;          // pseudonym(group secret, key name) (retort/stix.h)
  std::string account_name;     // the key's name (partners that publish names in clear)
  uint64_t prompt_prefix = 0;   // AuditRow::prompt_prefix
  uint64_t prompt_simhash = 0;  // AuditRow::prompt_simhash
  std::string shape;            // request_shape(audit row) (retort/stix.h)
};

// The rules in force, indexed for the request path. Thread-safe: match() under a shared lock,
// refresh()/rebuild() swap the index.
class PartnerRules {
 public:
  static constexpr int kSimhashDistance = 3;  // a prompt's SimHash within this many bits matches

  // Rebuilds from the store when IntelStore::rules_version() differs from the last one read.
  // Returns whether it rebuilt.
  bool refresh(const IntelStore& store);
  void rebuild(const std::vector<IntelRule>& rules, int64_t version);

  // The matching rule with the strongest action (observe..block) at `now` (unix seconds; rules
  // past valid_until do not match); nullopt when none matches.
  std::optional<IntelRule> match(const PartnerProbe& p, double now) const;
  // What in the probe matched `rule` ("address 203.0.113.7", "prompt SimHash ... (2 bits from
  // ...)").
  static std::string matched_text(const IntelRule& rule, const PartnerProbe& p);

  bool empty() const;
  bool has(const std::string& kind) const;  // any acting rule of that kind
  size_t size() const;                      // acting rules (action > none)
  int64_t version() const;

 private:
  struct Index;
  mutable std::shared_mutex mutex_;
  std::shared_ptr<const Index> index_;
  int64_t version_ = -1;
};

}  // namespace retort

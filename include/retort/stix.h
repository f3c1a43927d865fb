// The STIX 2.1 vocabulary retort speaks (DESIGN.md, "intel"): timestamps, deterministic ids,
// the indicator patterns a partner can match, account pseudonyms, the TLP markings and the
// validation every object passes before retort stores or serves it. No torch, no HTTP.
//
// Indicator patterns, one comparison each (`kind` in retort/intel.h's IntelRule):
//   address     [ipv4-addr:value = '203.0.113.7']                         (ipv6-addr for v6)
//   user_agent  [network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = 'harvest/1.0']
//   account     [user-account:user_id = '<pseudonym>']
//   template    [network-traffic:extensions.'extension-definition--<ext>'.prompt_prefix = '<16 hex>']
//   simhash     [network-traffic:extensions.'extension-definition--<ext>'.prompt_simhash = '<16 hex>']
//   shape       [network-traffic:extensions.'extension-definition--<ext>'.request_shape = '<shape>']
// where <ext> is kRetortExtensionId's UUID: STIX has no object for a prompt's fingerprint or a
// request's shape, so retort publishes an extension-definition (extension_definition()) rather
// than ad-hoc x- fields. template/simhash values are the audit row's uint64 as 16 hex digits
// (hex64), shape the detector's request shape string (retort/detect.h).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

namespace retort {

struct AuditRow;

// The STIX namespace for SCO ids (spec 2.9) and retort's own for its SDO ids.
inline constexpr const char* kStixScoNamespace = "00abedb4-aa42-466c-9c01-fed23315a9b7";
inline constexpr const char* kRetortNamespace = "c74a25c6-d86a-410e-8c38-fd6bccbb1804";
// uuid5(kRetortNamespace, "extension-definition/retort-model-api-request")
inline constexpr const char* kRetortExtensionId = "extension-definition--b64cb344-7f45-5497-8d3c-242f6182107a";

// "2026-12-05T10:22:04.123Z": UTC, always milliseconds.
std::string stix_time(double unix_seconds);
// Any RFC 3339 UTC timestamp STIX allows ("Z", any fractional digits) -> unix seconds; Error otherwise.
double parse_stix_time(const std::string& text);
// The same, as integer microseconds (exact; what the intel store orders and filters by).
int64_t parse_stix_time_us(const std::string& text);

// RFC 4122 version 5 (SHA-1) of `name` in `namespace_uuid` ("xxxxxxxx-xxxx-..."); Error for a bad namespace.
std::string stix_uuid5(const std::string& namespace_uuid, const std::string& name);
// A random (version 4) UUID from /dev/urandom.
std::string stix_uuid4();
// "type--uuid5(kRetortNamespace, type + '/' + name)": the same name always gives the same id.
std::string retort_id(const std::string& type, const std::string& name);
// An SCO's deterministic id: uuid5 of the STIX namespace over the canonical JSON (sorted keys,
// no spaces) of its id-contributing properties, e.g. sco_id("ipv4-addr", {{"value", "1.2.3.4"}}).
std::string sco_id(const std::string& type, const nlohmann::json& contributing);

// 16 hex digits of a uint64 (how template and simhash values travel) and back (nullopt if not that).
std::string hex64(uint64_t v);
std::optional<uint64_t> parse_hex64(const std::string& text);

// A request's shape as the campaign detector counts it (src/detect/activity.cpp), for requests
// that asked for logprobs: "/v1/completions echo lp=5 max=1 t=1 n=1"; "" when it asked for none.
std::string request_shape(const AuditRow& r);

// The pattern of one indicator of `kind` (see above); Error for an unknown kind or empty value.
std::string indicator_pattern(const std::string& kind, const std::string& value);
// (kind, value) of a pattern indicator_pattern could have written; nullopt for anything else. Never throws.
std::optional<std::pair<std::string, std::string>> parse_indicator_pattern(const std::string& pattern);

// A key name as the sharing group sees it: 32 hex digits of HMAC-SHA256(secret, name).
std::string pseudonym(const std::string& secret, const std::string& name);

// "" when `o` is a STIX 2.1 object retort may store or serve, else the reason (naming the field).
std::string validate_stix_object(const nlohmann::json& o);

// The STIX 2.1 predefined TLP marking definitions (spec 7.2.1.4): white | green | amber | red.
const nlohmann::json& tlp_marking(const std::string& name);  // Error for another name
std::string tlp_marking_id(const std::string& name);         // Error for another name
// The TLP name an object is marked with ("" when none of the four is among its object_marking_refs).
std::string tlp_of(const nlohmann::json& object);

// The extension-definition retort publishes for prompt fingerprints and request shapes.
nlohmann::json extension_definition(const std::string& created_by_ref);

}  // namespace retort

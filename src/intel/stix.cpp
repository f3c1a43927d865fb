// STIX 2.1 timestamps, ids, indicator patterns, pseudonyms and TLP markings (retort/stix.h);
// validation is stix_validate.cpp.
#include "retort/stix.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include "guard/random_hex.h"
#include "retort/error.h"
#include "retort/guard.h"
#include "intel/stix_parts.h"

namespace retort {

namespace stix_detail {

bool is_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i])) || std::isupper(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace stix_detail

using stix_detail::is_uuid;

namespace {

using nlohmann::json;

bool digits(const std::string& s, size_t at, size_t n) {
  if (at + n > s.size()) return false;
  for (size_t i = at; i < at + n; ++i)
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

int number(const std::string& s, size_t at, size_t n) { return std::stoi(s.substr(at, n)); }

std::string format_uuid(const unsigned char* b) {
  const std::string hex = guard_detail::to_hex(b, 16);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20, 12);
}

// STIX patterning string literal: 'text' with \' and \\ escaped.
std::string quote(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string ext_path() { return std::string("network-traffic:extensions.'") + kRetortExtensionId + "'."; }

// The left-hand sides of the comparisons retort writes, by kind (address has two).
const std::vector<std::pair<std::string, std::string>>& pattern_paths() {
  static const std::vector<std::pair<std::string, std::string>> kPaths = {
      {"address", "ipv4-addr:value"},
      {"address", "ipv6-addr:value"},
      {"user_agent", "network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'"},
      {"account", "user-account:user_id"},
      {"template", ext_path() + "prompt_prefix"},
      {"simhash", ext_path() + "prompt_simhash"},
      {"shape", ext_path() + "request_shape"},
  };
  return kPaths;
}

}  // namespace

std::string stix_time(double unix_seconds) {
  const int64_t ms = int64_t(std::llround(unix_seconds * 1000.0));
  int64_t secs = ms / 1000, frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    secs -= 1;
  }
  const time_t t = time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, int(frac));
  return buf;
}

int64_t parse_stix_time_us(const std::string& s) {
  // YYYY-MM-DDTHH:MM:SS[.f+]Z
  const bool shape = s.size() >= 20 && digits(s, 0, 4) && s[4] == '-' && digits(s, 5, 2) && s[7] == '-' &&
                     digits(s, 8, 2) && s[10] == 'T' && digits(s, 11, 2) && s[13] == ':' && digits(s, 14, 2) &&
                     s[16] == ':' && digits(s, 17, 2) && s.back() == 'Z';
  if (!shape) fail("'", s, "' is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.sss]Z, UTC)");
  int64_t micros = 0;
  if (s.size() > 20) {
    if (s[19] != '.' || s.size() == 21 || !digits(s, 20, s.size() - 21))
      fail("'", s, "' is not a STIX timestamp (YYYY-MM-DDTHH:MM:SS[.sss]Z, UTC)");
    std::string frac = s.substr(20, s.size() - 21);
    frac = (frac + "000000").substr(0, 6);  // beyond microseconds: dropped
    micros = std::stoll(frac);
  }
  std::tm tm{};
  tm.tm_year = number(s, 0, 4) - 1900;
  tm.tm_mon = number(s, 5, 2) - 1;
  tm.tm_mday = number(s, 8, 2);
  tm.tm_hour = number(s, 11, 2);
  tm.tm_min = number(s, 14, 2);
  tm.tm_sec = number(s, 17, 2);
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60)
    fail("'", s, "' is not a STIX timestamp: a field is out of range");
  const std::tm asked = tm;
  const time_t t = timegm(&tm);
  if (tm.tm_mday != asked.tm_mday && asked.tm_sec != 60)
    fail("'", s, "' is not a STIX timestamp: no such day");
  return int64_t(t) * 1000000 + micros;
}

double parse_stix_time(const std::string& text) { return double(parse_stix_time_us(text)) / 1e6; }

std::string stix_uuid5(const std::string& namespace_uuid, const std::string& name) {
  if (!is_uuid(namespace_uuid)) fail("'", namespace_uuid, "' is not a UUID (lowercase xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
  std::string bytes;
  for (size_t i = 0; i < namespace_uuid.size(); ++i) {
    if (namespace_uuid[i] == '-') continue;
    bytes += char(std::stoi(namespace_uuid.substr(i, 2), nullptr, 16));
    ++i;
  }
  bytes += name;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  digest[6] = (digest[6] & 0x0f) | 0x50;
  digest[8] = (digest[8] & 0x3f) | 0x80;
  return format_uuid(digest);
}

std::string stix_uuid4() {
  std::string r = guard_detail::random_bytes(16);
  auto* b = reinterpret_cast<unsigned char*>(r.data());
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return format_uuid(b);
}

std::string retort_id(const std::string& type, const std::string& name) {
  return type + "--" + stix_uuid5(kRetortNamespace, type + "/" + name);
}

std::string sco_id(const std::string& type, const nlohmann::json& contributing) {
  // nlohmann's dump(): keys sorted, no whitespace, UTF-8 as is (the spec's canonical form for these values).
  return type + "--" + stix_uuid5(kStixScoNamespace, contributing.dump());
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::optional<uint64_t> parse_hex64(const std::string& text) {
  if (text.size() != 16) return std::nullopt;
  for (char c : text)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
  return static_cast<uint64_t>(std::stoull(text, nullptr, 16));
}

std::string request_shape(const AuditRow& r) {
  if (r.logprobs < 0) return "";
  return cat(r.endpoint, r.echo ? " echo" : "", " lp=", r.logprobs, " max=", r.max_tokens, " t=", r.temperature,
             " n=", r.n);
}

std::string indicator_pattern(const std::string& kind, const std::string& value) {
  if (value.empty()) fail("an indicator of kind '", kind, "' needs a value");
  if (kind == "address") {
    const char* path = value.find(':') != std::string::npos ? "ipv6-addr:value" : "ipv4-addr:value";
    return std::string("[") + path + " = " + quote(value) + "]";
  }
  for (const auto& [k, path] : pattern_paths())
    if (k == kind) return "[" + path + " = " + quote(value) + "]";
  fail("no indicator kind '", kind, "' (address | user_agent | account | template | simhash | shape)");
}

std::optional<std::pair<std::string, std::string>> parse_indicator_pattern(const std::string& pattern) {
  try {
    for (const auto& [kind, path] : pattern_paths()) {
      const std::string head = "[" + path + " = '";
      if (pattern.compare(0, head.size(), head) != 0) continue;
      std::string value;
      size_t i = head.size();
      bool closed = false;
      for (; i < pattern.size(); ++i) {
        const char c = pattern[i];
        if (c == '\\') {
          if (i + 1 >= pattern.size() || (pattern[i + 1] != '\'' && pattern[i + 1] != '\\')) return std::nullopt;
          value += pattern[++i];
        } else if (c == '\'') {
          closed = true;
          ++i;
          break;
        } else {
          value += c;
        }
      }
      if (!closed || value.empty() || pattern.substr(i) != "]") return std::nullopt;
      if ((kind == "template" || kind == "simhash") && !parse_hex64(value)) return std::nullopt;
      return std::make_pair(kind, value);
    }
  } catch (...) {
  }
  return std::nullopt;
}

std::string pseudonym(const std::string& secret, const std::string& name) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), int(secret.size()), reinterpret_cast<const unsigned char*>(name.data()),
            name.size(), mac, &len))
    fail("HMAC-SHA256 failed for the pseudonym of '", name, "'");
  return guard_detail::to_hex(mac, 16);
}

const nlohmann::json& tlp_marking(const std::string& name) {
  // STIX 2.1 section 7.2.1.4: the four TLP marking-definition objects, fixed ids and created.
  static const std::map<std::string, json> kMarkings = [] {
    std::map<std::string, json> m;
    const std::pair<const char*, const char*> ids[] = {{"white", "613f2e26-407d-48c7-9eca-b8e91df99dc9"},
                                                       {"green", "34098fce-860f-48ae-8e50-ebd3cc5e41da"},
                                                       {"amber", "f88d31f6-486f-44da-b317-01333bde0b82"},
                                                       {"red", "5e57c739-391a-4eb3-b6be-7d15ca92d5ed"}};
    for (const auto& [tlp, uuid] : ids) {
      std::string upper = tlp;
      for (char& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
      m[tlp] = json{{"type", "marking-definition"},
                    {"spec_version", "2.1"},
                    {"id", std::string("marking-definition--") + uuid},
                    {"created", "2017-01-20T00:00:00.000Z"},
                    {"definition_type", "tlp"},
                    {"name", "TLP:" + upper},
                    {"definition", json{{"tlp", tlp}}}};
    }
    return m;
  }();
  auto it = kMarkings.find(name);
  if (it == kMarkings.end()) fail("no TLP marking '", name, "' (white | green | amber | red)");
  return it->second;
}

std::string tlp_marking_id(const std::string& name) { return tlp_marking(name)["id"].get<std::string>(); }

std::string tlp_of(const nlohmann::json& object) {
  if (!object.is_object() || !object.contains("object_marking_refs") || !object["object_marking_refs"].is_array())
    return "";
  for (const char* name : {"red", "amber", "green", "white"}) {  // the most restrictive wins
    const std::string id = tlp_marking_id(name);
    for (const json& ref : object["object_marking_refs"])
      if (ref.is_string() && ref.get<std::string>() == id) return name;
  }
  return "";
}

nlohmann::json extension_definition(const std::string& created_by_ref) {
  return json{
      {"type", "extension-definition"},
      {"spec_version", "2.1"},
      {"id", kRetortExtensionId},
      {"created_by_ref", created_by_ref},
      {"created", "2026-01-01T00:00:00.000Z"},
      {"modified", "2026-01-01T00:00:00.000Z"},
      {"name", "retort model-API request"},
      {"description",
       "Properties of a request to a model API (an OpenAI-compatible /v1/ endpoint) on network-traffic: "
       "prompt_prefix, the 64-bit hash of a prompt's first three words as 16 hex digits; prompt_simhash, the "
       "64-bit SimHash of its words as 16 hex digits; request_shape, 'endpoint [echo] lp=N max=N t=T n=N'. "
       "Never the prompt's text."},
      {"schema", "https://github.com/retort-ml/retort/blob/main/docs/stix-model-api-request.md"},
      {"version", "1.0.0"},
      {"extension_types", json::array({"property-extension"})}};
}

}  // namespace retort

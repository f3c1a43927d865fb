// Reading a TAXII request (taxii_parts.h): content negotiation, percent-decoding, the query's
// filters and `next`, each malformed part a 400 refusal naming it.
#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "intel/taxii_parts.h"
#include "retort/stix.h"

namespace retort::taxii_detail {

void refuse(int status, std::string title, std::string description) {
  throw Refusal{status, std::move(title), std::move(description)};
}

static std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

static std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}

// A shown value: at most 80 characters of what the client sent.
std::string shown(const std::string& v) { return v.size() > 80 ? v.substr(0, 77) + "..." : v; }

// ---- content negotiation -------------------------------------------------------------

// "application/taxii+json;version=2.1" -> ("application/taxii+json", {version: 2.1, ...}), lower
// case.
std::pair<std::string, std::vector<std::pair<std::string, std::string>>> media_range(
    const std::string& text) {
  std::vector<std::string> parts = split(text, ';');
  std::vector<std::pair<std::string, std::string>> params;
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string p = trim(parts[i]);
    const size_t eq = p.find('=');
    if (eq == std::string::npos) continue;
    std::string v = trim(p.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    params.push_back({lower(trim(p.substr(0, eq))), lower(v)});
  }
  return {lower(trim(parts[0])), params};
}

static std::string param(const std::vector<std::pair<std::string, std::string>>& params,
                         const std::string& name) {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return "";
}

// Whether a media type is TAXII 2.1's: application/taxii+json with version 2.1 or none (the
// latest).
bool is_taxii21(const std::string& type,
                const std::vector<std::pair<std::string, std::string>>& params) {
  const std::string version = param(params, "version");
  return type == "application/taxii+json" && (version.empty() || version == "2.1");
}

// Accept: some media range admits application/taxii+json;version=2.1 (wildcards do, as HTTP has
// them).
bool accepts_taxii(const std::string& accept) {
  for (const std::string& range : split(accept, ',')) {
    auto [type, params] = media_range(range);
    const std::string q = param(params, "q");
    if (!q.empty() && std::strtod(q.c_str(), nullptr) <= 0) continue;
    if (is_taxii21(type, params)) return true;
    if ((type == "*/*" || type == "application/*") &&
        (param(params, "version").empty() || param(params, "version") == "2.1"))
      return true;
  }
  return false;
}

// ---- the query -----------------------------------------------------------------------

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(const std::string& s, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1, lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        refuse(400, "Bad Request",
               "the URL has a '%' that is not followed by two hex digits: '" + shown(s) + "'");
      out += char(hi * 16 + lo);
      i += 2;
    } else {
      out += plus_is_space && s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// Query parameters, decoded; a repeated name keeps its last value.
static std::vector<std::pair<std::string, std::string>> parse_query(const std::string& query) {
  std::vector<std::pair<std::string, std::string>> out;
  if (query.empty()) return out;
  for (const std::string& part : split(query, '&')) {
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string name = percent_decode(part.substr(0, eq), true);
    std::string value =
        eq == std::string::npos ? std::string() : percent_decode(part.substr(eq + 1), true);
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& p) { return p.first == name; });
    if (it != out.end())
      it->second = value;
    else
      out.push_back({name, value});
  }
  return out;
}

static bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

static bool is_timestamp(const std::string& s) {
  try {
    parse_stix_time_us(s);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// A STIX type: 3-250 of a-z 0-9 '-' (spec 3.1 of STIX 2.1's type property).
static bool is_stix_type(const std::string& s) {
  return s.size() >= 3 && s.size() <= 250 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
         });
}

// A STIX identifier: type--uuid.
static bool is_stix_id(const std::string& s) {
  const size_t dd = s.find("--");
  if (dd == std::string::npos || !is_stix_type(s.substr(0, dd))) return false;
  const std::string u = s.substr(dd + 2);
  if (u.size() != 36) return false;
  for (size_t i = 0; i < u.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (u[i] != '-') return false;
    } else if (hex_value(u[i]) < 0) {
      return false;
    }
  }
  return true;
}

// The comma-separated values of match[NAME], each checked by `ok` (400 naming the first that is
// not).
static std::vector<std::string> match_values(const std::string& name, const std::string& value,
                                             bool (*ok)(const std::string&), const char* what) {
  std::vector<std::string> out;
  for (const std::string& raw : split(value, ',')) {
    const std::string v = trim(raw);
    if (!ok(v))
      refuse(400, "Bad Request",
             "match[" + name + "] has '" + shown(v) + "', which is not " + what);
    out.push_back(v);
  }
  return out;
}

static bool is_version_value(const std::string& v) {
  return v == "first" || v == "last" || v == "all" || is_timestamp(v);
}
static bool is_spec_version(const std::string& v) { return v == "2.0" || v == "2.1"; }

// The filters of a GET below a collection: added_after, limit, next and the match[...] this
// endpoint takes (spec 3.4); other parameters are ignored, as the spec asks of servers.
ObjectQuery read_filters(const std::string& query, const TaxiiOptions& o, Filters kind) {
  ObjectQuery q;
  q.limit = o.default_page;
  for (const auto& [name, value] : parse_query(query)) {
    if (name == "added_after") {
      if (!is_timestamp(value))
        refuse(400, "Bad Request",
               "added_after='" + shown(value) +
                   "' is not a STIX timestamp (e.g. 2026-01-01T00:00:00.000Z)");
      q.added_after = value;
    } else if (name == "limit") {
      if (!all_digits(value) || value.size() > 12 || std::stoll(value) <= 0)
        refuse(400, "Bad Request", "limit='" + shown(value) + "' is not a positive integer");
      q.limit = std::min<int64_t>(std::stoll(value), o.max_page);
    } else if (name == "next") {
      if (!all_digits(value) || value.size() > 18 || std::stoll(value) <= 0)
        refuse(400, "Bad Request",
               "next='" + shown(value) +
                   "' is not a token this server gave (the `next` of an envelope)");
      q.after_seq = std::stoll(value);
    } else if (name == "match[id]" && kind == Filters::collection) {
      q.ids = match_values("id", value, is_stix_id, "a STIX id (type--uuid)");
    } else if (name == "match[type]" && kind == Filters::collection) {
      q.types = match_values("type", value, is_stix_type, "a STIX type");
    } else if (name == "match[version]" && kind != Filters::versions) {
      q.versions =
          match_values("version", value, is_version_value, "first, last, all or a STIX timestamp");
    } else if (name == "match[spec_version]") {
      q.spec_versions = match_values("spec_version", value, is_spec_version, "2.0 or 2.1");
    }
  }
  if (kind == Filters::versions) q.versions = {"all"};
  return q;
}

}  // namespace retort::taxii_detail

// Reading a TAXII request (taxii_server.cpp's private part): content negotiation, the query's
// filters and paging token, and the refusal every malformed part becomes. No HTTP, no torch.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "retort/taxii.h"

namespace retort::taxii_detail {

// A refusal on its way to becoming a TAXII error message resource.
struct Refusal {
  int status;
  std::string title, description;
};
[[noreturn]] void refuse(int status, std::string title, std::string description);

std::vector<std::string> split(const std::string& s, char sep);
// A shown value: at most 80 characters of what the client sent.
std::string shown(const std::string& v);
// '%XX' decoded (and '+' as a space in a query); 400 for a broken escape.
std::string percent_decode(const std::string& s, bool plus_is_space);

using MediaParams = std::vector<std::pair<std::string, std::string>>;
// "application/taxii+json;version=2.1" -> ("application/taxii+json", {version: 2.1}), lower case.
std::pair<std::string, MediaParams> media_range(const std::string& text);
// application/taxii+json with version 2.1 or none (the latest).
bool is_taxii21(const std::string& type, const MediaParams& params);
// Some media range of an Accept header admits application/taxii+json;version=2.1 (wildcards do,
// as HTTP has them).
bool accepts_taxii(const std::string& accept);

// Which GET below a collection: the filters each takes (spec 3.4).
enum class Filters { collection, object, versions };
// added_after, limit (clamped to max_page), next and the match[...] this endpoint takes; other
// parameters are ignored, as the spec asks of servers; 400 for a malformed one.
ObjectQuery read_filters(const std::string& query, const TaxiiOptions& o, Filters kind);

}  // namespace retort::taxii_detail

// validate_stix_object (retort/stix.h): what retort checks of every STIX 2.1 object before it
// stores or serves one, a partner's included; the first problem is the answer, naming the field.
#include <set>
#include <string>

#include "intel/stix_parts.h"
#include "retort/error.h"
#include "retort/stix.h"

namespace retort {

namespace {

using nlohmann::json;
using stix_detail::is_uuid;

const std::set<std::string>& sdo_sro_types() {
  static const std::set<std::string> kTypes = {
      "attack-pattern", "campaign",   "course-of-action", "grouping",     "identity",      "incident",
      "indicator",      "infrastructure", "intrusion-set", "location",    "malware",       "malware-analysis",
      "note",           "observed-data",  "opinion",       "report",      "threat-actor",  "tool",
      "vulnerability",  "relationship",   "sighting",      "language-content", "extension-definition"};
  return kTypes;
}

// Timestamps STIX requires milliseconds for (created/modified): "...SS.fffZ" with >= 3 digits.
bool has_ms(const std::string& t) {
  const size_t dot = t.find('.');
  return dot != std::string::npos && t.size() >= dot + 5;
}

bool is_ref(const json& v) {
  if (!v.is_string()) return false;
  const std::string s = v.get<std::string>();
  const size_t sep = s.find("--");
  return sep != std::string::npos && sep > 0 && is_uuid(s.substr(sep + 2));
}

}  // namespace

std::string validate_stix_object(const nlohmann::json& o) {
  if (!o.is_object()) return "not a JSON object";
  if (!o.contains("type") || !o["type"].is_string() || o["type"].get<std::string>().empty()) return "no type";
  const std::string type = o["type"].get<std::string>();
  if (type.size() < 3 || type.size() > 250) return "type '" + type + "' is not 3-250 characters";
  for (char c : type)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-'))
      return "type '" + type + "' has characters other than a-z, 0-9 and -";
  if (!o.contains("id") || !o["id"].is_string()) return "no id";
  const std::string id = o["id"].get<std::string>();
  const size_t sep = id.find("--");
  if (sep == std::string::npos || !is_uuid(id.substr(sep + 2))) return "id '" + id + "' is not type--uuid";
  if (id.substr(0, sep) != type) return "id '" + id + "' does not start with its type '" + type + "--'";
  if (type == "bundle") return "a bundle is not an object to store";
  if (!o.contains("spec_version") && type != "marking-definition" && sdo_sro_types().count(type))
    return "no spec_version (must be \"2.1\")";
  if (o.contains("spec_version") && (!o["spec_version"].is_string() || o["spec_version"] != "2.1"))
    return "spec_version must be \"2.1\"";

  auto time_field = [&](const char* name, bool required, bool ms) -> std::string {
    if (!o.contains(name)) return required ? std::string("no ") + name : "";
    if (!o[name].is_string()) return std::string(name) + " is not a timestamp";
    const std::string t = o[name].get<std::string>();
    try {
      parse_stix_time_us(t);
    } catch (const Error&) {
      return std::string(name) + " '" + t + "' is not a STIX timestamp";
    }
    if (ms && !has_ms(t)) return std::string(name) + " '" + t + "' needs millisecond precision";
    return "";
  };
  const bool sdo = sdo_sro_types().count(type) > 0;
  const bool marking = type == "marking-definition";
  if (sdo || marking) {
    if (std::string why = time_field("created", true, true); !why.empty()) return why;
    if (!marking) {
      if (std::string why = time_field("modified", true, true); !why.empty()) return why;
      if (parse_stix_time_us(o["modified"].get<std::string>()) < parse_stix_time_us(o["created"].get<std::string>()))
        return "modified is before created";
    }
  }
  if (o.contains("confidence")) {
    if (!o["confidence"].is_number_integer()) return "confidence is not an integer";
    const int64_t c = o["confidence"].get<int64_t>();
    if (c < 0 || c > 100) return "confidence " + std::to_string(c) + " is outside 0..100";
  }
  if (o.contains("created_by_ref") && !is_ref(o["created_by_ref"])) return "created_by_ref is not an identity id";
  if (o.contains("object_marking_refs")) {
    if (!o["object_marking_refs"].is_array()) return "object_marking_refs is not a list";
    for (const json& r : o["object_marking_refs"])
      if (!is_ref(r) || r.get<std::string>().rfind("marking-definition--", 0) != 0)
        return "object_marking_refs holds '" + (r.is_string() ? r.get<std::string>() : r.dump()) +
               "', not a marking-definition id";
  }
  auto need_string = [&](const char* name) -> std::string {
    if (!o.contains(name) || !o[name].is_string() || o[name].get<std::string>().empty())
      return type + " needs " + name;
    return "";
  };
  auto need_ref = [&](const char* name) -> std::string {
    if (!o.contains(name) || !is_ref(o[name])) return type + " needs " + name + " (an id)";
    return "";
  };
  std::vector<std::string> problems;
  if (type == "indicator") {
    problems = {need_string("pattern"), need_string("pattern_type"), time_field("valid_from", true, false)};
    if (problems[2].rfind("no ", 0) == 0) problems[2] = "indicator needs valid_from";
    if (o.contains("valid_until")) {
      problems.push_back(time_field("valid_until", false, false));
      if (problems.back().empty() && o["valid_from"].is_string() &&
          parse_stix_time_us(o["valid_until"].get<std::string>()) <= parse_stix_time_us(o["valid_from"].get<std::string>()))
        problems.back() = "valid_until is not after valid_from";
    }
  } else if (type == "relationship") {
    problems = {need_string("relationship_type"), need_ref("source_ref"), need_ref("target_ref")};
  } else if (type == "sighting") {
    problems = {need_ref("sighting_of_ref")};
    if (o.contains("count") && (!o["count"].is_number_integer() || o["count"].get<int64_t>() < 0 ||
                                o["count"].get<int64_t>() > 999999999))
      problems.push_back("sighting count is not an integer in 0..999999999");
  } else if (type == "identity" || type == "campaign" || type == "intrusion-set" || type == "attack-pattern") {
    problems = {need_string("name")};
  } else if (type == "note") {
    problems = {need_string("content")};
    if (!o.contains("object_refs") || !o["object_refs"].is_array() || o["object_refs"].empty())
      problems.push_back("note needs object_refs (a non-empty list of ids)");
    else
      for (const json& r : o["object_refs"])
        if (!is_ref(r)) problems.push_back("note object_refs holds something that is not an id");
  } else if (marking) {
    const bool has_definition = o.contains("definition") && o["definition"].is_object();
    const bool has_extensions = o.contains("extensions") && o["extensions"].is_object();
    if (!has_definition && !has_extensions) problems.push_back("marking-definition needs definition or extensions");
    if (has_definition && (!o.contains("definition_type") || !o["definition_type"].is_string()))
      problems.push_back("marking-definition needs definition_type with its definition");
  }
  for (const std::string& p : problems)
    if (!p.empty()) return p;
  return "";
}

}  // namespace retort

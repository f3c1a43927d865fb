// Helpers of the intel store's two files (intel-private).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "retort/error.h"
#include "retort/intel.h"

namespace retort::intel_detail {

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The id of a collection named by id or alias; Error naming it when unknown.
inline std::string collection_id(const std::string& id_or_alias) {
  const IntelCollection* c = find_collection(id_or_alias);
  if (!c) fail("no intel collection '", id_or_alias, "' (", kPublishedCollection, " or ", kInboxCollection, ")");
  return c->id;
}

}  // namespace retort::intel_detail

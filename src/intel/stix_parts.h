// What stix.cpp and stix_validate.cpp share (intel-private).
#pragma once
#include <string>

namespace retort::stix_detail {

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" in lower-case hex, as STIX ids carry them.
bool is_uuid(const std::string& s);

}  // namespace retort::stix_detail

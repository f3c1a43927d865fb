// How deep JSON text nests, checked before parsing JSON that came from outside (files retort did
// not write, an endpoint's answers). nlohmann's parser is not recursive, but dump, copies and
// comparisons of what it builds are: a document nested 100,000 deep overflows the stack in them
// (a safetensors header crashed so in an error message). Readers refuse text nested deeper than
// kMaxJsonDepth before building anything; no format retort reads nests beyond a handful.
#pragma once
#include <string_view>

namespace retort {

inline constexpr int kMaxJsonDepth = 64;

// Whether `text` opens more than `max_depth` arrays or objects inside one another (brackets in
// strings do not count). Says nothing about whether the text is valid JSON.
inline bool json_nests_deeper_than(std::string_view text, int max_depth = kMaxJsonDepth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace retort

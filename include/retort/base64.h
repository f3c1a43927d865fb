// Base64 (RFC 4648, with padding): binary files inside JSON bodies (a tokenizer model over HTTP).
#pragma once
#include <string>
#include <string_view>

namespace retort {

std::string base64_encode(std::string_view bytes);
// Whitespace is skipped; any other character outside the alphabet, or bad padding -> Error.
std::string base64_decode(std::string_view text);

}  // namespace retort

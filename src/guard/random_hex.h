// Hex digits and secrets from /dev/urandom (guard-private: API keys and watermark keys).
#pragma once
#include <cstddef>
#include <fstream>
#include <string>

#include "retort/error.h"

namespace retort::guard_detail {

inline std::string to_hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  return out;
}

inline std::string random_bytes(size_t bytes) {
  std::string buf(bytes, '\0');
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  if (!urandom.read(buf.data(), std::streamsize(bytes)))
    fail("cannot read ", bytes, " bytes from /dev/urandom");
  return buf;
}

inline std::string random_hex(size_t bytes) {
  const std::string buf = random_bytes(bytes);
  return to_hex(reinterpret_cast<const unsigned char*>(buf.data()), bytes);
}

}  // namespace retort::guard_detail

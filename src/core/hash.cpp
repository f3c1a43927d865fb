// 64-bit FNV-1a, processed 8 bytes per round for speed on large tensors.
#include "retort/hash.h"

#include <cstdio>
#include <cstring>

namespace retort {

Hasher& Hasher::update(const void* data, size_t n) {
  constexpr uint64_t kPrime = 0x100000001b3ull;
  const auto* p = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h_ = (h_ ^ w) * kPrime;
    h_ ^= h_ >> 29;
  }
  for (; i < n; ++i) h_ = (h_ ^ p[i]) * kPrime;
  return *this;
}

std::string Hasher::hex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
  return buf;
}

}  // namespace retort

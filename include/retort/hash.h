// Content hashing for cache keys and file checksums (64-bit FNV-1a; not cryptographic).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace retort {

class Hasher {
 public:
  Hasher& update(const void* data, size_t n);
  Hasher& update(std::string_view s) { return update(s.data(), s.size()); }
  uint64_t value() const { return h_; }
  std::string hex() const;  // 16 hex digits

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

}  // namespace retort

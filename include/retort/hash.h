// Content hashing for cache keys and file checksums (64-bit FNV-1a; not cryptographic), and the
// digests that prove a file whole: every file retort writes and later trusts carries one (model.json
// for model.pt, a .json sidecar per checkpoint, "retort.digest" inside safetensors and GGUF exports),
// checked when it is loaded. About 3 GB/s: a 100 MB model hashes in ~30 ms.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
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

// ---- digests -------------------------------------------------------------------------------

// "fnv1a64:0123456789abcdef": a digest as retort records it (the prefix names the hash).
std::string digest_text(const Hasher& h);
// The digest of a whole file, read in blocks. A file that cannot be read -> Error.
std::string file_digest(const std::filesystem::path& path);
// Checks `found` (the digest of what `what` holds now) against `recorded` (what its writer put in
// `where`). Equal: nothing. Different: throws Damaged "<what> is damaged: its digest is <found>,
// <where> records <recorded>". `recorded` empty (a file from elsewhere, or from a retort before
// digests): one warning line on stderr, and the load goes on.
void check_digest(const std::string& what, const std::string& found, const std::string& recorded,
                  const std::string& where);

}  // namespace retort

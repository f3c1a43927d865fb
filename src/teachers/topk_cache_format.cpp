// The top-k cache's on-disk format (topk_cache_format.h): meta.json, shard names, memory maps.
#include "teachers/topk_cache_format.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/json_depth.h"

namespace retort {

int64_t TopkCacheInfo::shards() const {
  return windows_per_shard > 0 ? (windows + windows_per_shard - 1) / windows_per_shard : 0;
}

int64_t TopkCacheInfo::id_bytes() const { return vocab_size <= 65536 ? 2 : 4; }

namespace topk_format {

std::string shard_file(int64_t shard) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "shard-%05lld.bin", static_cast<long long>(shard));
  return buf;
}

void check_info(const TopkCacheInfo& info) {
  if (info.key.empty()) fail("top-k cache: the key must not be empty");
  if (info.k < 1 || info.seq_len < 1 || info.windows < 1 || info.vocab_size < 1 ||
      info.windows_per_shard < 1)
    fail("top-k cache: k, seq_len, windows, vocab_size and windows_per_shard must be >= 1, got k=",
         info.k, " seq_len=", info.seq_len, " windows=", info.windows,
         " vocab_size=", info.vocab_size, " windows_per_shard=", info.windows_per_shard);
  if (info.vocab_size > (int64_t{1} << 31))
    fail("top-k cache: vocab_size ", info.vocab_size, " does not fit int32 ids");
  constexpr int64_t kMax = int64_t{1} << 48;
  int64_t bytes = 0;
  if (info.windows > kMax || info.windows_per_shard > kMax ||
      __builtin_mul_overflow(info.windows_per_shard, info.seq_len, &bytes) ||
      __builtin_mul_overflow(bytes, info.k, &bytes) ||
      __builtin_mul_overflow(bytes, info.id_bytes() + 2, &bytes) || bytes > kMax)
    fail("top-k cache: windows=", info.windows, " windows_per_shard=", info.windows_per_shard,
         " seq_len=", info.seq_len, " k=", info.k, " make shards larger than 2^48 bytes");
}

int64_t shard_bytes(const TopkCacheInfo& info, int64_t shard) {
  const int64_t first = shard * info.windows_per_shard;
  const int64_t n = std::min(info.windows_per_shard, info.windows - first);
  return n * info.seq_len * info.k * (info.id_bytes() + 2);
}

bool same_shape(const TopkCacheInfo& a, const TopkCacheInfo& b) {
  return a.k == b.k && a.seq_len == b.seq_len && a.windows == b.windows &&
         a.vocab_size == b.vocab_size && a.windows_per_shard == b.windows_per_shard;
}

const char* id_dtype(const TopkCacheInfo& info) {
  return info.id_bytes() == 2 ? "uint16" : "int32";
}

nlohmann::json read_meta(const fs::path& dir) {
  std::ifstream in(dir / kMetaFile, std::ios::binary);
  if (!in) return nlohmann::json(nlohmann::json::value_t::discarded);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (json_nests_deeper_than(text)) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

std::optional<TopkCacheInfo> info_of(const nlohmann::json& m) {
  if (!m.is_object() || !m.contains("format") || m["format"] != kFormat || !m.contains("version") ||
      m["version"] != kVersion)
    return std::nullopt;
  // Sizes must be JSON integers: get<int64_t> converts a float unchecked (1e300 is undefined).
  auto size = [&](const char* key) -> std::optional<int64_t> {
    if (!m.contains(key) || !m[key].is_number_integer()) return std::nullopt;
    return m[key].get<int64_t>();
  };
  TopkCacheInfo info;
  auto k = size("k"), seq_len = size("seq_len"), windows = size("windows"),
       vocab_size = size("vocab_size"), per_shard = size("windows_per_shard");
  if (!k || !seq_len || !windows || !vocab_size || !per_shard || !m.contains("key") ||
      !m["key"].is_string() || !m.contains("id_dtype"))
    return std::nullopt;
  info.key = m["key"].get<std::string>();
  info.k = *k;
  info.seq_len = *seq_len;
  info.windows = *windows;
  info.vocab_size = *vocab_size;
  info.windows_per_shard = *per_shard;
  if (m["id_dtype"] != id_dtype(info)) return std::nullopt;
  return info;
}

std::vector<ShardRecord> shard_records(const nlohmann::json& meta, const TopkCacheInfo& info) {
  std::vector<ShardRecord> out;
  if (!meta.is_object() || !meta.contains("shards") || !meta["shards"].is_array()) return out;
  for (const auto& s : meta["shards"]) {
    if (!s.is_object()) continue;
    auto integer = [&](const char* key) {
      return s.contains(key) && s[key].is_number_integer() ? s[key].get<int64_t>() : int64_t{-1};
    };
    ShardRecord r{integer("index"), "", integer("bytes")};
    if (r.index < 0 || r.index >= info.shards() || !s.contains("file") ||
        s["file"] != shard_file(r.index) || r.bytes != shard_bytes(info, r.index) ||
        !s.contains("checksum") || !s["checksum"].is_string())
      continue;
    r.checksum = s["checksum"].get<std::string>();
    if (!r.checksum.empty()) out.push_back(std::move(r));
  }
  return out;
}

// ---- memory maps -------------------------------------------------------------------------

MappedFile::MappedFile(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open ", path.string(), ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("cannot stat ", path.string(), ": ", std::strerror(errno));
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail("cannot map ", path.string(), ": ", std::strerror(errno));
    }
    data_ = static_cast<const char*>(p);
  }
  ::close(fd);  // the mapping keeps the file
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<char*>(data_), size_);
}

std::string MappedFile::checksum() const { return Hasher().update(data_, size_).hex(); }

}  // namespace topk_format
}  // namespace retort

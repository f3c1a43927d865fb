// The on-disk format of the top-k cache (layout in retort/topk_cache.h), shared by its writer
// (topk_cache_writer.cpp) and reader (topk_cache.cpp): meta.json <-> TopkCacheInfo, shard file
// names and sizes, and read-only memory maps of shards. Private to src/teachers.
#pragma once
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "retort/topk_cache.h"

namespace retort::topk_format {

constexpr const char* kFormat = "retort-topk-cache";
constexpr int kVersion = 1;
constexpr const char* kMetaFile = "meta.json";

// "shard-00042.bin"
std::string shard_file(int64_t shard);
// A description a cache can have: key set, every size >= 1, ids fitting int32, a shard at most
// 2^48 bytes and at most 2^48 windows (so no size computed from them overflows) -> else Error.
void check_info(const TopkCacheInfo& info);
// The bytes shard `shard` holds: its windows' ids (n, seq_len, k) then their fp16 logprobs.
int64_t shard_bytes(const TopkCacheInfo& info, int64_t shard);
bool same_shape(const TopkCacheInfo& a, const TopkCacheInfo& b);
const char* id_dtype(const TopkCacheInfo& info);  // "uint16" | "int32"

// meta.json of the cache in `dir`, or a discarded json when it is missing or not JSON.
nlohmann::json read_meta(const std::filesystem::path& dir);
// The cache's description in meta.json, or nothing when it is not a cache of this format.
std::optional<TopkCacheInfo> info_of(const nlohmann::json& meta);

// A finished shard as meta.json lists it.
struct ShardRecord {
  int64_t index = -1;
  std::string checksum;
  int64_t bytes = -1;
};
// The shards meta.json lists for a cache of `info`: entries naming a shard in range under its
// file name, with a checksum and the size shard_bytes gives. Anything else (a damaged or
// forged entry) is left out, so the shard counts as missing.
std::vector<ShardRecord> shard_records(const nlohmann::json& meta, const TopkCacheInfo& info);

// A whole file mapped read-only; unmapped when it dies. Missing or unreadable -> Error.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const char* data() const { return data_; }
  size_t size() const { return size_; }
  std::string checksum() const;  // 64-bit FNV-1a (retort/hash.h), hex

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace retort::topk_format

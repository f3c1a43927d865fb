// A language-model teacher's top-k per position over fixed token windows, on disk: sharded,
// checksummed, memory-mapped, resumable at shard granularity. Knows nothing of models or
// tokenizers: the caller computes the top-k (e.g. with top_k_signal) and hands it over.
//
// A cache is a folder:
//   meta.json          format "retort-topk-cache" version 1, key, k, seq_len, windows,
//                      vocab_size, windows_per_shard, id dtype, and for each finished shard
//                      its file name, bytes and checksum (64-bit FNV-1a, retort/hash.h)
//   shard-00000.bin    the ids of its windows (n, seq_len, k) as uint16 (vocab_size <= 65536)
//   shard-00001.bin    or int32, then their log-probabilities (n, seq_len, k) as fp16; raw,
//   ...                little-endian, no header. The tail mass 1 - sum(exp) is implied.
// That is k * 4 bytes per token for vocabularies up to 65536 (k * 6 above), plus meta.json.
// Every shard and every update of meta.json is written atomically (retort::atomic_write),
// so a killed build leaves whole shards behind, and a new writer on the folder goes on
// from them.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "retort/objective.h"

namespace retort {

struct TopkCacheInfo {
  std::string key;                  // what the cache holds: hash of (teacher, data, preprocessing)
  int64_t k = 0;                    // tokens kept per position, >= 1
  int64_t seq_len = 0;              // positions per window, >= 1
  int64_t windows = 0;              // windows in the cache, numbered 0 .. windows - 1
  int64_t vocab_size = 0;           // every id is < vocab_size; picks the id dtype
  int64_t windows_per_shard = 256;  // windows per shard file (the last one may hold fewer)

  int64_t shards() const;    // ceil(windows / windows_per_shard)
  int64_t id_bytes() const;  // 2 (uint16) when vocab_size <= 65536, else 4 (int32)
};

// Builds a cache shard by shard. Opened on a folder whose meta.json has the same key and
// the same shape (k, seq_len, windows, vocab_size, windows_per_shard), it keeps every shard
// whose checksum still verifies and lists the others as missing: that is how a killed build
// resumes and how a corrupt shard is rebuilt. A folder holding another cache (another key
// or shape) is cleared: its meta.json and shard-*.bin files are deleted, nothing else is.
// Either way, temporaries of those files that a killed build left are removed on opening.
class TopkCacheWriter {
 public:
  TopkCacheWriter(std::filesystem::path dir, TopkCacheInfo info);

  std::vector<int64_t> missing_shards() const;  // shards still to write, ascending
  std::pair<int64_t, int64_t> shard_windows(int64_t shard) const;  // [first, last) window ids
  // ids, logprobs: (n, seq_len, k) for exactly the n windows of `shard`; ids integers in
  // [0, vocab_size), logprobs log-probabilities at temperature 1 (stored as fp16; NaN refused,
  // values above 0 are rounding and stored as 0). Writes the shard, then meta.json.
  void write_shard(int64_t shard, const torch::Tensor& ids, const torch::Tensor& logprobs);
  // Data parallelism: the ranks other than the writer's write their shards with
  // write_shard_file (the shard file only, atomically; returns its checksum and bytes), and the
  // writer records them with adopt_shard, which checks the file against both and writes meta.json.
  static std::pair<std::string, int64_t> write_shard_file(const std::filesystem::path& dir, const TopkCacheInfo& info,
                                                          int64_t shard, const torch::Tensor& ids,
                                                          const torch::Tensor& logprobs);
  void adopt_shard(int64_t shard, const std::string& checksum, int64_t bytes);
  bool complete() const;
  const TopkCacheInfo& info() const { return info_; }

 private:
  std::filesystem::path dir_;
  TopkCacheInfo info_;
  std::vector<std::pair<std::string, int64_t>> done_;  // per shard: checksum ("" = missing), bytes
  void write_meta() const;
};

// A finished cache, read through memory maps. Each shard's checksum is verified when a
// rows() call first touches it; a corrupt or truncated shard is refused with an Error that
// names the file and both checksums (a TopkCacheWriter on the folder then lists it as
// missing, to be rebuilt). Copies share the maps; rows() may be called from several threads.
class TopkCache {
 public:
  // Error when the folder holds no cache, an unfinished one, or one with another key.
  static TopkCache open(const std::filesystem::path& dir, const std::string& expected_key);

  // The top-k signal of the windows window_ids (B) int64, each in [0, windows): ids
  // (B, seq_len, k) int64 and logprobs (B, seq_len, k) float32.
  TeacherSignal rows(const torch::Tensor& window_ids) const;
  const TopkCacheInfo& info() const;
  int64_t bytes() const;           // on disk: every shard plus meta.json
  double bytes_per_token() const;  // bytes() / (windows * seq_len)

 private:
  struct State;
  explicit TopkCache(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace retort

// The top-k cache's reader: memory-mapped shards, each verified against its checksum when first
// touched. Layout in retort/topk_cache.h; the writer is topk_cache_writer.cpp.
#include "retort/topk_cache.h"

#include <torch/torch.h>

#include <cstring>
#include <mutex>
#include <set>

#include "retort/error.h"
#include "retort/fs.h"
#include "teachers/topk_cache_format.h"

namespace retort {

// ---- the reader --------------------------------------------------------------------------

namespace {

// A shard whose checksum verifies is whole, not necessarily retort's: meta.json, which holds the
// checksum, is as easy to edit as the shard (a smaller vocab_size, say). rows() hands on only ids
// in the vocabulary and logprobs that are numbers <= 0, as TopkCacheWriter stores them.
void check_shard_values(const topk_format::MappedFile& map, const TopkCacheInfo& info,
                        const fs::path& path) {
  const size_t entries = map.size() / static_cast<size_t>(info.id_bytes() + 2);
  for (size_t i = 0; i < entries; ++i) {
    int64_t id = 0;
    if (info.id_bytes() == 2) {
      uint16_t v;
      std::memcpy(&v, map.data() + 2 * i, 2);
      id = v;
    } else {
      int32_t v;
      std::memcpy(&v, map.data() + 4 * i, 4);
      id = v;
    }
    if (id < 0 || id >= info.vocab_size)
      fail("top-k cache shard ", path.string(), " holds token id ", id, " at entry ", i,
           ", outside the vocabulary of ", info.vocab_size, " its meta.json gives");
  }
  const char* logprobs = map.data() + entries * info.id_bytes();
  for (size_t i = 0; i < entries; ++i) {
    uint16_t h;  // fp16: sign, 5 exponent bits, 10 mantissa bits
    std::memcpy(&h, logprobs + 2 * i, 2);
    const bool nan = (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0;
    const bool above_zero = (h & 0x8000) == 0 && (h & 0x7FFF) != 0;
    if (nan || above_zero)
      fail("top-k cache shard ", path.string(), " holds logprob bits 0x", std::hex, h, std::dec,
           " at entry ", i, " (", nan ? "NaN" : "above 0", "); a log-probability is a number <= 0");
  }
}

}  // namespace

struct TopkCache::State {
  fs::path dir;
  TopkCacheInfo info;
  std::vector<std::pair<std::string, int64_t>> shards;  // per shard: checksum, bytes
  int64_t meta_bytes = 0;
  mutable std::mutex mutex;                                            // guards maps
  mutable std::vector<std::unique_ptr<topk_format::MappedFile>> maps;  // null until first touched

  // The shard's mapping, verified against its checksum the first time.
  const topk_format::MappedFile& shard(int64_t i) const {
    std::lock_guard<std::mutex> lock(mutex);
    if (!maps[i]) {
      fs::path path = dir / topk_format::shard_file(i);
      auto map = std::make_unique<topk_format::MappedFile>(path);
      std::string sum = map->checksum();
      if (static_cast<int64_t>(map->size()) != shards[i].second || sum != shards[i].first)
        fail("top-k cache shard ", path.string(), " is corrupt: ", map->size(),
             " bytes with checksum ", sum, ", meta.json says ", shards[i].second,
             " bytes with checksum ", shards[i].first,
             "; a TopkCacheWriter on the folder lists it as missing, to be rebuilt");
      check_shard_values(*map, info, path);
      maps[i] = std::move(map);
    }
    return *maps[i];
  }
};

TopkCache::TopkCache(std::shared_ptr<State> state) : state_(std::move(state)) {}

TopkCache TopkCache::open(const fs::path& dir, const std::string& expected_key) {
  fs::path meta_path = dir / topk_format::kMetaFile;
  std::error_code ec;
  if (!fs::is_regular_file(meta_path, ec))
    fail("no top-k cache in ", dir.string(), ": ", meta_path.string(), " is missing");
  nlohmann::json meta = topk_format::read_meta(dir);
  std::optional<TopkCacheInfo> info = topk_format::info_of(meta);
  if (!info)
    fail(meta_path.string(), " does not describe a ", topk_format::kFormat, " version ",
         topk_format::kVersion, " (unreadable, another format, or a field missing)");
  if (info->key != expected_key)
    fail("top-k cache ", dir.string(), " holds key ", info->key, ", expected ", expected_key);
  topk_format::check_info(*info);

  // A finished cache lists every shard in meta.json: checked before anything is sized by the
  // shard count, which a damaged meta.json could make as large as it likes.
  std::vector<topk_format::ShardRecord> records = topk_format::shard_records(meta, *info);
  std::set<int64_t> written;
  for (const auto& r : records) written.insert(r.index);
  if (static_cast<int64_t>(written.size()) < info->shards()) {
    int64_t first_missing = 0;
    while (written.count(first_missing)) ++first_missing;
    fail("top-k cache ", dir.string(), " is unfinished: ", written.size(), " of ", info->shards(),
         " shards written, shard ", first_missing, " is the first missing");
  }

  auto state = std::make_shared<State>();
  state->dir = dir;
  state->info = *info;
  state->shards.assign(info->shards(), {"", 0});
  state->maps.resize(info->shards());
  for (const auto& r : records) state->shards[r.index] = {r.checksum, r.bytes};
  // A truncated shard is refused now (a short map would be read past its end); a changed
  // byte is found by its checksum when rows() first needs the shard.
  for (int64_t i = 0; i < info->shards(); ++i) {
    fs::path path = dir / topk_format::shard_file(i);
    int64_t bytes =
        fs::is_regular_file(path, ec) ? static_cast<int64_t>(fs::file_size(path, ec)) : -1;
    if (bytes != state->shards[i].second)
      fail("top-k cache shard ", path.string(), " has the wrong size (truncated?): ",
           bytes < 0
               ? std::string("no such file")
               : cat(bytes, " bytes with checksum ", topk_format::MappedFile(path).checksum()),
           ", meta.json says ", state->shards[i].second, " bytes with checksum ",
           state->shards[i].first,
           "; a TopkCacheWriter on the folder lists it as missing, to be rebuilt");
  }
  state->meta_bytes = static_cast<int64_t>(fs::file_size(meta_path, ec));
  return TopkCache(std::move(state));
}

TeacherSignal TopkCache::rows(const torch::Tensor& window_ids) const {
  const State& st = *state_;
  const TopkCacheInfo& info = st.info;
  if (!window_ids.defined() || window_ids.dim() != 1 || window_ids.is_floating_point())
    fail("top-k cache: window ids must be (B) integers, got ",
         window_ids.defined() ? window_ids.sizes() : c10::IntArrayRef{});
  torch::Tensor w = window_ids.to(torch::kCPU, torch::kLong).contiguous();
  int64_t B = w.size(0), per_window = info.seq_len * info.k;
  torch::Tensor ids_raw =
      torch::empty({B, info.seq_len, info.k}, info.id_bytes() == 2 ? torch::kShort : torch::kInt);
  torch::Tensor lp_raw = torch::empty({B, info.seq_len, info.k}, torch::kHalf);
  size_t id_window = per_window * info.id_bytes(), lp_window = per_window * 2;
  const int64_t* wp = w.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    if (wp[b] < 0 || wp[b] >= info.windows)
      fail("top-k cache: window ", wp[b], " is out of range; the cache has ", info.windows,
           " windows");
    int64_t shard = wp[b] / info.windows_per_shard, local = wp[b] % info.windows_per_shard;
    int64_t in_shard =
        std::min(info.windows_per_shard, info.windows - shard * info.windows_per_shard);
    const char* base = st.shard(shard).data();
    std::memcpy(static_cast<char*>(ids_raw.data_ptr()) + b * id_window, base + local * id_window,
                id_window);
    std::memcpy(static_cast<char*>(lp_raw.data_ptr()) + b * lp_window,
                base + in_shard * id_window + local * lp_window, lp_window);
  }
  torch::Tensor ids = info.id_bytes() == 2
                          ? ids_raw.to(torch::kInt).bitwise_and(0xFFFF).to(torch::kLong)
                          : ids_raw.to(torch::kLong);
  return TeacherSignal::top_k(ids, lp_raw.to(torch::kFloat));
}

const TopkCacheInfo& TopkCache::info() const { return state_->info; }

int64_t TopkCache::bytes() const {
  int64_t total = state_->meta_bytes;
  for (const auto& s : state_->shards) total += s.second;
  return total;
}

double TopkCache::bytes_per_token() const {
  return static_cast<double>(bytes()) /
         static_cast<double>(state_->info.windows * state_->info.seq_len);
}

}  // namespace retort

// The top-k cache's reader: memory-mapped shards, each verified against its checksum when first
// touched. Layout in retort/topk_cache.h; the writer is topk_cache_writer.cpp.
#include "retort/topk_cache.h"

#include <torch/torch.h>

#include <cstring>
#include <mutex>

#include "retort/error.h"
#include "retort/fs.h"
#include "teachers/topk_cache_format.h"

namespace retort {

// ---- the reader --------------------------------------------------------------------------

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

  auto state = std::make_shared<State>();
  state->dir = dir;
  state->info = *info;
  state->shards.assign(info->shards(), {"", 0});
  state->maps.resize(info->shards());
  for (const auto& s : meta.value("shards", nlohmann::json::array())) {
    int64_t i = s.value("index", int64_t{-1});
    if (i >= 0 && i < info->shards() && s.value("file", "") == topk_format::shard_file(i))
      state->shards[i] = {s.value("checksum", ""), s.value("bytes", int64_t{0})};
  }
  std::vector<int64_t> missing;
  for (int64_t i = 0; i < info->shards(); ++i)
    if (state->shards[i].first.empty()) missing.push_back(i);
  if (!missing.empty())
    fail("top-k cache ", dir.string(),
         " is unfinished: ", info->shards() - static_cast<int64_t>(missing.size()), " of ",
         info->shards(), " shards written, shard ", missing.front(), " is the first missing");
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

// The top-k cache's writer: shards written atomically, meta.json after each, resumable from the
// shards whose checksums still verify. Layout in retort/topk_cache.h; the reader is topk_cache.cpp.
#include <torch/torch.h>

#include <fstream>
#include <regex>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/topk_cache.h"
#include "teachers/topk_cache_format.h"

namespace retort {

// ---- the writer --------------------------------------------------------------------------

TopkCacheWriter::TopkCacheWriter(fs::path dir, TopkCacheInfo info)
    : dir_(std::move(dir)), info_(std::move(info)) {
  topk_format::check_info(info_);
  done_.assign(info_.shards(), {"", 0});
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) fail("top-k cache: cannot create folder ", dir_.string(), ": ", ec.message());

  // What a killed build left; the writer is opened before any shard of this build is written
  // (data parallelism: rank 0 opens it, the others wait for its list of missing shards).
  static const std::regex cache_files(R"(meta\.json|shard-\d+\.bin)");
  remove_orphaned_temporaries(dir_, cache_files);
  nlohmann::json meta = topk_format::read_meta(dir_);
  std::optional<TopkCacheInfo> old = topk_format::info_of(meta);
  if (old && old->key == info_.key && topk_format::same_shape(*old, info_)) {
    // Resume: keep the shards that are still what meta.json says they are.
    for (const auto& r : topk_format::shard_records(meta, info_)) {
      fs::path path = dir_ / topk_format::shard_file(r.index);
      if (!fs::is_regular_file(path, ec) ||
          static_cast<int64_t>(fs::file_size(path, ec)) != r.bytes)
        continue;
      if (topk_format::MappedFile(path).checksum() == r.checksum)
        done_[r.index] = {r.checksum, r.bytes};
    }
  } else {
    // Another cache (or none, or a damaged meta.json): clear what a cache leaves here, and
    // only that, so that a folder given by mistake loses nothing else.
    static const std::regex ours(
        R"((meta\.json|shard-\d+\.bin)|\.(meta\.json|shard-\d+\.bin)\.tmp.*)");
    for (const auto& entry : fs::directory_iterator(dir_, ec))
      if (entry.is_regular_file() && std::regex_match(entry.path().filename().string(), ours))
        fs::remove(entry.path(), ec);
  }
  write_meta();
}

std::vector<int64_t> TopkCacheWriter::missing_shards() const {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < static_cast<int64_t>(done_.size()); ++i)
    if (done_[i].first.empty()) out.push_back(i);
  return out;
}

std::pair<int64_t, int64_t> TopkCacheWriter::shard_windows(int64_t shard) const {
  if (shard < 0 || shard >= info_.shards())
    fail("top-k cache: shard ", shard, " is out of range; the cache has ", info_.shards(),
         " shards");
  int64_t first = shard * info_.windows_per_shard;
  return {first, std::min(first + info_.windows_per_shard, info_.windows)};
}

bool TopkCacheWriter::complete() const { return missing_shards().empty(); }

void TopkCacheWriter::write_shard(int64_t shard, const torch::Tensor& ids,
                                  const torch::Tensor& logprobs) {
  shard_windows(shard);  // range check
  done_[shard] = write_shard_file(dir_, info_, shard, ids, logprobs);
  write_meta();  // only now does the shard count as written
}

void TopkCacheWriter::adopt_shard(int64_t shard, const std::string& checksum, int64_t bytes) {
  shard_windows(shard);  // range check
  fs::path path = dir_ / topk_format::shard_file(shard);
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    fail("top-k cache: shard ", path.string(), " was reported written but is missing");
  topk_format::MappedFile map(path);
  if (static_cast<int64_t>(map.size()) != bytes || map.checksum() != checksum)
    fail("top-k cache: shard ", path.string(), " holds ", map.size(), " bytes with checksum ",
         map.checksum(), ", its writer reported ", bytes, " bytes with checksum ", checksum);
  done_[shard] = {checksum, bytes};
  write_meta();
}

std::pair<std::string, int64_t> TopkCacheWriter::write_shard_file(const fs::path& dir,
                                                                  const TopkCacheInfo& info,
                                                                  int64_t shard,
                                                                  const torch::Tensor& ids,
                                                                  const torch::Tensor& logprobs) {
  const int64_t first = shard * info.windows_per_shard,
                last = std::min(first + info.windows_per_shard, info.windows);
  std::vector<int64_t> want = {last - first, info.seq_len, info.k};
  if (!ids.defined() || !logprobs.defined() || ids.sizes() != c10::IntArrayRef(want) ||
      logprobs.sizes() != c10::IntArrayRef(want))
    fail("top-k cache: shard ", shard, " needs ids and logprobs of shape ", c10::IntArrayRef(want),
         ", got ", ids.defined() ? ids.sizes() : c10::IntArrayRef{}, " and ",
         logprobs.defined() ? logprobs.sizes() : c10::IntArrayRef{});
  if (ids.is_floating_point() || ids.is_complex() || ids.scalar_type() == torch::kBool)
    fail("top-k cache: ids must be integers, got ", ids.scalar_type());
  if (!logprobs.is_floating_point())
    fail("top-k cache: logprobs must be floating point, got ", logprobs.scalar_type());
  torch::NoGradGuard no_grad;
  torch::Tensor i64 = ids.detach().to(torch::kCPU, torch::kLong);
  int64_t lo = i64.min().item<int64_t>(), hi = i64.max().item<int64_t>();
  if (lo < 0 || hi >= info.vocab_size)
    fail("top-k cache: shard ", shard, " has ids from ", lo, " to ", hi, "; they must lie in [0, ",
         info.vocab_size, ")");
  torch::Tensor lp = logprobs.detach().to(torch::kCPU, torch::kFloat);
  if (torch::isnan(lp).any().item<bool>()) fail("top-k cache: shard ", shard, " has NaN logprobs");

  // uint16 ids are written through int16 with the same bits (libtorch has no uint16).
  torch::Tensor id_data = info.id_bytes() == 2
                              ? torch::where(i64 >= 32768, i64 - 65536, i64).to(torch::kShort)
                              : i64.to(torch::kInt);
  torch::Tensor lp_data = lp.clamp_max(0.0).to(torch::kHalf);
  id_data = id_data.contiguous();
  lp_data = lp_data.contiguous();
  size_t id_n = id_data.numel() * id_data.element_size(), lp_n = lp_data.numel() * 2;
  std::vector<char> bytes(id_n + lp_n);
  std::memcpy(bytes.data(), id_data.data_ptr(), id_n);
  std::memcpy(bytes.data() + id_n, lp_data.data_ptr(), lp_n);
  std::string sum = Hasher().update(bytes.data(), bytes.size()).hex();

  fs::path path = dir / topk_format::shard_file(shard);
  atomic_write(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) fail("cannot write top-k cache shard ", tmp.string());
  });
  return {sum, static_cast<int64_t>(bytes.size())};
}

void TopkCacheWriter::write_meta() const {
  nlohmann::json shards = nlohmann::json::array();
  for (int64_t i = 0; i < static_cast<int64_t>(done_.size()); ++i)
    if (!done_[i].first.empty())
      shards.push_back({{"index", i},
                        {"file", topk_format::shard_file(i)},
                        {"bytes", done_[i].second},
                        {"checksum", done_[i].first}});
  nlohmann::json m = {{"format", topk_format::kFormat},
                      {"version", topk_format::kVersion},
                      {"key", info_.key},
                      {"k", info_.k},
                      {"seq_len", info_.seq_len},
                      {"windows", info_.windows},
                      {"vocab_size", info_.vocab_size},
                      {"windows_per_shard", info_.windows_per_shard},
                      {"id_dtype", topk_format::id_dtype(info_)},
                      {"logprob_dtype", "float16"},
                      {"checksum", "fnv1a64"},
                      {"shards", shards}};
  atomic_write_text(dir_ / topk_format::kMetaFile, m.dump(1) + "\n");
}

}  // namespace retort

// The sharded top-k cache of a language-model teacher: writer (atomic shards, resumable)
// and reader (memory-mapped, checksum verified on first touch). Layout in topk_cache.h.
#include "retort/topk_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"

namespace retort {

namespace {

constexpr const char* kFormat = "retort-topk-cache";
constexpr int kVersion = 1;
constexpr const char* kMetaFile = "meta.json";

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
}

bool same_shape(const TopkCacheInfo& a, const TopkCacheInfo& b) {
  return a.k == b.k && a.seq_len == b.seq_len && a.windows == b.windows &&
         a.vocab_size == b.vocab_size && a.windows_per_shard == b.windows_per_shard;
}

const char* id_dtype(const TopkCacheInfo& info) {
  return info.id_bytes() == 2 ? "uint16" : "int32";
}

// meta.json, or a discarded json when it is missing or not JSON.
nlohmann::json read_meta(const fs::path& dir) {
  std::ifstream in(dir / kMetaFile, std::ios::binary);
  if (!in) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

// The cache's description in meta.json, or nothing when it is not a cache of this format.
std::optional<TopkCacheInfo> info_of(const nlohmann::json& m) {
  if (m.is_discarded() || !m.is_object() || m.value("format", "") != kFormat ||
      m.value("version", 0) != kVersion)
    return std::nullopt;
  try {
    TopkCacheInfo info;
    info.key = m.at("key").get<std::string>();
    info.k = m.at("k").get<int64_t>();
    info.seq_len = m.at("seq_len").get<int64_t>();
    info.windows = m.at("windows").get<int64_t>();
    info.vocab_size = m.at("vocab_size").get<int64_t>();
    info.windows_per_shard = m.at("windows_per_shard").get<int64_t>();
    if (m.at("id_dtype").get<std::string>() != id_dtype(info)) return std::nullopt;
    return info;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

// A whole file mapped read-only; unmapped when it dies. Not in the anonymous namespace:
// TopkCache::State (a class with linkage) holds these.
namespace topk_cache_detail {
class MappedFile {
 public:
  explicit MappedFile(const fs::path& path) {
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
  ~MappedFile() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const char* data() const { return data_; }
  size_t size() const { return size_; }
  std::string checksum() const { return Hasher().update(data_, size_).hex(); }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
};
}  // namespace topk_cache_detail
using topk_cache_detail::MappedFile;

int64_t TopkCacheInfo::shards() const {
  return windows_per_shard > 0 ? (windows + windows_per_shard - 1) / windows_per_shard : 0;
}

int64_t TopkCacheInfo::id_bytes() const { return vocab_size <= 65536 ? 2 : 4; }

// ---- the writer --------------------------------------------------------------------------

TopkCacheWriter::TopkCacheWriter(fs::path dir, TopkCacheInfo info)
    : dir_(std::move(dir)), info_(std::move(info)) {
  check_info(info_);
  done_.assign(info_.shards(), {"", 0});
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) fail("top-k cache: cannot create folder ", dir_.string(), ": ", ec.message());

  // What a killed build left; the writer is opened before any shard of this build is written
  // (data parallelism: rank 0 opens it, the others wait for its list of missing shards).
  static const std::regex cache_files(R"(meta\.json|shard-\d+\.bin)");
  remove_orphaned_temporaries(dir_, cache_files);
  nlohmann::json meta = read_meta(dir_);
  std::optional<TopkCacheInfo> old = info_of(meta);
  if (old && old->key == info_.key && same_shape(*old, info_)) {
    // Resume: keep the shards that are still what meta.json says they are.
    for (const auto& s : meta.value("shards", nlohmann::json::array())) {
      int64_t i = s.value("index", int64_t{-1}), bytes = s.value("bytes", int64_t{-1});
      std::string sum = s.value("checksum", "");
      if (i < 0 || i >= info_.shards() || s.value("file", "") != shard_file(i)) continue;
      fs::path path = dir_ / shard_file(i);
      if (!fs::is_regular_file(path, ec) || static_cast<int64_t>(fs::file_size(path, ec)) != bytes)
        continue;
      if (MappedFile(path).checksum() == sum) done_[i] = {sum, bytes};
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
  fs::path path = dir_ / shard_file(shard);
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail("top-k cache: shard ", path.string(), " was reported written but is missing");
  MappedFile map(path);
  if (static_cast<int64_t>(map.size()) != bytes || map.checksum() != checksum)
    fail("top-k cache: shard ", path.string(), " holds ", map.size(), " bytes with checksum ", map.checksum(),
         ", its writer reported ", bytes, " bytes with checksum ", checksum);
  done_[shard] = {checksum, bytes};
  write_meta();
}

std::pair<std::string, int64_t> TopkCacheWriter::write_shard_file(const fs::path& dir, const TopkCacheInfo& info,
                                                                  int64_t shard, const torch::Tensor& ids,
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

  fs::path path = dir / shard_file(shard);
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
                        {"file", shard_file(i)},
                        {"bytes", done_[i].second},
                        {"checksum", done_[i].first}});
  nlohmann::json m = {{"format", kFormat},
                      {"version", kVersion},
                      {"key", info_.key},
                      {"k", info_.k},
                      {"seq_len", info_.seq_len},
                      {"windows", info_.windows},
                      {"vocab_size", info_.vocab_size},
                      {"windows_per_shard", info_.windows_per_shard},
                      {"id_dtype", id_dtype(info_)},
                      {"logprob_dtype", "float16"},
                      {"checksum", "fnv1a64"},
                      {"shards", shards}};
  atomic_write_text(dir_ / kMetaFile, m.dump(1) + "\n");
}

// ---- the reader --------------------------------------------------------------------------

struct TopkCache::State {
  fs::path dir;
  TopkCacheInfo info;
  std::vector<std::pair<std::string, int64_t>> shards;  // per shard: checksum, bytes
  int64_t meta_bytes = 0;
  mutable std::mutex mutex;                               // guards maps
  mutable std::vector<std::unique_ptr<MappedFile>> maps;  // null until first touched

  // The shard's mapping, verified against its checksum the first time.
  const MappedFile& shard(int64_t i) const {
    std::lock_guard<std::mutex> lock(mutex);
    if (!maps[i]) {
      fs::path path = dir / shard_file(i);
      auto map = std::make_unique<MappedFile>(path);
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
  fs::path meta_path = dir / kMetaFile;
  std::error_code ec;
  if (!fs::is_regular_file(meta_path, ec))
    fail("no top-k cache in ", dir.string(), ": ", meta_path.string(), " is missing");
  nlohmann::json meta = read_meta(dir);
  std::optional<TopkCacheInfo> info = info_of(meta);
  if (!info)
    fail(meta_path.string(), " does not describe a ", kFormat, " version ", kVersion,
         " (unreadable, another format, or a field missing)");
  if (info->key != expected_key)
    fail("top-k cache ", dir.string(), " holds key ", info->key, ", expected ", expected_key);
  check_info(*info);

  auto state = std::make_shared<State>();
  state->dir = dir;
  state->info = *info;
  state->shards.assign(info->shards(), {"", 0});
  state->maps.resize(info->shards());
  for (const auto& s : meta.value("shards", nlohmann::json::array())) {
    int64_t i = s.value("index", int64_t{-1});
    if (i >= 0 && i < info->shards() && s.value("file", "") == shard_file(i))
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
    fs::path path = dir / shard_file(i);
    int64_t bytes =
        fs::is_regular_file(path, ec) ? static_cast<int64_t>(fs::file_size(path, ec)) : -1;
    if (bytes != state->shards[i].second)
      fail("top-k cache shard ", path.string(), " has the wrong size (truncated?): ",
           bytes < 0 ? std::string("no such file")
                     : cat(bytes, " bytes with checksum ", MappedFile(path).checksum()),
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

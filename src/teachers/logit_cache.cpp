// Dense logit cache file: "RTCACHE1", u64 header length, JSON header, float32 data.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>

#include "retort/distributed.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/progress.h"
#include "retort/teacher.h"

namespace retort {

namespace {

constexpr char kMagic[8] = {'R', 'T', 'C', 'A', 'C', 'H', 'E', '1'};

std::string data_checksum(const torch::Tensor& t) {
  return Hasher().update(t.data_ptr(), t.numel() * t.element_size()).hex();
}

// Returns an undefined tensor (and says why) when the file is missing or bad.
torch::Tensor try_read(const fs::path& path, const std::string& key, std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  char magic[8];
  uint64_t hlen = 0;
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0) return *why = "bad magic", torch::Tensor();
  if (!in.read(reinterpret_cast<char*>(&hlen), 8) || hlen > (1 << 20)) return *why = "bad header", torch::Tensor();
  std::string header(hlen, '\0');
  if (!in.read(header.data(), hlen)) return *why = "truncated header", torch::Tensor();
  nlohmann::json h = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (h.is_discarded() || h.value("key", "") != key) return *why = "header does not match", torch::Tensor();
  auto shape = h.at("shape").get<std::vector<int64_t>>();
  torch::Tensor t = torch::empty(shape, torch::kFloat32);
  if (!in.read(static_cast<char*>(t.data_ptr()), t.numel() * 4) || in.peek() != EOF)
    return *why = "size does not match its header", torch::Tensor();
  if (data_checksum(t) != h.value("checksum", "")) return *why = "checksum mismatch", torch::Tensor();
  return t;
}

// The teacher's logits on `set` with the ranks of a data-parallel job sharing the work: rank r
// computes chunks r, r + W, ... of 256 rows (the chunks a single process computes, so the
// numbers are the same), and a sum over ranks of the partly filled tables completes them.
torch::Tensor logits_in_parallel(ModelTeacher& teacher, const ImageSet& set) {
  const int64_t chunk = 256, n = set.size(), chunks = (n + chunk - 1) / chunk;
  const int r = dist::rank(), W = dist::world_size();
  const int64_t classes = teacher.logits(set.images.narrow(0, 0, 1)).size(1);
  torch::Tensor table = torch::zeros({n, classes}, torch::kFloat32);
  ProgressBar bar("teacher logits", (chunks - r + W - 1) / W, "ex");
  int64_t mine = 0, rows = 0;
  for (int64_t c = r; c < chunks; c += W) {
    int64_t first = c * chunk, len = std::min(chunk, n - first);
    table.narrow(0, first, len).copy_(teacher.logits(set.images.narrow(0, first, len)).to(torch::kCPU));
    rows += len;
    bar.update(++mine, rows * W);
  }
  bar.finish();
  dist::all_reduce_sum(table);
  return table;
}

}  // namespace

torch::Tensor load_or_build_logit_cache(ModelTeacher& teacher, const ImageSet& set,
                                        const fs::path& cache_dir, CacheStatus* status) {
  auto t0 = std::chrono::steady_clock::now();
  Hasher key_hash;
  key_hash.update(teacher.fingerprint());
  key_hash.update(fingerprint_tensors({set.images, set.labels}));
  std::string key = key_hash.hex();
  fs::path path = cache_dir / ("logits-" + key + ".bin");
  // What a killed build left (rank 0 is the only writer; it has not begun).
  static const std::regex cache_files(R"(logits-[0-9a-f]+\.bin)");
  if (dist::is_main()) remove_orphaned_temporaries(cache_dir, cache_files);

  std::string why;
  torch::Tensor table = try_read(path, key, &why);
  // Ranks decide together: one that cannot read the file (no shared folder) makes all build.
  bool hit = !dist::any(!table.defined());
  if (!hit) {
    if (!why.empty())
      std::fprintf(stderr, "retort: teacher cache %s is unusable (%s); rebuilding it\n", path.c_str(), why.c_str());
    table = dist::active() ? logits_in_parallel(teacher, set) : teacher.logits_for(set, 256, /*progress=*/true).contiguous();
    if (!torch::isfinite(table).all().item<bool>())
      fail("the teacher produced NaN or infinite logits on ", set.source, "; refusing to cache them");
    nlohmann::json h = {{"kind", "dense-logits"}, {"key", key}, {"shape", table.sizes().vec()},
                        {"dtype", "float32"}, {"checksum", data_checksum(table)}, {"source", set.source}};
    std::string header = h.dump();
    uint64_t hlen = header.size();
    if (dist::is_main()) atomic_write(path, [&](const fs::path& tmp) {
      std::ofstream out(tmp, std::ios::binary);
      out.write(kMagic, 8);
      out.write(reinterpret_cast<const char*>(&hlen), 8);
      out.write(header.data(), hlen);
      out.write(static_cast<const char*>(table.data_ptr()), table.numel() * 4);
      out.close();
      if (!out) fail("cannot write teacher cache ", tmp);
    });
  }
  if (status) {
    status->path = path.string();
    status->hit = hit;
    status->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::error_code ec;
    status->bytes = static_cast<int64_t>(fs::file_size(path, ec));
  }
  return table;
}

}  // namespace retort

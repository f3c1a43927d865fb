// The dense logit cache of an image teacher: keyed by the teacher and the data, built once (the
// ranks of a data-parallel job share the work), rebuilt when the file is not whole. The file
// format is logit_cache_file.cpp.
#include <chrono>
#include <cstdio>
#include <regex>

#include "retort/distributed.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/progress.h"
#include "retort/teacher.h"
#include "teachers/logit_cache_file.h"

namespace retort {

namespace {

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
                                        const fs::path& cache_dir, CacheStatus* status, const AugmentOptions& views) {
  auto t0 = std::chrono::steady_clock::now();
  Hasher key_hash;
  key_hash.update(teacher.fingerprint());
  key_hash.update(fingerprint_tensors({set.images, set.labels}));
  if (views.views > 0)  // the pictures are a function of the augmentation and the view count
    key_hash.update(cat("views ", views.views, " crop ", views.crop_padding, " flip ", views.hflip));
  std::string key = key_hash.hex();
  fs::path path = cache_dir / ("logits-" + key + ".bin");
  // What a killed build left (rank 0 is the only writer; it has not begun).
  static const std::regex cache_files(R"(logits-[0-9a-f]+\.bin)");
  if (dist::is_main()) remove_orphaned_temporaries(cache_dir, cache_files);

  std::string why;
  torch::Tensor table = read_logit_cache_file(path, key, &why);
  // Ranks decide together: one that cannot read the file (no shared folder) makes all build.
  bool hit = !dist::any(!table.defined());
  if (!hit) {
    if (!why.empty())
      std::fprintf(stderr, "retort: teacher cache %s is unusable (%s); rebuilding it\n", path.c_str(), why.c_str());
    auto logits_on = [&](const ImageSet& s) {
      return dist::active() ? logits_in_parallel(teacher, s) : teacher.logits_for(s, 256, /*progress=*/true).contiguous();
    };
    if (views.views == 0) {
      table = logits_on(set);
    } else {
      // rows v * N + i: view v of example i, one pass over the data per view
      std::vector<torch::Tensor> parts;
      const torch::Tensor all = torch::arange(set.size(), torch::kInt64);
      for (int64_t v = 0; v < views.views; ++v) {
        ImageSet view = set;
        view.images = fixed_views(set, all, torch::full({set.size()}, v, torch::kInt64), views);
        std::fprintf(stderr, "teacher logits: view %lld of %lld\n", (long long)v + 1, (long long)views.views);
        parts.push_back(logits_on(view));
      }
      table = torch::cat(parts).contiguous();
    }
    if (!torch::isfinite(table).all().item<bool>())
      fail("the teacher produced NaN or infinite logits on ", set.source, "; refusing to cache them");
    if (dist::is_main()) write_logit_cache_file(path, key, table, set.source);
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

// Fuzz target: the top-k teacher cache (src/teachers/topk_cache*.cpp): meta.json, then the shard
// files it names, as one input split by fuzz::kPartSeparator (meta.json, shard-00000.bin,
// shard-00001.bin, ...). Read as a finished cache (TopkCache::open, then rows() of its first,
// middle and last windows) and as one to resume (TopkCacheWriter on the folder, which trusts
// only shards that verify). Accepted: every shard has the size the cache's shape gives, and
// rows() gives (B, seq_len, k) ids in [0, vocab_size) and logprobs <= 0.
#include <torch/torch.h>

#include "fuzz_support.h"
#include "retort/error.h"
#include "retort/topk_cache.h"

namespace {

// What the resuming writer is opened with (the seed corpus holds caches of this shape).
retort::TopkCacheInfo resume_info() {
  retort::TopkCacheInfo info;
  info.key = "fuzz";
  info.k = 2;
  info.seq_len = 3;
  info.windows = 3;
  info.vocab_size = 300;
  info.windows_per_shard = 2;
  return info;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace retort;
  const fuzz::fs::path dir = fuzz::fresh_scratch_dir();
  std::vector<std::string_view> parts = fuzz::split_parts(fuzz::as_text(data, size));
  fuzz::write_file(dir / "meta.json", parts[0]);
  for (size_t i = 1; i < parts.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "shard-%05zu.bin", i - 1);
    fuzz::write_file(dir / name, parts[i]);
  }

  try {
    TopkCache cache = TopkCache::open(dir, "fuzz");
    const TopkCacheInfo& info = cache.info();
    FUZZ_CHECK(info.k >= 1 && info.seq_len >= 1 && info.windows >= 1);
    // Each shard holds exactly its windows' ids and logprobs (a short one would be read past its
    // end: inside the mapped page, where AddressSanitizer does not look).
    for (int64_t s = 0; s < info.shards(); ++s) {
      const int64_t n = std::min(info.windows_per_shard, info.windows - s * info.windows_per_shard);
      char name[32];
      std::snprintf(name, sizeof name, "shard-%05lld.bin", static_cast<long long>(s));
      FUZZ_CHECK(static_cast<int64_t>(fuzz::fs::file_size(dir / name)) ==
                 n * info.seq_len * info.k * (info.id_bytes() + 2));
    }
    torch::Tensor windows = torch::tensor({int64_t{0}, info.windows / 2, info.windows - 1});
    TeacherSignal s = cache.rows(windows);
    FUZZ_CHECK(s.ids.sizes() == c10::IntArrayRef({3, info.seq_len, info.k}));
    FUZZ_CHECK(s.logprobs.sizes() == s.ids.sizes());
    FUZZ_CHECK(s.ids.min().item<int64_t>() >= 0 && s.ids.max().item<int64_t>() < info.vocab_size);
    FUZZ_CHECK(!(s.logprobs > 0).any().item<bool>());
  } catch (const Error&) {
  }

  try {
    TopkCacheWriter writer(dir, resume_info());
    for (int64_t shard : writer.missing_shards())
      FUZZ_CHECK(shard >= 0 && shard < writer.info().shards());
  } catch (const Error&) {
  }
  return 0;
}

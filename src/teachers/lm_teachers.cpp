// Teachers for language models: the top-k cache (built shard by shard) and the teacher that
// answers from it.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "retort/distributed.h"
#include "retort/divergence.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/topk_teacher.h"
#include "retort/progress.h"
#include "retort/runtime.h"

namespace retort {

TopkCachedTeacher::TopkCachedTeacher(std::shared_ptr<ModelTeacher> model, TopkCache cache)
    : model_(std::move(model)), cache_(std::move(cache)) {
  if (model_->top_k() != cache_.info().k)
    fail("top-k cache holds k = ", cache_.info().k, " but its live teacher answers with k = ", model_->top_k());
}

TeacherSignal TopkCachedTeacher::signal(const Batch& batch) {
  if (batch.augmented) return model_->signal(batch);  // sampled from the student: not a stored window
  return cache_.rows(batch.index);
}

TopkCache load_or_build_topk_cache(ModelTeacher& teacher, const TokenBatcher& windows, const TokenSet& set, int64_t k,
                                   const std::filesystem::path& cache_dir, CacheStatus* status) {
  auto start = std::chrono::steady_clock::now();
  TopkCacheInfo info;
  info.k = k;
  info.seq_len = windows.seq_len();
  info.windows = windows.windows();
  info.vocab_size = set.vocab_size;
  info.key = fingerprint_tensors({torch::tensor({k, info.seq_len}), set.tokens}) + teacher.fingerprint();
  fs::path dir = cache_dir / cat("topk-", Hasher().update(info.key).hex(), "-k", k);
  ensure_writable_dir(dir);
  // Rank 0 owns meta.json: it opens the writer (which clears or resumes the folder) and tells
  // the others which shards are missing; each rank builds every W-th of them.
  std::unique_ptr<TopkCacheWriter> writer;
  std::vector<int64_t> missing;
  if (dist::is_main()) {
    writer = std::make_unique<TopkCacheWriter>(dir, info);
    missing = writer->missing_shards();
  }
  if (dist::active()) {
    torch::Tensor count = torch::tensor({int64_t(missing.size())});
    std::vector<torch::Tensor> v{count};
    dist::broadcast(v, 0);
    torch::Tensor list = dist::is_main() ? torch::tensor(missing, torch::kInt64) : torch::empty({count.item<int64_t>()}, torch::kInt64);
    v = {list};
    dist::broadcast(v, 0);
    missing.assign(list.data_ptr<int64_t>(), list.data_ptr<int64_t>() + list.numel());
  }
  const int rank = dist::rank(), world = dist::world_size();
  bool hit = missing.empty();
  if (!hit) {
    torch::NoGradGuard no_grad;
    int64_t total = 0;
    for (size_t i = rank; i < missing.size(); i += world) total += std::min(info.windows_per_shard, info.windows - missing[i] * info.windows_per_shard);
    ProgressBar bar(cat("teacher top-", k, " cache"), total, "tok");
    int64_t done = 0;
    const int64_t chunk = 32;  // windows per forward pass
    torch::Tensor reports = torch::zeros({int64_t(missing.size()), 2}, torch::kInt64);  // checksum, bytes
    for (size_t i = rank; i < missing.size(); i += world) {
      const int64_t s = missing[i], first = s * info.windows_per_shard,
                    last = std::min(first + info.windows_per_shard, info.windows);
      std::vector<torch::Tensor> ids, logprobs;
      for (int64_t w = first; w < last; w += chunk) {
        int64_t n = std::min(chunk, last - w);
        Batch batch = windows.windows_batch(torch::arange(w, w + n, torch::kInt64));
        TeacherSignal sig = top_k_signal(teacher.logits(batch.x), k);
        ids.push_back(sig.ids.to(torch::kCPU));
        logprobs.push_back(sig.logprobs.to(torch::kCPU));
        done += n;
        bar.update(done, done * info.seq_len * world);
        if (interrupt_requested()) throw Interrupted(cat("teacher cache: ", s, " shards of ", missing.size(), " left to build"));
      }
      if (writer) {
        writer->write_shard(s, torch::cat(ids, 0), torch::cat(logprobs, 0));  // atomic: a kill loses at most this shard
      } else {
        auto [sum, bytes] = TopkCacheWriter::write_shard_file(dir, info, s, torch::cat(ids, 0), torch::cat(logprobs, 0));
        reports[i][0] = static_cast<int64_t>(std::stoull(sum, nullptr, 16));
        reports[i][1] = bytes;
      }
    }
    bar.finish();
    if (dist::active()) {
      dist::all_reduce_sum(reports);  // each row is filled by one rank only
      if (writer)
        for (size_t i = 0; i < missing.size(); ++i)
          if (int(i % world) != rank) {
            char hex[17];
            std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(reports[i][0].item<int64_t>()));
            writer->adopt_shard(missing[i], hex, reports[i][1].item<int64_t>());
          }
      dist::barrier();  // meta.json lists every shard before any rank opens the cache
    }
  }
  TopkCache cache = TopkCache::open(dir, info.key);
  if (status) {
    status->path = dir.string();
    status->hit = hit;
    status->bytes = cache.bytes();
    status->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return cache;
}

}  // namespace retort

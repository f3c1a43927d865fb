// Teachers for language models: the top-k cache (built shard by shard) and the teacher
// prepared for a distillation run.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "retort/divergence.h"
#include "retort/error.h"
#include "retort/fs.h"
#include "retort/hash.h"
#include "retort/lm.h"
#include "retort/progress.h"
#include "retort/run.h"
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
  TopkCacheWriter writer(dir, info);
  std::vector<int64_t> missing = writer.missing_shards();
  bool hit = missing.empty();
  if (!hit) {
    torch::NoGradGuard no_grad;
    ModelImpl& model = teacher.model();
    const torch::Device device = model_device(model);
    int64_t total = 0;
    for (int64_t s : missing) {
      auto [a, b] = writer.shard_windows(s);
      total += b - a;
    }
    ProgressBar bar(cat("teacher top-", k, " cache"), total, "tok");
    int64_t done = 0;
    const int64_t chunk = 32;  // windows per forward pass
    for (int64_t s : missing) {
      auto [first, last] = writer.shard_windows(s);
      std::vector<torch::Tensor> ids, logprobs;
      for (int64_t w = first; w < last; w += chunk) {
        int64_t n = std::min(chunk, last - w);
        Batch batch = windows.windows_batch(torch::arange(w, w + n, torch::kInt64));
        torch::Tensor logits = model.forward(batch.x.to(device)).logits;
        TeacherSignal sig = top_k_signal(logits, k);
        ids.push_back(sig.ids.to(torch::kCPU));
        logprobs.push_back(sig.logprobs.to(torch::kCPU));
        done += n;
        bar.update(done, done * info.seq_len);
        if (interrupt_requested()) throw Interrupted(cat("teacher cache: ", s, " shards of ", missing.size(), " left to build"));
      }
      writer.write_shard(s, torch::cat(ids, 0), torch::cat(logprobs, 0));  // atomic: a kill loses at most this shard
    }
    bar.finish();
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

PreparedLmTeacher prepare_lm_teacher(const Config& c, ModelPtr teacher, const std::string& description,
                                     const TextData& data) {
  teacher->to(torch::Device(c.get_string("run.device")));
  PreparedLmTeacher p;
  p.top_k = c.get_int("distill.top_k");
  p.model = std::make_shared<ModelTeacher>(teacher, description, p.top_k);
  p.signal = p.model;
  int64_t batch = c.get_int("data.eval_batch_size");
  if (c.get_bool("distill.cache") && p.top_k > 0) {
    TokenBatcher windows(data.train, data.seq_len, batch, /*shuffle=*/false, /*seed=*/0);
    TopkCache cache = load_or_build_topk_cache(*p.model, windows, data.train, p.top_k, cache_dir_from(c), &p.cache);
    p.signal = std::make_shared<TopkCachedTeacher>(p.model, std::move(cache));
  }
  p.val = score_lm(*teacher, data.validation, *data.tokenizer, data.seq_len, batch, {}, &p.val_top1);
  return p;
}

}  // namespace retort

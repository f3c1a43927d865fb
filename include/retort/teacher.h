// Teachers: anything that answers a batch with a TeacherSignal. The trainer never
// knows whether the answer came from a model, a cache on disk, or elsewhere.
#pragma once
#include <memory>
#include <string>

#include "retort/data.h"
#include "retort/model.h"
#include "retort/objective.h"
#include "retort/precision.h"

namespace retort {

class Teacher {
 public:
  virtual ~Teacher() = default;
  virtual TeacherSignal signal(const Batch& batch) = 0;
  virtual std::string describe() const = 0;
};

// A local model, frozen (eval mode, no gradients). Answers with dense logits, or with
// its top-k tokens when top_k > 0 (language models: what an API or a cache would give).
class ModelTeacher : public Teacher {
 public:
  explicit ModelTeacher(ModelPtr model, std::string description = "model", int64_t top_k = 0);
  TeacherSignal signal(const Batch& batch) override;
  std::string describe() const override { return description_; }
  // bf16 runs the teacher's forward passes under bf16 autocast (logits still come back fp32).
  void set_precision(Precision p) { precision_ = p; }
  Precision precision() const { return precision_; }
  // The frozen model's fp32 logits for inputs x (moved to its device), at its precision.
  torch::Tensor logits(const torch::Tensor& x);
  // Logits for a whole set, in order, batch by batch: (N, V).
  torch::Tensor logits_for(const ImageSet& set, int64_t batch_size = 256, bool progress = false);
  // Hash of the weights and architecture: part of every cache key.
  std::string fingerprint() const;
  ModelImpl& model() { return *model_; }
  ModelPtr model_ptr() { return model_; }
  int64_t top_k() const { return top_k_; }

 private:
  ModelPtr model_;
  std::string description_;
  int64_t top_k_ = 0;
  Precision precision_ = Precision::Fp32;
};

// Serves dense logits from a table computed once on the training set, or on each of its fixed
// views (`views` > 0: rows v * N + i); other augmented batches are not in the table, so those go
// to the model.
class CachedTeacher : public Teacher {
 public:
  CachedTeacher(std::shared_ptr<ModelTeacher> model, torch::Tensor table, int64_t views = 0);
  TeacherSignal signal(const Batch& batch) override;
  std::string describe() const override { return "cache of " + model_->describe(); }
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }

 private:
  std::shared_ptr<ModelTeacher> model_;
  torch::Tensor table_;  // (N, V) or (views * N, V) float32
  int64_t views_ = 0;
  int64_t hits_ = 0, misses_ = 0;
};

struct CacheStatus {
  std::string path;       // the cache file
  bool hit = false;       // true: read from disk; false: computed and written
  double seconds = 0;     // time to read or build
  int64_t bytes = 0;      // size on disk
  // "teacher cache: PATH (hit|built, 1.2 s[, 80.0 bytes/token])" (`tokens` > 0: per-token size).
  std::string describe(int64_t tokens = 0) const;
};

// The teacher's logits on `set`, read from `cache_dir` when a file with the same
// key (teacher fingerprint + data hash) exists and verifies, else computed and
// written atomically. A corrupt file is reported and rebuilt, never trusted. Temporaries of
// logits-*.bin that a killed build left in `cache_dir` are removed first. `views.views` > 0: the
// logits of every fixed view (fixed_views in retort/data.h), row v * N + i for view v of example i.
torch::Tensor load_or_build_logit_cache(ModelTeacher& teacher, const ImageSet& set,
                                        const std::filesystem::path& cache_dir, CacheStatus* status = nullptr,
                                        const AugmentOptions& views = {});

std::string fingerprint_tensors(const std::vector<torch::Tensor>& tensors);

}  // namespace retort

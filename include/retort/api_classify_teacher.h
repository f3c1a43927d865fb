// A black-box image classifier: an endpoint's model answering POST /classify (retort serve: pixel
// values 0..255 in, class probabilities out), reached as teacher.path = "openai:URL" on
// data.kind = images. Its log-probabilities on every training image are harvested once into the
// dense logit cache a local teacher fills (retort/teacher.h: same file format, same folder), so
// training afterwards is the dense-teacher path. Not here: the HTTP client and budget
// (retort/api_teacher.h), the language-model harvests (top-k, text), the run around it
// (prepare_api_teacher, retort/image_run.h).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "retort/api_teacher.h"
#include "retort/data.h"
#include "retort/teacher.h"

namespace retort {

struct ClassifyHarvestOptions {
  double mean = 0.2860;            // the set's normalisation (data.mean, data.std), undone before
  double std = 0.3530;             // sending: the endpoint gets pixel values 0..255 and applies
                                   // its own model's normalisation
  int64_t images_per_shard = 256;  // committed to disk together: a kill, Ctrl-C, failure or spent
                                   // budget loses at most the shards not yet whole
};

// The endpoint's model checked against `set` (one GET models): a retort serve entry must be a
// classifier taking images (C, H, W) of the set's shape and predicting set.num_classes classes,
// else an Error naming both shapes; a model the list does not name is an Error. An entry without
// retort's description (another server) passes with a warning: each answer's class count is
// checked instead.
void check_api_classifier(ApiClient& client, const ImageSet& set);

// log(max(p, 1e-12)) of the endpoint's class probabilities for every image of `set`, in order:
// (N, classes) float32, classes = set.num_classes. Read from `cache_dir` when a whole cache file
// for (endpoint URL, model, the pixels sent) is there; else check_api_classifier, then the images
// are sent teacher.api_batch (endpoint.batch) per request, endpoint.concurrency requests in
// flight, and each shard of options.images_per_shard images is written atomically as soon as
// its last answer is in (logits-KEY.parts/ beside the cache file). A rerun asks only for the
// shards not on disk; when all are, they become one cache file (logits-KEY.bin) and the parts
// go. BudgetExhausted and Interrupted say how much is kept and where. Images whose un-normalised
// values are not whole pixel values in [0, 255] (another data.mean / data.std) -> Error.
torch::Tensor harvest_classifier_log_probs(ApiClient& client, const ImageSet& set,
                                           const ClassifyHarvestOptions& options,
                                           const std::filesystem::path& cache_dir,
                                           CacheStatus* status = nullptr);

// The harvested log-probabilities as a dense teacher: rows looked up by batch.index. Every batch
// must be a stored example: there is no model to ask about anything else (augmented -> Error).
class ApiClassifierTeacher : public Teacher {
 public:
  ApiClassifierTeacher(torch::Tensor log_probs, std::string description);
  TeacherSignal signal(const Batch& batch) override;
  std::string describe() const override { return description_; }

 private:
  torch::Tensor table_;  // (N, classes) float32
  std::string description_;
};

}  // namespace retort

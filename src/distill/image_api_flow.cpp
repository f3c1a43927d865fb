// `retort distill` on images with an openai: teacher (teacher.path = "openai:URL"): the
// endpoint's class probabilities on the training and test sets, harvested through /classify
// into dense logit caches, as the teacher of an otherwise ordinary distillation run. The harvest
// itself is src/teachers/api_classify_teacher.cpp; the language-model flow, lm_api_flow.cpp.
#include <torch/torch.h>

#include <cstdio>

#include "retort/api_classify_teacher.h"
#include "retort/distributed.h"
#include "retort/error.h"
#include "retort/image_run.h"

namespace retort {

PreparedTeacher prepare_api_teacher(const Options& o, const ApiEndpoint& endpoint,
                                    const ImageSet& train, const ImageSet& test) {
  const std::string& url = o.teacher.path;
  if (dist::world_size() > 1)
    fail("an openai: teacher is harvested by one process; run `retort distill` without ",
         "torchrun / srun");
  if (o.train.augment.enabled())
    fail("train.crop_padding / train.hflip make every batch a new image, and an openai: ",
         "teacher (", url, ") answers only the training images it was asked about beforehand; ",
         "turn augmentation off");
  ApiClient client(endpoint);
  ClassifyHarvestOptions harvest;
  harvest.mean = o.data.mean;
  harvest.std = o.data.std;
  PreparedTeacher p;
  torch::Tensor table =
      harvest_classifier_log_probs(client, train, harvest, o.run.cache_dir, &p.cache);
  // The test set too: the teacher's own accuracy and the student's agreement with it.
  CacheStatus test_cache;
  p.test_logits = harvest_classifier_log_probs(client, test, harvest, o.run.cache_dir, &test_cache);
  p.signal = std::make_shared<ApiClassifierTeacher>(
      table, cat(url, " (model ", endpoint.model, ", probabilities cache ",
                 std::filesystem::path(p.cache.path).filename().string(), ")"));
  p.extra = {{"teacher", url},
             {"teacher_model", endpoint.model},
             {"teacher_api",
              {{"requests", client.requests()},
               {"tokens", client.tokens()},
               {"retries", client.retries()}}}};
  if (dist::is_main())
    std::fprintf(stderr,
                 "teacher API: %lld requests, %lld tokens (images), %lld retries; test set: %s\n",
                 (long long)client.requests(), (long long)client.tokens(),
                 (long long)client.retries(), test_cache.describe().c_str());
  return p;
}

}  // namespace retort

// Image-classifier runs (data.kind = images): the model and data the options describe, the
// labels and distillation specs, the teacher prepared for one, and the run itself with its test
// accuracy. The run phases they share with language-model runs are retort/run.h.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "retort/api_endpoint.h"
#include "retort/data.h"
#include "retort/options.h"
#include "retort/run.h"
#include "retort/teacher.h"

namespace retort {

// ---- options -> what a classifier run is made of ---------------------------------------
ModelSpec model_spec_from(const ModelOptions& model, const ImageSet& data);
ImageSet load_split_from(const DataOptions& data, const std::string& split);  // "train" | "test"

struct RunResult {
  std::filesystem::path dir;
  ModelPtr model;
  ModelSpec spec;
  double test_accuracy = 0;
  double agreement = -1;     // with the teacher's test predictions; -1 when not measured
  double train_seconds = 0;  // optimisation time, summed across resumes
  int64_t params = 0;
  int64_t bytes_on_disk = 0;
  bool reused = false;       // the folder already held the finished run
  torch::Tensor test_logits; // (N_test, V)
};

// Trains (or resumes, or reuses when finished) and evaluates. Writes run.json
// with the results and model/ with the final weights.
RunResult execute_run(const RunSpec& spec, const ImageSet& train, const ImageSet& test);

// A RunSpec that trains `model` (o.model, o.teacher.model) with `train` (o.train,
// o.teacher.train) on labels alone.
RunSpec labels_run_spec(const Options& o, const ModelOptions& model, const TrainSection& train,
                        const ImageSet& data, const std::filesystem::path& dir);

// Turns a labels RunSpec into a distillation one: kd objective from distill.*,
// the teacher (cached when distill.cache and no augmentation), agreement logits.
struct PreparedTeacher {
  std::shared_ptr<ModelTeacher> model;  // the frozen teacher model; null for an openai: teacher,
                                        // known only by its signal (whose describe() names it)
  std::shared_ptr<Teacher> signal;      // what the trainer asks (a cache when enabled)
  torch::Tensor test_logits;            // (N_test, V)
  CacheStatus cache;                    // cache.path empty when no cache was used
  nlohmann::json extra = nlohmann::json::object();  // added to run.json (an API teacher's usage)
};
// `test_logits`: the teacher's logits on `test` when already known (else computed).
PreparedTeacher prepare_teacher(const Options& o, ModelPtr teacher, const std::string& description,
                                const ImageSet& train, const ImageSet& test, torch::Tensor test_logits = {});
// An openai: classifier (image_api_flow.cpp): its log-probabilities on `train` and `test`
// harvested through /classify into dense logit caches (retort/api_classify_teacher.h), always
// cached whatever distill.cache says. One process only; augmentation (train.crop_padding,
// train.hflip) is refused, as an augmented image was never asked about.
PreparedTeacher prepare_api_teacher(const Options& o, const ApiEndpoint& endpoint, const ImageSet& train,
                                    const ImageSet& test);
void make_distill_spec(RunSpec& spec, const Options& o, const PreparedTeacher& teacher);

// Checks that `model` accepts examples of `data` and predicts data.num_classes classes.
void check_model_fits(ModelImpl& model, const ImageSet& data, const std::string& who);

}  // namespace retort

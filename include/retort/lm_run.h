// Language-model runs in run folders: the teacher prepared for one (live or top-k cache), the
// labels and distillation specs, the run itself. The image side is retort/run.h; both share
// RunSpec and the run phases.
#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "retort/lm_score.h"
#include "retort/options.h"
#include "retort/run.h"
#include "retort/text.h"
#include "retort/topk_teacher.h"

namespace retort {

struct PreparedLmTeacher {
  std::shared_ptr<ModelTeacher> model;  // frozen
  std::shared_ptr<Teacher> signal;      // what the trainer asks (live model or top-k cache)
  torch::Tensor val_top1;               // (W, T) the teacher's argmax on the validation windows
  LmScore val;                          // the teacher's own validation score
  CacheStatus cache;                    // cache.path empty when no cache was used
  int64_t top_k = 0;
};
PreparedLmTeacher prepare_lm_teacher(const Options& o, ModelPtr teacher, const std::string& description,
                                     const TextData& data);

struct LmRunResult {
  std::filesystem::path dir;
  ModelPtr model;
  ModelSpec spec;
  LmScore val;
  double train_seconds = 0;
  double train_tokens_per_second = 0;  // training throughput
  double tokens_per_second = 0;        // inference throughput (lm_tokens_per_second)
  int64_t params = 0;
  int64_t bytes_on_disk = 0;
  bool reused = false;
  torch::Tensor val_top1;                          // (W, T)
  std::vector<std::pair<double, double>> curve;    // (step, val_bpb) of this process's training
};

// A labels RunSpec for a gpt from `model_prefix` / `train_prefix` on `data`.
RunSpec lm_labels_run_spec(const Options& o, const ModelOptions& model, const TrainSection& train,
                           const TextData& data, const std::filesystem::path& dir);
// Turns it into distillation from `teacher` per distill.* (loss, top_k, on_policy, ...).
// distill.method = sequence is not a RunSpec change: see teacher_written_corpus.
void make_lm_distill_spec(RunSpec& spec, const Options& o, const PreparedLmTeacher& teacher);

// Trains (or resumes, or reuses) `spec` on data.train, scores it on data.validation, saves
// model/ with the tokenizer. `init`, when set, is called on the fresh model before training
// (e.g. initialisation from the teacher); `on_policy` > 0 samples that share of batches
// from the student (GKD).
LmRunResult execute_lm_run(const RunSpec& spec, const TextData& data,
                           const std::function<std::string(ModelImpl&)>& init = {});

}  // namespace retort

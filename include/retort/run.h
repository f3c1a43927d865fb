// A run: one model trained (on labels or from a teacher) in its own folder runs/<name>/ with
// config.toml, metrics.jsonl, checkpoints/last.pt and model/: what it is (RunSpec) and the phases
// every run shares, whatever its data. Classifier runs: retort/image_run.h; language-model runs:
// retort/lm_run.h.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "retort/model.h"
#include "retort/objective.h"
#include "retort/teacher.h"
#include "retort/trainer.h"

namespace retort {

// ---- a run ------------------------------------------------------------------------
enum class OnMismatch { Fail, Restart };  // a run folder made with another config

struct RunSpec {
  std::filesystem::path dir;            // run folder
  ModelSpec model;                      // what to build
  TrainOptions train;                   // how to optimise it
  AugmentOptions augment;               // training-batch augmentation
  int64_t batch_size = 128;             // training batch size
  Objective objective;                  // loss
  std::shared_ptr<Teacher> teacher;     // null when the objective needs none
  torch::Tensor teacher_test_logits;    // agreement: images (N_test, V) logits; text (W, T) top-1 ids; optional
  std::string label = "train";          // progress-bar label
  int64_t log_every = 50;               // metrics.jsonl step lines
  bool resume = true;                   // continue from checkpoints/last.pt when present
  OnMismatch on_mismatch = OnMismatch::Fail;
  torch::Device device = torch::kCPU;   // where the model trains
  std::string config_toml;              // written as config.toml
  std::string digest;                   // what must match for a resume to be allowed
  nlohmann::json extra;                 // merged into run.json (method, temperature, ...)
  // Language models only:
  int64_t eval_every = 0;               // validation every N steps (0: 8 times per run)
  int64_t eval_batch_size = 32;         // windows per validation forward pass
  double on_policy = 0;                 // share of batches sampled from the student (GKD lambda)
  int64_t prompt_tokens = 16;           // on-policy: prompt length kept from each window
  double sample_temperature = 1.0;      // on-policy sampling
  double sample_top_p = 1.0;
};

// ---- the phases every run shares (classifier and language-model runs) ----
// Prepares spec.dir: a folder made by another configuration is cleared (or refused, per
// on_mismatch, when it holds a checkpoint); removes temporaries a killed run left there; writes
// config.toml and run.json with status "training". Returns the run.json object to finish.
nlohmann::json begin_run(const RunSpec& spec);
// Resumes when allowed from the newest checkpoint that passes its digest (checkpoints/last.pt,
// else previous.pt, saying on stderr which was damaged), then trains with `evaluators` (added first,
// so the others see their metrics), metrics.jsonl, progress and checkpoints. Returns true when
// the folder already held the finished run (nothing trained).
bool train_in_folder(Trainer& trainer, const RunSpec& spec, const std::vector<std::shared_ptr<Observer>>& evaluators);
// Writes run.json with status "finished", `results` and the training totals.
void finish_run(const RunSpec& spec, const Trainer& trainer, nlohmann::json meta, const nlohmann::json& results);

}  // namespace retort

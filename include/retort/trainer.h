// The training loop: batch -> teacher signal -> student forward -> objective ->
// backward -> optimizer step. Evaluation, checkpoints, metrics and progress are
// observers hooked on on_step / on_epoch / on_end.
#pragma once
#include <torch/optim.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "retort/data.h"
#include "retort/distributed.h"
#include "retort/model.h"
#include "retort/objective.h"
#include "retort/precision.h"
#include "retort/teacher.h"

namespace retort {

struct TrainOptions {
  int64_t epochs = 10;               // passes over the training set
  std::string optimizer = "adamw";   // adam | adamw | sgd
  double lr = 1e-3;                  // peak learning rate
  double weight_decay = 0.0;         // decoupled for adamw, L2 for adam/sgd
  double momentum = 0.9;             // sgd only
  int64_t warmup_steps = 0;          // linear warm-up from 0 to lr over this many steps
  std::string schedule = "cosine";   // cosine (to 0 at the last step) | constant
  uint64_t seed = 0;                 // shuffling, augmentation, dropout, initialisation
  Precision precision = Precision::Fp32;  // student forward: fp32, or bf16 autocast
  bool overlap_teacher = false;      // compute the teacher's answer to the next batch on another
                                     // thread while the student trains on this one
  int64_t bucket_bytes = 25 << 20;   // data parallelism: gradient bytes per all-reduce bucket
};

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o,
                                                        const std::vector<torch::Tensor>& params);
// Learning rate at `step` (0-based) of `total_steps`.
double scheduled_lr(const TrainOptions& o, int64_t step, int64_t total_steps);

struct StepInfo {
  int64_t epoch = 0, batch = 0;      // position: epoch (0-based), batch within it
  int64_t step = 0, total_steps = 0; // global optimizer steps done (after this one) / planned
  int64_t batches_per_epoch = 0;
  int64_t examples = 0;              // examples (images, windows) in this batch
  int64_t targets = 0;               // predictions scored: examples, or tokens for text
  double loss = 0, lr = 0;
  std::vector<std::pair<std::string, double>> terms;
};

struct EpochInfo {
  int64_t epoch = 0;           // 0-based, just finished
  double train_loss = 0;       // mean over the epoch's batches (of this process's run)
  double seconds = 0;          // wall time of the epoch
  nlohmann::json metrics;      // observers add to it (e.g. "test_accuracy")
};

class Trainer;

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_start(Trainer&) {}
  virtual void on_step(Trainer&, const StepInfo&) {}
  virtual void on_epoch(Trainer&, EpochInfo&) {}
  virtual void on_interrupt(Trainer&) {}  // Ctrl-C: save what must not be lost
  virtual void on_end(Trainer&) {}
};

class Trainer {
 public:
  // `teacher` may be null when the objective needs none. `train` outlives the trainer.
  Trainer(ModelPtr model, const BatchSource& train, Objective objective, std::shared_ptr<Teacher> teacher,
          TrainOptions options);
  void add_observer(std::shared_ptr<Observer> o) { observers_.push_back(std::move(o)); }

  // Trains from the current position to the last epoch. Throws Interrupted on
  // Ctrl-C after observers had their on_interrupt.
  void run();
  // Stop after this many more steps (tests use it to simulate a crash).
  void stop_after_steps(int64_t n) { stop_after_ = n; }

  // Model + optimizer + position + RNG, written atomically, then its digest in the sidecar
  // checkpoint_sidecar(path) (retort/checkpoints.h).
  void save_checkpoint(const std::filesystem::path& path) const;
  // Checks the file against its sidecar's digest first: a mismatch, or a file torch cannot read
  // -> Damaged naming the file (and both digests); no sidecar (an older retort) -> one warning
  // line, then loads. A missing file or another seed -> Error.
  void load_checkpoint(const std::filesystem::path& path);

  ModelImpl& model() { return *model_; }
  ModelPtr model_ptr() { return model_; }
  const TrainOptions& options() const { return options_; }
  int64_t step() const { return step_; }
  int64_t epoch() const { return epoch_; }
  int64_t total_steps() const { return options_.epochs * train_.batches_per_epoch(); }
  bool finished() const { return epoch_ >= options_.epochs; }
  double train_seconds() const { return train_seconds_; }
  // Data parallelism (dist::active()): gradient bytes each rank all-reduces per step; 0 alone.
  int64_t comm_bytes_per_step() const;
  int64_t comm_buckets() const { return sync_ ? sync_->buckets() : 0; }  // all-reduces per step
  // Seconds this process waited on all-reduces that backward did not hide (since construction).
  double comm_seconds() const { return comm_seconds_; }

 private:
  ModelPtr model_;
  const BatchSource& train_;
  Objective objective_;
  std::shared_ptr<Teacher> teacher_;
  TrainOptions options_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<std::shared_ptr<Observer>> observers_;
  int64_t step_ = 0, epoch_ = 0, batch_ = 0;  // next batch to run is (epoch_, batch_)
  double epoch_loss_sum_ = 0;                 // partial sums carried across a mid-epoch resume
  int64_t epoch_loss_count_ = 0;
  double train_seconds_ = 0;                  // accumulated across resumes
  int64_t stop_after_ = -1;
  std::unique_ptr<GradientSync> sync_;  // data parallelism only
  double comm_seconds_ = 0;

  struct Prepared {
    Batch batch;
    TeacherSignal signal;
  };
  Prepared prepare(int64_t epoch, int64_t b);
  void train_step(Prepared& p, int64_t total, bool local_stop, bool* stop_agreed);
};

}  // namespace retort

// Standard trainer observers: evaluation, metrics.jsonl, progress bar, checkpoints.
// Add them in this order: evaluation first so the others see its metrics.
#pragma once
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "retort/checkpoints.h"
#include "retort/progress.h"
#include "retort/trainer.h"

namespace retort {

// Test accuracy (and agreement with a teacher's test logits, when given) each epoch.
class EvalObserver : public Observer {
 public:
  EvalObserver(const ImageSet& test, torch::Tensor teacher_test_logits = {});
  void on_epoch(Trainer& t, EpochInfo& e) override;
  double last_accuracy() const { return last_accuracy_; }

 private:
  const ImageSet& test_;
  torch::Tensor teacher_logits_;
  double last_accuracy_ = 0;
};

// One JSON object per line: {"type":"step",...} every `every` steps and
// {"type":"epoch",...} per epoch. On resume, lines past the checkpoint are dropped.
class MetricsObserver : public Observer {
 public:
  MetricsObserver(std::filesystem::path path, int64_t every);
  ~MetricsObserver() override;
  void on_start(Trainer& t) override;
  void on_step(Trainer& t, const StepInfo& s) override;
  void on_epoch(Trainer& t, EpochInfo& e) override;
  void on_interrupt(Trainer&) override;

 private:
  void write(const nlohmann::json& j);
  std::filesystem::path path_;
  int64_t every_;
  std::FILE* file_ = nullptr;
};

// A progress bar per epoch with loss, throughput and ETA.
class ProgressObserver : public Observer {
 public:
  explicit ProgressObserver(std::string label) : label_(std::move(label)) {}
  void on_step(Trainer& t, const StepInfo& s) override;
  void on_epoch(Trainer& t, EpochInfo& e) override;

 private:
  std::string label_;
  std::unique_ptr<ProgressBar> bar_;
  int64_t examples_ = 0;
  double loss_ema_ = 0;
};

// Writes the checkpoint `path` (checkpoints/last.pt) at every epoch end and on Ctrl-C
// (atomically, with its digest), keeping the one before as previous.pt (retort/checkpoints.h).
class CheckpointObserver : public Observer {
 public:
  explicit CheckpointObserver(std::filesystem::path path) : path_(std::move(path)) {}
  void on_epoch(Trainer& t, EpochInfo&) override { save(t); }
  void on_interrupt(Trainer& t) override { save(t); }

 private:
  void save(Trainer& t) {
    keep_as_previous(path_);
    t.save_checkpoint(path_);
  }
  std::filesystem::path path_;
};

}  // namespace retort

// Evaluation, metrics, progress and checkpoint observers.
#include "retort/observers.h"

#include <fstream>
#include <sstream>

#include "retort/error.h"
#include "retort/eval.h"
#include "retort/fs.h"

namespace retort {

// ---- evaluation ---------------------------------------------------------------

EvalObserver::EvalObserver(const ImageSet& test, torch::Tensor teacher_test_logits)
    : test_(test), teacher_logits_(std::move(teacher_test_logits)) {}

void EvalObserver::on_epoch(Trainer& t, EpochInfo& e) {
  torch::Tensor logits = predict_logits(t.model(), test_);
  last_accuracy_ = accuracy(logits, test_.labels);
  e.metrics["test_accuracy"] = last_accuracy_;
  if (teacher_logits_.defined()) e.metrics["agreement"] = agreement(logits, teacher_logits_);
}

// ---- metrics.jsonl --------------------------------------------------------------

MetricsObserver::MetricsObserver(std::filesystem::path path, int64_t every)
    : path_(std::move(path)), every_(std::max<int64_t>(1, every)) {}

MetricsObserver::~MetricsObserver() {
  if (file_) std::fclose(file_);
}

void MetricsObserver::on_start(Trainer& t) {
  // Keep only what happened up to the checkpoint we resume from.
  std::string kept;
  if (std::filesystem::exists(path_)) {
    std::istringstream in(read_text(path_));
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("step")) continue;  // a torn last line
      if (j["step"].get<int64_t>() <= t.step()) kept += line + "\n";
    }
  }
  atomic_write_text(path_, kept);
  file_ = std::fopen(path_.c_str(), "a");
  if (!file_) fail("cannot append to ", path_.string());
}

void MetricsObserver::write(const nlohmann::json& j) {
  if (!file_) return;
  std::string s = j.dump() + "\n";
  std::fwrite(s.data(), 1, s.size(), file_);
  std::fflush(file_);
}

void MetricsObserver::on_step(Trainer&, const StepInfo& s) {
  if (s.step % every_ != 0 && s.batch + 1 != s.batches_per_epoch) return;
  nlohmann::json j = {{"type", "step"}, {"epoch", s.epoch + 1}, {"step", s.step}, {"loss", s.loss}, {"lr", s.lr}};
  for (const auto& [name, v] : s.terms) j[name] = v;
  write(j);
}

void MetricsObserver::on_epoch(Trainer& t, EpochInfo& e) {
  nlohmann::json j = {{"type", "epoch"}, {"epoch", e.epoch + 1}, {"step", t.step()}, {"train_loss", e.train_loss},
                      {"seconds", e.seconds}};
  for (auto& [k, v] : e.metrics.items()) j[k] = v;
  write(j);
}

void MetricsObserver::on_interrupt(Trainer&) {
  if (file_) std::fflush(file_);
}

// ---- progress ---------------------------------------------------------------------

void ProgressObserver::on_step(Trainer& t, const StepInfo& s) {
  if (!bar_) {
    bar_ = std::make_unique<ProgressBar>(cat(label_, " epoch ", s.epoch + 1, "/", t.options().epochs),
                                         s.batches_per_epoch, s.targets != s.examples ? "tok" : "ex");
    examples_ = 0;
    loss_ema_ = s.loss;
  }
  examples_ += s.targets;  // tokens for text, examples for images
  loss_ema_ = 0.95 * loss_ema_ + 0.05 * s.loss;
  char status[64];
  std::snprintf(status, sizeof status, "loss %.4f", loss_ema_);
  bar_->update(s.batch + 1, examples_, status);
}

void ProgressObserver::on_epoch(Trainer&, EpochInfo& e) {
  if (!bar_) return;
  char status[96];
  if (e.metrics.contains("test_accuracy"))
    std::snprintf(status, sizeof status, "loss %.4f  test acc %.2f%%", e.train_loss,
                  100 * e.metrics["test_accuracy"].get<double>());
  else if (e.metrics.contains("val_bpb"))
    std::snprintf(status, sizeof status, "loss %.4f  val %.4f bits/byte", e.train_loss,
                  e.metrics["val_bpb"].get<double>());
  else
    std::snprintf(status, sizeof status, "loss %.4f", e.train_loss);
  bar_->finish(status);
  bar_.reset();
}

}  // namespace retort

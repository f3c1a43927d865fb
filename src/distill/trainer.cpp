// The training loop and its checkpoints.
#include "retort/trainer.h"

#include <torch/serialize.h>
#include <torch/torch.h>

#include <chrono>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/runtime.h"

namespace retort {

Trainer::Trainer(ModelPtr model, const BatchSource& train, Objective objective, std::shared_ptr<Teacher> teacher,
                 TrainOptions options)
    : model_(std::move(model)), train_(train), objective_(std::move(objective)), teacher_(std::move(teacher)),
      options_(std::move(options)) {
  if (options_.epochs < 1) fail("train.epochs must be >= 1, got ", options_.epochs);
  if (objective_.needs_teacher() && !teacher_)
    fail("the objective ", objective_.describe(), " needs a teacher, but none was given");
  optimizer_ = make_optimizer(options_, model_->parameters());
}

void Trainer::run() {
  for (auto& o : observers_) o->on_start(*this);
  const int64_t nb = train_.batches_per_epoch(), total = total_steps();
  int64_t steps_this_call = 0;
  const torch::Device device = model_device(*model_);
  while (epoch_ < options_.epochs) {
    auto epoch_start = std::chrono::steady_clock::now();
    model_->train();
    for (; batch_ < nb; ++batch_) {
      if (interrupt_requested() || (stop_after_ >= 0 && steps_this_call >= stop_after_)) {
        train_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
        for (auto& o : observers_) o->on_interrupt(*this);
        throw Interrupted(cat("stopped at epoch ", epoch_ + 1, ", step ", step_));
      }
      // Every random draw of this step (dropout) depends only on (seed, step).
      torch::manual_seed(mix_seed(options_.seed, 0x5eed, step_));
      Batch batch = train_.batch(epoch_, batch_);
      TeacherSignal signal;
      if (teacher_ && objective_.needs_teacher()) signal = teacher_->signal(batch);
      signal = signal.to(device);
      torch::Tensor logits = model_->forward(batch.x.to(device)).logits;  // (B, V) or (B, T, V)
      LossParts loss = objective_.compute(logits, teacher_ ? &signal : nullptr, batch.y.to(device));
      double loss_value = loss.total.item<double>();
      if (!std::isfinite(loss_value))
        fail("loss became ", loss_value, " at epoch ", epoch_ + 1, ", step ", step_,
             " (terms: ", [&] { std::string s; for (auto& [n, v] : loss.terms) s += cat(n, "=", v, " "); return s; }(),
             "); lower train.lr or check the data");
      double lr = scheduled_lr(options_, step_, total);
      for (auto& g : optimizer_->param_groups()) g.options().set_lr(lr);
      optimizer_->zero_grad();
      loss.total.backward();
      optimizer_->step();
      ++step_;
      ++steps_this_call;
      epoch_loss_sum_ += loss_value;
      ++epoch_loss_count_;
      StepInfo info{epoch_, batch_, step_, total, nb, batch.y.size(0), batch.y.numel(), loss_value, lr, loss.terms};
      for (auto& o : observers_) o->on_step(*this, info);
    }
    EpochInfo e;
    e.epoch = epoch_;
    e.train_loss = epoch_loss_count_ ? epoch_loss_sum_ / epoch_loss_count_ : 0;
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    train_seconds_ += e.seconds;
    ++epoch_;
    batch_ = 0;
    epoch_loss_sum_ = 0;
    epoch_loss_count_ = 0;
    e.metrics = nlohmann::json::object();
    for (auto& o : observers_) o->on_epoch(*this, e);
  }
  for (auto& o : observers_) o->on_end(*this);
}

// ---- checkpoints ------------------------------------------------------------

void Trainer::save_checkpoint(const std::filesystem::path& path) const {
  atomic_write(path, [&](const fs::path& tmp) {
    torch::serialize::OutputArchive archive, model_archive, optim_archive;
    model_->save(model_archive);
    optimizer_->save(optim_archive);
    archive.write("model", model_archive);
    archive.write("optimizer", optim_archive);
    archive.write("position", torch::tensor({step_, epoch_, batch_, epoch_loss_count_}, torch::kInt64));
    archive.write("accumulators", torch::tensor({epoch_loss_sum_, train_seconds_}, torch::kFloat64));
    archive.write("seed", torch::tensor({static_cast<int64_t>(options_.seed)}, torch::kInt64));
    archive.write("rng", torch::Tensor(at::detail::getDefaultCPUGenerator().get_state()));
    archive.save_to(tmp.string());
  });
}

void Trainer::load_checkpoint(const std::filesystem::path& path) {
  if (!fs::exists(path)) fail("checkpoint ", path.string(), " does not exist");
  try {
    torch::serialize::InputArchive archive, model_archive, optim_archive;
    archive.load_from(path.string());
    archive.read("model", model_archive);
    archive.read("optimizer", optim_archive);
    torch::Tensor pos, acc, seed, rng;
    archive.read("position", pos);
    archive.read("accumulators", acc);
    archive.read("seed", seed);
    archive.read("rng", rng);
    if (static_cast<uint64_t>(seed[0].item<int64_t>()) != options_.seed)
      fail("checkpoint ", path.string(), " was made with seed ", seed[0].item<int64_t>(), ", this run has seed ",
           options_.seed);
    model_->load(model_archive);
    optimizer_->load(optim_archive);
    step_ = pos[0].item<int64_t>();
    epoch_ = pos[1].item<int64_t>();
    batch_ = pos[2].item<int64_t>();
    epoch_loss_count_ = pos[3].item<int64_t>();
    epoch_loss_sum_ = acc[0].item<double>();
    train_seconds_ = acc[1].item<double>();
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    gen.set_state(rng);
  } catch (const c10::Error& e) {
    fail("checkpoint ", path.string(), " cannot be loaded (corrupt, or from a different model): ",
         e.what_without_backtrace());
  }
}

}  // namespace retort

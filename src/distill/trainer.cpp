// The training loop (its checkpoints: checkpoints.cpp).
#include "retort/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "retort/error.h"
#include "retort/fs.h"
#include "retort/runtime.h"

namespace retort {

namespace {

// One long-lived thread that runs one job at a time. A thread per job would be slower: each new
// thread builds its own OpenMP team and oneDNN kernels before its first convolution.
template <typename T>
class Worker {
 public:
  Worker() : thread_([this] { loop(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    ready_.notify_one();
    thread_.join();
  }
  std::future<T> submit(std::function<T()> job) {
    std::packaged_task<T()> task(std::move(job));
    std::future<T> f = task.get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(task));
    }
    ready_.notify_one();
    return f;
  }

 private:
  void loop() {
    for (;;) {
      std::packaged_task<T()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return done_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        task = std::move(jobs_.front());
        jobs_.pop_front();
      }
      task();
    }
  }
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::packaged_task<T()>> jobs_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

Trainer::Trainer(ModelPtr model, const BatchSource& train, Objective objective, std::shared_ptr<Teacher> teacher,
                 TrainOptions options)
    : model_(std::move(model)), train_(train), objective_(std::move(objective)), teacher_(std::move(teacher)),
      options_(std::move(options)) {
  if (options_.epochs < 1) fail("train.epochs must be >= 1, got ", options_.epochs);
  if (objective_.needs_teacher() && !teacher_)
    fail("the objective ", objective_.describe(), " needs a teacher, but none was given");
  optimizer_ = make_optimizer(options_, model_->parameters());
}

Trainer::Prepared Trainer::prepare(int64_t epoch, int64_t b) {
  Prepared p;
  p.batch = train_.batch(epoch, b);
  if (teacher_ && objective_.needs_teacher()) p.signal = teacher_->signal(p.batch);
  return p;
}

int64_t Trainer::comm_bytes_per_step() const { return sync_ ? sync_->bytes_per_step() : 0; }

void Trainer::run() {
  for (auto& o : observers_) o->on_start(*this);
  const int64_t nb = train_.batches_per_epoch(), total = total_steps();
  int64_t steps_this_call = 0;
  if (dist::active() && !sync_) {
    // Every rank starts from rank 0's weights and optimizer position (seeded alike or read
    // from one checkpoint, so this only guards against a rank that was not).
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> cpu;
    for (auto& t : model_state(*model_)) cpu.push_back(t.detach().to(torch::kCPU).contiguous());
    dist::broadcast(cpu, 0);
    auto state = model_state(*model_);
    for (size_t i = 0; i < state.size(); ++i) state[i].copy_(cpu[i]);
    sync_ = std::make_unique<GradientSync>(model_->parameters(), options_.bucket_bytes);
  }
  // The teacher's answer to the next batch, computed on another thread (overlap).
  const bool overlap = options_.overlap_teacher && teacher_ && objective_.needs_teacher();
  std::unique_ptr<Worker<Prepared>> worker;
  if (overlap) worker = std::make_unique<Worker<Prepared>>();
  std::future<Prepared> next;
  int64_t next_batch = -1;
  auto drain = [&] {
    if (next.valid()) next.wait();
  };
  bool stop_agreed = false;  // data parallelism: a rank asked to stop at the last step
  auto stop_here = [&](double epoch_seconds) {
    drain();
    train_seconds_ += epoch_seconds;
    for (auto& o : observers_) o->on_interrupt(*this);
  };
  while (epoch_ < options_.epochs) {
    auto epoch_start = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count(); };
    model_->train();
    for (; batch_ < nb; ++batch_) {
      const bool local_stop = interrupt_requested() || (stop_after_ >= 0 && steps_this_call >= stop_after_);
      if (sync_ ? stop_agreed : local_stop) {
        stop_here(elapsed());
        throw Interrupted(cat("stopped at epoch ", epoch_ + 1, ", step ", step_));
      }
      Prepared p;
      if (next.valid() && next_batch == batch_) {
        p = next.get();
      } else {
        drain();
        next = {};
        p = prepare(epoch_, batch_);
      }
      if (overlap && batch_ + 1 < nb) {
        next_batch = batch_ + 1;
        next = worker->submit([this, e = epoch_, b = batch_ + 1] { return prepare(e, b); });
      }
      try {
        train_step(p, total, local_stop, &stop_agreed);
      } catch (const PeerLost&) {
        stop_here(elapsed());  // rank 0 saves the last step every rank completed
        throw;
      }
      ++steps_this_call;
    }
    EpochInfo e;
    e.epoch = epoch_;
    e.train_loss = epoch_loss_count_ ? epoch_loss_sum_ / epoch_loss_count_ : 0;
    e.seconds = elapsed();
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

void Trainer::train_step(Prepared& p, int64_t total, bool local_stop, bool* stop_agreed) {
  const torch::Device device = model_device(*model_);
  const Batch& batch = p.batch;
  // Every random draw of this step (dropout) depends only on (seed, step) and the rank.
  torch::manual_seed(mix_seed(options_.seed, 0x5eed + uint64_t(dist::rank()), step_));
  TeacherSignal signal = p.signal.to(device);
  torch::Tensor logits;
  {
    AutocastScope autocast(options_.precision, device);
    logits = model_->forward(batch.x.to(device)).logits;  // (B, V) or (B, T, V)
  }
  if (logits.scalar_type() != torch::kFloat) logits = logits.to(torch::kFloat);
  LossParts loss = objective_.compute(logits, teacher_ ? &signal : nullptr, batch.y.to(device));
  double loss_value = loss.total.item<double>();
  std::vector<std::pair<std::string, double>> terms = loss.terms;
  if (sync_) {
    // One small all-reduce: the global batch's loss and terms (each rank's weighted by its
    // share of the targets), and whether any rank must stop after this step.
    torch::Tensor t = torch::zeros({int64_t(terms.size()) + 2}, torch::kFloat64);
    auto a = t.accessor<double, 1>();
    // A shard with no targets (all positions ignored) has a 0/0 loss: it adds nothing.
    const bool nothing = batch.share == 0;
    a[0] = nothing ? 0.0 : batch.share * loss_value;
    for (size_t i = 0; i < terms.size(); ++i) a[i + 1] = nothing ? 0.0 : batch.share * terms[i].second;
    a[terms.size() + 1] = local_stop ? 1 : 0;
    auto t0 = std::chrono::steady_clock::now();
    dist::all_reduce_sum(t);
    comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    loss_value = a[0];
    for (size_t i = 0; i < terms.size(); ++i) terms[i].second = a[i + 1];
    *stop_agreed = a[terms.size() + 1] > 0;
  }
  if (!std::isfinite(loss_value))
    fail("loss became ", loss_value, " at epoch ", epoch_ + 1, ", step ", step_,
         " (terms: ", [&] { std::string s; for (auto& [n, v] : terms) s += cat(n, "=", v, " "); return s; }(),
         "); lower train.lr or check the data");
  double lr = scheduled_lr(options_, step_, total);
  for (auto& g : optimizer_->param_groups()) g.options().set_lr(lr);
  optimizer_->zero_grad();
  if (sync_) {
    sync_->begin();
    if (batch.share > 0) (loss.total * batch.share).backward();  // summed over ranks: the global mean gradient
    auto t0 = std::chrono::steady_clock::now();
    sync_->finish();  // waits for the buckets backward did not hide
    comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } else {
    loss.total.backward();
  }
  optimizer_->step();
  ++step_;
  epoch_loss_sum_ += loss_value;
  ++epoch_loss_count_;
  StepInfo info{epoch_, batch_, step_, total, train_.batches_per_epoch(), batch.y.size(0), batch.y.numel(), loss_value, lr, terms};
  if (sync_) {  // progress counts the whole job's examples
    info.examples = int64_t(std::llround(info.examples / std::max(batch.share, 1e-12)));
    info.targets = int64_t(std::llround(info.targets / std::max(batch.share, 1e-12)));
  }
  for (auto& o : observers_) o->on_step(*this, info);
}

}  // namespace retort

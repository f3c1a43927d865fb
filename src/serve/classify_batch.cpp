// One forward pass for concurrent classify calls (classify_batch.h).
#include "serve/classify_batch.h"

#include <torch/torch.h>

#include <vector>

namespace retort::serve {

torch::Tensor ClassifyBatcher::probabilities(const torch::Tensor& x) {
  Call me{x};
  std::unique_lock<std::mutex> lock(mutex_);
  waiting_.push_back(&me);
  while (!me.done) {
    if (running_) {
      done_.wait(lock);
      continue;
    }
    // this call runs the next pass, for whoever is waiting (itself among them)
    running_ = true;
    std::vector<Call*> pass;
    int64_t inputs = 0;
    while (!waiting_.empty() && (pass.empty() || inputs + waiting_.front()->x.size(0) <= cap_)) {
      inputs += waiting_.front()->x.size(0);
      pass.push_back(waiting_.front());
      waiting_.pop_front();
    }
    lock.unlock();
    try {
      torch::NoGradGuard no_grad;
      std::vector<torch::Tensor> xs;
      for (Call* c : pass) xs.push_back(c->x);
      torch::Tensor all = pass.size() == 1 ? xs[0] : torch::cat(xs);  // (sum N, C, H, W)
      torch::Tensor p = torch::softmax(model_.forward(all.to(model_device(model_))).logits.to(torch::kCPU, torch::kFloat32), -1);
      int64_t at = 0;
      for (Call* c : pass) {
        c->probs = p.narrow(0, at, c->x.size(0)).contiguous();
        at += c->x.size(0);
      }
    } catch (...) {
      for (Call* c : pass) c->error = std::current_exception();
    }
    lock.lock();
    running_ = false;
    for (Call* c : pass) c->done = true;
    done_.notify_all();
  }
  lock.unlock();
  if (me.error) std::rethrow_exception(me.error);
  return me.probs;
}

}  // namespace retort::serve

// Continuous batching of generation (batcher.h): lanes that each own a KV cache of rows and step
// them together; requests join between steps and leave when finished.
#include "serve/batcher.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "models/gpt.h"
#include "retort/error.h"

namespace retort::serve {

namespace {

// How long a batch waits for streaming requests to take their last pieces before stepping
// without them (they sit the step out; a slow client never holds the batch longer).
constexpr std::chrono::milliseconds kDeliveryWait{2};

}  // namespace

// One batch: its thread, its cache and the requests in it. Rows [0, rows) of the cache are live;
// row r belongs to owner[r] = (job, index of the choice).
struct GenerationBatcher::Lane {
  KvCache cache;
  int64_t rows = 0;
  std::vector<std::shared_ptr<GenerationJob>> jobs;
  std::vector<std::pair<GenerationJob*, size_t>> owner;
  std::thread thread;
};

GenerationBatcher::GenerationBatcher(const ServedModel& m, GptImpl& model, BatchingOptions o) : m_(m), model_(model), o_(o) {
  if (o_.max_batch < 1 || o_.batches < 1)
    fail("serve: --max-batch and --workers must be >= 1, got ", o_.max_batch, " and ", o_.batches);
  for (int64_t i = 0; i < o_.batches; ++i) lanes_.push_back(std::make_unique<Lane>());
  for (auto& lane : lanes_) lane->thread = std::thread([this, l = lane.get()] { step_loop(*l); });
}

GenerationBatcher::~GenerationBatcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  for (auto& lane : lanes_)
    if (lane->thread.joinable()) lane->thread.join();
}

void GenerationBatcher::run(const std::shared_ptr<GenerationJob>& job, const TokenSink& sink) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_) fail("serve: the server is stopping");
  pending_.push_back(job);
  work_.notify_all();
  bool gone = false;
  std::exception_ptr sink_error;
  for (;;) {
    job->wake.wait(lock, [&] { return job->done || !job->outbox.empty(); });
    std::vector<StreamPiece> pieces;
    pieces.swap(job->outbox);
    const bool done = job->done;
    if (!pieces.empty()) {
      lock.unlock();
      if (!gone) try {
          gone = !deliver(pieces, sink);
        } catch (...) {
          sink_error = std::current_exception();
          gone = true;
        }
      lock.lock();
      job->cancelled |= gone;
      job->delivered = true;
      work_.notify_all();
    }
    if (done) break;
  }
  lock.unlock();
  if (job->error) std::rethrow_exception(job->error);
  if (sink_error) std::rethrow_exception(sink_error);
}

Engine::BatchStats GenerationBatcher::stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

bool GenerationBatcher::take_pending(Lane& lane) {
  bool took = false;
  while (!pending_.empty()) {
    GenerationJob& job = *pending_.front();
    const int64_t n = rows_of(job);
    if (lane.rows > 0 && lane.rows + n > o_.max_batch) break;  // first come, first served
    // leave it to a lane with fewer rows that has room (an idle lane wakes for it)
    bool lighter = false;
    for (const auto& other : lanes_)
      lighter |= other.get() != &lane && other->rows < lane.rows && (other->rows == 0 || other->rows + n <= o_.max_batch);
    if (lighter) break;

    const GptOptions& go = model_.options();
    const int64_t need = lane.rows + n;
    if (lane.cache.k.empty() || lane.cache.k[0].size(0) < need) {  // (re)allocate, keeping the live rows
      const int64_t capacity = std::max(need, o_.max_batch);
      const torch::TensorOptions like = job.prompt_k[0].options();
      for (int64_t i = 0; i < go.n_layers(); ++i) {
        torch::Tensor k = torch::zeros({capacity, go.n_kv_heads(), go.max_seq_len(), model_.head_dim()}, like);
        torch::Tensor v = torch::zeros_like(k);
        if (lane.rows > 0) {
          k.narrow(0, 0, lane.rows).copy_(lane.cache.k[size_t(i)].narrow(0, 0, lane.rows));
          v.narrow(0, 0, lane.rows).copy_(lane.cache.v[size_t(i)].narrow(0, 0, lane.rows));
        }
        if (lane.cache.k.size() <= size_t(i)) lane.cache.k.push_back(k), lane.cache.v.push_back(v);
        else lane.cache.k[size_t(i)] = k, lane.cache.v[size_t(i)] = v;
      }
      lane.owner.resize(size_t(capacity));
    }
    for (int64_t c = 0; c < n; ++c) {
      const int64_t row = lane.rows++;
      for (size_t i = 0; i < lane.cache.k.size(); ++i) {
        lane.cache.k[i][row].copy_(job.prompt_k[i][0]);
        lane.cache.v[i][row].copy_(job.prompt_v[i][0]);
      }
      lane.owner[size_t(row)] = {&job, size_t(c)};
      job.slots.push_back(row);
    }
    job.prompt_k.clear();
    job.prompt_v.clear();
    lane.jobs.push_back(pending_.front());
    pending_.pop_front();
    took = true;
  }
  return took;
}

void GenerationBatcher::retire(Lane& lane, GenerationJob& job) {
  std::vector<int64_t> slots = job.slots;
  std::sort(slots.rbegin(), slots.rend());  // from the end, so no row of the job moves into a freed one
  for (int64_t s : slots) {
    const int64_t last = --lane.rows;
    if (s == last) continue;
    for (size_t i = 0; i < lane.cache.k.size(); ++i) {  // the last live row fills the hole
      lane.cache.k[i][s].copy_(lane.cache.k[i][last]);
      lane.cache.v[i][s].copy_(lane.cache.v[i][last]);
    }
    auto [moved, index] = lane.owner[size_t(last)];
    lane.owner[size_t(s)] = {moved, index};
    moved->slots[index] = s;
  }
  job.slots.clear();
  lane.jobs.erase(std::find_if(lane.jobs.begin(), lane.jobs.end(), [&](const auto& j) { return j.get() == &job; }));
  job.done = true;
  job.wake.notify_all();
}

void GenerationBatcher::step_loop(Lane& lane) {
  torch::NoGradGuard no_grad;
  struct Outcome {
    std::shared_ptr<GenerationJob> job;
    std::vector<StreamPiece> pieces;
    bool more = true;
    std::exception_ptr error;
  };
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    for (size_t j = lane.jobs.size(); j-- > 0;)
      if (lane.jobs[j]->cancelled) retire(lane, *lane.jobs[j]);
    take_pending(lane);
    if (lane.jobs.empty()) {
      if (stopping_ && pending_.empty()) return;
      // a request with more choices than max_batch grew the cache: give that memory back
      if (!lane.cache.k.empty() && lane.cache.k[0].size(0) > o_.max_batch) lane.cache.clear(), lane.owner.clear();
      work_.wait(lock);
      continue;
    }
    auto waiting = [&] {
      for (const auto& j : lane.jobs)
        if (!j->delivered && !j->cancelled) return true;
      return false;
    };
    if (waiting()) work_.wait_for(lock, kDeliveryWait, [&] { return !waiting(); });
    bool any_ready = false, any_cancelled = false;
    for (const auto& j : lane.jobs) {
      any_ready |= j->delivered && !j->cancelled;
      any_cancelled |= j->cancelled;
    }
    if (!any_ready) {
      // every request waits for its client: nothing to step until one is back, leaves or a new one
      // comes (what happened during the wait above is seen here: a new request, a client gone)
      if (pending_.empty() && !any_cancelled) work_.wait(lock);
      continue;
    }

    // the step's inputs: each row's newest token at its position; requests whose client has not
    // taken the last pieces yet are recomputed unchanged and sit the step out
    const int64_t B = lane.rows;
    torch::Tensor ids = torch::empty({B}, torch::kInt64), pos = torch::empty({B}, torch::kInt64);
    int64_t* id_at = ids.data_ptr<int64_t>();
    int64_t* pos_at = pos.data_ptr<int64_t>();
    std::vector<std::shared_ptr<GenerationJob>> ready;
    for (const auto& j : lane.jobs) {
      const int64_t L = j->seq.size(1);
      auto seq = j->seq.accessor<int64_t, 2>();
      for (size_t c = 0; c < j->slots.size(); ++c) {
        id_at[j->slots[c]] = seq[int64_t(c)][L - 1];
        pos_at[j->slots[c]] = L - 1;
      }
      if (j->delivered && !j->cancelled) ready.push_back(j);
    }
    std::vector<std::shared_ptr<GenerationJob>> all = lane.jobs;
    ++stats_.steps;
    stats_.rows += B;
    stats_.largest = std::max(stats_.largest, B);
    lock.unlock();

    std::vector<Outcome> outcomes;
    try {
      torch::Tensor logits = model_.forward_rows(ids, pos, lane.cache);  // (B, V)
      for (const auto& j : ready) {
        Outcome o{j};
        try {
          torch::Tensor l = logits.index_select(0, torch::tensor(j->slots, torch::kInt64).to(logits.device()));  // (n, V)
          l = hooked_logits(l, j->sampling, j->seq);
          torch::Tensor next = sample_next(l, j->sampling, j->generator, j->seq).to(torch::kCPU);  // (n)
          j->seq = torch::cat({j->seq, next.unsqueeze(1)}, 1);
          o.more = j->writer.consume(l, next, j->streaming ? &o.pieces : nullptr);
        } catch (...) {  // this request alone fails
          o.error = std::current_exception();
          o.more = false;
        }
        outcomes.push_back(std::move(o));
      }
    } catch (...) {  // the batch's forward pass failed: every request in it gets the error
      outcomes.clear();
      for (const auto& j : all) outcomes.push_back({j, {}, false, std::current_exception()});
    }

    lock.lock();
    for (Outcome& o : outcomes) {
      GenerationJob& j = *o.job;
      if (!o.pieces.empty()) {
        for (StreamPiece& p : o.pieces) j.outbox.push_back(std::move(p));
        j.delivered = false;
      }
      if (o.error) j.error = o.error;
      if (!o.more) retire(lane, j);
      else if (!j.outbox.empty()) j.wake.notify_all();
    }
  }
}

}  // namespace retort::serve

// The intel worker of `retort serve` (retort/intel_worker.h): publish and pull on their intervals.
#include "retort/intel_worker.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "retort/error.h"
#include "retort/stix_publish.h"
#include "retort/taxii_client.h"

namespace retort {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

IntelWorker::IntelWorker(const std::filesystem::path& db, const IntelOptions& o,
                         std::function<void()> rules_changed)
    : db_(std::make_shared<GuardDb>(db)),
      store_(std::make_shared<IntelStore>(db_)),
      o_(o),
      rules_changed_(std::move(rules_changed)) {}

IntelWorker::~IntelWorker() { stop(); }

void IntelWorker::start() {
  if (thread_.joinable() || (!o_.taxii && !o_.pull)) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = false;
  }
  halt_->store(false);
  thread_ = std::thread([this] {
    using clock = std::chrono::steady_clock;
    auto after = [](double s) {
      return clock::now() +
             std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
    };
    clock::time_point next_publish = clock::now(), next_pull = clock::now();
    while (!stopping()) {
      if (o_.taxii && clock::now() >= next_publish) {
        publish_now();
        next_publish = after(std::max(0.05, o_.publish_interval));
      }
      if (o_.pull && clock::now() >= next_pull && !stopping()) {
        pull_now();
        next_pull = after(std::max(0.05, o_.pull_interval));
      }
      clock::time_point wake = o_.taxii ? next_publish : next_pull;
      if (o_.taxii && o_.pull) wake = std::min(next_publish, next_pull);
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait_until(lock, wake, [this] { return stop_; });
    }
  });
}

void IntelWorker::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  halt_->store(true);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool IntelWorker::stopping() {
  std::lock_guard<std::mutex> lock(mutex_);
  return stop_;
}

void IntelWorker::publish_now() {
  try {
    publish(*store_, o_, now_seconds());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "intel: publishing failed (retrying in %g s): %s\n", o_.publish_interval,
                 e.what());
  }
}

void IntelWorker::pull_now() {
  std::vector<IntelStore::Partner> partners;
  try {
    partners = store_->partners();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "intel: cannot read the partners: %s\n", e.what());
    return;
  }
  for (const IntelStore::Partner& p : partners) {
    if (stopping()) return;
    TaxiiPeer peer;
    peer.name = p.name;
    peer.url = p.url;
    peer.collection = p.collection;
    peer.token = p.token;
    peer.timeout = 10;
    peer.stop = halt_;
    try {
      const PullResult r = taxii_pull(*store_, peer, o_);
      if (r.rules > 0 && rules_changed_) rules_changed_();
      if (r.stored > 0 || r.rejected > 0 || r.rules > 0)
        std::fprintf(stderr,
                     "intel: pulled from %s: %lld new objects, %lld rejected, %lld rules written "
                     "(cursor %s)\n",
                     p.name.c_str(), static_cast<long long>(r.stored),
                     static_cast<long long>(r.rejected), static_cast<long long>(r.rules),
                     r.cursor.c_str());
      if (failing_.erase(p.name))
        std::fprintf(stderr, "intel: pulls from %s work again\n", p.name.c_str());
    } catch (const std::exception& e) {
      // Once per distinct error: a partner that is down is not reported every pull_interval.
      std::string& last = failing_[p.name];
      if (last != e.what())
        std::fprintf(stderr, "intel: pull from %s failed (retrying every %g s; said once): %s\n",
                     p.name.c_str(), o_.pull_interval, e.what());
      last = e.what();
    }
  }
}

}  // namespace retort

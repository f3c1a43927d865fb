// The intel worker of `retort serve` (DESIGN.md, "intel"): a thread, started when intel.taxii or
// intel.pull is on, that every intel.publish_interval seconds republishes what the guard found
// (publish(), retort/stix_publish.h) and every intel.pull_interval seconds pulls every partner
// of `retort intel partner add` (taxii_pull, retort/taxii_client.h). Errors are printed, never
// fatal; stop() returns within one HTTP timeout at most (pulls check it between partners).
// No torch.
#pragma once
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "retort/intel.h"

namespace retort {

class IntelWorker {
 public:
  // `db`: the guard database (the worker opens its own connection). `rules_changed` is called on
  // the worker's thread after a pull wrote rules, before the pull's line is printed.
  IntelWorker(const std::filesystem::path& db, const IntelOptions& o,
              std::function<void()> rules_changed = {});
  ~IntelWorker();
  IntelWorker(const IntelWorker&) = delete;
  IntelWorker& operator=(const IntelWorker&) = delete;

  void start();
  void stop();

  // One round each, on the caller's thread (the thread calls them when due).
  void publish_now();
  void pull_now();  // every partner; returns when all were tried

 private:
  bool stopping();
  std::shared_ptr<GuardDb> db_;
  std::shared_ptr<IntelStore> store_;
  IntelOptions o_;
  std::function<void()> rules_changed_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::shared_ptr<std::atomic<bool>> halt_ =
      std::make_shared<std::atomic<bool>>(false);  // pulls stop between pages
  std::map<std::string, std::string>
      failing_;  // partner -> its last error (printed once, until it recovers)
  std::thread thread_;
};

}  // namespace retort

// Group commit of audit rows (serve-private): rows that arrive while a commit runs go together in
// the next one, one transaction for all of them. No thread of its own: the first caller to find
// no commit running commits for everyone waiting. append() returns once its row is committed, so
// each answer still leaves after its row (a kill -9 loses no answered row); a failed group is
// retried row by row, so one row's error is its own.
#pragma once
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>

#include "retort/guard.h"

namespace retort::serve {

class AuditGroup {
 public:
  explicit AuditGroup(AuditLog& log) : log_(log) {}
  void append(const AuditRow& row);  // throws what writing this row threw

 private:
  struct Waiting {
    const AuditRow& row;
    std::exception_ptr error;
    bool done = false;
  };
  AuditLog& log_;
  std::mutex mutex_;
  std::condition_variable done_;
  std::deque<Waiting*> waiting_;
  bool committing_ = false;
};

}  // namespace retort::serve

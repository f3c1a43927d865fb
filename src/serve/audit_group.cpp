// Group commit of audit rows (audit_group.h).
#include "serve/audit_group.h"

#include <vector>

namespace retort::serve {

void AuditGroup::append(const AuditRow& row) {
  Waiting me{row};
  std::unique_lock<std::mutex> lock(mutex_);
  waiting_.push_back(&me);
  while (!me.done) {
    if (committing_) {
      done_.wait(lock);
      continue;
    }
    committing_ = true;  // this caller commits everyone waiting, itself among them
    std::vector<Waiting*> group(waiting_.begin(), waiting_.end());
    waiting_.clear();
    lock.unlock();
    std::vector<AuditRow> rows;
    rows.reserve(group.size());
    for (Waiting* w : group) rows.push_back(w->row);
    try {
      log_.append(rows);
    } catch (...) {
      for (Waiting* w : group) try {  // each row alone: an error is that row's
          log_.append(w->row);
        } catch (...) {
          w->error = std::current_exception();
        }
    }
    lock.lock();
    committing_ = false;
    for (Waiting* w : group) w->done = true;
    done_.notify_all();
  }
  lock.unlock();
  if (me.error) std::rethrow_exception(me.error);
}

}  // namespace retort::serve

// ProgressEvent: a generation counter that reclaim waits on, bounded.
#include "reclaim/progress_event.h"

namespace reclaimfs::reclaim {

uint64_t ProgressEvent::Generation() const {
  std::lock_guard<std::mutex> l(mu_);
  return generation_;
}

void ProgressEvent::Signal() {
  bool notify;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++generation_;
    notify = waiters_ > 0;
  }
  // IO completions signal often; skip the syscall when nobody waits.
  if (notify) cv_.notify_all();
}

bool ProgressEvent::WaitFor(uint64_t seen, std::chrono::microseconds timeout) {
  std::unique_lock<std::mutex> l(mu_);
  if (generation_ != seen) return true;
  ++waiters_;
  const bool progressed =
      cv_.wait_for(l, timeout, [&] { return generation_ != seen; });
  --waiters_;
  return progressed;
}

}  // namespace reclaimfs::reclaim

// Page lock and page wait queues. Waiters sleep on one of a fixed set of
// hashed condition variables (like Linux's page_waitqueue) so a page costs no
// more than a word of state; kPageWaiters lets the waker skip the queue when
// nobody sleeps.
#include "fs/cache/page.h"

#include <condition_variable>
#include <functional>
#include <mutex>

namespace reclaimfs::fs {
namespace {

struct WaitQueue {
  std::mutex mu;
  std::condition_variable cv;
};

constexpr size_t kQueues = 64;

WaitQueue& QueueFor(const Page* p) {
  static WaitQueue queues[kQueues];
  return queues[std::hash<const void*>()(p) % kQueues];
}

}  // namespace

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool Page::TryLock() {
  return (flags_.fetch_or(kPageLocked, std::memory_order_acquire) & kPageLocked) == 0;
}

bool Page::Lock(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!TryLock()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !WaitClear(kPageLocked, left)) {
      return TryLock();
    }
  }
  return true;
}

void Page::Unlock() {
  uint32_t old = flags_.fetch_and(~kPageLocked, std::memory_order_release);
  if (old & kPageWaiters) WakeWaiters();
}

bool Page::WaitWriteback(std::chrono::milliseconds timeout) {
  if (!Test(kPageWriteback)) return true;
  return WaitClear(kPageWriteback, timeout);
}

void Page::EndWriteback() {
  uint32_t old = flags_.fetch_and(~kPageWriteback, std::memory_order_acq_rel);
  if (old & kPageWaiters) WakeWaiters();
}

bool Page::WaitClear(uint32_t mask, std::chrono::milliseconds timeout) {
  WaitQueue& q = QueueFor(this);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> l(q.mu);
  for (;;) {
    // Announce ourselves before the final check: a waker that clears the
    // bit after this point sees kPageWaiters and takes q.mu to notify.
    flags_.fetch_or(kPageWaiters, std::memory_order_acq_rel);
    if ((Flags() & mask) == 0) return true;
    if (q.cv.wait_until(l, deadline) == std::cv_status::timeout) {
      return (Flags() & mask) == 0;
    }
  }
}

void Page::WakeWaiters() {
  WaitQueue& q = QueueFor(this);
  {
    std::lock_guard<std::mutex> l(q.mu);
    flags_.fetch_and(~kPageWaiters, std::memory_order_acq_rel);
  }
  q.cv.notify_all();
}

}  // namespace reclaimfs::fs

// DirtyThrottle: proportional pauses for writers over the dirty limit.
#include "fs/dirty_throttle.h"

#include <algorithm>
#include <chrono>

namespace reclaimfs::fs {

namespace {

constexpr uint64_t kMinDelayUs = 1000;  // the scale of the curve at its midpoint
// A writer held above the hard limit keeps pausing, but not forever.
constexpr int64_t kMaxHoldUs = 30'000'000;

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

uint64_t DirtyThrottle::DelayMicros(uint64_t dirty, uint64_t limit) const {
  const uint64_t start = static_cast<uint64_t>(options_.dirty_ratio * limit);
  const uint64_t hard = std::max(start + cache_->page_size(), std::min(2 * start, start + (limit - std::min(limit, start)) / 2));
  const uint64_t max_us = uint64_t{options_.max_dirty_pause_ms} * 1000;
  if (dirty <= start) return 0;
  if (dirty >= hard) return max_us;
  const double d = double(kMinDelayUs) * double(dirty - start) / double(hard - dirty);
  return std::min<uint64_t>(max_us, static_cast<uint64_t>(d));
}

void DirtyThrottle::Balance() {
  reclaim::MemoryManager* mm = cache_->mm();
  const uint64_t ps = cache_->page_size();
  auto dirty_now = [&] { return (cache_->dirty_pages() + cache_->writeback_pages()) * ps; };
  const uint64_t limit = mm->budget().limit();
  uint64_t dirty = dirty_now();
  if (dirty > static_cast<uint64_t>(options_.dirty_background_ratio * limit)) writeback_->Kick();
  uint64_t delay = DelayMicros(dirty, limit);
  if (delay == 0) return;

  const uint64_t start = static_cast<uint64_t>(options_.dirty_ratio * limit);
  const uint64_t max_us = uint64_t{options_.max_dirty_pause_ms} * 1000;
  const int64_t t0 = NowUs();
  while (delay > 0) {
    int64_t due;
    {
      std::lock_guard<std::mutex> l(mu_);
      const int64_t now = NowUs();
      due = std::max(now, last_due_us_ + static_cast<int64_t>(delay));
      due = std::min(due, now + static_cast<int64_t>(max_us));
      last_due_us_ = due;
    }
    for (;;) {
      const uint64_t gen = mm->progress().Generation();
      // Writeback caught up: no reason to keep this writer waiting.
      if (dirty_now() <= start) break;
      const int64_t left = due - NowUs();
      if (left <= 0) break;
      mm->progress().WaitFor(gen, std::chrono::microseconds(left));
    }
    // Above the hard limit a writer keeps pausing until writeback brings
    // dirty memory down, so dirty pages can never fill the budget.
    dirty = dirty_now();
    const bool over_hard = DelayMicros(dirty, limit) >= max_us;
    delay = over_hard && NowUs() - t0 < kMaxHoldUs ? max_us : 0;
    if (delay) writeback_->Kick();
  }
  const uint64_t paused = static_cast<uint64_t>(NowUs() - t0);
  mm->stats().dirty_throttle_pauses.fetch_add(1, std::memory_order_relaxed);
  mm->stats().dirty_throttle_us.Record(paused);
  pauses_.fetch_add(1, std::memory_order_relaxed);
  paused_us_.fetch_add(paused, std::memory_order_relaxed);
}

}  // namespace reclaimfs::fs

// DirtyThrottle: proportional pauses for writers over the dirty limit.
#include "fs/cache/dirty_throttle.h"

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

DirtyThrottle::Limits DirtyThrottle::LimitsFor(uint64_t budget) const {
  Limits l;
  l.start = static_cast<uint64_t>(live_.dirty_ratio.load(std::memory_order_relaxed) * budget);
  // Halfway from start to the budget, at most twice start: the curve gets
  // steep well before dirty pages could crowd out everything else.
  const uint64_t rest = budget > l.start ? budget - l.start : 0;
  l.hard = std::max(l.start + cache_->page_size(), std::min(2 * l.start, l.start + rest / 2));
  return l;
}

uint64_t DirtyThrottle::DelayMicros(uint64_t dirty, uint64_t budget) const {
  const Limits l = LimitsFor(budget);
  const uint64_t max_us = uint64_t{options_.max_dirty_pause_ms} * 1000;
  if (dirty <= l.start) return 0;
  if (dirty >= l.hard) return max_us;
  const double d = double(kMinDelayUs) * double(dirty - l.start) / double(l.hard - dirty);
  return std::min<uint64_t>(max_us, static_cast<uint64_t>(d));
}

void DirtyThrottle::Balance() {
  reclaim::MemoryManager* mm = cache_->mm();
  const uint64_t ps = cache_->page_size();
  // Pages under writeback hold memory too (Linux counts them as well).
  auto dirty_now = [&] { return (cache_->dirty_pages() + cache_->writeback_pages()) * ps; };
  const uint64_t budget = mm->budget().limit();
  if (dirty_now() > static_cast<uint64_t>(live_.dirty_background_ratio.load() * budget)) writeback_->Kick();
  uint64_t delay = DelayMicros(dirty_now(), budget);
  if (delay == 0) return;

  const Limits lim = LimitsFor(budget);
  const uint64_t max_us = uint64_t{options_.max_dirty_pause_ms} * 1000;
  const int64_t t0 = NowUs();
  bool holding = false;  // above the hard limit: wait until back under it
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
      // Woken by writeback progress: stop once it has caught up.
      const uint64_t dirty = dirty_now();
      if (dirty <= lim.start || (holding && dirty < lim.hard)) break;
      const int64_t left = due - NowUs();
      if (left <= 0) break;
      mm->progress().WaitFor(gen, std::chrono::microseconds(left));
    }
    // Above the hard limit a writer keeps pausing (each pause bounded, the
    // whole hold bounded too) so dirty pages can never fill the budget.
    holding = dirty_now() >= lim.hard && NowUs() - t0 < kMaxHoldUs;
    delay = holding ? max_us : 0;
    if (holding) writeback_->Kick();
  }
  const uint64_t paused = static_cast<uint64_t>(NowUs() - t0);
  mm->stats().dirty_throttle_pauses.fetch_add(1, std::memory_order_relaxed);
  mm->stats().dirty_throttle_us.Record(paused);
  pauses_.fetch_add(1, std::memory_order_relaxed);
  paused_us_.fetch_add(paused, std::memory_order_relaxed);
}

}  // namespace reclaimfs::fs

// Dirty throttling: writers that push dirty memory over the dirty limit are
// paused in proportion, never made to write (ZFS's write throttle shape).
//
//   delay = min_delay * (dirty - start) / (hard - dirty), capped
//
// where start = dirty_ratio * budget and hard lies between start and the
// budget. Delays are spaced from when the previous paused writer was due, so
// the total dirtying rate does not grow with the number of writers. A pause
// ends early once writeback brings dirty memory back under start (the
// progress event), and every pause is recorded in the reclaim stats.
//
// Called by writers (request threads) after a write. Balance sleeps at most
// max_dirty_pause_ms per pause; above the hard limit a writer keeps pausing
// for at most 30 s in all. Holds its own mutex only to space the pauses.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "fs/cache/data_tunables.h"
#include "fs/cache/file_data.h"
#include "fs/cache/page_cache.h"
#include "fs/cache/writeback.h"

namespace reclaimfs::fs {

class DirtyThrottle {
 public:
  DirtyThrottle(PageCache* cache, Writeback* writeback, const FileDataOptions& options)
      : cache_(cache), writeback_(writeback), options_(options), live_(options) {}

  // Called after a write dirtied pages, with no FileData locks held.
  void Balance();
  // Live tuning of the dirty ratios.
  void SetTunables(const FileDataOptions& options) { live_.Store(options); }

  // The delay for `dirty` bytes, in microseconds (0: no pause). Exposed for tests.
  uint64_t DelayMicros(uint64_t dirty, uint64_t budget) const;

  uint64_t pauses() const { return pauses_.load(std::memory_order_relaxed); }
  uint64_t paused_us() const { return paused_us_.load(std::memory_order_relaxed); }

 private:
  struct Limits {
    uint64_t start = 0;  // dirty_ratio of the budget: pauses begin
    uint64_t hard = 0;   // pauses are maximal and repeat until below
  };
  Limits LimitsFor(uint64_t budget) const;

  PageCache* const cache_;
  Writeback* const writeback_;
  const FileDataOptions options_;
  DataTunables live_;

  std::mutex mu_;
  int64_t last_due_us_ = 0;  // when the previous paused writer was due
  std::atomic<uint64_t> pauses_{0};
  std::atomic<uint64_t> paused_us_{0};
};

}  // namespace reclaimfs::fs

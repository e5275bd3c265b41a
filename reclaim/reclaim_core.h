// The reclaim core: scans every registered shrinker in proportion to its size
// and seeks, at falling priority, and aggregates backoff hints into one
// bounded wait per full pass (never one wait per shrinker).
//
// Scan arithmetic follows mm/vmscan.c: at priority p a shrinker with F
// freeable objects is asked for (F >> p) * 4 / seeks, in batches of 128, with
// a minimum so small caches still feel pressure. What a direct reclaimer
// could not scan (scope forbade it, or it stopped early) is added to the
// shrinker's deferred count, capped at 2x freeable, and kswapd picks it up.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <memory>
#include <shared_mutex>
#include <vector>

#include "reclaim/memory_budget.h"
#include "reclaim/progress_event.h"
#include "reclaim/shrinker.h"
#include "reclaim/stats.h"

namespace reclaimfs::reclaim {

struct ReclaimOptions {
  uint64_t batch = 128;
  uint64_t min_scan = 32;  // floor per shrinker per pass when it has objects
  // Bound of the single aggregated wait after a pass that freed too little.
  std::chrono::microseconds backoff_timeout{10'000};
  // Direct reclaim: non-blocking passes a single DirectReclaim() call may
  // make, at falling priority, before, if still short, it kicks writeback
  // and throttles once. 13 = a full sweep 12..0 (it stops as soon as the
  // target is met), as Linux's do_try_to_free_pages: throttling while clean
  // pages sit unscanned at a lower priority would stall for nothing.
  int direct_max_passes = 13;
  // Direct reclaim throttle after a failed attempt (waits on progress event).
  std::chrono::microseconds direct_throttle_timeout{2'000};
};

struct ReclaimPassResult {
  uint64_t scanned = 0;
  uint64_t freed = 0;         // objects
  uint64_t freed_bytes = 0;   // by budget delta
  bool backoff_requested = false;
  bool waited = false;        // the aggregated wait happened
  bool signalled = false;     // kswapd's pass freed memory and bumped the progress event
};

class ReclaimCore : public PressureHandler {
 public:
  ReclaimCore(MemoryBudget* budget, ProgressEvent* progress, ReclaimStats* stats,
              ReclaimOptions options = {});
  ~ReclaimCore() override;

  void Register(Shrinker* shrinker);
  // Blocks until no scan of this shrinker is running.
  void Unregister(Shrinker* shrinker);

  // Called by direct reclaim when it is still short: kicks the flushers.
  // Hooks may be (re)installed at any time; they must not call back into
  // the setters.
  void SetWritebackKicker(std::function<void()> kick);
  // Called by WakeKswapd (the Kswapd object installs itself).
  void SetKswapdWaker(std::function<void()> wake);

  // Reclaims until free budget >= target_free or priority runs out; one
  // aggregated bounded wait per pass when hints ask to back off.
  // Used by kswapd (who = kKswapd) and by tests.
  ReclaimPassResult Reclaim(Reclaimer who, uint64_t target_free);

  // One pass over all shrinkers at `priority`, no waiting, stopping early
  // once free budget reaches `target_free`. Exposed for tests.
  ReclaimPassResult ShrinkAll(Reclaimer who, int priority, uint32_t scope,
                              uint64_t target_free = UINT64_MAX);

  // PressureHandler
  void WakeKswapd() override;
  bool DirectReclaim(uint64_t bytes, int attempt) override;

  uint64_t Deferred(const Shrinker* shrinker) const;
  ReclaimStats* stats() { return stats_; }
  ProgressEvent* progress() { return progress_; }
  MemoryBudget* budget() { return budget_; }
  const ReclaimOptions& options() const { return options_; }

 private:
  struct Entry;
  uint64_t ScanOne(Entry& e, Reclaimer who, int priority, uint32_t scope,
                   uint64_t target_free, ReclaimPassResult* pass);
  // Objects to ask of a cache with `freeable` objects at `priority`.
  uint64_t ScanTarget(uint64_t freeable, int seeks, int priority) const;
  // Calls the writeback kicker, if any; counts the kick.
  bool KickWriteback();
  // Adds work for kswapd, keeping the total at most 2x freeable.
  void Defer(Entry& e, uint64_t work, uint64_t freeable);

  MemoryBudget* budget_;
  ProgressEvent* progress_;
  ReclaimStats* stats_;
  ReclaimOptions options_;
  mutable std::shared_mutex mu_;  // guards entries_; scans hold it shared
  std::vector<std::unique_ptr<Entry>> entries_;
  mutable std::shared_mutex hooks_mu_;  // guards the two hooks below
  std::function<void()> writeback_kicker_;
  std::function<void()> kswapd_waker_;
};

}  // namespace reclaimfs::reclaim

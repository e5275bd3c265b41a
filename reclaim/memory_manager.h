// One object that wires the memory subsystem together: budget, stats,
// progress event, reclaim core and kswapd. Caches get a MemoryManager* and
// register their shrinkers with core().
#pragma once

#include <memory>
#include <string>

#include "reclaim/kswapd.h"
#include "reclaim/memory_budget.h"
#include "reclaim/progress_event.h"
#include "reclaim/reclaim_core.h"
#include "reclaim/stats.h"

namespace reclaimfs::reclaim {

struct MemoryOptions {
  uint64_t budget_bytes = 64ull << 20;
  WatermarkFractions watermarks;
  ReclaimOptions reclaim;
  bool start_kswapd = true;
};

class MemoryManager {
 public:
  explicit MemoryManager(MemoryOptions options);
  ~MemoryManager();  // stops kswapd

  MemoryBudget& budget() { return budget_; }
  ReclaimCore& core() { return core_; }
  ProgressEvent& progress() { return progress_; }
  ReclaimStats& stats() { return stats_; }
  Kswapd& kswapd() { return kswapd_; }

  // Budget (limit, used, free, peak, watermarks) followed by Stats::Format(),
  // one "name value" a line.
  std::string StatsText() const;

 private:
  ReclaimStats stats_;
  ProgressEvent progress_;
  MemoryBudget budget_;
  ReclaimCore core_;
  Kswapd kswapd_;
};

}  // namespace reclaimfs::reclaim

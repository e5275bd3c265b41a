// The inode-cache shrinker registered with the reclaim core. It walks idle
// bodies in LRU order and evicts each without blocking: a body whose record
// is dirty, or whose pages FileData cannot drop right now, is handed to the
// eviction retry queue and skipped. Nothing here waits for IO or for a lock
// held across IO (io locks are only try_locked). When the cache holds more
// than its share of the budget it also asks the kernel, through the dentry
// invalidator's worker, to drop dentries of the nodes it evicted, so the
// kernel forgets them and their stubs can go too. Called by the reclaim
// core: kswapd and any thread in direct reclaim.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "fs/cache/dentry_invalidator.h"
#include "fs/cache/evict_queue.h"
#include "fs/cache/file_data.h"
#include "fs/cache/inode_cache.h"
#include "reclaim/memory_budget.h"
#include "reclaim/shrinker.h"

namespace reclaimfs::fs {

class InodeShrinker : public reclaim::Shrinker {
 public:
  InodeShrinker(InodeCache* cache, FileData* data, EvictQueue* queue, DentryInvalidator* invalidator,
                reclaim::MemoryBudget* budget, double share_fraction);

  std::string Name() const override { return "inode_cache"; }
  uint64_t Count() override;
  reclaim::ShrinkResult Scan(const reclaim::ShrinkControl& sc) override;

  // Bytes the cache may hold before the shrinker bites (below it only a
  // desperate pass takes bodies).
  uint64_t share_bytes() const;
  // drop_caches: evicts idle bodies that are clean with clean pages, the
  // share aside; dirty ones stay (nothing is queued for writeback). Never
  // blocks. Returns bodies freed.
  uint64_t DropClean();

  // Live tuning of the share (a fraction of the budget).
  void set_share_fraction(double f) { share_fraction_.store(f, std::memory_order_relaxed); }

  uint64_t scanned() const { return scanned_.load(std::memory_order_relaxed); }
  uint64_t freed() const { return freed_.load(std::memory_order_relaxed); }
  uint64_t deferred() const { return deferred_.load(std::memory_order_relaxed); }
  uint64_t busy() const { return busy_.load(std::memory_order_relaxed); }

 private:
  // Evicts up to nr idle bodies; busy or dirty ones go to the retry queue
  // when `defer`, else are skipped.
  reclaim::ShrinkResult EvictIdle(uint64_t nr, bool over_share, bool defer);

  // Priority at or below which bodies are taken even under the share.
  static constexpr int kDesperatePriority = 2;

  InodeCache* const cache_;
  FileData* const data_;
  EvictQueue* const queue_;
  DentryInvalidator* const invalidator_;
  reclaim::MemoryBudget* const budget_;
  std::atomic<double> share_fraction_;

  std::atomic<uint64_t> scanned_{0}, freed_{0}, deferred_{0}, busy_{0};
};

}  // namespace reclaimfs::fs

// PageCacheShrinker: Count and Scan over the page cache's LRU.
#include "fs/page_cache_shrinker.h"

#include <algorithm>

#include "fs/writeback.h"
#include "reclaim/scope.h"

namespace reclaimfs::fs {

namespace {
constexpr uint64_t kIsolateBatch = 32;
}  // namespace

uint64_t PageCacheShrinker::Count() { return cache_->LruPages(); }

reclaim::ShrinkResult PageCacheShrinker::Scan(const reclaim::ShrinkControl& sc) {
  reclaim::ShrinkResult res;
  // The caller may hold filesystem locks (or be a flusher): touching pages
  // could recurse into what it holds.
  if (sc.scope & reclaim::kScopeNoFs) return res;

  const uint64_t nr = std::max<uint64_t>(sc.nr_to_scan, 1);
  cache_->BalanceLists(nr);

  uint64_t busy = 0, dirty = 0, writeback = 0;
  uint64_t left = nr;
  while (left > 0) {
    IsolateResult r;
    cache_->IsolateForReclaim(std::min(left, kIsolateBatch), &r);
    if (r.scanned == 0) break;
    left -= std::min(left, r.scanned);
    res.scanned += r.scanned;
    busy += r.busy;
    dirty += r.dirty_seen;
    writeback += r.writeback;
    for (Page* p : r.clean) {
      if (cache_->TryFreeIsolated(p)) ++res.freed;
    }
    for (Page* p : r.dirty) {
      if (mode_ == ShrinkerMode::kBlocking) {
        writeback_->PageoutNow(p);  // the old design: write and wait, here
      } else {
        writeback_->QueuePageout(p);
      }
    }
  }

  PageCacheStats& st = cache_->stats();
  st.shrink_scanned.fetch_add(res.scanned, std::memory_order_relaxed);
  st.shrink_freed.fetch_add(res.freed, std::memory_order_relaxed);
  st.shrink_busy.fetch_add(busy, std::memory_order_relaxed);
  st.shrink_dirty.fetch_add(dirty, std::memory_order_relaxed);

  // Back off when what stands between reclaim and free pages is IO (dirty
  // pages queued for pageout, pages under writeback or being read): scanning
  // again before it completes only burns CPU.
  const uint64_t io_bound = dirty + writeback;
  if (res.scanned > 0 && res.freed == 0 && io_bound + busy > 0) {
    res.hint = reclaim::ShrinkHint::kBackoff;
  } else if (res.freed * 4 < res.scanned && io_bound * 2 >= res.scanned) {
    res.hint = reclaim::ShrinkHint::kBackoff;
  }
  return res;
}

}  // namespace reclaimfs::fs

// PageCacheShrinker: Count and Scan over the page cache's LRU.
#include "fs/cache/page_cache_shrinker.h"

#include <algorithm>

#include "fs/cache/writeback.h"
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

  uint64_t busy = 0, dirty = 0, writeback = 0, rotated = 0;
  uint64_t left = nr;
  while (left > 0) {
    IsolateResult r;
    // The blocking mode writes what it meets at once, as the old designs
    // did; the default leaves a first sighting to the flushers.
    cache_->IsolateForReclaim(std::min(left, kIsolateBatch), mode_ == ShrinkerMode::kBlocking, &r);
    if (r.scanned == 0) break;
    left -= std::min(left, r.scanned);
    res.scanned += r.scanned;
    busy += r.busy;
    rotated += r.referenced;
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
  st.shrink_rotated.fetch_add(rotated, std::memory_order_relaxed);

  // Back off when nothing could be freed because what stands between
  // reclaim and free pages is IO (dirty pages, pages under writeback or
  // being read): scanning again before it completes only burns CPU. A scan
  // that freed something is making progress, however many dirty pages it
  // also met (Linux throttles kswapd only when every page it took was
  // blocked on IO).
  if (res.scanned > 0 && res.freed == 0 && dirty + writeback + busy > 0) {
    res.hint = reclaim::ShrinkHint::kBackoff;
  }
  return res;
}

}  // namespace reclaimfs::fs

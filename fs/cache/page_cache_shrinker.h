// The page cache's shrinker. Non-blocking (the default): frees clean,
// unreferenced pages from the inactive tail with try-locks only, hands dirty
// pages to the flushers as pageout work (a reference, never the lock) and
// asks the reclaim core to back off when what it saw needs IO to finish.
// Blocking mode exists only to benchmark against the old design: it writes
// dirty pages itself and waits for the IO.
//
// Owns nothing (the pages are the PageCache's). Called by the reclaim core:
// kswapd and any thread in direct reclaim, possibly at once. In non-blocking
// mode Scan never waits for IO or for a lock held across it: page and file
// locks are try-locked, only leaf locks (LRU, pageout queue) are taken.
#pragma once

#include <string>

#include "fs/cache/file_data.h"
#include "fs/cache/page_cache.h"
#include "reclaim/shrinker.h"

namespace reclaimfs::fs {

class Writeback;

class PageCacheShrinker : public reclaim::Shrinker {
 public:
  PageCacheShrinker(PageCache* cache, Writeback* writeback, ShrinkerMode mode)
      : cache_(cache), writeback_(writeback), mode_(mode) {}

  std::string Name() const override { return "page_cache"; }
  uint64_t Count() override;
  reclaim::ShrinkResult Scan(const reclaim::ShrinkControl& sc) override;

 private:
  PageCache* const cache_;
  Writeback* const writeback_;
  const ShrinkerMode mode_;
};

}  // namespace reclaimfs::fs

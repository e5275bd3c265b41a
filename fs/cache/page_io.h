// Reading pages from the data file. The pages handed in are locked and not
// uptodate; holes and unwritten blocks are zero-filled without IO; mapped
// ones are read with one Submit, contiguous blocks as one vectored request.
// The completion (on the device's completion thread; it never blocks) marks
// each page uptodate or failed and unlocks it, so a reader waits for a page
// by locking it — the same wait for its own reads and for readahead.
//
// Called by readers (request threads, under the inode's io lock).
// SubmitPageReads only submits; ReadPageSync waits for its one read.
#pragma once

#include <cstdint>
#include <vector>

#include "fs/cache/extent_map.h"
#include "fs/cache/page_cache.h"
#include "storage/block_device.h"

namespace reclaimfs::fs {

struct PageRead {
  Page* page;               // locked, not uptodate
  ExtentMap::Mapping map;   // where its block is, looked up by the caller
};

// Starts reading `reads`. With drop_refs the completion also drops one
// reference per page (readahead: nobody waits for these pages).
void SubmitPageReads(storage::BlockDevice* dev, PageCache* cache, std::vector<PageRead> reads,
                     bool drop_refs);

// Fills one locked page synchronously (a failed or missing read retried by
// the reader, or read-modify-write). Leaves the page locked.
absl::Status ReadPageSync(storage::BlockDevice* dev, PageCache* cache, Page* p,
                          const ExtentMap::Mapping& map);

}  // namespace reclaimfs::fs

// The page cache: per-file page indexes and extent maps (FileState), the
// global two-list LRU (inactive/active with a referenced bit, after Linux's
// mark_page_accessed), page creation charged to the memory budget, and the
// dirty/writeback accounting the flushers and the throttle read.
//
// Lock order (outermost first):
//   FileState::wb_lock ->  page locks (ascending index within one file)
//   -> MetaStore commit lock (prepare callbacks) -> FileState::mu -> lru_mu_
//   -> Allocator's mutex.
// FileState::mu and lru_mu_ are leaf locks: never held across IO, page-lock
// waits or budget charges. Reclaim takes page locks and FileState::mu only
// with try-lock.
//
// Owns every Page and FileState and the LRU lists. Called by request threads
// (through FileData), the flushers, and reclaim (kswapd and any thread in
// direct reclaim, through PageCacheShrinker). FindOrCreate may enter bounded
// direct reclaim and EnsureExtents reads the metadata store, both with no
// lock held; everything else takes only leaf locks and never waits for IO.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fs/cache/extent_map.h"
#include "fs/cache/page.h"
#include "fs/cache/page_pool.h"
#include "reclaim/memory_manager.h"
#include "storage/meta_store.h"

namespace reclaimfs::fs {

// A lock with a bounded wait, held across IO by the file's flusher. (Not
// std::timed_mutex: its timed lock is invisible to thread sanitizers.)
class WritebackLock {
 public:
  bool LockFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> l(mu_);
    if (!cv_.wait_for(l, timeout, [&] { return !held_; })) return false;
    held_ = true;
    return true;
  }
  void Unlock() {
    {
      std::lock_guard<std::mutex> l(mu_);
      held_ = false;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
};

// Cached data state of one file.
struct FileState : std::enable_shared_from_this<FileState> {
  FileState(uint64_t ino, reclaim::MemoryBudget* budget) : ino(ino), extents(budget) {}

  const uint64_t ino;

  // Leaf lock: guards pages, extents and the readahead state.
  std::mutex mu;
  // index -> page (holds one reference). A B-tree, not std::map: a lookup
  // in a large file touches a few nodes instead of a cache miss per level,
  // and readers hold mu for that long.
  absl::btree_map<uint64_t, Page*> pages;
  ExtentMap extents;
  // Set once, under mu, after the extents are in; read without it.
  std::atomic<bool> extents_loaded{false};
  uint64_t ra_prev_end = UINT64_MAX;  // byte offset where the last read ended
  uint64_t ra_next = 0;               // first page index not yet read ahead

  std::atomic<uint64_t> nr_dirty{0};
  std::atomic<uint64_t> nr_writeback{0};
  std::atomic<uint64_t> nr_reserved{0};   // pages holding a reserved block
  // Blocks writeback has allocated for holes but not yet mapped: between the
  // allocation and the extent commit they are in neither the extent map nor
  // nr_reserved, and st_blocks must not dip while they are written. Changed
  // under `mu`, so a reader holding it sees extents + these consistently.
  std::atomic<uint64_t> nr_allocating{0};
  std::atomic<int64_t> dirtied_when_ms{0};  // when nr_dirty last left 0

  // Serialises writeback of this file so delayed allocation hands out
  // contiguous runs. Held across IO by flushers; reclaim never takes it.
  WritebackLock wb_lock;
  std::atomic<bool> wb_queued{false};   // a background/periodic job is queued
  // On PageCache's dirty list (guarded by its dirty_mu_). RemoveFile takes
  // it off, so the list never keeps a forgotten state (or its charge) alive.
  bool on_dirty_list = false;
  std::atomic<int> wb_error_streak{0};  // consecutive failed writebacks
};

struct PageCacheStats {
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> readahead_pages{0};
  std::atomic<uint64_t> readahead_skipped{0};  // no memory for readahead
  std::atomic<uint64_t> lock_timeouts{0};      // bounded page waits that expired
  std::atomic<uint64_t> writeback_waits{0};    // non-reclaim waits for writeback
  std::atomic<uint64_t> writeback_wait_timeouts{0};
  std::atomic<uint64_t> read_ios{0};
  std::atomic<uint64_t> shrink_scanned{0};
  std::atomic<uint64_t> shrink_freed{0};
  std::atomic<uint64_t> shrink_busy{0};
  std::atomic<uint64_t> shrink_rotated{0};
  std::atomic<uint64_t> shrink_dirty{0};
  std::atomic<uint64_t> shrink_deactivated{0};
};

// What one look at the inactive tail found (see IsolateForReclaim).
struct IsolateResult {
  std::vector<Page*> clean;  // isolated from the LRU, with a reference
  std::vector<Page*> dirty;  // kPagePageout newly set, with a reference
  uint64_t scanned = 0;
  uint64_t referenced = 0;  // dirty and recently used: kept, not paged out
  uint64_t busy = 0;        // locked, or referenced by others
  uint64_t writeback = 0;
  uint64_t dirty_seen = 0;  // including pages whose pageout is already queued
};

class PageCache {
 public:
  PageCache(reclaim::MemoryManager* mm, storage::MetaStore* meta, uint32_t page_size);
  ~PageCache();  // DropAll()
  // Frees every page and forgets every file; callers must be quiescent.
  void DropAll();

  uint32_t page_size() const { return page_size_; }
  // What one cached page costs the budget: its buffer and its descriptor.
  uint64_t page_charge() const { return page_size_ + sizeof(Page); }
  reclaim::MemoryManager* mm() const { return mm_; }
  // Gives wholly free buffer chunks back to the system.
  size_t TrimPool() { return pool_.Trim(); }
  // The same when more than `min_free` free buffers are resident.
  size_t TrimPoolIfSlack(size_t min_free) { return pool_.TrimIfSlack(min_free); }
  // Resident bytes of the page buffers: pages in use, free ones not yet trimmed.
  uint64_t pool_bytes() const { return pool_.resident_bytes(); }

  // File states.
  std::shared_ptr<FileState> GetFile(uint64_t ino);   // creates if absent
  std::shared_ptr<FileState> FindFile(uint64_t ino);  // nullptr if absent
  // Forgets the file's state if it is still `expected`.
  void RemoveFile(uint64_t ino, const FileState* expected);
  std::vector<std::shared_ptr<FileState>> Files();
  // The files with dirty pages, like the kernel's per-device dirty inode
  // list: the periodic flusher visits these instead of every cached file.
  // Files that became clean leave the list here; RemoveFile takes a
  // forgotten file off at once.
  std::vector<std::shared_ptr<FileState>> DirtyFiles();
  // Loads the extent map once (MetaStore read, no lock held).
  absl::Status EnsureExtents(FileState* fs);

  // Returns the page with a reference, or nullptr.
  Page* Find(FileState* fs, uint64_t index);
  // Pages of fs with index in [first, end), each with a reference, ascending.
  std::vector<Page*> FindRange(FileState* fs, uint64_t first, uint64_t end);
  // Finds or creates the page. A new page is charged first (Charge may run
  // direct reclaim: call with no locks held) and is returned *locked* with
  // *created = true. Either way the caller gets a reference.
  absl::StatusOr<Page*> FindOrCreate(FileState* fs, uint64_t index, bool* created);
  // Like FindOrCreate for a caller that already charged one page per page
  // it may create (one Charge for a whole read): uses that charge for a new
  // page, or releases it when the page exists. nullptr if out of memory.
  Page* InsertCharged(FileState* fs, uint64_t index, bool* created);
  // Creates a locked page for readahead if absent and if the budget has room
  // without reclaim (TryCharge); nullptr otherwise.
  Page* CreateForReadahead(FileState* fs, uint64_t index);
  // Drops a reference; the last one frees the page and uncharges it.
  void Put(Page* p);

  // Removes a locked, attached page from its file and the LRU and drops the
  // index's reference (the caller still holds its own).
  void Detach(Page* p);

  // Accounting; the page is locked (SetDirty/SetWriteback) or owned by the
  // writeback that set kPageWriteback (EndWriteback).
  void SetDirty(Page* p);
  void ClearDirty(Page* p);
  void SetWriteback(Page* p);
  void EndWriteback(Page* p);
  // Reservation bookkeeping of the page's delayed-allocation block.
  void SetReserved(Page* p);
  void ClearReserved(Page* p);  // does not unreserve in the allocator

  // mark_page_accessed: the first access sets referenced, a second one on
  // the inactive list promotes the page to the active list.
  void MarkAccessed(Page* p);

  // Reclaim side of the LRU.
  uint64_t LruPages() const;
  uint64_t ActivePages() const;
  uint64_t InactivePages() const;
  // Moves up to nr pages from the active tail to the inactive head while the
  // inactive list is the smaller one.
  void BalanceLists(uint64_t nr);
  // Looks at up to nr pages from the inactive tail and clears their
  // referenced bits: busy and writeback ones rotate; dirty ones rotate and,
  // when reclaim saw them dirty before and they were not used since, get
  // kPagePageout and a reference for pageout work; clean idle ones are
  // isolated. `eager_pageout` queues pageout at the first sighting (the
  // blocking mode's old behaviour).
  void IsolateForReclaim(uint64_t nr, bool eager_pageout, IsolateResult* out);
  // Frees an isolated clean page if it can be done without blocking; else
  // puts it back. Consumes the isolation reference either way.
  bool TryFreeIsolated(Page* p);
  // Puts an isolated page back on the LRU (if still attached) and drops the
  // caller's reference.
  void PutBack(Page* p);
  // drop_caches: frees every clean page nobody uses, from both lists, with
  // try-locks only (dirty, writeback and busy pages stay). Returns pages freed.
  uint64_t DropClean();

  uint64_t pages() const { return nr_pages_.load(std::memory_order_relaxed); }
  uint64_t dirty_pages() const { return nr_dirty_.load(std::memory_order_relaxed); }
  uint64_t writeback_pages() const { return nr_writeback_.load(std::memory_order_relaxed); }
  PageCacheStats& stats() { return stats_; }
  const PageCacheStats& stats() const { return stats_; }

 private:
  struct LruList {
    Page* head = nullptr;  // most recent
    Page* tail = nullptr;  // next to look at
    std::atomic<uint64_t> n{0};  // written under lru_mu_, read without it
    void PushFront(Page* p);
    void PushBack(Page* p);
    void Remove(Page* p);
  };

  Page* NewPage(FileState* fs, uint64_t index);  // uncharged, refs 1
  void FreePage(Page* p);                         // uncharges
  // Inserts a new page (locked, attached, on the inactive list) unless the
  // index is taken; returns the page now at `index` with a reference.
  Page* InsertOrGet(FileState* fs, Page* fresh, bool* inserted);
  void LruAddLocked(Page* p);
  // Isolates the clean idle pages of `list` (lru_mu_ held), as IsolateForReclaim.
  void IsolateCleanLocked(LruList& list, std::vector<Page*>* out);
  void LruDelLocked(Page* p);

  reclaim::MemoryManager* const mm_;
  storage::MetaStore* const meta_;
  const uint32_t page_size_;
  PagePool pool_;

  std::mutex files_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<FileState>> files_;
  // Leaf (taken under a file's mu by SetDirty). A file joins when its
  // nr_dirty leaves 0 (after the increment, so DirtyFiles either sees the
  // count or the file joins again after it was dropped).
  std::mutex dirty_mu_;
  std::unordered_map<FileState*, std::shared_ptr<FileState>> dirty_files_;

  mutable std::mutex lru_mu_;  // leaf
  LruList inactive_, active_;

  std::atomic<uint64_t> nr_pages_{0};
  std::atomic<uint64_t> nr_dirty_{0};
  std::atomic<uint64_t> nr_writeback_{0};
  PageCacheStats stats_;
};

}  // namespace reclaimfs::fs

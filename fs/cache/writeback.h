// Writeback: the flusher pool and everything that writes dirty pages.
//
// Work kinds: background (dirty memory over the background threshold, or a
// kick from direct reclaim / the throttle), periodic (files dirty for longer
// than the expiry), pageout (queued by the shrinker holding a page reference,
// never the lock), and sync (the caller waits). A small controller thread
// decides background and periodic work and posts per-file jobs to a
// Boost.Asio thread pool; pageout work is batched onto the same pool.
//
// Writing a set of pages: lock ascending, re-check, clear dirty and set
// writeback, unlock; allocate blocks for delayed-allocation pages next to the
// file's previous extent; submit all IO in one batch; wait; then one metadata
// commit (extents + allocation + inode record) — data before the metadata
// that points at it; then end writeback and signal reclaim's progress event.
// All of it runs in a kScopeNoFs | kScopeMayUseReserve scope.
//
// Owns the controller thread, the flusher pool (flusher_threads) and the
// pageout queue. Kick and QueuePageout are called from any thread, shrinkers
// included, and never block; WriteAndWait and WriteRangeAndWait from fsync,
// eviction, shutdown and a request growing a file (its old last page);
// PageoutNow only from the blocking-mode shrinker. Flusher waits are each
// bounded: a page lock 10 s, the file's wb_lock 60 s, one page set's IO
// 120 s (after which the completion finishes the set); a sync of a large
// file waits for its page sets in turn.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "absl/status/status.h"
#include "fs/cache/data_tunables.h"
#include "fs/cache/file_data.h"
#include "fs/cache/page_cache.h"
#include "storage/allocator.h"
#include "storage/block_device.h"
#include "storage/meta_store.h"

namespace reclaimfs::fs {

struct WritebackStats {
  std::atomic<uint64_t> pageout_queued{0};
  std::atomic<uint64_t> pageout_done{0};
  std::atomic<uint64_t> pageout_dropped{0};  // page truncated, cleaned or busy meanwhile
  std::atomic<uint64_t> background_jobs{0};
  std::atomic<uint64_t> periodic_jobs{0};
  std::atomic<uint64_t> sync_jobs{0};
  std::atomic<uint64_t> flush_ios{0};        // write requests submitted
  std::atomic<uint64_t> pages_written{0};
  std::atomic<uint64_t> blocks_allocated{0};
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> io_slow_waits{0};    // one per second a flusher waited on its IO
  std::atomic<uint64_t> io_wait_timeouts{0}; // page sets whose IO outlived the flusher's bound
  std::atomic<uint64_t> lock_timeouts{0};    // bounded waits for wb_lock / page locks that expired
};

class Writeback {
 public:
  Writeback(PageCache* cache, storage::MetaStore* meta, storage::Allocator* alloc,
            storage::BlockDevice* dev, InodeRecordSource* records, const FileDataOptions& options);
  ~Writeback();  // Stop() if not done

  void Start();
  // Stops the controller (no new background/periodic work).
  void StopController();
  // Finishes queued work and joins the pool. Call after StopController.
  void Stop();

  // Asks for background writeback now. Never blocks.
  void Kick();
  // Live tuning: new dirty ratios, expiry and period take effect at the
  // controller's next look, which this triggers. Never blocks for long.
  void SetTunables(const FileDataOptions& options);
  // Live tuning of flusher_threads: later work runs on a pool of `n`.
  void SetFlusherThreads(unsigned n);
  unsigned flusher_threads() const {
    std::lock_guard<std::mutex> l(pool_mu_);
    return flusher_threads_;
  }
  // Pageout work for a dirty page; consumes the caller's reference. Never
  // blocks: safe from a shrinker.
  void QueuePageout(Page* p);
  // The blocking shrinker's way: the same work, done and waited for here.
  void PageoutNow(Page* p);

  // Writes every dirty page of the file and waits for it (sync work).
  absl::Status WriteAndWait(const std::shared_ptr<FileState>& fs);
  // The same for the pages in [first, end) only.
  absl::Status WriteRangeAndWait(const std::shared_ptr<FileState>& fs, uint64_t first, uint64_t end);

  const WritebackStats& stats() const { return stats_; }
  std::string StatsText() const;

 private:
  enum class JobKind { kBackground, kPeriodic, kSync };

  void ControllerLoop();
  void RunFileJob(const std::shared_ptr<FileState>& fs, JobKind kind);
  void DrainPageouts();
  void RunPageout(Page* p);

  // Writes dirty pages of fs in [first, end), ascending, in chunks.
  absl::Status WriteFile(const std::shared_ptr<FileState>& fs, uint64_t first, uint64_t end);
  // Writes `pages` (each with a reference, ascending). `locked` is already
  // locked by the caller; with try_rest the others are try-locked and the
  // cluster stops at the first busy one (pageout), else they are waited for.
  // Consumes the references.
  absl::Status WritePageSet(const std::shared_ptr<FileState>& fs, std::vector<Page*> pages,
                            Page* locked, bool try_rest);
  struct Slot;
  static uint64_t CountGotBlock(const std::vector<Slot>& slots);
  struct PageSetIo;
  // After the IO of a page set: commit (or undo) and end writeback.
  absl::Status FinishPageSet(FileState* fs, std::vector<Slot>& slots,
                             std::vector<storage::BlockRun>& allocated, absl::Status status);

  PageCache* const cache_;
  storage::MetaStore* const meta_;
  storage::Allocator* const alloc_;
  storage::BlockDevice* const dev_;
  InodeRecordSource* const records_;
  const FileDataOptions options_;
  DataTunables live_;

  // Hands work to the current pool; never waits (an enqueue under a leaf lock).
  template <typename F>
  void Post(F&& f) {
    std::lock_guard<std::mutex> l(pool_mu_);
    boost::asio::post(*pool_, std::forward<F>(f));
  }

  mutable std::mutex pool_mu_;  // leaf: guards pool_, flusher_threads_, retiring_
  std::unique_ptr<boost::asio::thread_pool> pool_;
  unsigned flusher_threads_ = 0;
  std::vector<std::thread> retiring_;  // join pools replaced by SetFlusherThreads

  std::mutex ctl_mu_;
  std::condition_variable ctl_cv_;
  bool ctl_stop_ = false;
  bool kicked_ = false;
  std::thread controller_;

  // Page sets whose IO outlived the wait bound: their completion finishes
  // them on the pool. Stop waits for these (bounded).
  std::mutex orphan_mu_;
  std::condition_variable orphan_cv_;
  uint64_t orphans_ = 0;
  bool pool_closed_ = false;

  std::mutex pageout_mu_;  // leaf: taken by shrinkers
  std::vector<Page*> pageout_queue_;
  bool drain_posted_ = false;
  bool stopping_ = false;

  WritebackStats stats_;
};

}  // namespace reclaimfs::fs

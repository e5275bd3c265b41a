// Writeback: controller, flusher jobs, pageout work and the write of a page
// set with delayed allocation and one metadata commit.
#include "fs/cache/writeback.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <utility>

#include <boost/asio/post.hpp>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_format.h"
#include "fs/cache/errno_status.h"
#include "reclaim/scope.h"
#include "reclaim/sync_point.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::fs {

namespace {

using std::chrono::milliseconds;

constexpr uint32_t kWritebackScope = reclaim::kScopeNoFs | reclaim::kScopeMayUseReserve;
// One batch of IO + one commit: a sixteenth of the budget, clamped to
// 1024-4096 pages (4-16 MiB of 4 KiB pages). Larger batches keep the disk
// busier and commit less often (a fresh 1 GiB file written and fsync'd spent
// its fsync waiting between 4 MiB batches), but every page of a batch stays
// unreclaimable until its commit, so small budgets keep the smallest batch.
// Scattered pages (random writes) stop a batch at 1024 runs: no more IO
// requests at once than a batch of the smallest size could make, so reads
// do not queue behind larger bursts.
constexpr size_t kMinPagesPerWrite = 1024;
constexpr size_t kMaxPagesPerWrite = 4096;
constexpr size_t kPageoutCluster = 256;     // pages written ahead of a pageout page
constexpr size_t kMaxIovPerRequest = 256;
// Flushers are not reclaim: they may wait, but every wait has a bound.
constexpr milliseconds kPageLockWait{10'000};
constexpr milliseconds kWbLockWait{60'000};
// How long a flusher waits for the IO of one page set. Past it the caller
// gets an error; the pages stay in writeback (their buffers and blocks may
// still be in use by the device) until the IO completes and the completion
// finishes the set on the pool.
constexpr milliseconds kIoWaitBound{120'000};
constexpr int kMaxErrorStreak = 3;  // consecutive failures before dirty data is dropped

}  // namespace

// A page of the set being written and where it goes.
struct Writeback::Slot {
  Page* page;
  uint64_t disk = 0;
  bool allocated = false;  // unmapped: needs a block now (delayed allocation)
  bool got_block = false;  // ... and got one, consuming its reservation
  bool unwritten = false;  // block came from an unwritten extent
};

uint64_t Writeback::CountGotBlock(const std::vector<Slot>& slots) {
  uint64_t n = 0;
  for (const Slot& s : slots) n += s.got_block;
  return n;
}

// Completion state of one page set's requests. Callbacks run on the device's
// completion thread and only record and signal, or, for a set its flusher
// stopped waiting for, post the rest of the work to the pool.
struct Writeback::PageSetIo {
  std::mutex mu;
  std::condition_variable cv;
  size_t pending = 0;
  int error = 0;
  std::function<void(int error)> orphaned;  // set when the flusher gave up waiting

  void Done(int64_t result, uint64_t expected) {
    std::function<void(int)> finish;
    int err;
    {
      std::lock_guard<std::mutex> l(mu);
      if (result != static_cast<int64_t>(expected) && error == 0) {
        error = result < 0 ? static_cast<int>(-result) : EIO;
      }
      if (--pending > 0) return;
      cv.notify_all();
      finish = std::move(orphaned);
      err = error;
    }
    if (finish) finish(err);
  }
};

Writeback::Writeback(PageCache* cache, storage::MetaStore* meta, storage::Allocator* alloc,
                     storage::BlockDevice* dev, InodeRecordSource* records,
                     const FileDataOptions& options)
    : cache_(cache), meta_(meta), alloc_(alloc), dev_(dev), records_(records), options_(options), live_(options) {}

Writeback::~Writeback() {
  StopController();
  Stop();
}

void Writeback::Start() {
  flusher_threads_ = std::max(1u, options_.flusher_threads);
  pool_ = std::make_unique<boost::asio::thread_pool>(flusher_threads_);
  controller_ = std::thread([this] { ControllerLoop(); });
}

void Writeback::StopController() {
  {
    std::lock_guard<std::mutex> l(ctl_mu_);
    ctl_stop_ = true;
  }
  ctl_cv_.notify_all();
  if (controller_.joinable()) controller_.join();
}

void Writeback::Stop() {
  {
    std::lock_guard<std::mutex> l(pageout_mu_);
    stopping_ = true;
  }
  {
    // Page sets whose IO outlived the flusher's bound finish on the pool
    // when it completes; the pool must outlive them.
    std::unique_lock<std::mutex> o(orphan_mu_);
    if (!orphan_cv_.wait_for(o, kIoWaitBound, [this] { return orphans_ == 0; })) {
      spdlog::error("writeback: {} page set(s) still wait for their IO at shutdown", orphans_);
    }
    pool_closed_ = true;
  }
  if (pool_) {
    // Not under pool_mu_: jobs that run meanwhile may still Post to it.
    pool_->join();  // runs what is queued, then the threads exit
    std::lock_guard<std::mutex> l(pool_mu_);
    pool_.reset();
  }
  std::vector<std::thread> retiring;
  {
    std::lock_guard<std::mutex> l(pool_mu_);
    retiring.swap(retiring_);
  }
  for (std::thread& t : retiring) t.join();
  // Work that was queued but could not be posted.
  std::vector<Page*> left;
  {
    std::lock_guard<std::mutex> l(pageout_mu_);
    left.swap(pageout_queue_);
  }
  for (Page* p : left) {
    p->Clear(kPagePageout);
    cache_->Put(p);
  }
}

void Writeback::Kick() {
  {
    std::lock_guard<std::mutex> l(ctl_mu_);
    kicked_ = true;
  }
  ctl_cv_.notify_one();
}

void Writeback::SetTunables(const FileDataOptions& options) {
  live_.Store(options);
  SetFlusherThreads(options.flusher_threads);
  Kick();  // look again now: the period or the thresholds may have shrunk
}

void Writeback::SetFlusherThreads(unsigned n) {
  n = std::max(1u, n);
  std::lock_guard<std::mutex> l(pool_mu_);
  if (!pool_ || n == flusher_threads_) return;
  // New work goes to a new pool at once; the old one runs what it has
  // queued (each job bounded) on a thread of its own, joined by Stop().
  std::shared_ptr<boost::asio::thread_pool> old(std::move(pool_));
  pool_ = std::make_unique<boost::asio::thread_pool>(n);
  flusher_threads_ = n;
  retiring_.emplace_back([old] { old->join(); });
}

// ---- controller: background and periodic work ---------------------------

void Writeback::ControllerLoop() {
  std::unique_lock<std::mutex> l(ctl_mu_);
  while (!ctl_stop_) {
    ctl_cv_.wait_for(l, milliseconds(live_.writeback_interval_ms.load(std::memory_order_relaxed)),
                     [this] { return ctl_stop_ || kicked_; });
    if (ctl_stop_) break;
    const bool kicked = std::exchange(kicked_, false);
    l.unlock();

    // Blocks freed since the last metadata sync become reusable (the
    // allocator keeps them until their commit is durable); like a journal's
    // commit interval, once per period.
    if (alloc_->pending_free_blocks() > 0) {
      if (absl::Status s = alloc_->SyncPendingFrees(); !s.ok()) {
        spdlog::warn("syncing the metadata log for freed blocks: {}", s.ToString());
      }
    }

    const uint64_t limit = cache_->mm()->budget().limit();
    // Free page buffers beyond a quarter of the budget (it shrank: set live,
    // or capped by host pressure) give their memory back, so RSS follows.
    cache_->TrimPoolIfSlack(std::max<uint64_t>(limit / 4 / cache_->page_size(), 1024));
    const uint64_t dirty_bytes = cache_->dirty_pages() * cache_->page_size();
    const bool background =
        kicked || dirty_bytes > static_cast<uint64_t>(live_.dirty_background_ratio.load() * limit);
    const int64_t now = NowMs();
    const int64_t expire_ms = live_.dirty_expire_ms.load(std::memory_order_relaxed);
    for (auto& fs : cache_->DirtyFiles()) {
      const bool expired = now - fs->dirtied_when_ms.load() >= expire_ms;
      if (!background && !expired) continue;
      if (fs->wb_queued.exchange(true)) continue;
      const JobKind kind = background ? JobKind::kBackground : JobKind::kPeriodic;
      Post([this, fs, kind] { RunFileJob(fs, kind); });
    }
    l.lock();
  }
}

void Writeback::RunFileJob(const std::shared_ptr<FileState>& fs, JobKind kind) {
  reclaim::ScopedReclaimFlags scope(kWritebackScope);
  (kind == JobKind::kBackground ? stats_.background_jobs : stats_.periodic_jobs)
      .fetch_add(1, std::memory_order_relaxed);
  // Failures reach the file's open handles (OnWritebackError).
  WriteFile(fs, 0, UINT64_MAX).IgnoreError();
  fs->wb_queued.store(false);
}

absl::Status Writeback::WriteAndWait(const std::shared_ptr<FileState>& fs) {
  return WriteRangeAndWait(fs, 0, UINT64_MAX);
}

absl::Status Writeback::WriteRangeAndWait(const std::shared_ptr<FileState>& fs, uint64_t first,
                                          uint64_t end) {
  reclaim::ScopedReclaimFlags scope(kWritebackScope);
  stats_.sync_jobs.fetch_add(1, std::memory_order_relaxed);
  absl::Status s = WriteFile(fs, first, end);
  // Every writer of this file holds wb_lock until its pages finish, so after
  // WriteFile nothing should remain; wait anyway in case of a straggler.
  for (Page* p : cache_->FindRange(fs.get(), first, end)) {
    if (p->Test(kPageWriteback) && !p->WaitWriteback(kWbLockWait)) {
      stats_.lock_timeouts.fetch_add(1, std::memory_order_relaxed);
      if (s.ok()) s = absl::DeadlineExceededError("writeback did not finish");
    }
    cache_->Put(p);
  }
  return s;
}

absl::Status Writeback::WriteFile(const std::shared_ptr<FileState>& fs, uint64_t first,
                                  uint64_t end) {
  if (!fs->wb_lock.LockFor(kWbLockWait)) {
    stats_.lock_timeouts.fetch_add(1, std::memory_order_relaxed);
    return absl::DeadlineExceededError("file writeback is stuck");
  }
  absl::Cleanup unlock = [&] { fs->wb_lock.Unlock(); };
  if (absl::Status s = cache_->EnsureExtents(fs.get()); !s.ok()) return s;
  const size_t batch = std::clamp<size_t>(cache_->mm()->budget().limit() / cache_->page_size() / 16,
                                          kMinPagesPerWrite, kMaxPagesPerWrite);
  absl::Status result;
  uint64_t cursor = first;
  while (cursor < end) {
    std::vector<Page*> pages;
    {
      std::lock_guard<std::mutex> l(fs->mu);
      size_t runs = 0;
      for (auto it = fs->pages.lower_bound(cursor);
           it != fs->pages.end() && it->first < end && pages.size() < batch; ++it) {
        Page* p = it->second;
        if (p->Test(kPageDirty) && !p->Test(kPageWriteback)) {
          const bool new_run = pages.empty() || p->index != pages.back()->index + 1;
          if (new_run && ++runs > kMinPagesPerWrite) break;
          p->Ref();
          pages.push_back(p);
        }
      }
    }
    if (pages.empty()) break;
    cursor = pages.back()->index + 1;
    absl::Status s = WritePageSet(fs, std::move(pages), nullptr, false);
    if (!s.ok() && result.ok()) result = s;
  }
  return result;
}

// ---- pageout work -----------------------------------------------------

void Writeback::QueuePageout(Page* p) {
  {
    std::lock_guard<std::mutex> l(pageout_mu_);
    if (!stopping_) {
      pageout_queue_.push_back(p);
      stats_.pageout_queued.fetch_add(1, std::memory_order_relaxed);
      // Posting only enqueues: it never waits. Done under the lock so Stop()
      // cannot retire the pool in between.
      if (!std::exchange(drain_posted_, true)) {
        Post([this] { DrainPageouts(); });
      }
      return;
    }
  }
  // Shutting down: nobody will run it.
  p->Clear(kPagePageout);
  cache_->Put(p);
}

void Writeback::DrainPageouts() {
  reclaim::ScopedReclaimFlags scope(kWritebackScope);
  for (;;) {
    std::vector<Page*> work;
    {
      std::lock_guard<std::mutex> l(pageout_mu_);
      if (pageout_queue_.empty()) {
        drain_posted_ = false;
        return;
      }
      work.swap(pageout_queue_);
    }
    // Ascending (file, offset): clusters written ahead of one page then
    // cover the next ones, and page locks are taken in order.
    std::sort(work.begin(), work.end(), [](const Page* a, const Page* b) {
      return a->ino != b->ino ? a->ino < b->ino : a->index < b->index;
    });
    for (Page* p : work) RunPageout(p);
  }
}

void Writeback::PageoutNow(Page* p) {
  reclaim::ScopedReclaimFlags scope(kWritebackScope);
  stats_.pageout_queued.fetch_add(1, std::memory_order_relaxed);
  RunPageout(p);
}

void Writeback::RunPageout(Page* p) {
  p->Clear(kPagePageout);
  RECLAIMFS_SYNC_POINT("PageCache::Pageout:BeforeLock");
  auto drop = [&] {
    stats_.pageout_dropped.fetch_add(1, std::memory_order_relaxed);
    cache_->Put(p);
  };
  // The reference keeps the page's memory, not its file: find the file by
  // number and make sure the page still belongs to it.
  std::shared_ptr<FileState> fs = cache_->FindFile(p->ino);
  if (!fs || p->file != fs.get() || !p->Test(kPageAttached) || !p->Test(kPageDirty)) {
    return drop();
  }
  if (!fs->wb_lock.LockFor(kWbLockWait)) {
    stats_.lock_timeouts.fetch_add(1, std::memory_order_relaxed);
    return drop();
  }
  absl::Cleanup unlock = [&] { fs->wb_lock.Unlock(); };
  if (absl::Status s = cache_->EnsureExtents(fs.get()); !s.ok()) return drop();
  // The lock is taken now, at execution time, never by the shrinker.
  if (!p->Lock(kPageLockWait)) {
    stats_.lock_timeouts.fetch_add(1, std::memory_order_relaxed);
    return drop();
  }
  if (!p->Test(kPageAttached) || !p->Test(kPageDirty) || p->Test(kPageWriteback)) {
    p->Unlock();
    return drop();
  }
  // Cluster dirty neighbours ahead only: locks stay in ascending order.
  std::vector<Page*> cluster{p};
  {
    std::lock_guard<std::mutex> l(fs->mu);
    auto it = fs->pages.upper_bound(p->index);
    uint64_t next = p->index + 1;
    for (; it != fs->pages.end() && it->first == next && cluster.size() < kPageoutCluster;
         ++it, ++next) {
      Page* q = it->second;
      if (!q->Test(kPageDirty) || q->Test(kPageWriteback)) break;
      q->Ref();
      cluster.push_back(q);
    }
  }
  stats_.pageout_done.fetch_add(1, std::memory_order_relaxed);
  WritePageSet(fs, std::move(cluster), p, true).IgnoreError();
}

// ---- writing a page set -------------------------------------------------

absl::Status Writeback::WritePageSet(const std::shared_ptr<FileState>& file, std::vector<Page*> pages,
                                     Page* locked, bool try_rest) {
  FileState* const fs = file.get();
  const uint32_t bs = cache_->page_size();
  // 1. Lock ascending and re-check each page under its lock.
  std::vector<Slot> slots;
  slots.reserve(pages.size());
  bool stop = false;
  for (Page* p : pages) {
    bool got;
    if (p == locked) {
      got = true;
    } else if (stop) {
      got = false;
    } else if (try_rest) {
      got = p->TryLock();
      stop = !got;  // keep the cluster contiguous
    } else {
      got = p->Lock(kPageLockWait);
      if (!got) stats_.lock_timeouts.fetch_add(1, std::memory_order_relaxed);
    }
    if (got && p->Test(kPageAttached) && p->file == fs && p->Test(kPageDirty) &&
        !p->Test(kPageWriteback)) {
      slots.push_back({p});
      continue;
    }
    if (got) p->Unlock();
    if (try_rest && got && p != locked) stop = true;
    cache_->Put(p);
  }
  if (slots.empty()) return absl::OkStatus();

  // 2. Where each page goes (snapshot: the mapping of a page under
  // writeback changes only through this writeback).
  {
    std::lock_guard<std::mutex> l(fs->mu);
    for (Slot& s : slots) {
      auto m = fs->extents.Lookup(s.page->index);
      if (m.mapped) {
        s.disk = m.disk_block;
        s.unwritten = m.unwritten;
      }
      s.allocated = !m.mapped;
    }
  }
  // 3. Dirty -> writeback, then unlock: from here the writeback bit
  // protects the pages (writers, truncate and reclaim wait for or skip it).
  for (Slot& s : slots) {
    cache_->ClearDirty(s.page);
    cache_->SetWriteback(s.page);
    s.page->Unlock();
  }

  // 4. Delayed allocation, run by run of consecutive unmapped pages, each
  // run placed after the file's previous extent.
  std::vector<storage::BlockRun> allocated;
  absl::Status status;
  uint64_t goal_hint = 0;
  bool have_hint = false;
  uint64_t hint_index = 0;
  for (size_t i = 0; i < slots.size() && status.ok();) {
    if (!slots[i].allocated) {
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < slots.size() && slots[j].allocated && slots[j].page->index == slots[j - 1].page->index + 1) ++j;
    const uint64_t n = j - i;
    uint64_t unreserved = 0;
    for (size_t k = i; k < j; ++k) {
      if (!slots[k].page->Test(kPageReserved)) ++unreserved;
    }
    if (unreserved > 0) status = alloc_->Reserve(unreserved);  // should not happen: dirty holes hold one
    uint64_t goal;
    {
      std::lock_guard<std::mutex> l(fs->mu);
      goal = fs->extents.GoalFor(slots[i].page->index);
    }
    if (have_hint && slots[i].page->index > hint_index) {
      goal = goal_hint + (slots[i].page->index - hint_index);
    }
    if (status.ok()) {
      auto runs = alloc_->Allocate(n, goal, true);
      if (!runs.ok()) {
        status = runs.status();
        if (unreserved > 0) alloc_->Unreserve(unreserved);
      } else {
        size_t k = i;
        for (const storage::BlockRun& r : *runs) {
          allocated.push_back(r);
          for (uint64_t b = 0; b < r.length && k < j; ++b, ++k) {
            slots[k].disk = r.start + b;
            slots[k].got_block = true;
          }
        }
        {
          std::lock_guard<std::mutex> l(fs->mu);
          fs->nr_allocating.fetch_add(n);
        }
        for (size_t m = i; m < j; ++m) cache_->ClearReserved(slots[m].page);
        stats_.blocks_allocated.fetch_add(n, std::memory_order_relaxed);
        goal_hint = slots[j - 1].disk + 1;
        hint_index = slots[j - 1].page->index + 1;
        have_hint = true;
      }
    }
    i = j;
  }
  // A page both mapped and holding a reservation gives the reservation back.
  for (Slot& s : slots) {
    if (!s.allocated && s.page->Test(kPageReserved)) {
      cache_->ClearReserved(s.page);
      alloc_->Unreserve(1);
    }
  }

  // 5. One batch of IO: contiguous (file, disk) runs become one vectored
  // request each.
  if (status.ok()) {
    auto io = std::make_shared<PageSetIo>();
    std::vector<storage::IoRequest> reqs;
    for (size_t i = 0; i < slots.size();) {
      size_t j = i + 1;
      while (j < slots.size() && j - i < kMaxIovPerRequest &&
             slots[j].page->index == slots[j - 1].page->index + 1 &&
             slots[j].disk == slots[j - 1].disk + 1) {
        ++j;
      }
      storage::IoRequest r;
      r.op = storage::IoRequest::Op::kWrite;
      r.offset = slots[i].disk * bs;
      for (size_t k = i; k < j; ++k) r.iov.push_back({slots[k].page->data, bs});
      const uint64_t expected = static_cast<uint64_t>(j - i) * bs;
      r.done = [io, expected](int64_t res) { io->Done(res, expected); };
      reqs.push_back(std::move(r));
      i = j;
    }
    io->pending = reqs.size();
    stats_.flush_ios.fetch_add(reqs.size(), std::memory_order_relaxed);
    dev_->Submit(std::move(reqs));
    std::unique_lock<std::mutex> l(io->mu);
    const auto deadline = std::chrono::steady_clock::now() + kIoWaitBound;
    while (io->pending > 0) {
      // Not reclaim: the flusher waits for its own IO, counting slow waits,
      // up to a bound.
      if (io->cv.wait_for(l, std::chrono::seconds(1), [&] { return io->pending == 0; })) break;
      stats_.io_slow_waits.fetch_add(1, std::memory_order_relaxed);
      if (std::chrono::steady_clock::now() < deadline) continue;
      // Give up waiting, not the pages: the completion finishes the set.
      stats_.io_wait_timeouts.fetch_add(1, std::memory_order_relaxed);
      {
        std::lock_guard<std::mutex> o(orphan_mu_);
        ++orphans_;
      }
      io->orphaned = [this, file, slots = std::move(slots), allocated = std::move(allocated)](int err) mutable {
        std::lock_guard<std::mutex> o(orphan_mu_);
        if (pool_closed_) {  // shut down without it: the pages are left as they are
          --orphans_;
          return;
        }
        Post([this, file, slots = std::move(slots), allocated = std::move(allocated), err]() mutable {
          reclaim::ScopedReclaimFlags scope(kWritebackScope);
          FinishPageSet(file.get(), slots, allocated,
                        err ? absl::DataLossError(absl::StrFormat("write error %d", err)) : absl::OkStatus())
              .IgnoreError();
          std::lock_guard<std::mutex> o(orphan_mu_);
          --orphans_;
          orphan_cv_.notify_all();
        });
      };
      spdlog::error("writeback of inode {}: IO did not complete within {} s; reporting an error, "
                    "the pages stay in writeback until it does",
                    fs->ino, kIoWaitBound.count() / 1000);
      records_->OnWritebackError(fs->ino, EIO);
      return absl::DeadlineExceededError("writeback IO did not complete in time");
    }
    if (io->error) status = absl::DataLossError(absl::StrFormat("write error %d", io->error));
  }
  return FinishPageSet(fs, slots, allocated, status);
}

absl::Status Writeback::FinishPageSet(FileState* fs, std::vector<Slot>& slots,
                                      std::vector<storage::BlockRun>& allocated, absl::Status status) {
  // Blocks got for holes stop counting as allocating where they are mapped,
  // or, if they never are, once their reservations are back (below).
  bool allocating_released = false;
  // 6. Data is on disk: commit the metadata that points at it.
  if (status.ok()) {
    storage::MetaStore::Batch batch;
    RECLAIMFS_SYNC_POINT("PageCache::Writeback:BeforeCommit");
    auto prepare = [&](storage::MetaStore::Batch& b) -> absl::Status {
      // The inode record is taken under the commit lock too, so a newer
      // record committed by the POSIX layer is never overwritten by ours.
      records_->AddInodeRecord(fs->ino, &b);
      // Under the commit lock, so extent changes of concurrent commits of
      // this file are persisted in the order they are made in memory.
      std::vector<storage::BlockRun> displaced;
      ExtentDelta delta;
      {
        std::lock_guard<std::mutex> l(fs->mu);
        for (size_t i = 0; i < slots.size();) {
          if (!slots[i].allocated && !slots[i].unwritten) {
            ++i;
            continue;
          }
          size_t j = i + 1;
          while (j < slots.size() && (slots[j].allocated || slots[j].unwritten) &&
                 slots[j].page->index == slots[j - 1].page->index + 1 &&
                 slots[j].disk == slots[j - 1].disk + 1) {
            ++j;
          }
          fs->extents.MapWritten(slots[i].page->index, slots[i].disk, j - i, &delta, &displaced);
          i = j;
        }
        fs->nr_allocating.fetch_sub(CountGotBlock(slots));
        allocating_released = true;
      }
      delta.ApplyTo(fs->ino, &b);
      if (!allocated.empty()) alloc_->CommitAllocation(allocated, &b);
      for (const auto& r : displaced) alloc_->Free(r, &b);
      return absl::OkStatus();
    };
    status = meta_->Commit(batch, false, prepare);
    if (status.ok()) {
      stats_.commits.fetch_add(1, std::memory_order_relaxed);
      stats_.pages_written.fetch_add(slots.size(), std::memory_order_relaxed);
      fs->wb_error_streak.store(0);
    } else {
      spdlog::error("writeback of inode {}: metadata commit failed: {}", fs->ino, status.ToString());
    }
  } else {
    // 7. Failure before the commit: blocks go back, pages are dirty again
    // unless this keeps failing (then the data is dropped, not retried
    // forever). Either way the next Sync reports EIO.
    if (!allocated.empty()) alloc_->CancelAllocation(allocated);
    const bool retry = fs->wb_error_streak.fetch_add(1) + 1 < kMaxErrorStreak;
    spdlog::warn("writeback of inode {} failed ({}), {}", fs->ino, status.ToString(),
                 retry ? "will retry" : "dropping the data");
    for (Slot& s : slots) {
      if (retry && (!s.got_block || alloc_->Reserve(1).ok())) {
        if (s.got_block) cache_->SetReserved(s.page);
        cache_->SetDirty(s.page);
        continue;
      }
      s.page->Clear(kPageUptodate);  // the next read goes to the disk
      if (s.page->Test(kPageReserved)) {
        cache_->ClearReserved(s.page);
        alloc_->Unreserve(1);
      }
    }
  }
  if (!allocating_released) {
    std::lock_guard<std::mutex> l(fs->mu);
    fs->nr_allocating.fetch_sub(CountGotBlock(slots));
  }
  if (!status.ok()) {
    stats_.errors.fetch_add(1, std::memory_order_relaxed);
    records_->OnWritebackError(fs->ino, ToErrno(status) == ENOSPC ? ENOSPC : EIO);
  }

  // 8. End writeback: wake waiters, tell reclaim that memory can be freed.
  for (Slot& s : slots) {
    cache_->EndWriteback(s.page);
    cache_->Put(s.page);
  }
  cache_->mm()->progress().Signal();
  return status;
}

std::string Writeback::StatsText() const {
  std::string out;
  auto line = [&](const char* name, uint64_t v) { absl::StrAppendFormat(&out, "%s %d\n", name, v); };
  line("writeback_flusher_threads", flusher_threads());
  line("writeback_pageout_queued", stats_.pageout_queued.load());
  line("writeback_pageout_done", stats_.pageout_done.load());
  line("writeback_pageout_dropped", stats_.pageout_dropped.load());
  line("writeback_background_jobs", stats_.background_jobs.load());
  line("writeback_periodic_jobs", stats_.periodic_jobs.load());
  line("writeback_sync_jobs", stats_.sync_jobs.load());
  line("writeback_flush_ios", stats_.flush_ios.load());
  line("writeback_pages_written", stats_.pages_written.load());
  line("writeback_blocks_allocated", stats_.blocks_allocated.load());
  line("writeback_commits", stats_.commits.load());
  line("writeback_errors", stats_.errors.load());
  line("writeback_io_slow_waits", stats_.io_slow_waits.load());
  line("writeback_io_wait_timeouts", stats_.io_wait_timeouts.load());
  line("writeback_lock_timeouts", stats_.lock_timeouts.load());
  return out;
}

}  // namespace reclaimfs::fs

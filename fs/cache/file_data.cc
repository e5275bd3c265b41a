// FileData: the data path of a file — read (with sequential readahead),
// write into dirty pages with delayed allocation and dirty throttling,
// truncate, hole punching, preallocation, zeroing and shifting ranges
// (fallocate), sync, seek and eviction — over the
// page cache (page_cache.h), its shrinker and writeback (writeback.h).
#include "fs/cache/file_data.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include "absl/strings/str_format.h"
#include "fs/cache/dirty_throttle.h"
#include "fs/cache/errno_status.h"
#include "fs/cache/page_cache.h"
#include "fs/cache/page_cache_shrinker.h"
#include "fs/cache/page_io.h"
#include "fs/cache/writeback.h"
#include "reclaim/scope.h"
#include "reclaim/sync_point.h"

namespace reclaimfs::fs {

namespace {

using std::chrono::milliseconds;

// Waits in the data path (not reclaim) are generous but bounded and counted.
constexpr milliseconds kPageLockWait{30'000};
constexpr milliseconds kWritebackWait{60'000};
constexpr uint64_t kReadWindowPages = 64;  // pages charged and pinned at once by a read
constexpr size_t kMaxPinnedWindows = 4;     // cached windows one reply may point into (1 MiB)

uint64_t DivUp(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

}  // namespace

struct FileData::Impl {
  Impl(storage::MetaStore* meta, storage::Allocator* alloc, storage::BlockDevice* dev,
       reclaim::MemoryManager* mm, InodeRecordSource* records, FileDataOptions options)
      : meta(meta),
        alloc(alloc),
        dev(dev),
        mm(mm),
        records(records),
        options(options),
        readahead_bytes(options.readahead_bytes),
        ps(dev->block_size()),
        cache(mm, meta, ps),
        writeback(&cache, meta, alloc, dev, records, options),
        shrinker(&cache, &writeback, options.shrinker_mode),
        throttle(&cache, &writeback, options) {}

  // Locks a page the caller holds a reference to, counting timeouts.
  bool LockPage(Page* p) {
    if (p->Lock(kPageLockWait)) return true;
    cache.stats().lock_timeouts.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // Waits for writeback of a locked page (data path, not reclaim).
  bool WaitWriteback(Page* p) {
    if (!p->Test(kPageWriteback)) return true;
    cache.stats().writeback_waits.fetch_add(1, std::memory_order_relaxed);
    if (p->WaitWriteback(kWritebackWait)) return true;
    cache.stats().writeback_wait_timeouts.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // The file's state for a query: the cached one, or, for a file with
  // nothing cached, a private one holding just its stored extents (a stat
  // must not make every file's extent map resident).
  absl::StatusOr<std::shared_ptr<FileState>> QueryFile(uint64_t ino) {
    std::shared_ptr<FileState> fs = cache.FindFile(ino);
    if (!fs) fs = std::make_shared<FileState>(ino, &mm->budget());
    if (absl::Status s = cache.EnsureExtents(fs.get()); !s.ok()) return s;
    return fs;
  }
  ExtentMap::Mapping Lookup(FileState* fs, uint64_t index) {
    std::lock_guard<std::mutex> l(fs->mu);
    return fs->extents.Lookup(index);
  }

  // Pages [first, end) to read ahead, decided by the file's last read.
  struct ReadaheadRange {
    uint64_t first = 0, end = 0;
  };
  // Uptodate pages of one read window, each with a reference (no heap).
  struct PinnedWindow {
    Page* pages[kReadWindowPages];
    size_t n = 0;
  };
  ReadaheadRange PlanReadahead(FileState* fs, uint64_t file_size, uint64_t off, uint64_t end);
  absl::StatusOr<size_t> Read(uint64_t ino, uint64_t file_size, uint64_t off, size_t len, char* out,
                              bool may_wait = true);
  // Every page of [first, end) present and uptodate (a look, no references).
  bool AllCached(FileState* fs, uint64_t first, uint64_t end);
  absl::StatusOr<size_t> ReadPinned(uint64_t ino, uint64_t file_size, uint64_t off, size_t len,
                                    FileData::PagesReply reply, bool may_wait);
  // A read of several windows whose pages are all cached: pins them all
  // without waiting and replies in place. Unavailable when a page is
  // missing or the range is too large to pin; nothing has changed then.
  absl::StatusOr<size_t> ReadPinnedWindows(uint64_t ino, uint64_t file_size, uint64_t off, uint64_t end,
                                           FileData::PagesReply reply);
  // Points iov at the bytes of [off, end) in window w, which starts at the
  // page of win_off; returns the number of iovecs.
  int WindowIovecs(const PinnedWindow& w, uint64_t win_off, uint64_t off, uint64_t end, iovec* iov);
  // Pins the pages of [off, end) (at most one window), reading the missing
  // ones; without may_wait, Unavailable unless all are present and uptodate.
  absl::Status PinWindow(FileState* fs, uint64_t off, uint64_t end, PinnedWindow* w,
                         bool may_wait = true);
  void UnpinWindow(PinnedWindow* w);
  void Readahead(FileState* fs, uint64_t first, uint64_t end);
  absl::Status Write(uint64_t ino, uint64_t off, const char* data, size_t len);
  absl::Status WriteOnePage(FileState* fs, uint64_t index, uint32_t from, uint32_t to, const char* src);
  absl::Status DropPages(FileState* fs, uint64_t first, uint64_t end);
  absl::Status ZeroInPage(FileState* fs, uint64_t index, uint32_t from, uint32_t to);
  absl::Status ZeroPastEof(const std::shared_ptr<FileState>& fs, uint64_t old_size, uint64_t new_end);
  absl::Status CommitUnmap(FileState* fs, uint64_t first, uint64_t end);
  absl::Status ZeroEdges(FileState* fs, uint64_t off, uint64_t end);
  absl::Status Shift(uint64_t ino, uint64_t off, uint64_t len, bool collapse,
                     const std::function<void()>& set_size);
  bool IsData(FileState* fs, uint64_t block);  // fs->mu held

  storage::MetaStore* const meta;
  storage::Allocator* const alloc;
  storage::BlockDevice* const dev;
  reclaim::MemoryManager* const mm;
  InodeRecordSource* const records;
  const FileDataOptions options;
  std::atomic<uint64_t> readahead_bytes;  // live-tunable
  const uint32_t ps;

  PageCache cache;
  Writeback writeback;
  PageCacheShrinker shrinker;
  DirtyThrottle throttle;
  bool started = false;
  bool shut_down = false;
};

// ---- read ---------------------------------------------------------------

FileData::Impl::ReadaheadRange FileData::Impl::PlanReadahead(FileState* fs, uint64_t file_size,
                                                             uint64_t off, uint64_t end) {
  // A read that starts where the previous one ended is sequential; keep the
  // next readahead_bytes in flight, topping the window up when half of it
  // has been consumed.
  const uint64_t last = (end - 1) / ps;
  const uint64_t ra_pages = readahead_bytes.load(std::memory_order_relaxed) / ps;
  const uint64_t eof_pages = DivUp(file_size, ps);
  ReadaheadRange ra;
  std::lock_guard<std::mutex> l(fs->mu);
  const bool sequential = off == fs->ra_prev_end || (off == 0 && fs->ra_prev_end == UINT64_MAX);
  fs->ra_prev_end = end;
  if (!sequential) fs->ra_next = last + 1;  // a seek restarts the window
  if (sequential && ra_pages > 0) {
    ra.first = std::max(last + 1, fs->ra_next);
    ra.end = std::min(last + 1 + ra_pages, eof_pages);
    if (ra.end > ra.first && (ra.end - ra.first >= std::max<uint64_t>(1, ra_pages / 2) ||
                              ra.first == last + 1)) {
      fs->ra_next = ra.end;
    } else {
      ra.end = ra.first;
    }
  }
  return ra;
}

bool FileData::Impl::AllCached(FileState* fs, uint64_t first, uint64_t end) {
  std::lock_guard<std::mutex> l(fs->mu);
  auto it = fs->pages.lower_bound(first);
  for (uint64_t i = first; i < end; ++i, ++it) {
    if (it == fs->pages.end() || it->first != i || !it->second->Test(kPageUptodate)) return false;
  }
  return true;
}

absl::StatusOr<size_t> FileData::Impl::Read(uint64_t ino, uint64_t file_size, uint64_t off,
                                            size_t len, char* out, bool may_wait) {
  if (off >= file_size || len == 0) return 0;
  const uint64_t end = std::min<uint64_t>(off + len, file_size);
  std::shared_ptr<FileState> fs = may_wait ? cache.GetFile(ino) : cache.FindFile(ino);
  if (!fs) return absl::UnavailableError("nothing cached");
  // Without waiting: only when every page is there (checked before the
  // readahead state moves; pages reclaimed in between still make it give up).
  if (!may_wait && (!fs->extents_loaded.load(std::memory_order_acquire) ||
                    !AllCached(fs.get(), off / ps, (end - 1) / ps + 1))) {
    return absl::UnavailableError("pages not in the cache");
  }
  if (absl::Status s = cache.EnsureExtents(fs.get()); !s.ok()) return s;
  const ReadaheadRange ra = PlanReadahead(fs.get(), file_size, off, end);

  // In windows, so one call never pins or charges more than a window.
  size_t copied = 0;
  PinnedWindow w;
  for (uint64_t pos = off; pos < end;) {
    const uint64_t win_end = std::min(end, (pos / ps + kReadWindowPages) * ps);
    if (absl::Status s = PinWindow(fs.get(), pos, win_end, &w, may_wait); !s.ok()) return s;
    for (size_t i = 0; i < w.n; ++i) {
      const uint64_t page_off = (pos / ps + i) * ps;
      const uint64_t from = std::max(pos, page_off), to = std::min(win_end, page_off + ps);
      std::memcpy(out + (from - off), w.pages[i]->data + (from - page_off), to - from);
      copied += to - from;
    }
    UnpinWindow(&w);
    if (pos == off && ra.end > ra.first) Readahead(fs.get(), ra.first, ra.end);
    pos = win_end;
  }
  return copied;
}

absl::StatusOr<size_t> FileData::Impl::ReadPinned(uint64_t ino, uint64_t file_size, uint64_t off,
                                                  size_t len, FileData::PagesReply reply,
                                                  bool may_wait) {
  if (off >= file_size || len == 0) {
    reply(nullptr, 0);
    return 0;
  }
  const uint64_t end = std::min<uint64_t>(off + len, file_size);
  const uint64_t npages = (end - 1) / ps - off / ps + 1;
  if (npages > kReadWindowPages) {
    // More than one window. When every page is cached the windows are
    // pinned together without waiting and replied in place; otherwise the
    // read is copied window by window, so it never holds more than one
    // window out of reclaim's reach while it waits for memory or IO.
    absl::StatusOr<size_t> n = ReadPinnedWindows(ino, file_size, off, end, reply);
    if (n.ok() || !absl::IsUnavailable(n.status())) return n;
    std::unique_ptr<char[]> buf(new (std::nothrow) char[end - off]);
    if (!buf) return ErrnoStatus(ENOMEM, "read buffer");
    n = Read(ino, file_size, off, end - off, buf.get(), may_wait);
    if (!n.ok()) return n;
    const iovec one{buf.get(), *n};
    reply(&one, 1);
    return n;
  }
  std::shared_ptr<FileState> fs = may_wait ? cache.GetFile(ino) : cache.FindFile(ino);
  if (!fs) return absl::UnavailableError("nothing cached");
  if (!may_wait && !fs->extents_loaded.load(std::memory_order_acquire)) {
    return absl::UnavailableError("extents not loaded");
  }
  if (absl::Status s = cache.EnsureExtents(fs.get()); !s.ok()) return s;
  PinnedWindow w;
  if (absl::Status s = PinWindow(fs.get(), off, end, &w, may_wait); !s.ok()) return s;
  // After pinning: a read that gives up without waiting leaves it unchanged.
  const ReadaheadRange ra = PlanReadahead(fs.get(), file_size, off, end);
  if (ra.end > ra.first) Readahead(fs.get(), ra.first, ra.end);
  iovec iov[kReadWindowPages];
  const int count = WindowIovecs(w, off, off, end, iov);
  // The pages stay referenced (reclaim cannot free them) until the reply
  // has been written; the caller's io lock keeps writers out of them.
  reply(iov, count);
  UnpinWindow(&w);
  return end - off;
}

int FileData::Impl::WindowIovecs(const PinnedWindow& w, uint64_t win_off, uint64_t off, uint64_t end,
                                 iovec* iov) {
  for (size_t i = 0; i < w.n; ++i) {
    const uint64_t page_off = (win_off / ps + i) * ps;
    const uint64_t from = std::max(off, page_off), to = std::min(end, page_off + ps);
    iov[i] = {w.pages[i]->data + (from - page_off), static_cast<size_t>(to - from)};
  }
  return static_cast<int>(w.n);
}

absl::StatusOr<size_t> FileData::Impl::ReadPinnedWindows(uint64_t ino, uint64_t file_size, uint64_t off,
                                                         uint64_t end, FileData::PagesReply reply) {
  const uint64_t npages = (end - 1) / ps - off / ps + 1;
  // At most FUSE's largest read, and a small part of the budget: pinned
  // pages cannot be reclaimed until the reply is written.
  if (npages > kReadWindowPages * kMaxPinnedWindows ||
      npages * cache.page_charge() > mm->budget().limit() / 16) {
    return absl::UnavailableError("too large to pin");
  }
  std::shared_ptr<FileState> fs = cache.FindFile(ino);
  if (!fs || !fs->extents_loaded.load(std::memory_order_acquire)) {
    return absl::UnavailableError("nothing cached");
  }
  PinnedWindow w[kMaxPinnedWindows];
  size_t nw = 0;
  auto unpin_all = [&] {
    for (size_t i = 0; i < nw; ++i) UnpinWindow(&w[i]);
  };
  iovec iov[kReadWindowPages * kMaxPinnedWindows];
  int count = 0;
  for (uint64_t pos = off; pos < end; ++nw) {
    const uint64_t win_end = std::min(end, (pos / ps + kReadWindowPages) * ps);
    // Never waits: a page missing or not yet read makes the caller copy.
    if (absl::Status s = PinWindow(fs.get(), pos, win_end, &w[nw], /*may_wait=*/false); !s.ok()) {
      unpin_all();
      return s;
    }
    count += WindowIovecs(w[nw], pos, pos, win_end, iov + count);
    pos = win_end;
  }
  const ReadaheadRange ra = PlanReadahead(fs.get(), file_size, off, end);
  if (ra.end > ra.first) Readahead(fs.get(), ra.first, ra.end);
  reply(iov, count);
  unpin_all();
  return end - off;
}

void FileData::Impl::UnpinWindow(PinnedWindow* w) {
  for (size_t i = 0; i < w->n; ++i) cache.Put(w->pages[i]);
  w->n = 0;
}

absl::Status FileData::Impl::PinWindow(FileState* fs, uint64_t off, uint64_t end, PinnedWindow* w,
                                       bool may_wait) {
  const uint64_t first = off / ps, last = (end - 1) / ps;
  const size_t n = last - first + 1;
  Page** pages = w->pages;
  // Pages present get a reference; the missing ones are charged at once,
  // with no lock held, then created locked.
  bool hit[kReadWindowPages];
  size_t missing = 0;
  {
    std::lock_guard<std::mutex> l(fs->mu);
    auto it = fs->pages.lower_bound(first);
    for (size_t i = 0; i < n; ++i) {
      if (it != fs->pages.end() && it->first == first + i) {
        it->second->Ref();
        pages[i] = it->second;
        hit[i] = true;
        ++it;
      } else {
        pages[i] = nullptr;
        hit[i] = false;
        ++missing;
      }
    }
  }
  auto put_all = [&] {
    for (size_t i = 0; i < n; ++i) {
      if (pages[i]) cache.Put(pages[i]);
    }
  };
  if (!may_wait) {
    bool ready = missing == 0;
    for (size_t i = 0; i < n && ready; ++i) ready = pages[i]->Test(kPageUptodate);
    if (!ready) {
      put_all();
      return absl::UnavailableError("pages not in the cache");
    }
  }
  if (missing > 0) {
    if (absl::Status s = mm->budget().Charge(uint64_t{missing} * cache.page_charge()); !s.ok()) {
      put_all();
      return ErrnoStatus(ENOMEM, "page cache: " + std::string(s.message()));
    }
    std::vector<PageRead> reads;
    size_t used = 0;
    bool oom = false;
    for (size_t i = 0; i < n && !oom; ++i) {
      if (pages[i]) continue;
      ++used;
      bool created = false;
      Page* p = cache.InsertCharged(fs, first + i, &created);
      if (!p) {
        oom = true;
        break;
      }
      pages[i] = p;
      if (created) reads.push_back({p, {}});
    }
    if (used < missing) mm->budget().Uncharge(uint64_t{missing - used} * cache.page_charge());
    {
      std::lock_guard<std::mutex> l(fs->mu);
      for (PageRead& r : reads) r.map = fs->extents.Lookup(r.page->index);
    }
    // Submitted even when giving up: pages born locked must be finished.
    SubmitPageReads(dev, &cache, std::move(reads), false);
    if (oom) {
      put_all();
      return ErrnoStatus(ENOMEM, "page cache: out of memory");
    }
  }

  absl::Status status;
  for (size_t i = 0; i < n; ++i) {
    Page* p = pages[i];
    (hit[i] ? cache.stats().hits : cache.stats().misses).fetch_add(1, std::memory_order_relaxed);
    if (status.ok() && !p->Test(kPageUptodate)) {
      // In flight (ours or readahead): its completion unlocks it.
      if (!LockPage(p)) {
        status = absl::DeadlineExceededError("page read did not finish");
      } else {
        if (!p->Test(kPageUptodate)) status = ReadPageSync(dev, &cache, p, Lookup(fs, p->index));
        p->Unlock();
      }
    }
    if (status.ok()) cache.MarkAccessed(p);
  }
  if (!status.ok()) {
    put_all();
    return status;
  }
  w->n = n;
  return absl::OkStatus();
}

void FileData::Impl::Readahead(FileState* fs, uint64_t first, uint64_t end) {
  std::vector<PageRead> reads;
  for (uint64_t i = first; i < end; ++i) {
    Page* p = cache.CreateForReadahead(fs, i);  // TryCharge: never reclaims
    if (!p) {
      std::lock_guard<std::mutex> l(fs->mu);
      if (!fs->pages.count(i)) break;  // out of room: stop the window here
      continue;
    }
    reads.push_back({p, {}});
  }
  if (reads.empty()) return;
  {
    std::lock_guard<std::mutex> l(fs->mu);
    for (PageRead& r : reads) r.map = fs->extents.Lookup(r.page->index);
  }
  cache.stats().readahead_pages.fetch_add(reads.size(), std::memory_order_relaxed);
  SubmitPageReads(dev, &cache, std::move(reads), true);
}

// ---- write --------------------------------------------------------------

absl::Status FileData::Impl::WriteOnePage(FileState* fs, uint64_t index, uint32_t from, uint32_t to,
                                          const char* src) {
  bool created = false;
  auto found = cache.FindOrCreate(fs, index, &created);  // may reclaim: no locks held
  if (!found.ok()) return ErrnoStatus(ENOMEM, "page cache: " + std::string(found.status().message()));
  Page* p = *found;
  if (!created && !LockPage(p)) {
    cache.Put(p);
    return absl::DeadlineExceededError("page lock wait timed out");
  }
  absl::Status s;
  // Stable pages: the buffer of a page under writeback is being written.
  if (!WaitWriteback(p)) {
    s = absl::DeadlineExceededError("writeback wait timed out");
  } else if (!p->Test(kPageAttached)) {
    s = absl::AbortedError("page was removed");  // cannot happen under the io lock
  } else {
    const ExtentMap::Mapping m = Lookup(fs, index);
    const bool needs_block = !m.mapped && !p->Test(kPageReserved);
    // Reserve before touching the data: on ENOSPC the page is unchanged.
    if (needs_block) s = alloc->Reserve(1);
    if (!s.ok()) {
      s = ErrnoStatus(ENOSPC, "no space for a new block");
    } else {
      const bool partial = from != 0 || to != ps;
      if (partial && !p->Test(kPageUptodate)) s = ReadPageSync(dev, &cache, p, m);
      if (!s.ok()) {
        if (needs_block) alloc->Unreserve(1);
      } else {
        std::memcpy(p->data + from, src, to - from);
        p->Set(kPageUptodate);
        if (needs_block) cache.SetReserved(p);
        cache.SetDirty(p);
        cache.MarkAccessed(p);
      }
    }
  }
  p->Unlock();
  cache.Put(p);
  return s;
}

absl::Status FileData::Impl::Write(uint64_t ino, uint64_t off, const char* data, size_t len) {
  if (len == 0) return absl::OkStatus();
  std::shared_ptr<FileState> fs = cache.GetFile(ino);
  if (absl::Status s = cache.EnsureExtents(fs.get()); !s.ok()) return s;
  const uint64_t end = off + len;
  absl::Status status;
  for (uint64_t pos = off; pos < end && status.ok();) {
    const uint64_t index = pos / ps;
    const uint32_t from = pos % ps;
    const uint32_t to = static_cast<uint32_t>(std::min<uint64_t>(ps, end - index * ps));
    status = WriteOnePage(fs.get(), index, from, to, data + (pos - off));
    pos = index * ps + to;
  }
  // Writers never write pages: over the limit they are paused instead.
  throttle.Balance();
  return status;
}

// ---- truncate, punch, preallocate --------------------------------------

absl::Status FileData::Impl::DropPages(FileState* fs, uint64_t first, uint64_t end) {
  absl::Status status;
  for (Page* p : cache.FindRange(fs, first, end)) {
    // Truncate is not reclaim: it may wait, bounded, for readers and IO.
    if (!LockPage(p)) {
      status = absl::DeadlineExceededError("page lock wait timed out");
    } else {
      if (!WaitWriteback(p)) {
        status = absl::DeadlineExceededError("writeback wait timed out");
      } else if (p->Test(kPageAttached)) {
        cache.ClearDirty(p);
        if (p->Test(kPageReserved)) {
          cache.ClearReserved(p);
          alloc->Unreserve(1);
        }
        cache.Detach(p);
      }
      p->Unlock();
    }
    cache.Put(p);
  }
  return status;
}

absl::Status FileData::Impl::ZeroInPage(FileState* fs, uint64_t index, uint32_t from, uint32_t to) {
  if (from >= to) return absl::OkStatus();
  Page* p = cache.Find(fs, index);
  bool created = false;
  if (!p) {
    // Not cached: only a written block holds bytes that must become zeros.
    const ExtentMap::Mapping m = Lookup(fs, index);
    if (!m.mapped || m.unwritten) return absl::OkStatus();
    auto found = cache.FindOrCreate(fs, index, &created);
    if (!found.ok()) return ErrnoStatus(ENOMEM, "page cache: " + std::string(found.status().message()));
    p = *found;
  }
  if (!created && !LockPage(p)) {
    cache.Put(p);
    return absl::DeadlineExceededError("page lock wait timed out");
  }
  absl::Status s;
  if (!WaitWriteback(p)) {
    s = absl::DeadlineExceededError("writeback wait timed out");
  } else {
    const ExtentMap::Mapping m = Lookup(fs, index);
    if (!p->Test(kPageUptodate)) s = ReadPageSync(dev, &cache, p, m);
    if (s.ok()) {
      std::memset(p->data + from, 0, to - from);
      // The block on disk still holds the old bytes: write the zeros.
      if (m.mapped && !m.unwritten) cache.SetDirty(p);
    }
  }
  p->Unlock();
  cache.Put(p);
  return s;
}

// Bytes past the end of file in its last block are not kept zero on disk (a
// shrink whose zeroing page was lost in a crash, a write that failed after
// its first page): before the file grows over them, they become zeros, and
// reach the disk before any commit can record the larger size (the caller
// raises the size after this returns).
absl::Status FileData::Impl::ZeroPastEof(const std::shared_ptr<FileState>& fs, uint64_t old_size,
                                         uint64_t new_end) {
  if (new_end <= old_size || old_size % ps == 0) return absl::OkStatus();
  const uint64_t index = old_size / ps;
  const uint64_t to = std::min<uint64_t>(ps, new_end - index * ps);
  if (absl::Status s = ZeroInPage(fs.get(), index, static_cast<uint32_t>(old_size % ps), static_cast<uint32_t>(to));
      !s.ok()) {
    return s;
  }
  return writeback.WriteRangeAndWait(fs, index, index + 1);
}

absl::Status FileData::Impl::CommitUnmap(FileState* fs, uint64_t first, uint64_t end) {
  storage::MetaStore::Batch batch;
  return meta->Commit(batch, false, [&](storage::MetaStore::Batch& b) -> absl::Status {
    records->AddInodeRecord(fs->ino, &b);
    ExtentDelta delta;
    std::vector<storage::BlockRun> freed;
    {
      std::lock_guard<std::mutex> l(fs->mu);
      if (first < end) fs->extents.Unmap(first, end, &delta, &freed);
    }
    delta.ApplyTo(fs->ino, &b);
    for (const auto& r : freed) alloc->Free(r, &b);
    return absl::OkStatus();
  });
}

// Zeroes the bytes of [off, end) in its partial first and last pages; the
// pages' other bytes stay.
absl::Status FileData::Impl::ZeroEdges(FileState* fs, uint64_t off, uint64_t end) {
  const uint64_t head = off / ps;
  if (off % ps) {
    const uint64_t to = std::min<uint64_t>(ps, end - head * ps);
    if (absl::Status s = ZeroInPage(fs, head, off % ps, static_cast<uint32_t>(to)); !s.ok()) return s;
  }
  const uint64_t tail = end / ps;
  if (end % ps && !(off % ps && tail == head)) return ZeroInPage(fs, tail, 0, end % ps);
  return absl::OkStatus();
}

absl::Status FileData::Impl::Shift(uint64_t ino, uint64_t off, uint64_t len, bool collapse,
                                   const std::function<void()>& set_size) {
  std::shared_ptr<FileState> fs = cache.GetFile(ino);
  if (absl::Status s = cache.EnsureExtents(fs.get()); !s.ok()) return s;
  const uint64_t first = off / ps, n = len / ps;
  // Pages are keyed by offset: the data that moves reaches its blocks first
  // and moves with its extents; the pages are dropped, not re-keyed. (A
  // collapsed range's pages are discarded unwritten.) Nothing dirties them
  // meanwhile: the caller holds the io lock exclusive.
  if (absl::Status s = writeback.WriteRangeAndWait(fs, collapse ? first + n : first, UINT64_MAX); !s.ok()) {
    return s;
  }
  if (absl::Status s = DropPages(fs.get(), first, UINT64_MAX); !s.ok()) return s;
  storage::MetaStore::Batch batch;
  return meta->Commit(batch, false, [&](storage::MetaStore::Batch& b) -> absl::Status {
    set_size();
    records->AddInodeRecord(ino, &b);
    ExtentDelta delta;
    std::vector<storage::BlockRun> freed;
    {
      std::lock_guard<std::mutex> l(fs->mu);
      if (collapse) {
        fs->extents.Collapse(first, n, &delta, &freed);
      } else {
        fs->extents.InsertHole(first, n, &delta);
      }
    }
    delta.ApplyTo(ino, &b);
    // Pending until the commit is durable, like a punched hole's blocks.
    for (const auto& r : freed) alloc->Free(r, &b);
    return absl::OkStatus();
  });
}

// ---- seek ---------------------------------------------------------------

bool FileData::Impl::IsData(FileState* fs, uint64_t block) {
  if (fs->extents.Lookup(block).mapped) return true;
  auto it = fs->pages.find(block);
  return it != fs->pages.end() &&
         it->second->Test(kPageDirty | kPageReserved | kPageWriteback);
}

// ---- FileData -----------------------------------------------------------

FileData::FileData(storage::MetaStore* meta, storage::Allocator* alloc, storage::BlockDevice* dev,
                   reclaim::MemoryManager* mm, InodeRecordSource* records, FileDataOptions options)
    : impl_(std::make_unique<Impl>(meta, alloc, dev, mm, records, options)) {}

FileData::~FileData() { Shutdown().IgnoreError(); }

absl::Status FileData::Start() {
  if (impl_->started) return absl::OkStatus();
  impl_->started = true;
  impl_->writeback.Start();
  impl_->mm->core().Register(&impl_->shrinker);
  // Direct reclaim that is still short kicks the flushers (it never writes).
  Writeback* wb = &impl_->writeback;
  impl_->mm->core().SetWritebackKicker([wb] { wb->Kick(); });
  return absl::OkStatus();
}

absl::Status FileData::Shutdown() {
  if (!impl_->started || impl_->shut_down) return absl::OkStatus();
  impl_->shut_down = true;
  impl_->writeback.StopController();
  absl::Status s = SyncAll();
  // No scan can run (and queue pageout work) after this returns.
  impl_->mm->core().Unregister(&impl_->shrinker);
  impl_->mm->core().SetWritebackKicker(nullptr);
  impl_->writeback.Stop();
  impl_->cache.DropAll();
  return s;
}

absl::StatusOr<size_t> FileData::Read(uint64_t ino, uint64_t file_size, uint64_t off, size_t len,
                                      char* out) {
  return impl_->Read(ino, file_size, off, len, out);
}

absl::StatusOr<size_t> FileData::ReadPinned(uint64_t ino, uint64_t file_size, uint64_t off,
                                             size_t len, PagesReply reply, bool may_wait) {
  return impl_->ReadPinned(ino, file_size, off, len, reply, may_wait);
}

absl::Status FileData::Write(uint64_t ino, uint64_t file_size, uint64_t off, const char* data,
                             size_t len) {
  if (off > file_size) {  // the gap from the old end of file reads as zeros
    std::shared_ptr<FileState> fs = impl_->cache.GetFile(ino);
    if (absl::Status s = impl_->cache.EnsureExtents(fs.get()); !s.ok()) return s;
    if (absl::Status s = impl_->ZeroPastEof(fs, file_size, off); !s.ok()) return s;
  }
  return impl_->Write(ino, off, data, len);
}

absl::Status FileData::Truncate(uint64_t ino, uint64_t old_size, uint64_t new_size) {
  if (new_size == old_size) return absl::OkStatus();
  Impl& d = *impl_;
  std::shared_ptr<FileState> fs = d.cache.GetFile(ino);
  if (absl::Status s = d.cache.EnsureExtents(fs.get()); !s.ok()) return s;
  // Growing leaves a hole, and zeros where the old last block ended.
  if (new_size > old_size) return d.ZeroPastEof(fs, old_size, new_size);
  const uint64_t first_drop = DivUp(new_size, d.ps);
  absl::Status s = d.DropPages(fs.get(), first_drop, UINT64_MAX);
  RECLAIMFS_SYNC_POINT("PageCache::Truncate:AfterDrop");
  if (s.ok() && new_size % d.ps) {
    s = d.ZeroInPage(fs.get(), new_size / d.ps, new_size % d.ps, d.ps);
  }
  if (!s.ok()) return s;
  return d.CommitUnmap(fs.get(), first_drop, UINT64_MAX);
}

absl::Status FileData::PunchHole(uint64_t ino, uint64_t file_size, uint64_t off, uint64_t len) {
  if (len == 0) return absl::OkStatus();
  Impl& d = *impl_;
  std::shared_ptr<FileState> fs = d.cache.GetFile(ino);
  if (absl::Status s = d.cache.EnsureExtents(fs.get()); !s.ok()) return s;
  const uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
  const uint64_t first_full = DivUp(off, d.ps), end_full = end / d.ps;
  absl::Status s;
  if (first_full < end_full) s = d.DropPages(fs.get(), first_full, end_full);
  // Partial pages at the edges keep their other bytes.
  if (s.ok()) s = d.ZeroEdges(fs.get(), off, end);
  if (!s.ok()) return s;
  return d.CommitUnmap(fs.get(), first_full, std::max(first_full, end_full));
}

absl::Status FileData::Preallocate(uint64_t ino, uint64_t off, uint64_t len) {
  if (len == 0) return absl::OkStatus();
  Impl& d = *impl_;
  std::shared_ptr<FileState> fs = d.cache.GetFile(ino);
  if (absl::Status s = d.cache.EnsureExtents(fs.get()); !s.ok()) return s;
  const uint64_t first = off / d.ps, end = DivUp(off + len, d.ps);

  // Holes: neither mapped nor promised a block by a dirty or in-flight page.
  struct Hole { uint64_t first, length, goal; };
  std::vector<Hole> holes;
  uint64_t total = 0;
  {
    std::lock_guard<std::mutex> l(fs->mu);
    for (uint64_t b = first; b < end;) {
      if (fs->extents.Lookup(b).mapped) {
        b = fs->extents.MappedEnd(b);
        continue;
      }
      auto it = fs->pages.find(b);
      if (it != fs->pages.end() && it->second->Test(kPageDirty | kPageReserved | kPageWriteback)) {
        ++b;
        continue;
      }
      if (!holes.empty() && holes.back().first + holes.back().length == b) {
        ++holes.back().length;
      } else {
        holes.push_back({b, 1, fs->extents.GoalFor(b)});
      }
      ++total;
      ++b;
    }
  }
  if (total == 0) return absl::OkStatus();
  if (!d.alloc->Reserve(total).ok()) return ErrnoStatus(ENOSPC, "no space to preallocate");

  struct Piece { uint64_t file_block; storage::BlockRun run; };
  std::vector<Piece> pieces;
  std::vector<storage::BlockRun> runs;
  uint64_t consumed = 0;
  for (const Hole& h : holes) {
    auto got = d.alloc->Allocate(h.length, h.goal, true);
    if (!got.ok()) {
      d.alloc->CancelAllocation(runs);
      d.alloc->Unreserve(total - consumed);
      return ErrnoStatus(ENOSPC, "no space to preallocate");
    }
    consumed += h.length;
    uint64_t fb = h.first;
    for (const auto& r : *got) {
      pieces.push_back({fb, r});
      runs.push_back(r);
      fb += r.length;
    }
  }
  storage::MetaStore::Batch batch;
  return d.meta->Commit(batch, false, [&](storage::MetaStore::Batch& b) -> absl::Status {
    d.records->AddInodeRecord(ino, &b);
    ExtentDelta delta;
    {
      std::lock_guard<std::mutex> l(fs->mu);
      for (const Piece& p : pieces) fs->extents.MapUnwritten(p.file_block, p.run.start, p.run.length, &delta);
    }
    delta.ApplyTo(ino, &b);
    d.alloc->CommitAllocation(runs, &b);
    return absl::OkStatus();
  });
}

absl::Status FileData::ZeroRange(uint64_t ino, uint64_t off, uint64_t len) {
  if (len == 0) return absl::OkStatus();
  Impl& d = *impl_;
  std::shared_ptr<FileState> fs = d.cache.GetFile(ino);
  if (absl::Status s = d.cache.EnsureExtents(fs.get()); !s.ok()) return s;
  const uint64_t end = off + len;
  const uint64_t first_full = DivUp(off, d.ps), end_full = end / d.ps;
  absl::Status s;
  if (first_full < end_full) s = d.DropPages(fs.get(), first_full, end_full);
  if (s.ok()) s = d.ZeroEdges(fs.get(), off, end);
  if (!s.ok()) return s;
  if (first_full < end_full) {
    // Whole blocks keep their disk blocks, now unwritten: no space is freed
    // and taken again, and a later write needs no new block.
    storage::MetaStore::Batch batch;
    s = d.meta->Commit(batch, false, [&](storage::MetaStore::Batch& b) -> absl::Status {
      d.records->AddInodeRecord(ino, &b);
      ExtentDelta delta;
      {
        std::lock_guard<std::mutex> l(fs->mu);
        fs->extents.MarkUnwritten(first_full, end_full, &delta);
      }
      delta.ApplyTo(ino, &b);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  // Holes (whole or at the edges) get unwritten blocks.
  return Preallocate(ino, off, len);
}

absl::Status FileData::CollapseRange(uint64_t ino, uint64_t off, uint64_t len,
                                     const std::function<void()>& set_size) {
  return impl_->Shift(ino, off, len, true, set_size);
}

absl::Status FileData::InsertRange(uint64_t ino, uint64_t off, uint64_t len,
                                   const std::function<void()>& set_size) {
  return impl_->Shift(ino, off, len, false, set_size);
}

absl::Status FileData::Sync(uint64_t ino, bool datasync) {
  Impl& d = *impl_;
  absl::Status status;
  if (std::shared_ptr<FileState> fs = d.cache.FindFile(ino)) {
    RECLAIMFS_SYNC_POINT("PageCache::Sync:BeforeWait");
    status = d.writeback.WriteAndWait(fs);
  }
  // Data durable first, then the metadata that points at it.
  absl::Status flushed = d.dev->Flush();
  if (status.ok()) status = flushed;
  storage::MetaStore::Batch batch;
  absl::Status committed = d.meta->Commit(batch, true, [&](storage::MetaStore::Batch& b) -> absl::Status {
    d.records->AddInodeRecord(ino, &b);
    return absl::OkStatus();
  });
  if (status.ok()) status = committed;
  return status;
}

absl::Status FileData::SyncAll() {
  Impl& d = *impl_;
  absl::Status status;
  for (auto& fs : d.cache.Files()) {
    if (fs->nr_dirty.load() == 0 && fs->nr_writeback.load() == 0) continue;
    absl::Status s = d.writeback.WriteAndWait(fs);
    if (status.ok()) status = s;
  }
  absl::Status s = d.dev->Flush();
  if (status.ok()) status = s;
  s = d.meta->SyncWal();
  if (status.ok()) status = s;
  return status;
}

absl::StatusOr<uint64_t> FileData::SeekData(uint64_t ino, uint64_t file_size, uint64_t off) {
  Impl& d = *impl_;
  if (off >= file_size) return ErrnoStatus(ENXIO);
  auto queried = d.QueryFile(ino);
  if (!queried.ok()) return queried.status();
  std::shared_ptr<FileState> fs = *std::move(queried);
  const uint64_t last = DivUp(file_size, d.ps);
  std::lock_guard<std::mutex> l(fs->mu);
  uint64_t b = off / d.ps;
  std::optional<uint64_t> found = fs->extents.NextMapped(b);
  for (auto it = fs->pages.lower_bound(b); it != fs->pages.end() && it->first < last; ++it) {
    if (found && it->first >= *found) break;
    if (it->second->Test(kPageDirty | kPageReserved | kPageWriteback)) {
      found = it->first;
      break;
    }
  }
  if (!found || *found >= last) return ErrnoStatus(ENXIO);
  const uint64_t pos = std::max(off, *found * d.ps);
  if (pos >= file_size) return ErrnoStatus(ENXIO);
  return pos;
}

absl::StatusOr<uint64_t> FileData::SeekHole(uint64_t ino, uint64_t file_size, uint64_t off) {
  Impl& d = *impl_;
  if (off >= file_size) return ErrnoStatus(ENXIO);
  auto queried = d.QueryFile(ino);
  if (!queried.ok()) return queried.status();
  std::shared_ptr<FileState> fs = *std::move(queried);
  const uint64_t last = DivUp(file_size, d.ps);
  std::lock_guard<std::mutex> l(fs->mu);
  uint64_t b = off / d.ps;
  while (b < last) {
    const uint64_t mapped_end = fs->extents.MappedEnd(b);
    if (mapped_end > b) {
      b = mapped_end;
      continue;
    }
    if (!d.IsData(fs.get(), b)) break;
    ++b;
  }
  return std::min(file_size, std::max(off, b * d.ps));
}

uint64_t FileData::AllocatedSectors(uint64_t ino) {
  Impl& d = *impl_;
  auto queried = d.QueryFile(ino);
  if (!queried.ok()) return 0;
  std::shared_ptr<FileState> fs = *std::move(queried);
  // Reserved first, then the rest under `mu`: writeback counts a block as
  // allocating (under `mu`) before it drops its reservation, and maps it in
  // the same critical section that stops counting it, so each block is seen
  // at least once (never zero blocks for a file being rewritten).
  uint64_t blocks = fs->nr_reserved.load();
  {
    std::lock_guard<std::mutex> l(fs->mu);
    blocks += fs->extents.BlockCount() + fs->nr_allocating.load();
  }
  return blocks * (d.ps / 512);
}

absl::Status FileData::Evict(uint64_t ino, bool nonblocking) {
  Impl& d = *impl_;
  std::shared_ptr<FileState> fs = d.cache.FindFile(ino);
  if (!fs) return absl::OkStatus();
  auto busy = [&] {
    std::lock_guard<std::mutex> l(fs->mu);
    for (auto& [index, p] : fs->pages) {
      if (p->Test(kPageDirty | kPageWriteback | kPageLocked | kPageReserved) || p->Refs() > 1) return true;
    }
    return false;
  };
  if (busy()) {
    if (nonblocking) return ErrnoStatus(EAGAIN, "inode data busy");
    // Not reclaim (the retry worker): write back and wait, bounded.
    if (absl::Status s = d.writeback.WriteAndWait(fs); !s.ok()) return s;
  }
  for (Page* p : d.cache.FindRange(fs.get(), 0, UINT64_MAX)) {
    const bool locked = nonblocking ? p->TryLock() : d.LockPage(p);
    if (locked) {
      // Ours and the index's references only; clean and idle.
      if (p->Test(kPageAttached) && !p->Test(kPageDirty | kPageWriteback | kPageReserved) &&
          p->Refs() == 2) {
        d.cache.Detach(p);
      }
      p->Unlock();
    }
    d.cache.Put(p);
  }
  {
    std::lock_guard<std::mutex> l(fs->mu);
    if (!fs->pages.empty()) return ErrnoStatus(EAGAIN, "inode data busy");
  }
  d.cache.RemoveFile(ino, fs.get());
  return absl::OkStatus();
}

void FileData::AdoptNewFile(uint64_t ino) {
  std::shared_ptr<FileState> fs = impl_->cache.GetFile(ino);
  std::lock_guard<std::mutex> l(fs->mu);
  fs->extents_loaded.store(true, std::memory_order_release);  // empty, as stored
}

absl::Status FileData::Deallocate(uint64_t ino, storage::MetaStore::Batch* batch) {
  Impl& d = *impl_;
  std::shared_ptr<FileState> fs = d.cache.GetFile(ino);
  if (absl::Status s = d.cache.EnsureExtents(fs.get()); !s.ok()) return s;
  // The file is gone: dirty data is discarded, reservations returned.
  if (absl::Status s = d.DropPages(fs.get(), 0, UINT64_MAX); !s.ok()) return s;
  absl::Status s = d.meta->Commit(*batch, false, [&](storage::MetaStore::Batch& b) -> absl::Status {
    ExtentDelta delta;
    std::vector<storage::BlockRun> freed;
    {
      std::lock_guard<std::mutex> l(fs->mu);
      fs->extents.Unmap(0, UINT64_MAX, &delta, &freed);
    }
    delta.ApplyTo(ino, &b);
    for (const auto& r : freed) d.alloc->Free(r, &b);
    return absl::OkStatus();
  });
  if (s.ok()) d.cache.RemoveFile(ino, fs.get());
  return s;
}

void FileData::SetTunables(const FileDataOptions& options) {
  impl_->readahead_bytes.store(options.readahead_bytes, std::memory_order_relaxed);
  impl_->throttle.SetTunables(options);
  impl_->writeback.SetTunables(options);
}

uint64_t FileData::DropCleanPages() {
  const uint64_t freed = impl_->cache.DropClean();
  impl_->cache.TrimPool();  // give the freed buffers back to the system
  return freed;
}

void FileData::KickWriteback() { impl_->writeback.Kick(); }

void FileData::TrimPool() { impl_->cache.TrimPool(); }

std::string FileData::StatsText() const {
  const Impl& d = *impl_;
  const PageCacheStats& st = d.cache.stats();
  std::string out;
  auto line = [&](const char* name, uint64_t v) { absl::StrAppendFormat(&out, "%s %d\n", name, v); };
  line("pagecache_page_size", d.ps);
  line("pagecache_pages", d.cache.pages());
  line("pagecache_dirty", d.cache.dirty_pages());
  line("pagecache_writeback", d.cache.writeback_pages());
  line("pagecache_active", d.cache.ActivePages());
  line("pagecache_inactive", d.cache.InactivePages());
  line("pagecache_pool_bytes", d.cache.pool_bytes());
  line("pagecache_hits", st.hits.load());
  line("pagecache_misses", st.misses.load());
  line("pagecache_readahead_pages", st.readahead_pages.load());
  line("pagecache_readahead_skipped", st.readahead_skipped.load());
  line("pagecache_read_ios", st.read_ios.load());
  line("pagecache_lock_timeouts", st.lock_timeouts.load());
  line("pagecache_writeback_waits", st.writeback_waits.load());
  line("pagecache_writeback_wait_timeouts", st.writeback_wait_timeouts.load());
  line("pagecache_shrink_scanned", st.shrink_scanned.load());
  line("pagecache_shrink_freed", st.shrink_freed.load());
  line("pagecache_shrink_busy", st.shrink_busy.load());
  line("pagecache_shrink_dirty", st.shrink_dirty.load());
  line("pagecache_shrink_rotated", st.shrink_rotated.load());
  line("pagecache_shrink_deactivated", st.shrink_deactivated.load());
  out += d.writeback.StatsText();
  line("writeback_throttle_pauses", d.throttle.pauses());
  line("writeback_throttle_us", d.throttle.paused_us());
  return out;
}

uint64_t FileData::page_size() const { return impl_->ps; }

}  // namespace reclaimfs::fs

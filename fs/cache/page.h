// A page of the buffer cache: one file block (page size == block size) with
// its state bits, reference count and buffer, plus the page lock and the wait
// queues that lock, writeback and read completion wake.
//
// State bits are atomic so reclaim can look without locking. Rules:
//  - kDirty and kWriteback are set only with the page locked; kWriteback is
//    cleared when IO and the metadata commit finish, without the lock.
//  - kAttached (the page is in its file's index) changes only with the page
//    locked, the file mutex and the LRU mutex held.
//  - A page is freed (and uncharged) when its last reference goes; the file
//    index holds one reference while the page is attached.
//
// Owns its flags and reference count; the buffer comes from the PagePool and
// the PageCache creates and frees pages. Any thread. Flag, reference and
// TryLock operations never wait; Lock and WaitWriteback sleep at most their
// timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace reclaimfs::fs {

struct FileState;

enum PageFlag : uint32_t {
  kPageUptodate = 1u << 0,    // buffer holds the file's data
  kPageDirty = 1u << 1,       // buffer is newer than the disk
  kPageWriteback = 1u << 2,   // a write of the buffer is in flight
  kPageLocked = 1u << 3,
  kPageReferenced = 1u << 4,  // accessed since the last LRU look
  kPageActive = 1u << 5,      // on the active list
  kPageLru = 1u << 6,         // on an LRU list (not isolated)
  kPageAttached = 1u << 7,    // in its file's index
  kPageReserved = 1u << 8,    // holds one reserved (delayed-allocation) block
  kPagePageout = 1u << 9,     // pageout work queued for it
  kPageReclaim = 1u << 10,    // reclaim wanted it: rotate to the inactive tail when clean
  kPageError = 1u << 11,      // the last read failed
  kPageWaiters = 1u << 12,    // someone sleeps on this page's wait queue
};

class Page {
 public:
  Page(FileState* file, uint64_t ino, uint64_t index, char* data)
      : file(file), ino(ino), index(index), data(data) {}
  Page(const Page&) = delete;
  Page& operator=(const Page&) = delete;

  uint32_t Flags() const { return flags_.load(std::memory_order_acquire); }
  bool Test(uint32_t f) const { return (Flags() & f) != 0; }
  // Return the previous value of the bit.
  bool Set(uint32_t f) { return (flags_.fetch_or(f, std::memory_order_acq_rel) & f) != 0; }
  bool Clear(uint32_t f) { return (flags_.fetch_and(~f, std::memory_order_acq_rel) & f) != 0; }

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  // True when this was the last reference: the caller frees the page.
  bool Unref() { return refs_.fetch_sub(1, std::memory_order_acq_rel) == 1; }
  int Refs() const { return refs_.load(std::memory_order_acquire); }

  // Page lock. TryLock never waits (reclaim); Lock waits up to `timeout`.
  bool TryLock();
  bool Lock(std::chrono::milliseconds timeout);
  void Unlock();
  // Waits until the page is not under writeback; false on timeout.
  bool WaitWriteback(std::chrono::milliseconds timeout);
  // Clears kWriteback and wakes waiters.
  void EndWriteback();

  FileState* const file;  // owner; valid while attached
  const uint64_t ino;
  const uint64_t index;
  char* const data;       // page_size bytes, aligned for direct IO
  std::atomic<int64_t> dirtied_at_ms{0};

  // LRU links, guarded by the LRU mutex.
  Page* lru_prev = nullptr;
  Page* lru_next = nullptr;

 private:
  // Waits until (flags & mask) == 0, bounded; sets kPageWaiters first.
  bool WaitClear(uint32_t mask, std::chrono::milliseconds timeout);
  void WakeWaiters();

  std::atomic<uint32_t> flags_{0};
  std::atomic<int> refs_{1};  // the creator's reference
};

int64_t NowMs();

}  // namespace reclaimfs::fs

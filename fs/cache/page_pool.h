// Page buffers, carved from 2 MiB anonymous mappings.
//
// Why not aligned_alloc: glibc serves a 4 KiB-aligned 4 KiB request by
// splitting a larger chunk, and the leftovers fragment the heap, so the
// memory really held can approach twice what the budget was charged. Here a
// buffer costs exactly one page: freed slots go on a free list (threaded
// through the slots themselves) and are reused before a new chunk is mapped,
// so the resident size of the pool never exceeds the largest number of pages
// that were in use at once, which the budget bounds, plus the unused rest of
// the newest chunk (under 2 MiB): a chunk is faulted in whole when it is
// mapped. Trim() gives wholly free chunks, and the memory of other free
// slots, back to the system (after the budget shrinks).
//
// Owns the chunks. Any thread: one mutex guards everything; Allocate may
// mmap a chunk, and Trim walks the free list and unmaps chunks, while holding
// it. Allocate faults a new chunk in after releasing it. Nothing else waits.
// The caller charges the budget; the pool does not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace reclaimfs::fs {

class PagePool {
 public:
  explicit PagePool(size_t page_size);
  ~PagePool();
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;

  // A page_size buffer aligned to page_size, or nullptr if the system has
  // no memory for a new chunk.
  void* Allocate();
  void Free(void* buf);
  // Unmaps chunks none of whose slots are in use, and gives the memory of
  // the other free slots back to the system (MADV_DONTNEED; the next use
  // of such a slot maps a zeroed page). Returns the chunks unmapped. Holds
  // the pool's mutex throughout: call it after the budget shrank, not often.
  size_t Trim();
  // Trim() if more than `min_free` slots are free and resident.
  size_t TrimIfSlack(size_t min_free);

  size_t chunks() const;
  size_t slots_in_use() const;
  uint64_t mapped_bytes() const;    // address space of the chunks
  uint64_t resident_bytes() const;  // the chunks, less the free slots given back

 private:
  static constexpr size_t kChunkBytes = 2u << 20;
  struct FreeSlot {
    FreeSlot* next;
  };
  char* MapChunk();
  uintptr_t ChunkOf(const void* p) const { return reinterpret_cast<uintptr_t>(p) & ~(kChunkBytes - 1); }

  const size_t page_size_;
  mutable std::mutex mu_;
  FreeSlot* free_ = nullptr;
  size_t free_count_ = 0;  // slots on free_
  // Free slots whose memory went back to the system: their own bytes cannot
  // hold the free-list link any more. At most one entry per slot of the
  // largest pool there was (8 bytes per 4 KiB page, outside the budget).
  std::vector<char*> discarded_;
  char* bump_ = nullptr;      // next never-used slot of the newest chunk
  char* bump_end_ = nullptr;
  std::unordered_map<uintptr_t, size_t> used_;  // chunk base -> slots in use
  size_t in_use_ = 0;
};

}  // namespace reclaimfs::fs

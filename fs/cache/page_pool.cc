// Page buffer pool: 2 MiB-aligned anonymous chunks, a free list, a bump pointer.
#include "fs/cache/page_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <vector>

namespace reclaimfs::fs {

PagePool::PagePool(size_t page_size) : page_size_(page_size) {}

PagePool::~PagePool() {
  for (const auto& [base, used] : used_) ::munmap(reinterpret_cast<void*>(base), kChunkBytes);
}

char* PagePool::MapChunk() {
  // Map twice the size and cut it down to an aligned chunk, so a slot's
  // chunk is found by masking its address.
  void* raw = ::mmap(nullptr, 2 * kChunkBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kChunkBytes - 1) & ~(kChunkBytes - 1);
  if (aligned > start) ::munmap(raw, aligned - start);
  const uintptr_t tail = aligned + kChunkBytes;
  const uintptr_t end = start + 2 * kChunkBytes;
  if (end > tail) ::munmap(reinterpret_cast<void*>(tail), end - tail);
  used_[aligned] = 0;
  return reinterpret_cast<char*>(aligned);
}

void* PagePool::Allocate() {
  char* slot = nullptr;
  char* fresh_chunk = nullptr;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (free_ != nullptr) {
      slot = reinterpret_cast<char*>(free_);
      free_ = free_->next;
      --free_count_;
    } else if (!discarded_.empty()) {
      slot = discarded_.back();
      discarded_.pop_back();
    } else {
      if (bump_ == bump_end_) {
        fresh_chunk = MapChunk();
        if (fresh_chunk == nullptr) return nullptr;
        bump_ = fresh_chunk;
        bump_end_ = fresh_chunk + kChunkBytes;
      }
      slot = bump_;
      bump_ += page_size_;
    }
    ++used_[ChunkOf(slot)];
    ++in_use_;
  }
  // Fault the whole chunk in at once, outside the mutex: one call instead of
  // a page fault on the first write to each of its slots (a fresh mount
  // writing a large file spent ~15% of its CPU in those faults). Others may
  // already be handing out and writing its slots: populating skips pages
  // that are present and changes no content. The chunk cannot be unmapped
  // meanwhile, our slot is in use. If it fails (no memory now), the slots
  // fault in one by one as before.
  if (fresh_chunk != nullptr) ::madvise(fresh_chunk, kChunkBytes, MADV_POPULATE_WRITE);
  return slot;
}

void PagePool::Free(void* buf) {
  if (buf == nullptr) return;
  std::lock_guard<std::mutex> l(mu_);
  auto* slot = static_cast<FreeSlot*>(buf);
  slot->next = free_;
  free_ = slot;
  ++free_count_;
  --used_[ChunkOf(buf)];
  --in_use_;
}

size_t PagePool::Trim() {
  std::lock_guard<std::mutex> l(mu_);
  const uintptr_t bump_chunk = bump_ ? ChunkOf(bump_ == bump_end_ ? bump_ - 1 : bump_) : 0;
  auto idle = [&](uintptr_t base) { return base != bump_chunk && used_[base] == 0; };
  // Free slots of chunks still in use: their pages go back to the system,
  // in runs of adjacent slots, and the slots wait in discarded_.
  std::vector<char*> released;
  released.reserve(free_count_);
  for (FreeSlot* s = free_; s != nullptr; s = s->next) {
    if (!idle(ChunkOf(s))) released.push_back(reinterpret_cast<char*>(s));
  }
  free_ = nullptr;
  free_count_ = 0;
  std::sort(released.begin(), released.end());
  for (size_t i = 0; i < released.size();) {
    size_t j = i + 1;
    while (j < released.size() && released[j] == released[j - 1] + page_size_) ++j;
    ::madvise(released[i], (j - i) * page_size_, MADV_DONTNEED);
    i = j;
  }
  discarded_.insert(discarded_.end(), released.begin(), released.end());
  // Chunks with no slot in use go altogether.
  std::vector<uintptr_t> unmap;
  for (const auto& [base, used] : used_) {
    if (used == 0 && base != bump_chunk) unmap.push_back(base);
  }
  if (unmap.empty()) return 0;
  std::erase_if(discarded_, [&](char* slot) { return idle(ChunkOf(slot)); });
  for (uintptr_t base : unmap) {
    used_.erase(base);
    ::munmap(reinterpret_cast<void*>(base), kChunkBytes);
  }
  return unmap.size();
}

size_t PagePool::TrimIfSlack(size_t min_free) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (free_count_ <= min_free) return 0;
  }
  return Trim();
}

uint64_t PagePool::mapped_bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return uint64_t{used_.size()} * kChunkBytes;
}

uint64_t PagePool::resident_bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return uint64_t{used_.size()} * kChunkBytes - uint64_t{discarded_.size()} * page_size_;
}

size_t PagePool::chunks() const {
  std::lock_guard<std::mutex> l(mu_);
  return used_.size();
}

size_t PagePool::slots_in_use() const {
  std::lock_guard<std::mutex> l(mu_);
  return in_use_;
}

}  // namespace reclaimfs::fs

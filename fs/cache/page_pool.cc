// Page buffer pool: 2 MiB-aligned anonymous chunks, a free list, a bump pointer.
#include "fs/cache/page_pool.h"

#include <sys/mman.h>

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
  std::lock_guard<std::mutex> l(mu_);
  char* slot = nullptr;
  if (free_ != nullptr) {
    slot = reinterpret_cast<char*>(free_);
    free_ = free_->next;
  } else {
    if (bump_ == bump_end_) {
      char* chunk = MapChunk();
      if (chunk == nullptr) return nullptr;
      bump_ = chunk;
      bump_end_ = chunk + kChunkBytes;
    }
    slot = bump_;
    bump_ += page_size_;
  }
  ++used_[ChunkOf(slot)];
  ++in_use_;
  return slot;
}

void PagePool::Free(void* buf) {
  if (buf == nullptr) return;
  std::lock_guard<std::mutex> l(mu_);
  auto* slot = static_cast<FreeSlot*>(buf);
  slot->next = free_;
  free_ = slot;
  --used_[ChunkOf(buf)];
  --in_use_;
}

size_t PagePool::Trim() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<uintptr_t> idle;
  const uintptr_t bump_chunk = bump_ ? ChunkOf(bump_ == bump_end_ ? bump_ - 1 : bump_) : 0;
  for (const auto& [base, used] : used_) {
    if (used == 0 && base != bump_chunk) idle.push_back(base);
  }
  if (idle.empty()) return 0;
  // Drop the idle chunks' slots from the free list, then unmap them.
  FreeSlot** link = &free_;
  while (*link != nullptr) {
    const uintptr_t base = ChunkOf(*link);
    if (used_[base] == 0 && base != bump_chunk) {
      *link = (*link)->next;
    } else {
      link = &(*link)->next;
    }
  }
  for (uintptr_t base : idle) {
    used_.erase(base);
    ::munmap(reinterpret_cast<void*>(base), kChunkBytes);
  }
  return idle.size();
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

// The inodes whose pages the kernel caches although their files are opened
// for direct IO: a shared mapping faulted them in. The kernel sends the
// READ that fills such a page without FUSE_READ_LOCKOWNER (a read(2) of a
// direct-IO file always carries it), and a FUSE_WRITE_CACHE write is the
// writeback of such a page. A direct write to one of these inodes must also
// reach the kernel's pages (FuseInvalidator::StoreThenReplyWrite): the
// kernel invalidates them before it sends the write, and a fault in between
// refills a page with the bytes from before the write.
#pragma once

#include <cstdint>
#include <mutex>

#include "absl/container/flat_hash_set.h"

namespace reclaimfs::fs {

class MappedFiles {
 public:
  void Mark(uint64_t ino) {
    std::lock_guard<std::mutex> lock(mu_);
    inodes_.insert(ino);
  }
  bool Contains(uint64_t ino) const {
    std::lock_guard<std::mutex> lock(mu_);
    return inodes_.contains(ino);
  }
  // The kernel evicted the inode, and its pages with it.
  void Forget(uint64_t ino) {
    std::lock_guard<std::mutex> lock(mu_);
    inodes_.erase(ino);
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return inodes_.size();
  }

 private:
  mutable std::mutex mu_;
  absl::flat_hash_set<uint64_t> inodes_;
};

}  // namespace reclaimfs::fs

// NamespaceLocks: the namespace locks (Inode::ns_mu) one operation holds,
// taken in the order fs/posix/namespace_ops.cc gives and released together.
//
// That order follows the tree (an ancestor before its descendants), and the
// tree changes: a directory locked as a parent in one rename may be locked
// as a child of another directory after a later rename. A lock-order checker
// that remembers every order it saw (ThreadSanitizer's) reports that as an
// inversion; it is not one, since no two operations hold the locks of a
// cycle at once while the tree has none (tests/tsan.supp names this file).
#pragma once

#include <mutex>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "fs/cache/inode.h"

namespace reclaimfs::fs {

class NamespaceLocks {
 public:
  // Locks inode (ignoring null and an inode already locked here).
  void Lock(Inode* inode) {
    if (inode == nullptr) return;
    for (const auto& held : held_) {
      if (held.mutex() == &inode->ns_mu) return;
    }
    held_.emplace_back(inode->ns_mu);
  }
  // Two inodes neither of which is an ancestor of the other.
  void LockInInoOrder(Inode* a, Inode* b) {
    if (a != nullptr && b != nullptr && b->ino < a->ino) std::swap(a, b);
    Lock(a);
    Lock(b);
  }

 private:
  absl::InlinedVector<std::unique_lock<std::mutex>, 4> held_;
};

}  // namespace reclaimfs::fs

// The in-memory inode: a small stub that lives as long as the kernel (or a
// request, an open file or the eviction queue) refers to the node id, and a
// heavy body (the inode record) that the inode-cache shrinker may drop and
// the cache reloads from the metadata store on demand.
//
// Owned by the InodeCache; any thread may use an inode while it holds a pin
// (InodeRef). ns_mu is the namespace lock (the POSIX layer's, like the
// kernel's inode lock); attr_mu is a leaf lock; io_mu is held across data IO,
// so reclaim only try_locks it.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "fs/cache/error_sequence.h"
#include "storage/format.h"

namespace reclaimfs::fs {

// The part that may be evicted. Fields are guarded by Inode::attr_mu.
struct InodeBody {
  storage::InodeRecord rec;
  // Every change of rec bumps version; a commit that persisted the record as
  // of version v raises persisted to v. Dirty bodies are never dropped.
  uint64_t version = 0;
  uint64_t persisted = 0;
  uint64_t charge = 0;  // bytes charged to the memory budget for this body
  // The file has no security.capability xattr (known since the body was
  // loaded), so a write need not look it up. Kept by the POSIX layer.
  bool no_caps = false;
  // The directory has no default ACL (known since the body was loaded), so
  // a create in it need not look one up. Kept by the POSIX layer.
  bool no_default_acl = false;
  bool dirty() const { return version != persisted; }
  // May the body be dropped and later reloaded from the store?
  bool clean() const { return !dirty(); }
  void Touch() { ++version; }
};

class Inode {
 public:
  explicit Inode(uint64_t ino) : ino(ino) {}
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;

  const uint64_t ino;

  // The namespace lock: held, across the commit, by operations that change
  // the names in this directory or the links of this inode. Taken parents
  // before children (see fs/posix/namespace_ops.cc); reclaim never takes it.
  std::mutex ns_mu;
  // A leaf lock: guards the body's fields. Never held across IO, a commit, a
  // memory charge or a call into FileData.
  std::mutex attr_mu;
  // The io lock: shared for reads, exclusive for writes, truncation, hole
  // punching and preallocation. Held across IO, so reclaim only try_locks it.
  std::shared_mutex io_mu;

  // Set while pinned; it only appears or disappears (under the cache mutex
  // and attr_mu) when no other thread holds a pin.
  std::unique_ptr<InodeBody> body;

  // Writeback errors of the file's data, for its open handles. In the stub,
  // which lives as long as any handle is open.
  ErrorSequence wb_err;

 private:
  friend class InodeCache;
  friend class InodeRef;

  // All guarded by the cache mutex.
  uint64_t lookups_ = 0;   // kernel references (FUSE lookup count)
  uint32_t opens_ = 0;     // open file handles
  uint32_t pins_ = 0;      // threads using the inode right now
  uint64_t epoch_ = 0;     // bumped on every pin: an evictor sees reuse
  bool unlinked_ = false;  // nlink reached 0: deallocate when unreferenced
  bool doomed_ = false;    // being deallocated: no new pins
  bool queued_ = false;    // in the eviction retry queue: kept off the LRU
  bool on_lru_ = false;
  std::list<Inode*>::iterator lru_pos_;
  // The dentry this node was last looked up under, for asking the kernel to
  // drop it (parent 0: unknown).
  uint64_t dentry_parent_ = 0;
  std::string dentry_name_;
};

}  // namespace reclaimfs::fs

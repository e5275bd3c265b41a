// The inode cache: one stub per live node id, bodies loaded from the metadata
// store on demand and charged to the memory budget, an LRU of idle bodies for
// the shrinker, and the reference counts (kernel lookups, opens, pins) that
// decide when a stub may go and when an unlinked inode may be deallocated.
//
// Rules: a thread uses an inode only while it holds a pin (an InodeRef). A
// pinned inode's body never disappears. A body is dropped only by a thread
// whose pin is the only one, with the body clean; a stub is dropped only when
// nothing refers to it. The kernel may send requests for any node whose
// lookup count is above zero, so such stubs always stay.
//
// Lock order: MetaStore commit lock -> cache mutex -> Inode::attr_mu. The
// cache mutex is never held across IO or a memory charge.
//
// Owns the stubs and bodies. Called by request threads, the eviction thread,
// the inode shrinker (reclaim) and the flushers (the POSIX layer's
// AddInodeRecord). Get may read the record from the metadata store and,
// with kMayReclaim, enter bounded direct reclaim, with no lock held;
// everything else takes only the cache mutex and attr_mu.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "fs/cache/inode.h"
#include "reclaim/memory_budget.h"
#include "storage/meta_store.h"

namespace reclaimfs::fs {

class InodeCache;

// A pin on an inode. Move-only; unpins when destroyed.
class InodeRef {
 public:
  InodeRef() = default;
  InodeRef(InodeRef&& other) noexcept { *this = std::move(other); }
  InodeRef& operator=(InodeRef&& other) noexcept;
  InodeRef(const InodeRef&) = delete;
  InodeRef& operator=(const InodeRef&) = delete;
  ~InodeRef() { reset(); }

  void reset();
  Inode* get() const { return inode_; }
  Inode* operator->() const { return inode_; }
  explicit operator bool() const { return inode_ != nullptr; }
  // The inode's epoch when this pin was taken.
  uint64_t epoch() const { return epoch_; }

 private:
  friend class InodeCache;
  InodeRef(InodeCache* cache, Inode* inode, uint64_t epoch)
      : cache_(cache), inode_(inode), epoch_(epoch) {}

  InodeCache* cache_ = nullptr;
  Inode* inode_ = nullptr;
  uint64_t epoch_ = 0;
};

struct InodeCacheCounters {
  uint64_t stubs = 0;
  uint64_t bodies = 0;
  uint64_t body_bytes = 0;
  uint64_t idle = 0;
  uint64_t loaded = 0;
  uint64_t evicted = 0;
  uint64_t hits = 0;
  uint64_t removed = 0;  // deallocated inodes dropped from the cache
};

// Reference counts of one inode at one moment.
struct InodeRefState {
  uint64_t lookups = 0;
  uint32_t opens = 0;
  uint32_t pins = 0;
  bool unlinked = false;
  bool referenced() const { return lookups > 0 || opens > 0; }
};

class InodeCache {
 public:
  // How a body load is charged: kMayReclaim may enter direct reclaim (only
  // with no filesystem locks held); kNoReclaim force-charges (a few hundred
  // bytes) for callers that hold the namespace lock.
  enum class ChargeMode { kMayReclaim, kNoReclaim };

  InodeCache(storage::MetaStore* meta, reclaim::MemoryBudget* budget);
  ~InodeCache();  // uncharges every body
  InodeCache(const InodeCache&) = delete;
  InodeCache& operator=(const InodeCache&) = delete;

  // Pins `ino`, loading its body if needed. ENOENT if there is no such inode
  // (or it is being deallocated), ENOMEM if the body cannot be charged.
  absl::StatusOr<InodeRef> Get(uint64_t ino, ChargeMode mode = ChargeMode::kMayReclaim);
  // Pins `ino` only if its body is cached; never loads or charges.
  InodeRef GetCached(uint64_t ino);
  // Caches the record of an inode whose creation was just committed (or
  // pins the body someone loaded meanwhile). Force-charged.
  InodeRef Install(const storage::InodeRecord& rec);

  // Kernel references. AddLookup also remembers the dentry for invalidation.
  void AddLookup(Inode* inode, uint64_t parent, std::string_view name);
  // Both return true when the inode is unlinked and now unreferenced: the
  // caller queues its deallocation (never does it itself).
  bool Forget(uint64_t ino, uint64_t n);
  void AddOpen(Inode* inode);
  bool ReleaseOpen(uint64_t ino);
  // Records that nlink reached 0; true if nothing refers to the inode.
  bool SetUnlinked(Inode* inode);
  // An unlinked inode got a name again (a tmpfile linked into the tree).
  void ClearUnlinked(Inode* inode);
  void SetDentry(Inode* inode, uint64_t parent, std::string_view name);
  void ClearDentry(Inode* inode);
  // The remembered dentry of a kernel-referenced inode, cleared so it is
  // asked for at most once per lookup.
  std::optional<std::pair<uint64_t, std::string>> TakeDentry(Inode* inode);
  InodeRefState State(Inode* inode);

  // Eviction. IsolateIdle pins up to n idle bodies from the LRU head.
  std::vector<InodeRef> IsolateIdle(size_t n);
  // Keeps the inode off the LRU while the retry queue owns its eviction.
  void SetQueued(Inode* inode, bool queued);
  // Drops the body if `ref` is the only pin, nobody pinned it since `ref`
  // was taken, and the body is clean; drops the stub too when nothing refers
  // to it. Consumes ref on success.
  bool DropBody(InodeRef& ref);
  // Deallocation: marks the inode doomed if unlinked, unreferenced and
  // pinned only by `ref`; Get fails for it from then on.
  bool Doom(InodeRef& ref);
  void Undoom(Inode* inode);
  // After deallocation: removes the doomed inode. Consumes ref.
  void Remove(InodeRef& ref);

  // A writeback of ino's data failed: its open handles will hear of it.
  void RecordWritebackError(uint64_t ino, int err);

  // Unlinked inodes not deallocated yet: those still open, and those the
  // kernel holds only by lookup (its FORGET is on its way).
  struct UnlinkedCounts {
    uint64_t open = 0;
    uint64_t closed = 0;
  };
  UnlinkedCounts Unlinked() const;

  // Pins every inode with a cached body (shutdown, remount).
  std::vector<InodeRef> PinAllBodies();

  // Without the cache mutex: reclaim's Count() must never wait for a lock.
  uint64_t idle_count() const { return idle_.load(std::memory_order_relaxed); }
  uint64_t body_bytes() const { return body_bytes_.load(std::memory_order_relaxed); }
  InodeCacheCounters counters() const;

 private:
  friend class InodeRef;

  static uint64_t ChargeFor(const storage::InodeRecord& rec);
  InodeRef PinLocked(Inode* inode);
  void Unpin(Inode* inode);
  void LruRemoveLocked(Inode* inode);
  void MaybeEraseLocked(Inode* inode);
  // Removes the body under mu_; returns its charge (uncharge without locks).
  uint64_t TakeBodyLocked(Inode* inode, std::unique_ptr<InodeBody>* out);

  storage::MetaStore* const meta_;
  reclaim::MemoryBudget* const budget_;

  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::unique_ptr<Inode>> stubs_;
  std::list<Inode*> lru_;  // idle bodies, least recently used first
  std::unordered_set<uint64_t> unlinked_;  // live stubs with unlinked_ set
  std::atomic<uint64_t> idle_{0};  // lru_.size(), written under mu_
  uint64_t bodies_ = 0;

  std::atomic<uint64_t> body_bytes_{0};
  std::atomic<uint64_t> loaded_{0};
  std::atomic<uint64_t> evicted_{0};
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> removed_{0};
};

}  // namespace reclaimfs::fs

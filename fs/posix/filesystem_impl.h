// The state behind Filesystem, shared by its source files (filesystem.cc:
// mount, unmount, attributes, eviction; namespace_ops.cc; file_ops.cc;
// xattr_ops.cc). Private to the POSIX layer; threads and blocking are
// Filesystem's (filesystem.h), plus the eviction thread running EvictWork.
//
// Locking, outermost first:
//   rename_mu (cross-directory renames, one at a time)
//   -> Inode::ns_mu of directories, parents before children (names added or
//      removed, held across the commit; see namespace_ops.cc)
//   -> Inode::ns_mu of the inodes whose links change (victim, link source,
//      rename source and target), in inode-number order
//   -> xattr_mu (xattr changes, held across their commit)
//   -> Inode::io_mu (held across data IO; reclaim only try_locks it)
//   -> MetaStore commit lock -> InodeCache mutex -> Inode::attr_mu (leaf).
// tmpfile_mu is a leaf too: held only to test or change the tmpfile set.
// Memory is charged only with none of these held, except the few hundred
// bytes of an inode body loaded under a namespace lock, which are
// force-charged.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fs/cache/dentry_invalidator.h"
#include "fs/cache/evict_queue.h"
#include "fs/cache/file_data.h"
#include "fs/cache/inode_cache.h"
#include "fs/cache/inode_shrinker.h"
#include "fs/posix/filesystem.h"
#include "fs/posix/handle_table.h"
#include "fs/posix/permissions.h"
#include "fs/posix/posix_acl.h"
#include "fs/posix/timestamps.h"
#include "reclaim/memory_manager.h"
#include "storage/allocator.h"
#include "storage/meta_store.h"
#include "storage/fault_injection.h"
#include "storage/uring_block_store.h"

namespace reclaimfs::fs {

// Largest file size: 16 TiB, so 1 TiB sparse files are comfortably inside.
inline constexpr uint64_t kMaxFileSize = 16ull << 40;
inline constexpr uint32_t kLinkMax = 65000;
inline constexpr size_t kSymlinkMax = 4095;
inline constexpr size_t kXattrNameMax = 255;
inline constexpr size_t kXattrValueMax = 64 * 1024;
inline constexpr std::string_view kCapabilityXattr = "security.capability";

struct Filesystem::Impl final : public InodeRecordSource {
  explicit Impl(const FilesystemOptions& opts);
  ~Impl() override;

  // Mount and unmount.
  absl::Status Start();
  absl::Status Stop();

  // InodeRecordSource: the writeback commit carries our current record.
  void AddInodeRecord(uint64_t ino, storage::MetaStore::Batch* batch) override;
  void OnWritebackError(uint64_t ino, int err) override;

  // --- helpers -----------------------------------------------------------
  absl::Status CheckWritable() const;  // EROFS on a read-only mount
  absl::StatusOr<InodeRef> Pin(uint64_t ino,
                               InodeCache::ChargeMode mode = InodeCache::ChargeMode::kMayReclaim);
  absl::StatusOr<InodeRef> PinDir(uint64_t ino,
                                  InodeCache::ChargeMode mode = InodeCache::ChargeMode::kMayReclaim);
  static storage::InodeRecord Rec(Inode* inode);
  // Changes a pinned inode's record in memory (under attr_mu), marking it dirty.
  template <typename F>
  static void Mutate(Inode* inode, F&& f) {
    std::lock_guard a(inode->attr_mu);
    f(inode->body->rec);
    inode->body->Touch();
  }
  Attributes AttrsOf(Inode* inode);
  // Commits `batch` together with the current records of `inodes` (pinned),
  // snapshot under the commit lock so records reach the store in the order
  // they changed in memory; marks them clean up to the snapshot.
  // after_writeback: the caller has finished the inodes' writeback (eviction,
  // unmount). FileData adds its records under the commit lock as well, so
  // either way records reach the store in the order they changed.
  absl::Status Commit(storage::MetaStore::Batch& batch, std::vector<Inode*> inodes, bool sync = false,
                      bool after_writeback = false);
  // Commit of a batch that creates an inode: adds the generation high-water
  // mark, read under the commit lock, so marks reach the store in order.
  absl::Status CommitNewInode(storage::MetaStore::Batch& batch, std::vector<Inode*> inodes);
  absl::Status CommitRecords(storage::MetaStore::Batch& batch, std::vector<Inode*> inodes, bool sync,
                             bool generation_mark);
  absl::Status PersistIfDirty(Inode* inode, bool sync, bool after_writeback = false);
  absl::Status PersistAllDirty(bool after_writeback);
  // With the io lock held exclusive: sets the size, truncating data, and
  // updates times (always when touch_always, else on a size change).
  absl::Status TruncateLocked(Inode* inode, uint64_t new_size, uint32_t caller_uid, bool touch_always);
  // Removes the file's security.capability xattr, if any, as a modification
  // of its data does on Linux. Takes xattr_mu: call with no io lock held.
  absl::Status DropCapabilities(Inode* inode);
  // A read found no security.capability: marks the body (no_caps) if that
  // still holds under xattr_mu. Takes xattr_mu.
  void NoteNoCapabilities(Inode* inode);
  // Creates an inode of `mode` (type and permission bits) named `name` in
  // `parent`; the result carries one lookup reference.
  absl::StatusOr<InodeRef> CreateNode(const RequestContext& ctx, uint64_t parent, std::string_view name,
                                      uint32_t mode, uint64_t rdev, std::string_view symlink);
  // Lookup of "." (the node itself) or ".." (a directory's parent) of any
  // node id, for the kernel decoding a file handle: ENOENT if the node is
  // gone. Adds a lookup reference like any lookup.
  absl::StatusOr<Attributes> LookupDot(uint64_t node, bool dotdot);
  // POSIX ACLs (acl_ops.cc). The stored ACL `name` of ino, empty when none.
  absl::StatusOr<Acl> LoadAcl(uint64_t ino, std::string_view name);
  // The default ACL of a pinned directory, remembering in its body that it
  // has none (SetAcl forgets that). Call with the directory's ns_mu held,
  // which a change of its default ACL takes too.
  absl::StatusOr<Acl> LoadDefaultAcl(Inode* dir);
  // A node just created has no xattrs but its inherited ACLs: writes need
  // not look for security.capability, creates in it for a default ACL
  // unless it inherited one.
  void MarkNewBody(Inode* inode, bool no_default_acl);
  // CheckAccess (permissions.h) honouring rec's access ACL; the ACL is read
  // only when it can matter (caller neither root nor owner, group bits set).
  absl::Status CheckPerm(const RequestContext& ctx, const storage::InodeRecord& rec, int mask);
  // setxattr (empty value: removal) of an ACL name: validates, keeps the
  // mode in sync with an access ACL, commits ACL and record together.
  absl::Status SetAcl(const RequestContext& ctx, Inode* inode, std::string_view name, std::string_view value,
                      int flags, bool removal);
  // chmod to `mode` with xattr_mu held: adds the access ACL, if any, updated
  // to the new bits, to `batch`.
  absl::Status ChmodAclLocked(uint64_t ino, uint32_t mode, storage::MetaStore::Batch* batch);
  // Owner, group and mode of a new node of `type` in `parent` (record prec)
  // and the access ACL it inherits: a default ACL on the parent replaces the
  // umask, and the node's access ACL is that default narrowed by the
  // requested mode (Linux posix_acl_create); new directories inherit the
  // default itself as well. Hold the parent's ns_mu until the node's
  // commit, so the parent's default ACL stays as read.
  struct NewNode {
    NewOwnership own;
    Acl access;          // to store with the node; empty: none
    Acl parent_default;  // the parent's default ACL; empty: none
  };
  absl::StatusOr<NewNode> PlanNewNode(const RequestContext& ctx, Inode* parent, const storage::InodeRecord& prec,
                                      uint32_t type, uint32_t perm);
  // Unlink (dir=false) or rmdir (dir=true) of parent/name.
  absl::Status RemoveName(const RequestContext& ctx, uint64_t parent, std::string_view name, bool dir);
  // After a failed commit: puts back the link fields a namespace operation
  // changed in memory (nlink, parent), leaving the rest alone.
  static void RestoreLinks(Inode* inode, const storage::InodeRecord& saved);
  // Read access: atime per the mount's policy (never on a read-only mount).
  void TouchAtime(Inode* inode);
  // Is `ancestor` the directory `dir` or one of its ancestors?
  absl::StatusOr<bool> IsAncestorOrSelf(uint64_t ancestor, uint64_t dir);
  // A generation for a new inode; its batch is committed with
  // CommitNewInode, which persists the raised high-water mark.
  uint64_t NewGeneration();

  // Eviction and deallocation.
  EvictQueue::Outcome EvictWork(uint64_t ino, bool final_pass);
  // Frees an unlinked inode's data, record, xattrs and orphan entry.
  absl::Status DeallocateOnDisk(uint64_t ino);
  absl::Status ReplayOrphans();
  absl::Status TrimPastEof(const std::unordered_map<uint64_t, uint64_t>& sizes);
  void QueueEviction(uint64_t ino);
  // Deallocates the unlinked files whose eviction is queued, waiting (bounded)
  // for it: called before answering ENOSPC or statfs, so that space a user
  // freed by deleting is there at once. No inode lock may be held.
  void ReclaimDeferredSpace();

  // --- state -------------------------------------------------------------
  const FilesystemOptions options;
  const AtimePolicy atime_policy;
  storage::Superblock sb;

  // Declared in construction order; destroyed in reverse.
  std::unique_ptr<storage::MetaStore> meta;
  std::unique_ptr<storage::UringBlockStore> dev;
  std::unique_ptr<storage::FaultInjectingDevice> faults;  // over dev, if enabled
  std::unique_ptr<storage::Allocator> alloc;
  std::unique_ptr<reclaim::MemoryManager> mm;
  std::unique_ptr<InodeCache> cache;
  std::unique_ptr<FileData> data;
  InodeRef root;  // pinned for the life of the mount
  std::unique_ptr<EvictQueue> evictq;
  std::unique_ptr<DentryInvalidator> invalidator;
  std::unique_ptr<InodeShrinker> shrinker;
  bool shrinker_registered = false;

  HandleTable handles;
  // Cross-directory renames run one at a time, so the tree's shape (which
  // directory is an ancestor of which) holds while one locks two parents.
  // Everything else changing names takes only Inode::ns_mu locks.
  std::mutex rename_mu;
  std::mutex xattr_mu;
  std::atomic<bool> read_only;

  // Tmpfiles never linked: Link may give these (nlink 0) a name. A leaf
  // lock; entries go when linked or deallocated.
  std::mutex tmpfile_mu;
  std::unordered_set<uint64_t> tmpfiles;

  std::atomic<uint64_t> inode_count{0};
  std::atomic<uint64_t> deallocations{0};
  std::atomic<uint64_t> orphans_replayed{0};
  std::atomic<uint64_t> dealloc_failures{0};
  std::atomic<uint64_t> next_generation{1};

  std::mutex shutdown_mu;
  bool stopped = false;
  absl::Status stop_status;
};

// Name checks shared by the operations.
absl::Status ValidateName(std::string_view name);
inline bool IsDotOrDotDot(std::string_view name) { return name == "." || name == ".."; }

}  // namespace reclaimfs::fs

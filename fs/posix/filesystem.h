// The POSIX layer: namespace and attribute semantics over the metadata store,
// the inode cache and FileData. Independent of FUSE: unit tests drive it
// directly and fs/fuse/ translates requests and errno. Node ids are inode
// numbers (root = 1). Every call that returns Attributes for a new reference
// (Lookup, Mknod, Mkdir, Symlink, Link, Create, accepted readdirplus entries)
// adds one to the node's lookup count, which Forget() takes back.
//
// Owns, for the life of the mount, the store, the memory manager (and its
// kswapd), the caches, FileData, the open handles, and the eviction and
// dentry-invalidation threads.
// Threads: the FUSE request threads call any operation concurrently; the
// control-socket thread calls StatsText, SetFaultRules, DropCaches and
// WaitWithinBudget, and it or the reload thread calls Retune (one at a
// time); the metrics HTTP thread calls StatsText; SetReadOnly runs
// on the mount watcher's thread (or the control-socket thread); Open and
// Shutdown run on the main thread with no request in flight. Blocking:
// operations read and commit metadata, may enter bounded direct reclaim and
// wait for data IO (fs/cache/file_data.h); Write may be paused by the dirty
// throttle; Fsync, SetReadOnly(true) and Shutdown wait for writeback; Write
// and Fallocate (before answering ENOSPC) and StatFs wait up to about 5 s
// for queued deallocations; Open waits up to lock_wait_ms for a previous
// daemon to release the store.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fs/cache/file_data.h"
#include "reclaim/memory_manager.h"
#include "storage/format.h"
#include "storage/meta_store.h"
#include "storage/uring_block_store.h"

namespace reclaimfs::fs {

inline constexpr size_t kNameMax = 255;

struct RequestContext {
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t pid = 0;
  uint32_t umask = 022;
  std::vector<uint32_t> groups;  // supplementary groups, if known
  // When groups were not fetched up front: fetches them (the ACL check
  // calls it only when a group entry decides).
  std::function<std::vector<uint32_t>()> load_groups;
  // Once idmapped mounts are allowed, the kernel sends no ids for requests
  // that create nothing (FUSE_INVALID_UIDGID), on every mount of the
  // filesystem, and has checked their permissions itself (default_
  // permissions): the permission checks then pass (Privileged). uid and gid
  // are then the calling thread's fs ids as /proc shows them, for the rules
  // that depend on who the caller is (set-gid clearing, root-only FITRIM).
  bool kernel_checked = false;
};

struct Attributes {
  uint64_t ino = 0;
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint32_t uid = 0, gid = 0;
  uint64_t rdev = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;   // 512-byte units
  uint32_t blksize = 4096;
  uint64_t generation = 0;
  storage::Timespec atime, mtime, ctime;
  storage::Timespec btime;  // creation; statx only
  void ToStat(struct stat* st) const;
};

struct SetAttrRequest {
  std::optional<uint32_t> mode;
  std::optional<uint32_t> uid, gid;
  std::optional<uint64_t> size;
  // Times: a value, or "now". ctime is always updated on change.
  std::optional<storage::Timespec> atime, mtime;
  bool atime_now = false, mtime_now = false;
  std::optional<uint64_t> fh;  // ftruncate etc.
};

// What a write takes away besides changing data, as Linux's
// file_remove_privs does on a write by the caller.
struct WritePrivs {
  // The writer lacks CAP_FSETID: clear S_ISUID, and S_ISGID when S_IXGRP is set.
  bool kill_suidgid = false;
  // Remove security.capability (whoever writes). False for data written back
  // from a kernel cache, whose write(2) already had it removed.
  bool kill_caps = true;
  // Out: set when the write cleared set-id bits, so whoever caches the
  // file's attributes (the kernel) knows its copy of the mode is stale.
  bool* cleared_setid = nullptr;
};

struct OpenFile {
  uint64_t fh = 0;
  bool direct_io = true;   // bypass the kernel page cache (default)
  bool keep_cache = false;
};

struct DirListEntry {
  std::string name;
  uint64_t ino = 0;
  uint32_t type = 0;          // S_IFMT bits
  uint64_t next_offset = 0;   // pass back to ReadDir to continue after this entry
  Attributes attr;            // filled when plus == true
};

struct FsStats {
  uint64_t block_size = 4096;
  uint64_t blocks = 0, blocks_free = 0, blocks_avail = 0;
  uint64_t files = 0, files_free = 0;
  uint64_t name_max = kNameMax;
};

struct FilesystemOptions {
  std::string store_dir;
  bool read_only = false;
  // With read_only: skip the repairs of a mount after a crash (orphan replay,
  // trimming written blocks past EOF), which write to the store.
  bool no_recovery = false;
  bool kernel_cache = false;        // false: FOPEN_DIRECT_IO on every open file
  bool atime = true;                // false: noatime
  bool relatime = true;             // atime only if older than mtime/ctime or 1 day
  // false (noacl): the ACL xattrs are refused (EOPNOTSUPP) and ACLs stored
  // by an earlier mount are ignored: mode bits decide, creates apply the
  // umask, nothing is inherited.
  bool acl = true;
  reclaim::MemoryOptions memory;
  storage::MetaOptions meta;
  storage::UringOptions uring;
  FileDataOptions data;
  double inode_cache_fraction = 0.25;  // share of the budget the inode cache may hold before its shrinker bites
  // For tests: IO goes through a FaultInjectingDevice whose rules
  // SetFaultRules changes (storage/fault_injection.h).
  bool fault_injection = false;
};

class Filesystem {
 public:
  // Opens the store (clear errors for missing/corrupt/locked), checks the
  // superblock, replays orphans (frees unlinked-but-open inodes left by a
  // crash), starts kswapd, flushers and the eviction retry thread.
  static absl::StatusOr<std::unique_ptr<Filesystem>> Open(const FilesystemOptions& options);
  ~Filesystem();  // Shutdown() if not done

  // Writes back everything, waits for queued evictions, closes the store.
  absl::Status Shutdown();

  absl::StatusOr<Attributes> Lookup(const RequestContext& ctx, uint64_t parent, std::string_view name);
  void Forget(uint64_t ino, uint64_t nlookup);
  absl::StatusOr<Attributes> GetAttr(uint64_t ino);
  absl::StatusOr<Attributes> SetAttr(const RequestContext& ctx, uint64_t ino, const SetAttrRequest& req);

  absl::StatusOr<Attributes> Mknod(const RequestContext& ctx, uint64_t parent, std::string_view name,
                                   uint32_t mode, uint64_t rdev);
  absl::StatusOr<Attributes> Mkdir(const RequestContext& ctx, uint64_t parent, std::string_view name,
                                   uint32_t mode);
  absl::StatusOr<Attributes> Symlink(const RequestContext& ctx, uint64_t parent, std::string_view name,
                                     std::string_view target);
  absl::StatusOr<std::string> Readlink(uint64_t ino);
  // ENOENT for a file whose last name is gone, except a Tmpfile not yet
  // linked: that one gets its first name (and stops being an orphan).
  absl::StatusOr<Attributes> Link(const RequestContext& ctx, uint64_t ino, uint64_t new_parent,
                                  std::string_view new_name);
  absl::Status Unlink(const RequestContext& ctx, uint64_t parent, std::string_view name);
  absl::Status Rmdir(const RequestContext& ctx, uint64_t parent, std::string_view name);
  // flags: 0, RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT (alone or
  // with NOREPLACE; root only): the source name is left to a new whiteout,
  // a character device 0/0 of mode 0, in the rename's one commit. EXCHANGE
  // with NOREPLACE or WHITEOUT: EINVAL.
  absl::Status Rename(const RequestContext& ctx, uint64_t parent, std::string_view name,
                      uint64_t new_parent, std::string_view new_name, unsigned flags);

  absl::StatusOr<OpenFile> Open(const RequestContext& ctx, uint64_t ino, int flags);
  absl::StatusOr<std::pair<Attributes, OpenFile>> Create(const RequestContext& ctx, uint64_t parent,
                                                         std::string_view name, uint32_t mode, int flags);
  // O_TMPFILE: an open regular file in `parent`'s filesystem with no name
  // (nlink 0), mode and umask as Create. It is an orphan from birth, freed
  // when closed and forgotten (or at the next mount after a crash), unless
  // Link gives it a name first. Adds a lookup reference and an open handle.
  absl::StatusOr<std::pair<Attributes, OpenFile>> Tmpfile(const RequestContext& ctx, uint64_t parent,
                                                          uint32_t mode, int flags);
  absl::StatusOr<size_t> Read(uint64_t ino, uint64_t fh, uint64_t off, size_t size, char* buf);
  // Read without a copy: `reply` gets iovecs into the cached pages and must
  // send them before it returns (FileData::ReadPinned); it runs under the
  // inode's shared io lock, so it must not call back into this filesystem.
  // Not called on error. With may_wait false it never waits (for IO, a
  // page or the io lock): Unavailable means "ask again where you may wait".
  absl::StatusOr<size_t> ReadPinned(uint64_t ino, uint64_t fh, uint64_t off, size_t size,
                                    FileData::PagesReply reply, bool may_wait = true);
  // O_APPEND handles write at the current end of file.
  absl::StatusOr<size_t> Write(uint64_t ino, uint64_t fh, uint64_t off, const char* data, size_t size,
                               WritePrivs privs = {});
  absl::Status Flush(uint64_t ino, uint64_t fh);
  absl::Status Release(uint64_t ino, uint64_t fh);
  absl::Status Fsync(uint64_t ino, uint64_t fh, bool datasync);

  absl::StatusOr<uint64_t> OpenDir(const RequestContext& ctx, uint64_t ino, int flags);
  // Entries after `offset` (0 = start; "." and ".." come first). fn returns
  // false when the caller's buffer is full; that entry is not consumed and,
  // for plus, gets no lookup reference.
  absl::Status ReadDir(const RequestContext& ctx, uint64_t ino, uint64_t fh, uint64_t offset, bool plus,
                       const std::function<bool(const DirListEntry&)>& fn);
  absl::Status ReleaseDir(uint64_t ino, uint64_t fh);
  absl::Status FsyncDir(uint64_t ino, uint64_t fh, bool datasync);

  absl::StatusOr<FsStats> StatFs();

  // flags: XATTR_CREATE / XATTR_REPLACE.
  absl::Status SetXattr(const RequestContext& ctx, uint64_t ino, std::string_view name,
                        std::string_view value, int flags);
  absl::StatusOr<std::string> GetXattr(uint64_t ino, std::string_view name);
  absl::StatusOr<std::vector<std::string>> ListXattr(uint64_t ino);
  absl::Status RemoveXattr(const RequestContext& ctx, uint64_t ino, std::string_view name);

  // mask: F_OK / R_OK|W_OK|X_OK, checked against ctx.
  absl::Status Access(const RequestContext& ctx, uint64_t ino, int mask);
  // mode: 0 or ZERO_RANGE (each with or without KEEP_SIZE),
  // PUNCH_HOLE|KEEP_SIZE, COLLAPSE_RANGE, INSERT_RANGE; other combinations
  // EOPNOTSUPP. Collapse and insert need block-aligned off and len (EINVAL),
  // a collapse must end before EOF and an insert start before it (EINVAL);
  // their shift and size change reach the store in one commit.
  absl::Status Fallocate(const RequestContext& ctx, uint64_t ino, uint64_t fh, int mode, uint64_t off,
                         uint64_t len);
  // Inode flags (chattr): FS_*_FL bits of <linux/fs.h>, enforced here
  // (immutable, append-only, noatime; fs/posix/inode_flags.h). SetFlags:
  // EOPNOTSUPP for unknown flags, EPERM unless owner or root, and unless
  // root for immutable/append-only.
  absl::StatusOr<uint32_t> GetFlags(uint64_t ino);
  absl::Status SetFlags(const RequestContext& ctx, uint64_t ino, uint32_t flags);

  // FITRIM: gives the free space in the byte range [start, start+len) back to
  // the store under the data file (hole punches), in runs of at least minlen
  // bytes; returns the bytes discarded. Root only (EPERM); EROFS read-only;
  // EINVAL for a start past the end, a len under a block or a minlen over
  // the size; EOPNOTSUPP if the store cannot discard. fs/posix/trim.cc.
  absl::StatusOr<uint64_t> Trim(const RequestContext& ctx, uint64_t start, uint64_t len, uint64_t minlen);

  // SEEK_SET/CUR/END are the kernel's; this answers SEEK_DATA and SEEK_HOLE.
  absl::StatusOr<uint64_t> Lseek(uint64_t ino, uint64_t fh, uint64_t off, int whence);

  // Remount read-only / read-write (the kernel enforces EROFS on writes; this
  // flushes and records the state).
  absl::Status SetReadOnly(bool read_only);
  // Replaces the fault-injection rules (text form of storage/
  // fault_injection.h; empty clears them). FailedPrecondition unless the
  // filesystem was opened with fault_injection.
  absl::Status SetFaultRules(std::string_view rules);

  // Live tuning (control socket, SIGHUP; the caller serialises calls):
  // applies the fields of `options` that may change while mounted: the
  // cache budget and watermarks, the metadata budgets, FileData's tunables
  // and the inode cache's share. A smaller budget wakes kswapd and the
  // flushers; the rest of `options` is ignored. Never blocks.
  void Retune(const FilesystemOptions& options);
  // Waits at most `bound` until the cache fits its budget (used <= limit),
  // keeping kswapd and the flushers going; then returns unused buffer
  // memory to the system. True if it fits.
  bool WaitWithinBudget(std::chrono::milliseconds bound);
  // drop_caches: frees clean idle pages and/or idle inode bodies; dirty
  // data and dirty records stay (a dirty record is queued for writing and
  // eviction). Never waits for IO.
  struct DropCounts {
    uint64_t pages = 0;
    uint64_t inodes = 0;
  };
  DropCounts DropCaches(bool pages, bool inodes);

  // Statistics text for the control socket: memory, reclaim, page cache,
  // inode cache, writeback, eviction counters, one "name value" per line.
  std::string StatsText() const;
  reclaim::MemoryManager& memory();

  // Ids of nodes whose kernel dentries the inode-cache shrinker would like
  // dropped; the FUSE adapter sends fuse_lowlevel_notify_inval_entry for them
  // from a worker thread (never from a request thread).
  struct InvalRequest { uint64_t parent; std::string name; };
  void SetInvalidator(std::function<void(const InvalRequest&)> invalidate);

 private:
  Filesystem();
  // The common part of the reads: checks the handle, pins the inode and
  // calls read(file size) under its shared io lock, then touches atime.
  absl::Status ReadWith(uint64_t ino, uint64_t fh, absl::FunctionRef<absl::Status(uint64_t)> read,
                        bool may_wait = true);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reclaimfs::fs

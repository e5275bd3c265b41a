// File operations: open and create, read and write (through FileData, under
// the inode's io lock: shared for reads, exclusive for changes, so different
// files run in parallel), fsync, fallocate, SEEK_DATA/SEEK_HOLE, and
// attribute changes including truncation.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <shared_mutex>

#include "fs/cache/errno_status.h"
#include "fs/posix/filesystem.h"
#include "fs/posix/filesystem_impl.h"
#include "fs/posix/inode_flags.h"
#include "fs/posix/permissions.h"
#include "fs/posix/status_macros.h"

namespace reclaimfs::fs {

using storage::InodeRecord;

namespace {

// The handle `fh` of inode `ino`, or EBADF.
absl::StatusOr<Handle> FileHandle(const HandleTable& handles, uint64_t ino, uint64_t fh) {
  std::optional<Handle> h = handles.Get(fh);
  if (!h || h->ino != ino || h->dir) return ErrnoStatus(EBADF);
  return *h;
}

}  // namespace

absl::Status Filesystem::Impl::TruncateLocked(Inode* inode, uint64_t new_size, uint32_t caller_uid,
                                              bool touch_always) {
  uint64_t old_size;
  {
    std::lock_guard a(inode->attr_mu);
    old_size = inode->body->rec.size;
  }
  if (new_size > old_size) {
    // Growing: FileData zeroes the old last block's tail on disk first; only
    // then may a commit carry the larger size.
    RFS_RETURN_IF_ERROR(data->Truncate(inode->ino, old_size, new_size));
    Mutate(inode, [&](InodeRecord& r) { r.size = new_size; });
  } else if (new_size < old_size) {
    // The new size is in memory first, so the record FileData commits with
    // the freed extents already carries it.
    Mutate(inode, [&](InodeRecord& r) { r.size = new_size; });
    if (absl::Status s = data->Truncate(inode->ino, old_size, new_size); !s.ok()) {
      Mutate(inode, [&](InodeRecord& r) { r.size = old_size; });
      return s;
    }
  }
  if (new_size != old_size || touch_always) {
    const storage::Timespec now = Now();
    Mutate(inode, [&](InodeRecord& r) {
      r.mtime = r.ctime = now;
      if (caller_uid != 0) r.mode = KillSuid(r.mode);
    });
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Open and create

absl::StatusOr<OpenFile> Filesystem::Open(const RequestContext& ctx, uint64_t ino, int flags) {
  Impl& s = *impl_;
  const int acc = flags & O_ACCMODE;
  if (acc != O_RDONLY && acc != O_WRONLY && acc != O_RDWR) return ErrnoStatus(EINVAL, "bad access mode");
  const bool trunc = (flags & O_TRUNC) != 0;
  RFS_ASSIGN_OR_RETURN(InodeRef ref, s.Pin(ino));
  const InodeRecord rec = Impl::Rec(ref.get());
  if (S_ISDIR(rec.mode) && (acc != O_RDONLY || trunc)) return ErrnoStatus(EISDIR);
  if (S_ISLNK(rec.mode)) return ErrnoStatus(ELOOP);
  int mask = 0;
  // The kernel opens a file it is about to execute with __FMODE_EXEC; that
  // open needs execute permission, not read (a mode --x file may be run).
  constexpr int kFmodeExec = 0x20;
  if (flags & kFmodeExec) {
    mask |= X_OK;
  } else if (acc == O_RDONLY || acc == O_RDWR) {
    mask |= R_OK;
  }
  if (acc == O_WRONLY || acc == O_RDWR || trunc) mask |= W_OK;
  if ((mask & W_OK) && !S_ISFIFO(rec.mode) && !S_ISSOCK(rec.mode) && !S_ISCHR(rec.mode) &&
      !S_ISBLK(rec.mode)) {
    RFS_RETURN_IF_ERROR(s.CheckWritable());
  }
  RFS_RETURN_IF_ERROR(s.CheckPerm(ctx, rec, mask));
  if (mask & W_OK) {
    if (IsImmutable(rec)) return ErrnoStatus(EPERM, "immutable file");
    if (IsAppendOnly(rec) && (trunc || !(flags & O_APPEND))) return ErrnoStatus(EPERM, "append-only file");
  }
  if (trunc && S_ISREG(rec.mode)) {
    {
      std::unique_lock io(ref->io_mu);
      RFS_RETURN_IF_ERROR(s.TruncateLocked(ref.get(), 0, ctx.uid, /*touch_always=*/true));
    }
    RFS_RETURN_IF_ERROR(s.PersistIfDirty(ref.get(), false));
  }
  OpenFile of;
  of.fh = s.handles.Add(Handle{ino, flags, ctx.uid, ctx.gid, /*dir=*/false, ref->wb_err.Sample()});
  of.direct_io = !s.options.kernel_cache;
  of.keep_cache = s.options.kernel_cache;
  s.cache->AddOpen(ref.get());
  return of;
}

absl::StatusOr<std::pair<Attributes, OpenFile>> Filesystem::Create(const RequestContext& ctx, uint64_t parent,
                                                                   std::string_view name, uint32_t mode,
                                                                   int flags) {
  Impl& s = *impl_;
  const int acc = flags & O_ACCMODE;
  if (acc != O_RDONLY && acc != O_WRONLY && acc != O_RDWR) return ErrnoStatus(EINVAL, "bad access mode");
  absl::StatusOr<InodeRef> created = s.CreateNode(ctx, parent, name, S_IFREG | (mode & 07777), 0, {});
  if (!created.ok()) {
    // Someone else created it first: without O_EXCL this is an open.
    if (ToErrno(created.status()) != EEXIST || (flags & O_EXCL) || IsDotOrDotDot(name)) {
      return created.status();
    }
    RFS_ASSIGN_OR_RETURN(Attributes attr, Lookup(ctx, parent, name));
    if (S_ISDIR(attr.mode)) {
      Forget(attr.ino, 1);
      return ErrnoStatus(EISDIR);
    }
    absl::StatusOr<OpenFile> of = Open(ctx, attr.ino, flags & ~(O_CREAT | O_EXCL));
    if (!of.ok()) {
      Forget(attr.ino, 1);
      return of.status();
    }
    RFS_ASSIGN_OR_RETURN(attr, GetAttr(attr.ino));
    return std::make_pair(attr, *of);
  }
  InodeRef ref = std::move(*created);
  if (s.data) s.data->AdoptNewFile(ref->ino);
  // The creator may open the new file as asked, whatever its mode says.
  OpenFile of;
  of.fh = s.handles.Add(Handle{ref->ino, flags, ctx.uid, ctx.gid, /*dir=*/false, ref->wb_err.Sample()});
  of.direct_io = !s.options.kernel_cache;
  of.keep_cache = s.options.kernel_cache;
  s.cache->AddOpen(ref.get());
  return std::make_pair(s.AttrsOf(ref.get()), of);
}

absl::StatusOr<std::pair<Attributes, OpenFile>> Filesystem::Tmpfile(const RequestContext& ctx, uint64_t parent,
                                                                    uint32_t mode, int flags) {
  Impl& s = *impl_;
  const int acc = flags & O_ACCMODE;
  if (acc != O_WRONLY && acc != O_RDWR) return ErrnoStatus(EINVAL, "O_TMPFILE needs write access");
  RFS_RETURN_IF_ERROR(s.CheckWritable());
  RFS_ASSIGN_OR_RETURN(InodeRef dir, s.PinDir(parent));
  InodeRef ref;
  {
    std::lock_guard ns(dir->ns_mu);
    const InodeRecord prec = Impl::Rec(dir.get());
    if (prec.nlink == 0) return ErrnoStatus(ENOENT, "directory was removed");
    RFS_RETURN_IF_ERROR(s.CheckPerm(ctx, prec, W_OK | X_OK));
    RFS_RETURN_IF_ERROR(CheckDirMayAdd(prec));
    RFS_ASSIGN_OR_RETURN(const Impl::NewNode plan, s.PlanNewNode(ctx, dir.get(), prec, S_IFREG, mode & 07777));
    const NewOwnership& own = plan.own;
    InodeRecord rec;
    rec.ino = s.meta->AllocateIno();
    rec.mode = own.mode;
    rec.uid = own.uid;
    rec.gid = own.gid;
    rec.nlink = 0;
    rec.atime = rec.mtime = rec.ctime = rec.btime = Now();
    // Nameless from birth: an orphan, so a crash frees it (ReplayOrphans).
    // The directory is not changed.
    storage::MetaStore::Batch batch;
    rec.generation = s.NewGeneration();
    batch.PutInode(rec);
    if (!plan.access.empty()) batch.PutXattr(rec.ino, kAclAccessXattr, EncodeAcl(plan.access));
    batch.AddOrphan(rec.ino);
    RFS_RETURN_IF_ERROR(s.CommitNewInode(batch, {}));
    ref = s.cache->Install(rec);
    s.MarkNewBody(ref.get(), /*no_default_acl=*/true);
    s.inode_count.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard t(s.tmpfile_mu);
      s.tmpfiles.insert(rec.ino);
    }
    s.cache->AddLookup(ref.get(), 0, {});
    s.cache->AddOpen(ref.get());
    // Referenced (lookup and open): freed only after the last Forget and
    // Release, like any unlinked open file.
    s.cache->SetUnlinked(ref.get());
  }
  OpenFile of;
  of.fh = s.handles.Add(Handle{ref->ino, flags, ctx.uid, ctx.gid, /*dir=*/false, ref->wb_err.Sample()});
  of.direct_io = !s.options.kernel_cache;
  of.keep_cache = s.options.kernel_cache;
  return std::make_pair(s.AttrsOf(ref.get()), of);
}

// ---------------------------------------------------------------------------
// Data

namespace {
// Size, type and inode flags of a file, read together under its leaf
// attribute lock (no copy of the whole record on the data path).
struct SizeAndMode {
  uint64_t size;
  uint32_t mode;
  uint32_t flags;
};
SizeAndMode SnapshotSizeAndMode(Inode* inode) {
  std::lock_guard a(inode->attr_mu);
  return {inode->body->rec.size, inode->body->rec.mode, inode->body->rec.flags};
}
}  // namespace

absl::StatusOr<size_t> Filesystem::Read(uint64_t ino, uint64_t fh, uint64_t off, size_t size, char* buf) {
  size_t n = 0;
  RFS_RETURN_IF_ERROR(ReadWith(ino, fh, [&](uint64_t file_size) -> absl::Status {
    if (off >= file_size || size == 0) return absl::OkStatus();
    const size_t len = static_cast<size_t>(std::min<uint64_t>(size, file_size - off));
    RFS_ASSIGN_OR_RETURN(n, impl_->data->Read(ino, file_size, off, len, buf));
    return absl::OkStatus();
  }));
  return n;
}

absl::StatusOr<size_t> Filesystem::ReadPinned(uint64_t ino, uint64_t fh, uint64_t off, size_t size,
                                              FileData::PagesReply reply, bool may_wait) {
  size_t n = 0;
  RFS_RETURN_IF_ERROR(ReadWith(
      ino, fh,
      [&](uint64_t file_size) -> absl::Status {
        const size_t len = off < file_size ? static_cast<size_t>(std::min<uint64_t>(size, file_size - off)) : 0;
        RFS_ASSIGN_OR_RETURN(n, impl_->data->ReadPinned(ino, file_size, off, len, reply, may_wait));
        return absl::OkStatus();
      },
      may_wait));
  return n;
}

absl::Status Filesystem::ReadWith(uint64_t ino, uint64_t fh, absl::FunctionRef<absl::Status(uint64_t)> read,
                                  bool may_wait) {
  Impl& s = *impl_;
  RFS_ASSIGN_OR_RETURN(Handle h, FileHandle(s.handles, ino, fh));
  if (!h.readable()) return ErrnoStatus(EBADF, "handle not open for reading");
  InodeRef ref;
  if (may_wait) {
    RFS_ASSIGN_OR_RETURN(ref, s.Pin(ino));
  } else {
    ref = s.cache ? s.cache->GetCached(ino) : InodeRef();  // never loads
    if (!ref) return absl::UnavailableError("inode not cached");
  }
  {
    std::shared_lock io(ref->io_mu, std::defer_lock);
    if (may_wait) {
      io.lock();
    } else if (!io.try_lock()) {
      return absl::UnavailableError("a writer holds the file");
    }
    const auto [file_size, mode, iflags] = SnapshotSizeAndMode(ref.get());
    if (S_ISDIR(mode)) return ErrnoStatus(EISDIR);
    if (!S_ISREG(mode)) return ErrnoStatus(EINVAL);
    RFS_RETURN_IF_ERROR(read(file_size));
  }
  s.TouchAtime(ref.get());
  return absl::OkStatus();
}

absl::StatusOr<size_t> Filesystem::Write(uint64_t ino, uint64_t fh, uint64_t off, const char* data, size_t size,
                                         WritePrivs privs) {
  Impl& s = *impl_;
  RFS_ASSIGN_OR_RETURN(Handle h, FileHandle(s.handles, ino, fh));
  if (!h.writable()) return ErrnoStatus(EBADF, "handle not open for writing");
  RFS_RETURN_IF_ERROR(s.CheckWritable());
  RFS_ASSIGN_OR_RETURN(InodeRef ref, s.Pin(ino));
  // Before the data, as Linux does: a write that fails still dropped them.
  if (privs.kill_caps && size > 0) RFS_RETURN_IF_ERROR(s.DropCapabilities(ref.get()));
  // A second attempt after deferred frees have run: no ENOSPC while space a
  // user just freed by deleting is still on its way back. Rewriting what the
  // first attempt already copied is harmless: same bytes, same pages.
  for (int attempt = 0;; ++attempt) {
    std::unique_lock io(ref->io_mu);
    const auto [file_size, mode, iflags] = SnapshotSizeAndMode(ref.get());
    if (!S_ISREG(mode)) return ErrnoStatus(S_ISDIR(mode) ? EISDIR : EINVAL);
    // A handle opened before the flag was set meets it here.
    if (iflags & FS_IMMUTABLE_FL) return ErrnoStatus(EPERM, "immutable file");
    // O_APPEND or an append-only file: the end of file as of now, under the io lock.
    const uint64_t pos = h.append() || (iflags & FS_APPEND_FL) ? file_size : off;
    if (size == 0) return size_t{0};
    if (pos >= kMaxFileSize) return ErrnoStatus(EFBIG);
    const size_t len = static_cast<size_t>(std::min<uint64_t>(size, kMaxFileSize - pos));
    absl::Status written = s.data->Write(ino, file_size, pos, data, len);
    if (ToErrno(written) == ENOSPC && attempt == 0) {
      io.unlock();
      s.ReclaimDeferredSpace();
      continue;
    }
    if (!written.ok()) {
      // A write that failed partway may have filled pages past the end of
      // file; drop them (and zero the last page's tail) so that a later
      // extension of the file reads zeros, not this write's bytes.
      if (pos + len > file_size) s.data->Truncate(ino, pos + len, file_size).IgnoreError();
      return written;
    }
    const storage::Timespec now = Now();
    Impl::Mutate(ref.get(), [&](InodeRecord& r) {
      r.size = std::max<uint64_t>(r.size, pos + len);
      r.mtime = r.ctime = now;
      if (privs.kill_suidgid && KillSuid(r.mode) != r.mode) {
        r.mode = KillSuid(r.mode);
        if (privs.cleared_setid != nullptr) *privs.cleared_setid = true;
      }
    });
    return len;
  }
}

absl::Status Filesystem::Flush(uint64_t ino, uint64_t fh) {
  // Data reaches the store through writeback and fsync; close has nothing
  // to wait for, but reports a writeback error this handle has not seen.
  // Without consuming it: every process that shares the open file (a forked
  // child exiting) closes it too, and fsync must still hear of it.
  Impl& s = *impl_;
  RFS_RETURN_IF_ERROR(FileHandle(s.handles, ino, fh).status());
  InodeRef ref = s.cache ? s.cache->GetCached(ino) : InodeRef();
  if (ref) {
    if (const int err = s.handles.PeekWritebackError(fh, ref->wb_err)) {
      return ErrnoStatus(err, "an earlier writeback of this file failed");
    }
  }
  return absl::OkStatus();
}

absl::Status Filesystem::Release(uint64_t ino, uint64_t fh) {
  Impl& s = *impl_;
  std::optional<Handle> h = s.handles.Remove(fh);
  if (!h) return ErrnoStatus(EBADF);
  // An unlinked file's last close only queues its deallocation.
  if (s.cache && s.cache->ReleaseOpen(h->ino)) s.QueueEviction(h->ino);
  return absl::OkStatus();
}

absl::Status Filesystem::Fsync(uint64_t ino, uint64_t fh, bool datasync) {
  Impl& s = *impl_;
  RFS_ASSIGN_OR_RETURN(InodeRef ref, s.Pin(ino));
  absl::Status synced = s.data->Sync(ino, datasync);
  // A failure of this sync's writeback, or of an earlier one, is reported
  // once to each handle open at the time (errseq), so nothing claims
  // durable what never reached the disk.
  const int err = s.handles.TakeWritebackError(fh, ref->wb_err);
  RFS_RETURN_IF_ERROR(synced);
  if (err) return ErrnoStatus(err, "writeback of this file failed");
  // FileData committed the record with the data; what changed only here
  // (times, mode) is committed durably now.
  return s.PersistIfDirty(ref.get(), /*sync=*/true);
}

namespace {

// What a fallocate mode asks for, validated like Linux's vfs_fallocate:
// one operation, KEEP_SIZE only where it means something, else EOPNOTSUPP.
enum class FallocOp { kAllocate, kPunch, kZero, kCollapse, kInsert };

absl::StatusOr<FallocOp> ParseFallocMode(int mode) {
  const bool keep = (mode & FALLOC_FL_KEEP_SIZE) != 0;
  switch (mode & ~FALLOC_FL_KEEP_SIZE) {
    case 0: return FallocOp::kAllocate;
    case FALLOC_FL_ZERO_RANGE: return FallocOp::kZero;
    case FALLOC_FL_PUNCH_HOLE:
      if (keep) return FallocOp::kPunch;
      break;
    case FALLOC_FL_COLLAPSE_RANGE:
      if (!keep) return FallocOp::kCollapse;
      break;
    case FALLOC_FL_INSERT_RANGE:
      if (!keep) return FallocOp::kInsert;
      break;
  }
  return ErrnoStatus(EOPNOTSUPP, "unsupported fallocate mode");
}

}  // namespace

absl::Status Filesystem::Fallocate(const RequestContext& ctx, uint64_t ino, uint64_t fh, int mode, uint64_t off,
                                   uint64_t len) {
  Impl& s = *impl_;
  RFS_ASSIGN_OR_RETURN(const FallocOp op, ParseFallocMode(mode));
  const bool keep_size = (mode & FALLOC_FL_KEEP_SIZE) != 0;
  RFS_ASSIGN_OR_RETURN(Handle h, FileHandle(s.handles, ino, fh));
  if (!h.writable()) return ErrnoStatus(EBADF, "handle not open for writing");
  RFS_RETURN_IF_ERROR(s.CheckWritable());
  if (len == 0) return ErrnoStatus(EINVAL);
  if (off > kMaxFileSize || len > kMaxFileSize - off) return ErrnoStatus(EFBIG);
  RFS_ASSIGN_OR_RETURN(InodeRef ref, s.Pin(ino));
  {
    std::unique_lock io(ref->io_mu);
    const auto [file_size, fmode, iflags] = SnapshotSizeAndMode(ref.get());
    if (S_ISDIR(fmode)) return ErrnoStatus(EISDIR);
    if (!S_ISREG(fmode)) return ErrnoStatus(ENODEV);
    if (iflags & FS_IMMUTABLE_FL) return ErrnoStatus(EPERM, "immutable file");
    if ((iflags & FS_APPEND_FL) && (mode & ~FALLOC_FL_KEEP_SIZE)) return ErrnoStatus(EPERM, "append-only file");
    const storage::Timespec now = Now();
    auto touch = [&](InodeRecord& r) {
      r.mtime = r.ctime = now;
      if (ctx.uid != 0) r.mode = KillSuid(r.mode);
    };
    // Space for allocate and zero; ENOSPC once more after deferred frees.
    auto with_space = [&](auto&& allocate) {
      absl::Status allocated = allocate();
      if (ToErrno(allocated) == ENOSPC) {
        io.unlock();
        s.ReclaimDeferredSpace();
        io.lock();
        allocated = allocate();
      }
      return allocated;
    };
    switch (op) {
      case FallocOp::kPunch:
        if (off < file_size) {
          RFS_RETURN_IF_ERROR(s.data->PunchHole(ino, file_size, off, std::min(len, file_size - off)));
        }
        break;
      case FallocOp::kAllocate:
        RFS_RETURN_IF_ERROR(with_space([&] { return s.data->Preallocate(ino, off, len); }));
        break;
      case FallocOp::kZero:
        RFS_RETURN_IF_ERROR(with_space([&] { return s.data->ZeroRange(ino, off, len); }));
        break;
      case FallocOp::kCollapse:
      case FallocOp::kInsert: {
        // Whole blocks only, and (like ext4) a collapse must leave data
        // after the range; an insert starts inside the file.
        const uint64_t ps = s.data->page_size();
        if (off % ps || len % ps) return ErrnoStatus(EINVAL, "range not block-aligned");
        const bool collapse = op == FallocOp::kCollapse;
        if (collapse ? off + len >= file_size : off >= file_size) {
          return ErrnoStatus(EINVAL, "range reaches the end of file");
        }
        if (!collapse && len > kMaxFileSize - file_size) return ErrnoStatus(EFBIG);
        const uint64_t new_size = collapse ? file_size - len : file_size + len;
        // The size changes inside the commit that shifts the extents.
        auto set_size = [&] {
          Impl::Mutate(ref.get(), [&](InodeRecord& r) {
            r.size = new_size;
            touch(r);
          });
        };
        RFS_RETURN_IF_ERROR(collapse ? s.data->CollapseRange(ino, off, len, set_size)
                                     : s.data->InsertRange(ino, off, len, set_size));
        break;
      }
    }
    const bool grows = (op == FallocOp::kAllocate || op == FallocOp::kZero) && !keep_size;
    if (grows) {
      // Growing the file: the old last block's tail must read as zeros.
      const uint64_t size_now = SnapshotSizeAndMode(ref.get()).size;
      if (off + len > size_now) RFS_RETURN_IF_ERROR(s.data->Truncate(ino, size_now, off + len));
    }
    Impl::Mutate(ref.get(), [&](InodeRecord& r) {
      if (grows && off + len > r.size) r.size = off + len;
      touch(r);
    });
  }
  return s.PersistIfDirty(ref.get(), false);
}

absl::StatusOr<uint64_t> Filesystem::Lseek(uint64_t ino, uint64_t fh, uint64_t off, int whence) {
  Impl& s = *impl_;
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return ErrnoStatus(EINVAL);
  RFS_ASSIGN_OR_RETURN(InodeRef ref, s.Pin(ino));
  std::shared_lock io(ref->io_mu);
  const uint64_t file_size = SnapshotSizeAndMode(ref.get()).size;
  if (off >= file_size) return ErrnoStatus(ENXIO);
  return whence == SEEK_DATA ? s.data->SeekData(ino, file_size, off) : s.data->SeekHole(ino, file_size, off);
}

// ---------------------------------------------------------------------------
// Attributes

absl::StatusOr<Attributes> Filesystem::SetAttr(const RequestContext& ctx, uint64_t ino, const SetAttrRequest& req) {
  Impl& s = *impl_;
  const bool set_atime = req.atime.has_value() || req.atime_now;
  const bool set_mtime = req.mtime.has_value() || req.mtime_now;
  const bool changes = req.mode || req.uid || req.gid || req.size || set_atime || set_mtime;
  RFS_ASSIGN_OR_RETURN(InodeRef ref, s.Pin(ino));
  if (!changes) return s.AttrsOf(ref.get());
  RFS_RETURN_IF_ERROR(s.CheckWritable());
  const InodeRecord rec = Impl::Rec(ref.get());

  // Immutable: nothing changes. Append-only: only the times may be set to now.
  const bool explicit_times = (req.atime && !req.atime_now) || (req.mtime && !req.mtime_now);
  if (IsImmutable(rec)) return ErrnoStatus(EPERM, "immutable file");
  if (IsAppendOnly(rec) && (req.mode || req.uid || req.gid || req.size || explicit_times)) {
    return ErrnoStatus(EPERM, "append-only file");
  }
  if (req.mode && !IsOwnerOrRoot(ctx, rec)) {
    // The kernel clears the set-id bits of a file that a caller without
    // CAP_FSETID truncates or preallocates by a SETATTR of the mode, sent
    // with that caller's credentials: a writer, not necessarily the owner.
    if (!OnlyClearsSetId(rec.mode, *req.mode)) return ErrnoStatus(EPERM, "chmod: not the owner");
    bool via_handle = false;
    if (req.fh) {
      std::optional<Handle> h = s.handles.Get(*req.fh);
      via_handle = h && h->ino == ino && h->writable();
    }
    if (!via_handle && !s.CheckPerm(ctx, rec, W_OK).ok()) return ErrnoStatus(EPERM, "chmod: not the owner");
  }
  if (req.uid && !Privileged(ctx) && (ctx.uid != rec.uid || *req.uid != rec.uid)) {
    return ErrnoStatus(EPERM, "chown: only root may change the owner");
  }
  if (req.gid && !Privileged(ctx) && (ctx.uid != rec.uid || (*req.gid != rec.gid && !InGroup(ctx, *req.gid)))) {
    return ErrnoStatus(EPERM, "chgrp: not the owner or not a member of the group");
  }
  if (req.size) {
    if (S_ISDIR(rec.mode)) return ErrnoStatus(EISDIR);
    if (!S_ISREG(rec.mode)) return ErrnoStatus(EINVAL);
    if (*req.size > kMaxFileSize) return ErrnoStatus(EFBIG);
    bool via_handle = false;
    if (req.fh) {
      std::optional<Handle> h = s.handles.Get(*req.fh);
      via_handle = h && h->ino == ino && h->writable();
    }
    if (!via_handle) RFS_RETURN_IF_ERROR(s.CheckPerm(ctx, rec, W_OK));
  }
  // Setting times to a value needs ownership; to "now", write access will do.
  const bool explicit_time = (req.atime && !req.atime_now) || (req.mtime && !req.mtime_now);
  if (explicit_time && !IsOwnerOrRoot(ctx, rec)) return ErrnoStatus(EPERM, "utimes: not the owner");
  if ((set_atime || set_mtime) && !explicit_time && !IsOwnerOrRoot(ctx, rec)) {
    RFS_RETURN_IF_ERROR(s.CheckPerm(ctx, rec, W_OK));
  }

  if (req.size) {
    std::unique_lock io(ref->io_mu);
    RFS_RETURN_IF_ERROR(s.TruncateLocked(ref.get(), *req.size, ctx.uid, /*touch_always=*/false));
  }
  // chmod rewrites the access ACL in the same commit as the mode; xattr_mu
  // keeps a concurrent ACL change from interleaving.
  std::unique_lock<std::mutex> acl_lock;
  storage::MetaStore::Batch batch;
  if (req.mode) {
    acl_lock = std::unique_lock(s.xattr_mu);
    RFS_RETURN_IF_ERROR(s.ChmodAclLocked(ino, *req.mode, &batch));
  }
  const storage::Timespec now = Now();
  Impl::Mutate(ref.get(), [&](InodeRecord& r) {
    if (req.uid) r.uid = *req.uid;
    if (req.gid) r.gid = *req.gid;
    if (req.mode) {
      r.mode = (r.mode & S_IFMT) | (*req.mode & 07777);
      // No setgid file for a group its (non-root) owner is not in.
      if (!IsRoot(ctx) && !InGroup(ctx, r.gid)) r.mode &= ~S_ISGID;
    }
    if ((req.uid || req.gid) && !S_ISDIR(r.mode)) r.mode = KillSuid(r.mode);
    if (req.atime_now) {
      r.atime = now;
    } else if (req.atime) {
      r.atime = *req.atime;
    }
    if (req.mtime_now) {
      r.mtime = now;
    } else if (req.mtime) {
      r.mtime = *req.mtime;
    }
    r.ctime = now;
  });
  if (batch.empty()) {
    RFS_RETURN_IF_ERROR(s.PersistIfDirty(ref.get(), false));
  } else {
    RFS_RETURN_IF_ERROR(s.Commit(batch, {ref.get()}));
  }
  return s.AttrsOf(ref.get());
}

absl::StatusOr<uint32_t> Filesystem::GetFlags(uint64_t ino) {
  Impl& s = *impl_;
  RFS_ASSIGN_OR_RETURN(InodeRef ref, s.Pin(ino));
  return Impl::Rec(ref.get()).flags;
}

absl::Status Filesystem::SetFlags(const RequestContext& ctx, uint64_t ino, uint32_t flags) {
  Impl& s = *impl_;
  RFS_RETURN_IF_ERROR(s.CheckWritable());
  RFS_ASSIGN_OR_RETURN(InodeRef ref, s.Pin(ino));
  RFS_RETURN_IF_ERROR(CheckSetFlags(ctx, Impl::Rec(ref.get()), flags));
  const storage::Timespec now = Now();
  Impl::Mutate(ref.get(), [&](InodeRecord& r) {
    r.flags = flags;
    r.ctime = now;
  });
  return s.PersistIfDirty(ref.get(), false);
}

}  // namespace reclaimfs::fs

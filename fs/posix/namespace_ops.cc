// Namespace operations: lookup and forget, creating and removing names, hard
// links, rename, and directory listing.
//
// Locking follows the kernel's: an operation holds the namespace lock
// (Inode::ns_mu) of each directory whose names it changes and of each inode
// whose links it changes, across its commit. Directories are locked before
// the inodes in them, an ancestor before its descendants; two inodes of which
// neither is an ancestor of the other go in inode-number order. Only a
// cross-directory rename locks two directories as parents (an rmdir, or a
// rename of a directory, also locks that one as a child), and it holds
// rename_mu first, so no other operation changes which directory is above which while
// it looks. A directory that would be locked after one of its descendants
// (rename into its own subtree, or over an ancestor of the source) is
// refused before that lock is taken. Operations pin what they lock (loading
// with reclaim allowed) before taking the locks where they can; anything
// loaded under one is force-charged. Lookups, readdir, attribute changes and
// data IO take none of these.
#include <cstdio>  // RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <optional>
#include <vector>

#include "fs/cache/errno_status.h"
#include "fs/posix/filesystem.h"
#include "fs/posix/filesystem_impl.h"
#include "fs/posix/inode_flags.h"
#include "fs/posix/namespace_locks.h"
#include "fs/posix/permissions.h"
#include "fs/posix/posix_acl.h"
#include "fs/posix/status_macros.h"

namespace reclaimfs::fs {

using ChargeMode = InodeCache::ChargeMode;
using storage::DirEntry;
using storage::InodeRecord;

namespace {

absl::Status NotFoundAs(const absl::Status& s, int err) {
  return absl::IsNotFound(s) ? ErrnoStatus(err) : s;
}

constexpr uint64_t kFirstCookie = 3;  // 1 and 2 are "." and ".."

}  // namespace

// ---------------------------------------------------------------------------
// Impl helpers

void Filesystem::Impl::RestoreLinks(Inode* inode, const InodeRecord& saved) {
  Mutate(inode, [&](InodeRecord& r) {
    r.nlink = saved.nlink;
    r.parent = saved.parent;
  });
}

void Filesystem::Impl::TouchAtime(Inode* inode) {
  if (read_only.load(std::memory_order_relaxed) || !atime_policy.enabled) return;
  const storage::Timespec now = Now();
  std::lock_guard a(inode->attr_mu);
  if (inode->body->rec.flags & FS_NOATIME_FL) return;
  if (!AtimeNeedsUpdate(atime_policy, inode->body->rec, now)) return;
  inode->body->rec.atime = now;
  inode->body->Touch();  // persisted lazily: writeback, eviction or unmount
}

absl::StatusOr<bool> Filesystem::Impl::IsAncestorOrSelf(uint64_t ancestor, uint64_t dir) {
  uint64_t cur = dir;
  for (int depth = 0; depth < (1 << 16); ++depth) {
    if (cur == ancestor) return true;
    if (cur == storage::kRootIno || cur == 0) return false;
    InodeRef cached = cache->GetCached(cur);
    if (cached) {
      cur = Rec(cached.get()).parent;
    } else {
      absl::StatusOr<InodeRecord> rec = meta->GetInode(cur);
      if (!rec.ok()) return rec.status();
      cur = rec->parent;
    }
  }
  return ErrnoStatus(ELOOP, "directory tree too deep");
}

absl::StatusOr<Filesystem::Impl::NewNode> Filesystem::Impl::PlanNewNode(const RequestContext& ctx,
                                                                         Inode* parent,
                                                                         const InodeRecord& prec, uint32_t type,
                                                                         uint32_t perm) {
  NewNode plan;
  if (!S_ISLNK(type)) {
    RFS_ASSIGN_OR_RETURN(plan.parent_default, LoadDefaultAcl(parent));
  }
  if (plan.parent_default.empty()) {
    plan.own = OwnershipForNew(ctx, prec, type, perm);
  } else {
    RequestContext no_umask = ctx;
    no_umask.umask = 0;
    plan.own = OwnershipForNew(no_umask, prec, type, perm);
    plan.own.mode = InheritAcl(plan.parent_default, plan.own.mode, &plan.access);
  }
  return plan;
}

absl::StatusOr<InodeRef> Filesystem::Impl::CreateNode(const RequestContext& ctx, uint64_t parent,
                                                      std::string_view name, uint32_t mode, uint64_t rdev,
                                                      std::string_view symlink) {
  RFS_RETURN_IF_ERROR(CheckWritable());
  RFS_RETURN_IF_ERROR(ValidateName(name));
  if (IsDotOrDotDot(name)) return ErrnoStatus(EEXIST);
  RFS_ASSIGN_OR_RETURN(InodeRef dir, PinDir(parent));
  const uint32_t type = mode & S_IFMT;

  std::lock_guard ns(dir->ns_mu);
  const InodeRecord prec = Rec(dir.get());
  if (prec.nlink == 0) return ErrnoStatus(ENOENT, "directory was removed");
  RFS_RETURN_IF_ERROR(CheckPerm(ctx, prec, W_OK | X_OK));
  absl::StatusOr<DirEntry> existing = meta->GetDentry(parent, name);
  if (existing.ok()) return ErrnoStatus(EEXIST);  // O_CREAT of an existing file opens it, immutable dir or not
  if (!absl::IsNotFound(existing.status())) return existing.status();
  RFS_RETURN_IF_ERROR(CheckDirMayAdd(prec));
  if (S_ISDIR(type) && prec.nlink >= kLinkMax) return ErrnoStatus(EMLINK);

  RFS_ASSIGN_OR_RETURN(const NewNode plan, PlanNewNode(ctx, dir.get(), prec, type, mode & 07777));
  const NewOwnership& own = plan.own;
  const Acl& access = plan.access;
  const Acl& parent_default = plan.parent_default;
  const storage::Timespec now = Now();
  InodeRecord rec;
  rec.ino = meta->AllocateIno();
  rec.mode = S_ISLNK(type) ? (S_IFLNK | 0777) : own.mode;
  rec.uid = own.uid;
  rec.gid = own.gid;
  rec.nlink = S_ISDIR(type) ? 2 : 1;
  rec.size = S_ISLNK(type) ? symlink.size() : 0;
  rec.rdev = (S_ISCHR(type) || S_ISBLK(type)) ? rdev : 0;
  rec.atime = rec.mtime = rec.ctime = rec.btime = now;
  if (S_ISDIR(type)) rec.parent = parent;
  rec.symlink.assign(symlink);

  uint64_t cookie = 0;
  Mutate(dir.get(), [&](InodeRecord& p) {
    if (p.next_dir_cookie < kFirstCookie) p.next_dir_cookie = kFirstCookie;
    cookie = p.next_dir_cookie++;
    p.mtime = p.ctime = now;
    if (S_ISDIR(type)) ++p.nlink;
  });
  storage::MetaStore::Batch batch;
  rec.generation = NewGeneration();
  batch.PutInode(rec);
  batch.PutDentry(parent, name, DirEntry{rec.ino, type, cookie});
  if (!access.empty()) batch.PutXattr(rec.ino, kAclAccessXattr, EncodeAcl(access));
  if (S_ISDIR(type) && !parent_default.empty()) {
    batch.PutXattr(rec.ino, kAclDefaultXattr, EncodeAcl(parent_default));
  }
  if (absl::Status s = CommitNewInode(batch, {dir.get()}); !s.ok()) {
    RestoreLinks(dir.get(), prec);
    return s;
  }
  InodeRef ref = cache->Install(rec);
  MarkNewBody(ref.get(), parent_default.empty());
  inode_count.fetch_add(1, std::memory_order_relaxed);
  cache->AddLookup(ref.get(), parent, name);
  return ref;
}

absl::Status Filesystem::Impl::RemoveName(const RequestContext& ctx, uint64_t parent, std::string_view name,
                                          bool rmdir) {
  RFS_RETURN_IF_ERROR(CheckWritable());
  if (name.size() > kNameMax) return ErrnoStatus(ENAMETOOLONG);
  if (rmdir && name == ".") return ErrnoStatus(EINVAL);
  if (rmdir && name == "..") return ErrnoStatus(ENOTEMPTY);
  if (!rmdir && IsDotOrDotDot(name)) return ErrnoStatus(EISDIR);
  RFS_RETURN_IF_ERROR(ValidateName(name));
  RFS_ASSIGN_OR_RETURN(InodeRef dir, PinDir(parent));

  uint64_t dealloc = 0;
  {
    std::lock_guard ns(dir->ns_mu);
    const InodeRecord prec = Rec(dir.get());
    RFS_RETURN_IF_ERROR(CheckPerm(ctx, prec, W_OK | X_OK));
    absl::StatusOr<DirEntry> d = meta->GetDentry(parent, name);
    if (!d.ok()) return NotFoundAs(d.status(), ENOENT);
    RFS_ASSIGN_OR_RETURN(InodeRef victim, Pin(d->ino, ChargeMode::kNoReclaim));
    // The victim's links change (a link elsewhere may race), and an rmdir
    // must see its directory stay empty: a create in it takes this lock.
    std::lock_guard vns(victim->ns_mu);
    const InodeRecord vrec = Rec(victim.get());
    // Who may remove comes first, as in Linux's may_delete: EPERM for a
    // protected name even when the directory is not empty.
    RFS_RETURN_IF_ERROR(CheckSticky(ctx, prec, vrec));
    RFS_RETURN_IF_ERROR(CheckDirMayRemove(prec));
    RFS_RETURN_IF_ERROR(CheckNotImmutableOrAppend(vrec));
    if (rmdir) {
      if (!S_ISDIR(vrec.mode)) return ErrnoStatus(ENOTDIR);
      absl::StatusOr<bool> empty = meta->DirIsEmpty(d->ino);
      if (!empty.ok()) return empty.status();
      if (!*empty) return ErrnoStatus(ENOTEMPTY);
    } else if (S_ISDIR(vrec.mode)) {
      return ErrnoStatus(EISDIR);
    }

    const storage::Timespec now = Now();
    uint32_t nlink = 0;
    Mutate(victim.get(), [&](InodeRecord& r) {
      r.nlink = (rmdir || r.nlink == 0) ? 0 : r.nlink - 1;
      r.ctime = now;
      nlink = r.nlink;
    });
    Mutate(dir.get(), [&](InodeRecord& p) {
      p.mtime = p.ctime = now;
      if (rmdir && p.nlink > 2) --p.nlink;
    });
    storage::MetaStore::Batch batch;
    batch.DeleteDentry(parent, name, d->cookie);
    // Until the last reference goes the inode lives on as an orphan, so a
    // crash cannot leak it.
    if (nlink == 0) batch.AddOrphan(d->ino);
    if (absl::Status s = Commit(batch, {dir.get(), victim.get()}); !s.ok()) {
      RestoreLinks(dir.get(), prec);
      RestoreLinks(victim.get(), vrec);
      return s;
    }
    if (nlink == 0 && cache->SetUnlinked(victim.get())) dealloc = d->ino;
  }
  // Deallocation is the retry queue's job, never this request thread's.
  if (dealloc != 0) QueueEviction(dealloc);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Lookup and forget

absl::StatusOr<Attributes> Filesystem::Impl::LookupDot(uint64_t node, bool dotdot) {
  RFS_ASSIGN_OR_RETURN(InodeRef ref, Pin(node));
  const InodeRecord rec = Rec(ref.get());
  // Deleted and no longer open (the kernel would have found an open one in
  // its own cache): the handle is stale.
  if (rec.nlink == 0) return ErrnoStatus(ENOENT, "inode was removed");
  if (dotdot) {
    if (!S_ISDIR(rec.mode)) return ErrnoStatus(ENOTDIR);
    ref.reset();
    RFS_ASSIGN_OR_RETURN(ref, Pin(rec.parent != 0 ? rec.parent : storage::kRootIno));
  }
  cache->AddLookup(ref.get(), 0, {});
  return AttrsOf(ref.get());
}

absl::StatusOr<Attributes> Filesystem::Lookup(const RequestContext& ctx, uint64_t parent, std::string_view name) {
  Impl& s = *impl_;
  if (name.size() > kNameMax) return ErrnoStatus(ENAMETOOLONG);
  // Path walks resolve "." and ".." in the kernel; only file-handle decoding
  // (export) asks, for any node id, with the caller already privileged.
  if (IsDotOrDotDot(name)) return s.LookupDot(parent, name == "..");
  RFS_ASSIGN_OR_RETURN(InodeRef dir, s.PinDir(parent));
  const InodeRecord prec = Impl::Rec(dir.get());
  RFS_RETURN_IF_ERROR(s.CheckPerm(ctx, prec, X_OK));
  RFS_RETURN_IF_ERROR(ValidateName(name));
  absl::StatusOr<DirEntry> d = s.meta->GetDentry(parent, name);
  if (!d.ok()) return NotFoundAs(d.status(), ENOENT);
  RFS_ASSIGN_OR_RETURN(InodeRef ref, s.Pin(d->ino));
  s.cache->AddLookup(ref.get(), parent, name);
  return s.AttrsOf(ref.get());
}

void Filesystem::Forget(uint64_t ino, uint64_t nlookup) {
  Impl& s = *impl_;
  if (!s.cache) return;
  if (s.cache->Forget(ino, nlookup)) s.QueueEviction(ino);
}

// ---------------------------------------------------------------------------
// Creating names

absl::StatusOr<Attributes> Filesystem::Mknod(const RequestContext& ctx, uint64_t parent, std::string_view name,
                                             uint32_t mode, uint64_t rdev) {
  uint32_t type = mode & S_IFMT;
  if (type == 0) type = S_IFREG;
  switch (type) {
    case S_IFREG:
    case S_IFIFO:
    case S_IFSOCK:
      break;
    case S_IFCHR:
    case S_IFBLK:
      if (!IsRoot(ctx)) return ErrnoStatus(EPERM, "only root may create device nodes");
      break;
    case S_IFDIR:
      return ErrnoStatus(EPERM, "mknod cannot create directories");
    default:
      return ErrnoStatus(EINVAL, "unknown file type");
  }
  RFS_ASSIGN_OR_RETURN(InodeRef ref, impl_->CreateNode(ctx, parent, name, type | (mode & 07777), rdev, {}));
  return impl_->AttrsOf(ref.get());
}

absl::StatusOr<Attributes> Filesystem::Mkdir(const RequestContext& ctx, uint64_t parent, std::string_view name,
                                             uint32_t mode) {
  RFS_ASSIGN_OR_RETURN(InodeRef ref, impl_->CreateNode(ctx, parent, name, S_IFDIR | (mode & 07777), 0, {}));
  return impl_->AttrsOf(ref.get());
}

absl::StatusOr<Attributes> Filesystem::Symlink(const RequestContext& ctx, uint64_t parent, std::string_view name,
                                               std::string_view target) {
  if (target.empty()) return ErrnoStatus(ENOENT, "empty symlink target");
  if (target.size() > kSymlinkMax) return ErrnoStatus(ENAMETOOLONG, "symlink target too long");
  RFS_ASSIGN_OR_RETURN(InodeRef ref, impl_->CreateNode(ctx, parent, name, S_IFLNK | 0777, 0, target));
  return impl_->AttrsOf(ref.get());
}

absl::StatusOr<std::string> Filesystem::Readlink(uint64_t ino) {
  RFS_ASSIGN_OR_RETURN(InodeRef ref, impl_->Pin(ino));
  std::lock_guard a(ref->attr_mu);
  const InodeRecord& rec = ref->body->rec;
  if (!S_ISLNK(rec.mode)) return ErrnoStatus(EINVAL, "not a symlink");
  return rec.symlink;
}

absl::StatusOr<Attributes> Filesystem::Link(const RequestContext& ctx, uint64_t ino, uint64_t new_parent,
                                            std::string_view new_name) {
  Impl& s = *impl_;
  RFS_RETURN_IF_ERROR(s.CheckWritable());
  RFS_RETURN_IF_ERROR(ValidateName(new_name));
  if (IsDotOrDotDot(new_name)) return ErrnoStatus(EEXIST);
  RFS_ASSIGN_OR_RETURN(InodeRef src, s.Pin(ino));
  // Before any lock: a directory's lock may not follow its descendant's.
  if (S_ISDIR(Impl::Rec(src.get()).mode)) return ErrnoStatus(EPERM, "hard link to a directory");
  RFS_ASSIGN_OR_RETURN(InodeRef dir, s.PinDir(new_parent));
  {
    std::lock_guard ns(dir->ns_mu);
    std::lock_guard sns(src->ns_mu);
    const InodeRecord srec = Impl::Rec(src.get());
    const InodeRecord prec = Impl::Rec(dir.get());
    bool tmpfile = false;
    if (srec.nlink == 0) {
      std::lock_guard t(s.tmpfile_mu);
      tmpfile = s.tmpfiles.count(ino) != 0;
    }
    if (srec.nlink == 0 && !tmpfile) return ErrnoStatus(ENOENT, "file was removed");
    if (srec.nlink >= kLinkMax) return ErrnoStatus(EMLINK);
    if (prec.nlink == 0) return ErrnoStatus(ENOENT, "directory was removed");
    RFS_RETURN_IF_ERROR(s.CheckPerm(ctx, prec, W_OK | X_OK));
    RFS_RETURN_IF_ERROR(CheckDirMayAdd(prec));
    RFS_RETURN_IF_ERROR(CheckNotImmutableOrAppend(srec));
    absl::StatusOr<DirEntry> existing = s.meta->GetDentry(new_parent, new_name);
    if (existing.ok()) return ErrnoStatus(EEXIST);
    if (!absl::IsNotFound(existing.status())) return existing.status();

    const storage::Timespec now = Now();
    uint64_t cookie = 0;
    Impl::Mutate(dir.get(), [&](InodeRecord& p) {
      if (p.next_dir_cookie < kFirstCookie) p.next_dir_cookie = kFirstCookie;
      cookie = p.next_dir_cookie++;
      p.mtime = p.ctime = now;
    });
    Impl::Mutate(src.get(), [&](InodeRecord& r) {
      ++r.nlink;
      r.ctime = now;
    });
    storage::MetaStore::Batch batch;
    batch.PutDentry(new_parent, new_name, DirEntry{ino, srec.mode & S_IFMT, cookie});
    // A tmpfile's first name: it is no longer an orphan, in the same commit.
    if (tmpfile) batch.RemoveOrphan(ino);
    if (absl::Status st = s.Commit(batch, {dir.get(), src.get()}); !st.ok()) {
      Impl::RestoreLinks(src.get(), srec);
      return st;
    }
    if (tmpfile) {
      s.cache->ClearUnlinked(src.get());
      std::lock_guard t(s.tmpfile_mu);
      s.tmpfiles.erase(ino);
    }
  }
  s.cache->AddLookup(src.get(), new_parent, new_name);
  return s.AttrsOf(src.get());
}

absl::Status Filesystem::Unlink(const RequestContext& ctx, uint64_t parent, std::string_view name) {
  return impl_->RemoveName(ctx, parent, name, /*dir=*/false);
}

absl::Status Filesystem::Rmdir(const RequestContext& ctx, uint64_t parent, std::string_view name) {
  return impl_->RemoveName(ctx, parent, name, /*dir=*/true);
}

// ---------------------------------------------------------------------------
// Rename

absl::Status Filesystem::Rename(const RequestContext& ctx, uint64_t parent, std::string_view name,
                                uint64_t new_parent, std::string_view new_name, unsigned flags) {
  Impl& s = *impl_;
  constexpr unsigned kKnown = RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT;
  if ((flags & ~kKnown) != 0) return ErrnoStatus(EINVAL, "unknown rename flags");
  const bool exchange = (flags & RENAME_EXCHANGE) != 0;
  const bool noreplace = (flags & RENAME_NOREPLACE) != 0;
  const bool whiteout = (flags & RENAME_WHITEOUT) != 0;
  if (exchange && noreplace) return ErrnoStatus(EINVAL, "RENAME_EXCHANGE with RENAME_NOREPLACE");
  if (exchange && whiteout) return ErrnoStatus(EINVAL, "RENAME_EXCHANGE with RENAME_WHITEOUT");
  // A whiteout is a device node: creating one takes what mknod of a device
  // takes (the kernel asks for CAP_MKNOD before sending the request).
  if (whiteout && !Privileged(ctx)) return ErrnoStatus(EPERM, "RENAME_WHITEOUT needs privilege");
  RFS_RETURN_IF_ERROR(s.CheckWritable());
  if (name.size() > kNameMax || new_name.size() > kNameMax) return ErrnoStatus(ENAMETOOLONG);
  if (IsDotOrDotDot(name) || IsDotOrDotDot(new_name)) return ErrnoStatus(EBUSY);
  RFS_RETURN_IF_ERROR(ValidateName(name));
  RFS_RETURN_IF_ERROR(ValidateName(new_name));
  RFS_ASSIGN_OR_RETURN(InodeRef pdir, s.PinDir(parent));
  RFS_ASSIGN_OR_RETURN(InodeRef qdir, s.PinDir(new_parent));
  const bool cross = parent != new_parent;

  uint64_t dealloc = 0;
  {
    NamespaceLocks locks;
    std::unique_lock<std::mutex> renaming;
    if (cross) {
      renaming = std::unique_lock(s.rename_mu);
      RFS_ASSIGN_OR_RETURN(const bool q_above, s.IsAncestorOrSelf(new_parent, parent));
      RFS_ASSIGN_OR_RETURN(const bool p_above, s.IsAncestorOrSelf(parent, new_parent));
      if (q_above) {
        locks.Lock(qdir.get());
        locks.Lock(pdir.get());
      } else if (p_above) {
        locks.Lock(pdir.get());
        locks.Lock(qdir.get());
      } else {
        locks.LockInInoOrder(pdir.get(), qdir.get());
      }
    } else {
      locks.Lock(pdir.get());
    }
    const InodeRecord prec = Impl::Rec(pdir.get());
    const InodeRecord qrec = Impl::Rec(qdir.get());
    if (qrec.nlink == 0) return ErrnoStatus(ENOENT, "directory was removed");
    RFS_RETURN_IF_ERROR(s.CheckPerm(ctx, prec, W_OK | X_OK));
    RFS_RETURN_IF_ERROR(s.CheckPerm(ctx, qrec, W_OK | X_OK));
    absl::StatusOr<DirEntry> src = s.meta->GetDentry(parent, name);
    if (!src.ok()) return NotFoundAs(src.status(), ENOENT);
    std::optional<DirEntry> tgt;
    if (absl::StatusOr<DirEntry> t = s.meta->GetDentry(new_parent, new_name); t.ok()) {
      tgt = *t;
    } else if (!absl::IsNotFound(t.status())) {
      return t.status();
    }
    if (!cross && name == new_name) return absl::OkStatus();
    if (exchange && !tgt) return ErrnoStatus(ENOENT);
    if (noreplace && tgt) return ErrnoStatus(EEXIST);

    RFS_ASSIGN_OR_RETURN(InodeRef sref, s.Pin(src->ino, ChargeMode::kNoReclaim));
    InodeRef tref;
    if (tgt) {
      RFS_ASSIGN_OR_RETURN(tref, s.Pin(tgt->ino, ChargeMode::kNoReclaim));
    }
    if (cross) {
      // A directory must not move into its own subtree, nor replace one of
      // the source's ancestors; either way its lock would come after a
      // descendant's, so this is settled before the children are locked.
      if (S_ISDIR(src->type)) {
        RFS_ASSIGN_OR_RETURN(bool loop, s.IsAncestorOrSelf(src->ino, new_parent));
        if (loop) return ErrnoStatus(EINVAL, "rename of a directory into itself");
      }
      if (tgt && S_ISDIR(tgt->type)) {
        RFS_ASSIGN_OR_RETURN(bool above, s.IsAncestorOrSelf(tgt->ino, parent));
        if (above && exchange) return ErrnoStatus(EINVAL, "rename of a directory into itself");
        if (above) return ErrnoStatus(ENOTEMPTY);
      }
    }
    // The source and target are in the parents locked above; neither is an
    // ancestor of the other. (Declared after their pins: unlocked first.)
    NamespaceLocks child_locks;
    child_locks.LockInInoOrder(sref.get(), tref.get());
    const InodeRecord srec = Impl::Rec(sref.get());
    const InodeRecord trec = tref ? Impl::Rec(tref.get()) : InodeRecord();
    RFS_RETURN_IF_ERROR(CheckSticky(ctx, prec, srec));
    if (tref) RFS_RETURN_IF_ERROR(CheckSticky(ctx, qrec, trec));
    // Immutable and append-only: names are neither removed nor moved.
    RFS_RETURN_IF_ERROR(CheckDirMayRemove(prec));
    RFS_RETURN_IF_ERROR(CheckDirMayAdd(qrec));
    RFS_RETURN_IF_ERROR(CheckNotImmutableOrAppend(srec));
    if (tref) {
      RFS_RETURN_IF_ERROR(CheckDirMayRemove(qrec));
      RFS_RETURN_IF_ERROR(CheckNotImmutableOrAppend(trec));
    }
    // Two names of one inode: POSIX says do nothing.
    if (tgt && tgt->ino == src->ino) return absl::OkStatus();

    const bool sdir = S_ISDIR(srec.mode);
    const bool tdir = tref && S_ISDIR(trec.mode);
    if (!exchange && tgt) {
      if (sdir && !tdir) return ErrnoStatus(ENOTDIR);
      if (!sdir && tdir) return ErrnoStatus(EISDIR);
      if (tdir) {
        absl::StatusOr<bool> empty = s.meta->DirIsEmpty(tgt->ino);
        if (!empty.ok()) return empty.status();
        if (!*empty) return ErrnoStatus(ENOTEMPTY);
      }
    }
    if (cross) {
      // Moving a directory to another parent rewrites its "..", which needs
      // write access to it.
      if (sdir) RFS_RETURN_IF_ERROR(s.CheckPerm(ctx, srec, W_OK));
      if (exchange && tdir) RFS_RETURN_IF_ERROR(s.CheckPerm(ctx, trec, W_OK));
      const int q_gain = (sdir ? 1 : 0) - (tdir ? 1 : 0);
      const int p_gain = (exchange && tdir ? 1 : 0) - (sdir ? 1 : 0);
      if ((q_gain > 0 && qrec.nlink >= kLinkMax) || (p_gain > 0 && prec.nlink >= kLinkMax)) {
        return ErrnoStatus(EMLINK);
      }
    }

    const storage::Timespec now = Now();
    auto move_dir = [&](Inode* moved, Inode* from, Inode* to, uint64_t to_ino) {
      Impl::Mutate(moved, [&](InodeRecord& r) { r.parent = to_ino; });
      Impl::Mutate(from, [](InodeRecord& r) { --r.nlink; });
      Impl::Mutate(to, [](InodeRecord& r) { ++r.nlink; });
    };
    storage::MetaStore::Batch batch;
    uint32_t t_nlink = 1;
    if (whiteout) {
      // The source name stays, in the same commit as the move, naming a new
      // whiteout: a character device 0/0 with mode 0 (what overlayfs reads
      // as "deleted here"). It keeps the moved entry's cookie.
      const NewOwnership own = OwnershipForNew(ctx, prec, S_IFCHR, 0);
      InodeRecord w;
      w.ino = s.meta->AllocateIno();
      w.mode = S_IFCHR;
      w.uid = own.uid;
      w.gid = own.gid;
      w.nlink = 1;
      w.rdev = 0;
      w.generation = s.NewGeneration();
      w.atime = w.mtime = w.ctime = w.btime = now;
      batch.PutInode(w);
      batch.PutDentry(parent, name, DirEntry{w.ino, S_IFCHR, src->cookie});
    }
    if (exchange) {
      // Both names stay; their entries swap inodes and keep their cookies.
      batch.PutDentry(parent, name, DirEntry{tgt->ino, tgt->type, src->cookie});
      batch.PutDentry(new_parent, new_name, DirEntry{src->ino, src->type, tgt->cookie});
      if (cross && sdir) move_dir(sref.get(), pdir.get(), qdir.get(), new_parent);
      if (cross && tdir) move_dir(tref.get(), qdir.get(), pdir.get(), parent);
      Impl::Mutate(tref.get(), [&](InodeRecord& r) { r.ctime = now; });
    } else {
      if (!whiteout) batch.DeleteDentry(parent, name, src->cookie);
      if (tgt) {
        // The replaced entry's cookie is reused: a listing in progress sees
        // the name at most once.
        batch.PutDentry(new_parent, new_name, DirEntry{src->ino, src->type, tgt->cookie});
        Impl::Mutate(tref.get(), [&](InodeRecord& r) {
          r.nlink = (tdir || r.nlink == 0) ? 0 : r.nlink - 1;
          r.ctime = now;
          t_nlink = r.nlink;
        });
        if (tdir) Impl::Mutate(qdir.get(), [](InodeRecord& r) { --r.nlink; });
        if (t_nlink == 0) batch.AddOrphan(tgt->ino);
      } else {
        uint64_t cookie = 0;
        Impl::Mutate(qdir.get(), [&](InodeRecord& r) {
          if (r.next_dir_cookie < kFirstCookie) r.next_dir_cookie = kFirstCookie;
          cookie = r.next_dir_cookie++;
        });
        batch.PutDentry(new_parent, new_name, DirEntry{src->ino, src->type, cookie});
      }
      if (cross && sdir) move_dir(sref.get(), pdir.get(), qdir.get(), new_parent);
    }
    Impl::Mutate(sref.get(), [&](InodeRecord& r) { r.ctime = now; });
    Impl::Mutate(pdir.get(), [&](InodeRecord& r) { r.mtime = r.ctime = now; });
    if (cross) Impl::Mutate(qdir.get(), [&](InodeRecord& r) { r.mtime = r.ctime = now; });

    std::vector<Inode*> changed = {pdir.get(), qdir.get(), sref.get(), tref.get()};
    absl::Status st = whiteout ? s.CommitNewInode(batch, std::move(changed)) : s.Commit(batch, std::move(changed));
    if (!st.ok()) {
      Impl::RestoreLinks(pdir.get(), prec);
      Impl::RestoreLinks(qdir.get(), qrec);
      Impl::RestoreLinks(sref.get(), srec);
      if (tref) Impl::RestoreLinks(tref.get(), trec);
      return st;
    }
    s.cache->SetDentry(sref.get(), new_parent, new_name);
    if (exchange) s.cache->SetDentry(tref.get(), parent, name);
    if (whiteout) s.inode_count.fetch_add(1, std::memory_order_relaxed);
    if (!exchange && tgt && t_nlink == 0 && s.cache->SetUnlinked(tref.get())) dealloc = tgt->ino;
  }
  if (dealloc != 0) s.QueueEviction(dealloc);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Directories

absl::StatusOr<uint64_t> Filesystem::OpenDir(const RequestContext& ctx, uint64_t ino, int flags) {
  Impl& s = *impl_;
  RFS_ASSIGN_OR_RETURN(InodeRef dir, s.PinDir(ino));
  const InodeRecord rec = Impl::Rec(dir.get());
  RFS_RETURN_IF_ERROR(s.CheckPerm(ctx, rec, R_OK));
  const uint64_t fh = s.handles.Add(Handle{ino, flags, ctx.uid, ctx.gid, /*dir=*/true});
  s.cache->AddOpen(dir.get());
  return fh;
}

absl::Status Filesystem::ReadDir(const RequestContext& ctx, uint64_t ino, uint64_t fh, uint64_t offset, bool plus,
                                 const std::function<bool(const DirListEntry&)>& fn) {
  Impl& s = *impl_;
  RFS_ASSIGN_OR_RETURN(InodeRef dir, s.PinDir(ino));
  const InodeRecord drec = Impl::Rec(dir.get());

  // A rename gives the moved entry a new cookie, above every existing one:
  // a scan would meet it again (and again, if each pass renames). So a scan
  // ends at the cookie the directory would have handed out next when it
  // began; rewinddir (offset 0) starts a new one.
  uint64_t scan_end = 0;
  if (offset == 0) {
    scan_end = std::max(drec.next_dir_cookie, kFirstCookie);
    s.handles.SetScanEnd(fh, scan_end);
  } else if (std::optional<Handle> h = s.handles.Get(fh); h && h->dir && h->ino == ino) {
    scan_end = h->scan_end;
  }
  auto past_end = [scan_end](uint64_t cookie) { return scan_end != 0 && cookie >= scan_end; };

  // "." and ".." never take lookup references: the kernel ignores them.
  auto emit_dot = [&](std::string_view dot, uint64_t target, uint64_t next) {
    DirListEntry e;
    e.name.assign(dot);
    e.ino = target;
    e.type = S_IFDIR;
    e.next_offset = next;
    if (plus) {
      if (absl::StatusOr<InodeRef> r = s.Pin(target); r.ok()) e.attr = s.AttrsOf(r->get());
    }
    return fn(e);
  };
  if (offset < 1 && !emit_dot(".", ino, 1)) return absl::OkStatus();
  if (offset < 2) {
    const uint64_t up = drec.parent != 0 ? drec.parent : ino;
    if (!emit_dot("..", up, 2)) return absl::OkStatus();
  }

  // Entries come in cookie order after `offset`, a chunk at a time so no
  // store iterator is open while we call back into the cache or the caller.
  constexpr size_t kChunk = 128;
  uint64_t after = std::max<uint64_t>(offset, 2);
  while (true) {
    std::vector<std::pair<std::string, DirEntry>> chunk;
    absl::Status st = s.meta->ListDir(ino, after, [&](std::string_view n, const DirEntry& e) {
      chunk.emplace_back(std::string(n), e);
      return chunk.size() < kChunk;
    });
    if (!st.ok()) return st;
    bool done = false;
    for (auto& [name, e] : chunk) {
      if (past_end(e.cookie)) {
        done = true;
        break;
      }
      DirListEntry out;
      out.name = name;
      out.ino = e.ino;
      out.type = e.type;
      out.next_offset = e.cookie;
      InodeRef ref;
      if (plus) {
        absl::StatusOr<InodeRef> r = s.Pin(e.ino);
        if (!r.ok()) {
          if (ToErrno(r.status()) != ENOENT) return r.status();
          after = e.cookie;  // removed meanwhile
          continue;
        }
        ref = std::move(*r);
        out.attr = s.AttrsOf(ref.get());
      }
      if (!fn(out)) return absl::OkStatus();
      if (plus) s.cache->AddLookup(ref.get(), ino, name);
      after = e.cookie;
    }
    if (done || chunk.size() < kChunk) break;
  }
  s.TouchAtime(dir.get());
  return absl::OkStatus();
}

absl::Status Filesystem::ReleaseDir(uint64_t ino, uint64_t fh) {
  Impl& s = *impl_;
  std::optional<Handle> h = s.handles.Remove(fh);
  if (!h) return ErrnoStatus(EBADF);
  if (s.cache && s.cache->ReleaseOpen(h->ino)) s.QueueEviction(h->ino);
  return absl::OkStatus();
}

absl::Status Filesystem::FsyncDir(uint64_t ino, uint64_t fh, bool datasync) {
  Impl& s = *impl_;
  RFS_ASSIGN_OR_RETURN(InodeRef dir, s.Pin(ino));
  // Directory changes are committed as they happen; make them durable.
  RFS_RETURN_IF_ERROR(s.PersistIfDirty(dir.get(), /*sync=*/false));
  return s.meta->SyncWal();
}

}  // namespace reclaimfs::fs

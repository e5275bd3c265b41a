// POSIX ACLs as stored xattrs, and the mode that must agree with them. With
// FUSE_POSIX_ACL the kernel checks permissions from the ACLs it reads with
// getxattr, but leaves the filesystem to keep the mode bits, the access ACL
// and inheritance consistent (as ext4 does in its set_acl and create paths).
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "fs/cache/errno_status.h"
#include "fs/posix/filesystem_impl.h"
#include "fs/posix/permissions.h"
#include "fs/posix/posix_acl.h"
#include "fs/posix/status_macros.h"

namespace reclaimfs::fs {

using storage::InodeRecord;

absl::StatusOr<Acl> Filesystem::Impl::LoadAcl(uint64_t ino, std::string_view name) {
  // noacl: every reader of ACLs (permission checks, inheritance, chmod)
  // sees none, whatever an earlier mount stored.
  if (!options.acl) return Acl{};
  absl::StatusOr<std::string> raw = meta->GetXattr(ino, name);
  if (!raw.ok()) {
    if (absl::IsNotFound(raw.status())) return Acl{};
    return raw.status();
  }
  absl::StatusOr<Acl> acl = DecodeAcl(*raw);
  if (!acl.ok()) return ErrnoStatus(EIO, "stored ACL is corrupt");
  return acl;
}

absl::StatusOr<Acl> Filesystem::Impl::LoadDefaultAcl(Inode* dir) {
  {
    std::lock_guard a(dir->attr_mu);
    if (dir->body->no_default_acl) return Acl{};
  }
  RFS_ASSIGN_OR_RETURN(Acl acl, LoadAcl(dir->ino, kAclDefaultXattr));
  if (acl.empty()) {
    std::lock_guard a(dir->attr_mu);
    dir->body->no_default_acl = true;
  }
  return acl;
}

void Filesystem::Impl::MarkNewBody(Inode* inode, bool no_default_acl) {
  std::lock_guard a(inode->attr_mu);
  inode->body->no_caps = true;
  inode->body->no_default_acl = no_default_acl;
}

absl::Status Filesystem::Impl::CheckPerm(const RequestContext& ctx, const InodeRecord& rec, int mask) {
  // The kernel has checked (ACLs included) what it sends without ids: no
  // ACL to load, and no caller ids needed.
  if ((mask & (R_OK | W_OK | X_OK)) == 0 || ctx.kernel_checked || IsRoot(ctx) || ctx.uid == rec.uid ||
      (rec.mode & S_IRWXG) == 0) {
    return CheckAccess(ctx, rec, mask);
  }
  RFS_ASSIGN_OR_RETURN(Acl acl, LoadAcl(rec.ino, kAclAccessXattr));
  return CheckAccessWithAcl(ctx, rec, acl, mask);
}

absl::Status Filesystem::Impl::SetAcl(const RequestContext& ctx, Inode* inode, std::string_view name,
                                      std::string_view value, int flags, bool removal) {
  RFS_ASSIGN_OR_RETURN(Acl acl, DecodeAcl(value));
  const InodeRecord rec = Rec(inode);
  if (S_ISLNK(rec.mode)) return ErrnoStatus(EOPNOTSUPP, "no ACLs on symlinks");
  // The kernel refuses non-owners before asking us; the rule holds anyway.
  if (!IsOwnerOrRoot(ctx, rec)) return ErrnoStatus(EPERM, "ACL change: not the owner");
  const bool is_default = name == kAclDefaultXattr;
  if (is_default && !S_ISDIR(rec.mode)) {
    return acl.empty() ? absl::OkStatus() : ErrnoStatus(EACCES, "default ACL on a non-directory");
  }

  // A create reads its parent's default ACL under the parent's namespace
  // lock, held to its commit: a change of that ACL waits for it.
  std::unique_lock<std::mutex> dir_lock;
  if (is_default) dir_lock = std::unique_lock(inode->ns_mu);
  std::lock_guard l(xattr_mu);
  if (is_default) {
    std::lock_guard a(inode->attr_mu);
    inode->body->no_default_acl = false;
  }
  absl::StatusOr<std::string> existing = meta->GetXattr(inode->ino, name);
  if (!existing.ok() && !absl::IsNotFound(existing.status())) return existing.status();
  if (!removal) {
    if ((flags & XATTR_CREATE) && existing.ok()) return ErrnoStatus(EEXIST);
    if ((flags & XATTR_REPLACE) && !existing.ok()) return ErrnoStatus(ENODATA);
  }
  const storage::Timespec now = Now();
  const bool access_set = !is_default && !acl.empty();
  bool equivalent = false;
  const uint32_t acl_bits = access_set ? ModeFromAcl(acl, 0, &equivalent) : 0;
  // An access ACL the mode bits express fully is not stored (as ext4).
  if (equivalent) acl.clear();
  storage::MetaStore::Batch batch;
  if (!acl.empty()) {
    batch.PutXattr(inode->ino, name, EncodeAcl(acl));
  } else if (existing.ok()) {
    batch.DeleteXattr(inode->ino, name);
  }
  const uint32_t saved_mode = rec.mode;
  Mutate(inode, [&](InodeRecord& r) {
    if (access_set) {
      r.mode = (r.mode & ~0777u) | acl_bits;
      // Linux's posix_acl_update_mode: no setgid file for a group its
      // (non-root) changer is not in. libfuse does not pass the kernel's
      // FUSE_SETXATTR_ACL_KILL_SGID, so the request's credentials decide.
      if (!IsRoot(ctx) && !InGroup(ctx, r.gid)) r.mode &= ~S_ISGID;
    }
    r.ctime = now;
  });
  absl::Status s = Commit(batch, {inode});
  if (!s.ok() && access_set) Mutate(inode, [&](InodeRecord& r) { r.mode = saved_mode; });
  return s;
}

absl::Status Filesystem::Impl::ChmodAclLocked(uint64_t ino, uint32_t mode, storage::MetaStore::Batch* batch) {
  RFS_ASSIGN_OR_RETURN(Acl acl, LoadAcl(ino, kAclAccessXattr));
  if (acl.empty()) return absl::OkStatus();
  ChmodAcl(&acl, mode);
  batch->PutXattr(ino, kAclAccessXattr, EncodeAcl(acl));
  return absl::OkStatus();
}

}  // namespace reclaimfs::fs

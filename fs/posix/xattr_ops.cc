// Extended attributes: the "user.", "trusted." and "security." namespaces
// and the two POSIX ACL names (acl_ops.cc), stored in the metadata store
// (not cached). Changes are serialised by
// xattr_mu so XATTR_CREATE / XATTR_REPLACE checks hold until the commit.
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>
#include <vector>

#include "fs/cache/errno_status.h"
#include "fs/posix/filesystem.h"
#include "fs/posix/filesystem_impl.h"
#include "fs/posix/inode_flags.h"
#include "fs/posix/permissions.h"
#include "fs/posix/posix_acl.h"
#include "fs/posix/status_macros.h"

namespace reclaimfs::fs {

using storage::InodeRecord;

namespace {

enum class XattrNs { kUser, kTrusted, kSecurity, kAcl };

// A non-empty name in namespace `prefix`.
bool InNamespace(std::string_view name, std::string_view prefix) {
  return name.size() > prefix.size() && name.substr(0, prefix.size()) == prefix;
}

absl::StatusOr<XattrNs> ParseXattrName(std::string_view name, bool acl) {
  if (name.empty() || name.size() > kXattrNameMax) return ErrnoStatus(ERANGE, "bad xattr name length");
  if (InNamespace(name, "user.")) return XattrNs::kUser;
  if (InNamespace(name, "trusted.")) return XattrNs::kTrusted;
  if (InNamespace(name, "security.")) return XattrNs::kSecurity;
  if (IsAclXattr(name)) return acl ? absl::StatusOr<XattrNs>(XattrNs::kAcl) : ErrnoStatus(EOPNOTSUPP, "mounted noacl");
  return ErrnoStatus(EOPNOTSUPP, "unsupported xattr namespace");
}

// May ctx change attribute `ns` of rec? (Linux xattr_permission and the
// capability rules: trusted and security need root; user attributes live
// only on regular files and directories, and on a sticky directory need
// ownership; their write-access check, which may read the ACL, is the
// caller's.)
absl::Status CheckXattrWrite(const RequestContext& ctx, const InodeRecord& rec, XattrNs ns) {
  switch (ns) {
    case XattrNs::kTrusted:
    case XattrNs::kSecurity:
      if (!Privileged(ctx)) return ErrnoStatus(EPERM);
      return absl::OkStatus();
    case XattrNs::kUser:
      if (!S_ISREG(rec.mode) && !S_ISDIR(rec.mode)) return ErrnoStatus(EPERM);
      if (S_ISDIR(rec.mode) && (rec.mode & S_ISVTX) && !IsOwnerOrRoot(ctx, rec)) return ErrnoStatus(EPERM);
      return absl::OkStatus();
    case XattrNs::kAcl:
      return absl::OkStatus();  // SetAcl checks ownership
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Filesystem::SetXattr(const RequestContext& ctx, uint64_t ino, std::string_view name,
                                  std::string_view value, int flags) {
  Impl& s = *impl_;
  if ((flags & ~(XATTR_CREATE | XATTR_REPLACE)) != 0 || flags == (XATTR_CREATE | XATTR_REPLACE)) {
    return ErrnoStatus(EINVAL, "bad xattr flags");
  }
  RFS_ASSIGN_OR_RETURN(XattrNs ns, ParseXattrName(name, s.options.acl));
  if (value.size() > kXattrValueMax) return ErrnoStatus(E2BIG);
  RFS_RETURN_IF_ERROR(s.CheckWritable());
  RFS_ASSIGN_OR_RETURN(InodeRef ref, s.Pin(ino));
  RFS_RETURN_IF_ERROR(CheckNotImmutableOrAppend(Impl::Rec(ref.get())));
  if (ns == XattrNs::kAcl) return s.SetAcl(ctx, ref.get(), name, value, flags, /*removal=*/false);
  RFS_RETURN_IF_ERROR(CheckXattrWrite(ctx, Impl::Rec(ref.get()), ns));
  if (ns == XattrNs::kUser) RFS_RETURN_IF_ERROR(s.CheckPerm(ctx, Impl::Rec(ref.get()), W_OK));

  std::lock_guard l(s.xattr_mu);
  absl::StatusOr<std::string> existing = s.meta->GetXattr(ino, name);
  if (!existing.ok() && !absl::IsNotFound(existing.status())) return existing.status();
  if ((flags & XATTR_CREATE) && existing.ok()) return ErrnoStatus(EEXIST);
  if ((flags & XATTR_REPLACE) && !existing.ok()) return ErrnoStatus(ENODATA);
  if (name == kCapabilityXattr) {
    std::lock_guard a(ref->attr_mu);
    ref->body->no_caps = false;
  }
  const storage::Timespec now = Now();
  Impl::Mutate(ref.get(), [&](InodeRecord& r) { r.ctime = now; });
  storage::MetaStore::Batch batch;
  batch.PutXattr(ino, name, value);
  return s.Commit(batch, {ref.get()});
}

absl::StatusOr<std::string> Filesystem::GetXattr(uint64_t ino, std::string_view name) {
  Impl& s = *impl_;
  RFS_RETURN_IF_ERROR(ParseXattrName(name, s.options.acl).status());
  RFS_ASSIGN_OR_RETURN(InodeRef ref, s.Pin(ino));
  // The kernel asks for security.capability before every write it caches
  // (kernel_cache=true): answered from the body's mark once it is known.
  const bool caps = name == kCapabilityXattr;
  if (caps) {
    std::lock_guard a(ref->attr_mu);
    if (ref->body->no_caps) return ErrnoStatus(ENODATA);
  }
  absl::StatusOr<std::string> v = s.meta->GetXattr(ino, name);
  if (!v.ok() && absl::IsNotFound(v.status())) {
    if (caps) s.NoteNoCapabilities(ref.get());
    return ErrnoStatus(ENODATA);
  }
  return v;
}

absl::StatusOr<std::vector<std::string>> Filesystem::ListXattr(uint64_t ino) {
  Impl& s = *impl_;
  RFS_ASSIGN_OR_RETURN(InodeRef ref, s.Pin(ino));
  RFS_ASSIGN_OR_RETURN(std::vector<std::string> names, s.meta->ListXattrs(ino));
  if (!s.options.acl) std::erase_if(names, [](const std::string& n) { return IsAclXattr(n); });
  return names;
}

absl::Status Filesystem::RemoveXattr(const RequestContext& ctx, uint64_t ino, std::string_view name) {
  Impl& s = *impl_;
  RFS_ASSIGN_OR_RETURN(XattrNs ns, ParseXattrName(name, s.options.acl));
  RFS_RETURN_IF_ERROR(s.CheckWritable());
  RFS_ASSIGN_OR_RETURN(InodeRef ref, s.Pin(ino));
  const InodeRecord rec = Impl::Rec(ref.get());
  RFS_RETURN_IF_ERROR(CheckNotImmutableOrAppend(rec));
  // Removing an ACL that is not there succeeds, as on ext4.
  if (ns == XattrNs::kAcl) return s.SetAcl(ctx, ref.get(), name, {}, 0, /*removal=*/true);
  // The kernel removes security.capability itself when someone who may
  // write the file truncates or preallocates it, and sends that removal
  // with the writer's credentials. A removexattr(2) of it never gets here
  // from a caller without CAP_SETFCAP (the kernel refuses it first), so a
  // writer's request is the kernel's.
  const bool killpriv = name == kCapabilityXattr && s.CheckPerm(ctx, rec, W_OK).ok();
  if (!killpriv) RFS_RETURN_IF_ERROR(CheckXattrWrite(ctx, rec, ns));
  if (ns == XattrNs::kUser) RFS_RETURN_IF_ERROR(s.CheckPerm(ctx, rec, W_OK));

  std::lock_guard l(s.xattr_mu);
  absl::StatusOr<std::string> existing = s.meta->GetXattr(ino, name);
  if (!existing.ok()) {
    return absl::IsNotFound(existing.status()) ? ErrnoStatus(ENODATA) : existing.status();
  }
  const storage::Timespec now = Now();
  Impl::Mutate(ref.get(), [&](InodeRecord& r) { r.ctime = now; });
  storage::MetaStore::Batch batch;
  batch.DeleteXattr(ino, name);
  return s.Commit(batch, {ref.get()});
}

void Filesystem::Impl::NoteNoCapabilities(Inode* inode) {
  // Read again under xattr_mu, which every change of the xattr holds from
  // its read to its commit: an absence read outside it may be stale by now.
  std::lock_guard l(xattr_mu);
  absl::StatusOr<std::string> caps = meta->GetXattr(inode->ino, kCapabilityXattr);
  if (!absl::IsNotFound(caps.status())) return;
  std::lock_guard a(inode->attr_mu);
  inode->body->no_caps = true;
}

absl::Status Filesystem::Impl::DropCapabilities(Inode* inode) {
  {
    std::lock_guard a(inode->attr_mu);
    if (inode->body->no_caps) return absl::OkStatus();
  }
  std::lock_guard l(xattr_mu);
  absl::StatusOr<std::string> caps = meta->GetXattr(inode->ino, kCapabilityXattr);
  if (caps.ok()) {
    const storage::Timespec now = Now();
    Mutate(inode, [&](InodeRecord& r) { r.ctime = now; });
    storage::MetaStore::Batch batch;
    batch.DeleteXattr(inode->ino, kCapabilityXattr);
    RFS_RETURN_IF_ERROR(Commit(batch, {inode}));
  } else if (!absl::IsNotFound(caps.status())) {
    return caps.status();
  }
  std::lock_guard a(inode->attr_mu);
  inode->body->no_caps = true;
  return absl::OkStatus();
}

}  // namespace reclaimfs::fs

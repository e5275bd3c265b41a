// Inode flag rules and the fsxattr mapping.
#include "fs/posix/inode_flags.h"

#include <cerrno>
#include <utility>

#include "fs/cache/errno_status.h"
#include "fs/posix/permissions.h"

namespace reclaimfs::fs {
namespace {

// Each fsxattr flag and the inode flag it stands for.
constexpr std::pair<uint32_t, uint32_t> kXflagMap[] = {
    {FS_XFLAG_IMMUTABLE, FS_IMMUTABLE_FL}, {FS_XFLAG_APPEND, FS_APPEND_FL}, {FS_XFLAG_SYNC, FS_SYNC_FL},
    {FS_XFLAG_NOATIME, FS_NOATIME_FL},     {FS_XFLAG_NODUMP, FS_NODUMP_FL},
};

}  // namespace

absl::Status CheckSetFlags(const RequestContext& ctx, const storage::InodeRecord& rec, uint32_t flags) {
  if ((flags & ~kSupportedInodeFlags) != 0) return ErrnoStatus(EOPNOTSUPP, "unsupported inode flag");
  if (!IsOwnerOrRoot(ctx, rec)) return ErrnoStatus(EPERM, "inode flags: not the owner");
  const uint32_t changed = flags ^ rec.flags;
  if ((changed & (FS_IMMUTABLE_FL | FS_APPEND_FL)) != 0 && !Privileged(ctx)) {
    return ErrnoStatus(EPERM, "only root may change immutable or append-only");
  }
  return absl::OkStatus();
}

absl::Status CheckNotImmutableOrAppend(const storage::InodeRecord& rec) {
  if (IsImmutable(rec)) return ErrnoStatus(EPERM, "immutable");
  if (IsAppendOnly(rec)) return ErrnoStatus(EPERM, "append-only");
  return absl::OkStatus();
}

absl::Status CheckDirMayAdd(const storage::InodeRecord& dir) {
  if (IsImmutable(dir)) return ErrnoStatus(EPERM, "immutable directory");
  return absl::OkStatus();
}

absl::Status CheckDirMayRemove(const storage::InodeRecord& dir) { return CheckNotImmutableOrAppend(dir); }

uint32_t XflagsFromFlags(uint32_t flags) {
  uint32_t xflags = 0;
  for (const auto& [xflag, flag] : kXflagMap) {
    if (flags & flag) xflags |= xflag;
  }
  return xflags;
}

absl::StatusOr<uint32_t> FlagsFromXflags(uint32_t xflags, uint32_t old_flags) {
  uint32_t flags = old_flags;
  for (const auto& [xflag, flag] : kXflagMap) {
    flags = (xflags & xflag) ? (flags | flag) : (flags & ~flag);
    xflags &= ~xflag;
  }
  if (xflags != 0) return ErrnoStatus(EOPNOTSUPP, "unsupported fsxattr flag");
  return flags;
}

}  // namespace reclaimfs::fs

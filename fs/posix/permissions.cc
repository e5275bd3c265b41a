// Permission checks, ownership of new inodes, set-id clearing.
#include "fs/posix/permissions.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "fs/cache/errno_status.h"

namespace reclaimfs::fs {

bool IsRoot(const RequestContext& ctx) { return ctx.uid == 0; }

bool InGroup(const RequestContext& ctx, uint32_t gid) {
  return ctx.gid == gid || std::find(ctx.groups.begin(), ctx.groups.end(), gid) != ctx.groups.end();
}

bool IsOwnerOrRoot(const RequestContext& ctx, const storage::InodeRecord& rec) {
  return IsRoot(ctx) || ctx.uid == rec.uid;
}

absl::Status CheckAccess(const RequestContext& ctx, const storage::InodeRecord& rec, int mask) {
  mask &= R_OK | W_OK | X_OK;
  if (mask == 0) return absl::OkStatus();
  if (IsRoot(ctx)) {
    // Root may execute only what someone may execute; directories always.
    if ((mask & X_OK) && !S_ISDIR(rec.mode) && (rec.mode & 0111) == 0) return ErrnoStatus(EACCES);
    return absl::OkStatus();
  }
  uint32_t bits;
  if (ctx.uid == rec.uid) {
    bits = (rec.mode >> 6) & 7;
  } else if (InGroup(ctx, rec.gid)) {
    bits = (rec.mode >> 3) & 7;
  } else {
    bits = rec.mode & 7;
  }
  if ((static_cast<uint32_t>(mask) & ~bits) != 0) return ErrnoStatus(EACCES);
  return absl::OkStatus();
}

absl::Status CheckSticky(const RequestContext& ctx, const storage::InodeRecord& dir,
                         const storage::InodeRecord& victim) {
  if ((dir.mode & S_ISVTX) == 0 || IsRoot(ctx)) return absl::OkStatus();
  if (ctx.uid == dir.uid || ctx.uid == victim.uid) return absl::OkStatus();
  return ErrnoStatus(EPERM, "sticky directory");
}

NewOwnership OwnershipForNew(const RequestContext& ctx, const storage::InodeRecord& parent,
                             uint32_t type, uint32_t perm) {
  NewOwnership o;
  o.uid = ctx.uid;
  perm &= S_ISDIR(type) ? (S_IRWXU | S_IRWXG | S_IRWXO | S_ISVTX) : 07777;
  perm &= ~(ctx.umask & 0777);
  if (parent.mode & S_ISGID) {
    o.gid = parent.gid;
    if (S_ISDIR(type)) {
      perm |= S_ISGID;  // setgid directories propagate
    } else if ((perm & S_ISGID) && (perm & S_IXGRP) && !IsRoot(ctx) && !InGroup(ctx, o.gid)) {
      perm &= ~S_ISGID;  // no setgid executables for a group the creator is not in
    }
  } else {
    o.gid = ctx.gid;
  }
  o.mode = type | perm;
  return o;
}

uint32_t KillSuid(uint32_t mode) {
  mode &= ~S_ISUID;
  if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) mode &= ~S_ISGID;
  return mode;
}

bool OnlyClearsSetId(uint32_t mode, uint32_t new_mode) {
  constexpr uint32_t kSetId = S_ISUID | S_ISGID;
  const uint32_t cleared = mode & ~new_mode & 07777;
  const uint32_t added = new_mode & ~mode & 07777;
  return added == 0 && cleared != 0 && (cleared & ~kSetId) == 0;
}

}  // namespace reclaimfs::fs

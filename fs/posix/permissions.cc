// Permission checks, ownership of new inodes, set-id clearing.
#include "fs/posix/permissions.h"

#include <sys/stat.h>
#include <unistd.h>

#include <linux/posix_acl.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "fs/cache/errno_status.h"

namespace reclaimfs::fs {

bool IsRoot(const RequestContext& ctx) { return ctx.uid == 0; }

bool Privileged(const RequestContext& ctx) { return IsRoot(ctx) || ctx.kernel_checked; }

bool InGroup(const RequestContext& ctx, uint32_t gid) {
  return ctx.gid == gid || std::find(ctx.groups.begin(), ctx.groups.end(), gid) != ctx.groups.end();
}

bool IsOwnerOrRoot(const RequestContext& ctx, const storage::InodeRecord& rec) {
  return Privileged(ctx) || ctx.uid == rec.uid;
}

absl::Status CheckAccess(const RequestContext& ctx, const storage::InodeRecord& rec, int mask) {
  mask &= R_OK | W_OK | X_OK;
  if (mask == 0 || ctx.kernel_checked) return absl::OkStatus();
  if (IsRoot(ctx)) {
    // Root may execute only what someone may execute; directories always.
    if ((mask & X_OK) && !S_ISDIR(rec.mode) && (rec.mode & 0111) == 0) return ErrnoStatus(EACCES);
    return absl::OkStatus();
  }
  const uint32_t want = static_cast<uint32_t>(mask);
  uint32_t bits;
  if (ctx.uid == rec.uid) {
    bits = (rec.mode >> 6) & 7;
  } else {
    const uint32_t group_bits = (rec.mode >> 3) & 7, other_bits = rec.mode & 7;
    bool member = InGroup(ctx, rec.gid);
    // Supplementary groups not fetched yet: fetch them only if membership
    // decides the answer.
    if (!member && ctx.groups.empty() && ctx.load_groups &&
        ((want & ~group_bits) == 0) != ((want & ~other_bits) == 0)) {
      const std::vector<uint32_t> loaded = ctx.load_groups();
      member = std::find(loaded.begin(), loaded.end(), rec.gid) != loaded.end();
    }
    bits = member ? group_bits : other_bits;
  }
  if ((want & ~bits) != 0) return ErrnoStatus(EACCES);
  return absl::OkStatus();
}

absl::Status CheckAccessWithAcl(const RequestContext& ctx, const storage::InodeRecord& rec, const Acl& acl,
                                int mask) {
  const uint32_t want = static_cast<uint32_t>(mask) & (R_OK | W_OK | X_OK);
  if (want == 0 || ctx.kernel_checked || IsRoot(ctx) || ctx.uid == rec.uid || (rec.mode & S_IRWXG) == 0 ||
      acl.empty()) {
    return CheckAccess(ctx, rec, mask);
  }
  std::vector<uint32_t> loaded;
  bool groups_loaded = !ctx.groups.empty() || !ctx.load_groups;
  auto in_group = [&](uint32_t gid) {
    if (InGroup(ctx, gid)) return true;
    if (!groups_loaded) {
      loaded = ctx.load_groups();
      groups_loaded = true;
    }
    return std::find(loaded.begin(), loaded.end(), gid) != loaded.end();
  };
  uint32_t mask_perm = 7;
  for (const AclEntry& e : acl) {
    if (e.tag == ACL_MASK) mask_perm = e.perm;
  }
  const AclEntry* named_user = nullptr;
  const AclEntry* other = nullptr;
  bool group_matched = false, group_granted = false;
  for (const AclEntry& e : acl) {
    switch (e.tag) {
      case ACL_USER:
        if (e.id == ctx.uid) named_user = &e;
        break;
      case ACL_GROUP_OBJ:
      case ACL_GROUP:
        if (named_user == nullptr && !group_granted && in_group(e.tag == ACL_GROUP ? e.id : rec.gid)) {
          group_matched = true;
          group_granted = (e.perm & want) == want;
        }
        break;
      case ACL_OTHER: other = &e; break;
      default: break;
    }
    if (named_user != nullptr) break;
  }
  uint32_t granted;
  if (named_user != nullptr) {
    granted = named_user->perm & mask_perm;
  } else if (group_matched) {
    granted = group_granted ? (want & mask_perm) : 0;
  } else {
    granted = other != nullptr ? other->perm : 0;
  }
  if ((want & ~granted) != 0) return ErrnoStatus(EACCES);
  return absl::OkStatus();
}

absl::Status CheckSticky(const RequestContext& ctx, const storage::InodeRecord& dir,
                         const storage::InodeRecord& victim) {
  if ((dir.mode & S_ISVTX) == 0 || Privileged(ctx)) return absl::OkStatus();
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

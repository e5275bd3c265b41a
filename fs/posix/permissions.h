// Permission checks of the POSIX layer: access bits against the caller's
// credentials (root bypasses read/write, and execute when any x bit is set or
// for directories), the sticky-directory rule, ownership of new inodes
// (umask, setgid directories) and the set-id bits that writes and chown clear.
// Pure functions of their arguments (CheckAccessWithAcl may call
// ctx.load_groups, which reads the caller's groups); any thread; never block.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "fs/posix/filesystem.h"
#include "fs/posix/posix_acl.h"
#include "storage/format.h"

namespace reclaimfs::fs {

// The caller is root: for rules about what happens (set-gid kept, ...).
bool IsRoot(const RequestContext& ctx);
// The permission checks may pass: root, or a request the kernel has already
// checked and sent without ids (RequestContext::kernel_checked).
bool Privileged(const RequestContext& ctx);
bool InGroup(const RequestContext& ctx, uint32_t gid);
bool IsOwnerOrRoot(const RequestContext& ctx, const storage::InodeRecord& rec);

// mask: R_OK|W_OK|X_OK. EACCES when denied.
absl::Status CheckAccess(const RequestContext& ctx, const storage::InodeRecord& rec, int mask);
// The same with the file's access ACL (non-empty), as Linux does: the owner
// and root by the mode as above; others by their named-user entry, else the
// owning-group and named-group entries they match, each limited by the
// MASK, else OTHER. Without group bits in the mode the ACL is not consulted.
absl::Status CheckAccessWithAcl(const RequestContext& ctx, const storage::InodeRecord& rec, const Acl& acl,
                                int mask);
// Removing or renaming `victim` out of `dir`: with the sticky bit only the
// owner of either (or root) may. EPERM when denied.
absl::Status CheckSticky(const RequestContext& ctx, const storage::InodeRecord& dir,
                         const storage::InodeRecord& victim);

// Owner, group and mode of a new inode of type `type` (S_IFMT bits) created
// by ctx in `parent` with requested permission bits `perm`.
struct NewOwnership {
  uint32_t uid = 0, gid = 0, mode = 0;
};
NewOwnership OwnershipForNew(const RequestContext& ctx, const storage::InodeRecord& parent,
                             uint32_t type, uint32_t perm);

// Mode after a write or truncation by a non-root caller: S_ISUID goes, and
// S_ISGID when group-execute is set (otherwise it means mandatory locking).
uint32_t KillSuid(uint32_t mode);

// Is `new_mode` `mode` with S_ISUID and/or S_ISGID cleared (at least one of
// them) and nothing else changed? The kernel asks for such a change when it
// kills set-id bits on a modification.
bool OnlyClearsSetId(uint32_t mode, uint32_t new_mode);

}  // namespace reclaimfs::fs

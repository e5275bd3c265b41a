// Inode flags as chattr(1) sees them (FS_IOC_GETFLAGS/SETFLAGS, and the
// fsxattr view of FS_IOC_FSGETXATTR/FSSETXATTR): which are supported, who
// may change them, and the checks that enforce immutable and append-only.
// The kernel knows nothing of these flags on a FUSE mount, so every rule is
// the POSIX layer's. Pure functions; any thread; never block.
#pragma once

#include <linux/fs.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fs/posix/filesystem.h"
#include "storage/format.h"

namespace reclaimfs::fs {

// Stored and enforced (noatime, immutable, append-only) or only stored
// (sync, dirsync, nodump). Anything else is EOPNOTSUPP, as on ext4.
inline constexpr uint32_t kSupportedInodeFlags =
    FS_IMMUTABLE_FL | FS_APPEND_FL | FS_NODUMP_FL | FS_NOATIME_FL | FS_SYNC_FL | FS_DIRSYNC_FL;

inline bool IsImmutable(const storage::InodeRecord& rec) { return (rec.flags & FS_IMMUTABLE_FL) != 0; }
inline bool IsAppendOnly(const storage::InodeRecord& rec) { return (rec.flags & FS_APPEND_FL) != 0; }

// May ctx set rec's flags to `flags`? EOPNOTSUPP for unknown flags, EPERM
// unless the owner or root, and unless root for immutable/append-only.
absl::Status CheckSetFlags(const RequestContext& ctx, const storage::InodeRecord& rec, uint32_t flags);

// EPERM when `rec` is immutable or append-only: it may not be unlinked,
// renamed, replaced, linked to, or have its xattrs changed.
absl::Status CheckNotImmutableOrAppend(const storage::InodeRecord& rec);
// EPERM when directory `dir` may not gain entries (immutable) or lose them
// (immutable or append-only).
absl::Status CheckDirMayAdd(const storage::InodeRecord& dir);
absl::Status CheckDirMayRemove(const storage::InodeRecord& dir);

// The fsxattr view: fsx_xflags from flags, and flags from fsx_xflags (the
// flags without an xflag, dirsync, are kept from old_flags). EOPNOTSUPP for
// an xflag we do not support.
uint32_t XflagsFromFlags(uint32_t flags);
absl::StatusOr<uint32_t> FlagsFromXflags(uint32_t xflags, uint32_t old_flags);

}  // namespace reclaimfs::fs

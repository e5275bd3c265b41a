// Remount through mount(2). A legacy MS_REMOUNT replaces the per-mount
// flags (nosuid, nodev, noexec, ...) with the ones passed, so the current
// flags are read from the mount table and carried over unless the request
// changes them. FUSE ignores mount data on remount, so none is passed.
#include "fs/daemon/mount_remount.h"

#include <sys/mount.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "fs/daemon/mount_table.h"

namespace reclaimfs::fs {

absl::Status RemountExisting(const MountRequest& request) {
  auto table = ReadMountTable();
  if (!table.ok()) return table.status();
  std::optional<MountEntry> mount = FindTopMount(*table, request.mountpoint);
  if (!mount) return absl::NotFoundError(absl::StrCat(request.mountpoint, " is not mounted"));
  if (!mount->is_fuse()) {
    return absl::InvalidArgumentError(
        absl::StrCat(request.mountpoint, " is not a FUSE mount (it is ", mount->fstype, ")"));
  }
  // Atime flags are left out: without any, the kernel keeps the current ones.
  constexpr unsigned long kCarried = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_SYNCHRONOUS | MS_DIRSYNC;
  unsigned long flags = (mount->MountFlags() & kCarried) | (request.remount_set & (kCarried | MS_NOATIME));
  flags &= ~request.remount_clear;
  flags |= MS_REMOUNT;
  if (::mount(nullptr, request.mountpoint.c_str(), nullptr, flags, nullptr) != 0) {
    return absl::UnknownError(absl::StrCat("remount of ", request.mountpoint, " failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace reclaimfs::fs

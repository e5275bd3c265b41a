// `reclaimfs STORE MOUNTPOINT -o remount,ro|rw`: changes the flags of the
// existing mount with mount(2) MS_REMOUNT and returns. No second daemon is
// ever started for a remount; the running daemon notices the change through
// its MountWatcher. Runs on the main thread of the `-o remount` process:
// reads the mount table and blocks in mount(2) until the kernel applied it.
#pragma once

#include "absl/status/status.h"
#include "fs/daemon/mount_options.h"

namespace reclaimfs::fs {

// Keeps the mount's current flags except those the request names.
absl::Status RemountExisting(const MountRequest& request);

}  // namespace reclaimfs::fs

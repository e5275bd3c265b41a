// A second mount point for a store that a running daemon already serves.
// A block filesystem mounted twice shares one superblock; reclaimfs does the
// same: the new mount point becomes a bind mount of the running daemon's
// mount, so both see one cache and one namespace, each unmounts on its own,
// and the daemon exits when the kernel ends the FUSE connection, i.e. with
// the last of them.
//
// How the second `reclaimfs STORE MNT` finds the daemon: the daemon records
// its control socket in STORE/served-by while it serves; the newcomer asks
// that socket which store and which superblock (major:minor) it serves,
// finds a mount of that superblock in its mount table and binds it. A record
// left by a killed daemon is harmless: nobody answers on its socket, and the
// store is opened as usual.
//
// Main thread only; Attach blocks on the control socket (bounded, see
// control_client.h) and on mount(2).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fs/daemon/mount_options.h"

namespace reclaimfs::fs {

inline constexpr char kServedByFile[] = "served-by";
inline constexpr char kServedCommand[] = "served";

// The daemon side: the reply to the "served" control command.
std::string ServedReply(const std::string& store_dir, const std::string& device);

// The daemon side: STORE/served-by names `control_socket` while the daemon
// serves (written atomically); Forget removes it if it is still ours.
absl::Status RecordServingDaemon(const std::string& store_dir, const std::string& control_socket);
void ForgetServingDaemon(const std::string& store_dir, const std::string& control_socket);

// The newcomer's side. false: no running daemon serves the store (open it as
// usual). true: `request.mountpoint` is now a mount of the running daemon's
// filesystem. An error: a daemon serves the store but the mount could not be
// attached (e.g. EPERM for an unprivileged caller: a bind mount needs root).
absl::StatusOr<bool> AttachToServingDaemon(const MountRequest& request);

}  // namespace reclaimfs::fs

// The client side of the control socket: where a mount's socket lives and
// how to send it one command. Used by reclaimfs-ctl; no FUSE, no filesystem.
// Stateless; any thread. SendControlCommand blocks: connecting, each send
// and each read wait at most 10 s (socket timeouts).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace reclaimfs::fs {

inline constexpr char kControlSocketDir[] = "/run/reclaimfs";

// /run/reclaimfs/<mount point with '/' replaced by '_'>.sock, for an
// absolute mount point (see AbsoluteMountPath).
std::string DefaultControlSocketPath(const std::string& mount_point);

// Sends `line` and returns the whole reply. Unavailable if nobody listens.
absl::StatusOr<std::string> SendControlCommand(const std::string& socket_path, const std::string& line);

}  // namespace reclaimfs::fs

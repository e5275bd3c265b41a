// The daemon's command line, `reclaimfs STORE MOUNTPOINT [-o opt[,opt...]]...
// [-f] [-d] [-s]`, and the sorting of mount options into what goes to the
// kernel (through libfuse), what the filesystem itself honours, config
// overrides, and what mount(8)/fstab pass that must simply be ignored.
// Stateless; the main thread at startup (and reclaimfs-ctl). The only
// filesystem access is AbsoluteMountPath resolving the parent directory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace reclaimfs::fs {

struct MountRequest {
  std::string source;      // STORE verbatim: the mount's fsname
  std::string store_dir;   // STORE without its "store:" or "reclaimfs#" prefix, made absolute
  std::string mountpoint;  // absolute, lexically normal
  bool foreground = false;
  bool debug = false;
  bool single_threaded = false;
  bool help = false;
  bool version = false;

  // `-o remount`: no daemon; change the flags of the existing mount.
  bool remount = false;

  bool read_only = false;
  bool no_recovery = false;  // norecovery/noload: with ro, the mount writes nothing
  bool default_permissions = true;
  bool acl = true;       // noacl turns POSIX ACLs off
  bool atime = true;     // noatime turns it off
  bool relatime = true;  // strictatime turns it off
  // max_read=N (0: unlimited). INIT must repeat it, or libfuse refuses.
  uint32_t max_read = 0;
  // Options for libfuse's mount, in command-line order (ro, allow_other,
  // nodev, max_read=...). fsname and default_permissions are added later.
  std::vector<std::string> kernel_options;
  // Flags that `-o remount` applies: MS_* bits to set and to clear.
  unsigned long remount_set = 0, remount_clear = 0;

  std::optional<std::string> config_path;
  std::optional<std::string> control_socket;
  // key=value config overrides, in order (later wins).
  std::vector<std::pair<std::string, std::string>> config_overrides;
  // Options accepted but without effect here, for a debug log line.
  std::vector<std::string> ignored;
};

// Parses argv. Errors are one line without the program name, e.g.
// "unknown option 'foo'" or "missing MOUNTPOINT".
absl::StatusOr<MountRequest> ParseMountCommandLine(int argc, const char* const* argv);

// The store directory named by a STORE argument ("store:/abs" or a path).
std::string StoreDirFromSource(const std::string& source);

// The libfuse mount option string: fsname (escaped), default_permissions
// unless disabled, then the kernel options.
std::string FuseMountOptionString(const MountRequest& request);

// An absolute, lexically normal form of `path` whose parent directory has
// symlinks resolved; never touches `path` itself, which may be a dead mount.
std::string AbsoluteMountPath(const std::string& path);

std::string MountUsage(const char* program);

}  // namespace reclaimfs::fs

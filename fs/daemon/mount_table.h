// Reading the kernel's mount table (/proc/self/mountinfo): finding the mount
// at a mount point and its flags. Used by `-o remount` and by the daemon's
// watch for remounts, neither of which may call into the filesystem itself
// (statvfs on our own mount point would be a request to ourselves).
// Stateless; any thread; ReadMountTable reads the /proc file, nothing else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace reclaimfs::fs {

inline constexpr std::string_view kMountInfoPath = "/proc/self/mountinfo";

struct MountEntry {
  uint64_t id = 0;
  std::string device;      // "major:minor" of the superblock: equal for all mounts of one filesystem
  std::string root;        // the directory of the filesystem mounted here ("/" unless a bind of a subtree)
  std::string mount_point;
  std::vector<std::string> mount_options;  // per mount: rw/ro, nosuid, nodev, relatime...
  std::string fstype;
  std::string source;
  std::vector<std::string> super_options;  // per superblock: rw/ro, user_id=...

  bool HasMountOption(std::string_view opt) const;
  bool superblock_read_only() const;
  // MS_* flags of the mount (MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, ...).
  unsigned long MountFlags() const;
  bool is_fuse() const;  // "fuse", "fuseblk" or "fuse.<subtype>"
};

// Parses mountinfo text (skips malformed lines).
std::vector<MountEntry> ParseMountInfo(std::string_view text);
absl::StatusOr<std::vector<MountEntry>> ReadMountTable(std::string_view path = kMountInfoPath);

// The topmost mount at `mount_point` (the last one listed), if any.
std::optional<MountEntry> FindTopMount(const std::vector<MountEntry>& table, std::string_view mount_point);
// Mounts of the whole filesystem (root "/") whose superblock is `device`.
std::vector<MountEntry> FindMountsOfDevice(const std::vector<MountEntry>& table, std::string_view device);
std::optional<MountEntry> FindMountById(const std::vector<MountEntry>& table, uint64_t id);

}  // namespace reclaimfs::fs

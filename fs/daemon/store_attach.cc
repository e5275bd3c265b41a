#include "fs/daemon/store_attach.h"

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fs/daemon/control_client.h"
#include "fs/daemon/mount_table.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::fs {
namespace {

std::string RecordPath(const std::string& store_dir) { return store_dir + "/" + kServedByFile; }

// The store directory as one canonical path, so two spellings compare equal.
std::string Canonical(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::canonical(path, ec);
  return ec ? path : p.string();
}

std::string ReadRecord(const std::string& store_dir) {
  std::ifstream in(RecordPath(store_dir));
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  return line;
}

struct Served {
  std::string store;
  std::string device;
};

// Parses "store PATH\ndevice MAJ:MIN\n".
Served ParseServed(const std::string& reply) {
  Served s;
  for (absl::string_view line : absl::StrSplit(reply, '\n', absl::SkipEmpty())) {
    const size_t space = line.find(' ');
    if (space == absl::string_view::npos) continue;
    const absl::string_view key = line.substr(0, space), value = line.substr(space + 1);
    if (key == "store") s.store = std::string(value);
    if (key == "device") s.device = std::string(value);
  }
  return s;
}

}  // namespace

std::string ServedReply(const std::string& store_dir, const std::string& device) {
  return absl::StrCat("store ", Canonical(store_dir), "\ndevice ", device, "\n");
}

absl::Status RecordServingDaemon(const std::string& store_dir, const std::string& control_socket) {
  const std::string path = RecordPath(store_dir);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << control_socket << "\n";
    out.flush();
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

void ForgetServingDaemon(const std::string& store_dir, const std::string& control_socket) {
  if (ReadRecord(store_dir) == control_socket) ::unlink(RecordPath(store_dir).c_str());
}

absl::StatusOr<bool> AttachToServingDaemon(const MountRequest& request) {
  const std::string socket = ReadRecord(request.store_dir);
  if (socket.empty()) return false;
  auto reply = SendControlCommand(socket, kServedCommand);
  if (!reply.ok()) return false;  // a record left by a daemon that is gone
  const Served served = ParseServed(*reply);
  if (served.device.empty() || served.store != Canonical(request.store_dir)) return false;

  auto table = ReadMountTable();
  if (!table.ok()) return table.status();
  // Like a block device mounted again on the same directory: refused.
  if (auto here = FindTopMount(*table, request.mountpoint); here && here->device == served.device) {
    return absl::AlreadyExistsError(
        absl::StrCat("store ", request.store_dir, " is already mounted on ", request.mountpoint));
  }
  std::string source_mount;
  for (const MountEntry& e : FindMountsOfDevice(*table, served.device)) {
    if (e.is_fuse() && e.mount_point != request.mountpoint) {
      source_mount = e.mount_point;
      break;
    }
  }
  // The daemon answers but none of its mounts is visible here (it is being
  // unmounted, or lives in another mount namespace): open as usual, which
  // waits for the store to be released.
  if (source_mount.empty()) return false;

  if (::mount(source_mount.c_str(), request.mountpoint.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    const int err = errno;
    return absl::PermissionDeniedError(absl::StrCat(
        "store ", request.store_dir, " is served by the daemon mounted on ", source_mount,
        "; attaching ", request.mountpoint, " to it failed: ", std::strerror(err),
        err == EPERM ? " (a second mount point of a store is a bind mount, which needs root)" : ""));
  }
  if (request.read_only &&
      ::mount(nullptr, request.mountpoint.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
    const int err = errno;
    ::umount2(request.mountpoint.c_str(), MNT_DETACH);
    return absl::UnknownError(absl::StrCat("cannot make ", request.mountpoint, " read-only: ", std::strerror(err)));
  }
  // `reclaimfs-ctl ... MNT` finds the daemon through the new mount point too.
  const std::string alias = DefaultControlSocketPath(request.mountpoint);
  if (alias != socket) {
    ::unlink(alias.c_str());
    if (::symlink(socket.c_str(), alias.c_str()) != 0) {
      spdlog::debug("cannot link control socket {} to {}: {}", alias, socket, std::strerror(errno));
    }
  }
  return true;
}

}  // namespace reclaimfs::fs

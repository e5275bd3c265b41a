// Remount detection: poll(2) on /proc/self/mountinfo reports POLLPRI when
// the mount table changes; the 200 ms timeout bounds the delay regardless.
#include "fs/daemon/mount_watcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fs/daemon/mount_table.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::fs {

namespace {
constexpr int kPollIntervalMs = 200;
}  // namespace

MountWatcher::MountWatcher(std::string mount_point, std::string source, bool initially_read_only,
                           std::function<void(bool)> on_change)
    : mount_point_(std::move(mount_point)),
      source_(std::move(source)),
      on_change_(std::move(on_change)),
      read_only_(initially_read_only) {}

MountWatcher::~MountWatcher() { Stop(); }

void MountWatcher::Start() {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { Run(); });
}

void MountWatcher::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  const uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof(one));
  thread_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  wake_fd_ = -1;
}

void MountWatcher::Run() {
  const int fd = ::open(std::string(kMountInfoPath).c_str(), O_RDONLY | O_CLOEXEC);
  while (!stop_.load()) {
    Check();
    pollfd fds[2] = {{fd, POLLPRI, 0}, {wake_fd_, POLLIN, 0}};
    // The kernel clears the event in poll() itself; nothing to re-arm.
    (void)::poll(fds, 2, kPollIntervalMs);  // a negative fd is skipped
    if (fds[1].revents & POLLIN) break;
  }
  if (fd >= 0) ::close(fd);
}

void MountWatcher::Check() {
  std::lock_guard<std::mutex> lock(check_mu_);
  auto table = ReadMountTable();
  if (!table.ok()) return;
  std::optional<MountEntry> mount;
  if (mount_id_ != 0) {
    mount = FindMountById(*table, mount_id_);
  } else {
    // The first sighting: the topmost FUSE mount of our source here.
    for (const MountEntry& e : *table) {
      if (e.mount_point == mount_point_ && e.is_fuse() && e.source == source_) mount = e;
    }
    if (mount) mount_id_ = mount->id;
  }
  if (!mount) return;  // not yet visible, or already unmounted
  const bool ro = mount->superblock_read_only() || mount->HasMountOption("ro");
  if (ro == read_only_.load()) return;
  read_only_.store(ro, std::memory_order_release);
  spdlog::info("{} remounted {}", mount_point_, ro ? "read-only" : "read-write");
  on_change_(ro);
}

}  // namespace reclaimfs::fs

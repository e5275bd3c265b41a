// fork + pipe daemonization.
#include "fs/daemon/mount_daemon.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace reclaimfs::fs {

MountDaemon MountDaemon::Begin(bool foreground) {
  if (foreground) return MountDaemon(-1);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "reclaimfs: pipe: %s\n", std::strerror(errno));
    std::exit(1);
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::fprintf(stderr, "reclaimfs: fork: %s\n", std::strerror(errno));
    std::exit(1);
  }
  if (pid > 0) {
    ::close(fds[1]);
    unsigned char status = 1;
    ssize_t n;
    do {
      n = ::read(fds[0], &status, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
      std::fprintf(stderr, "reclaimfs: the daemon exited during startup\n");
      ::_exit(1);
    }
    ::_exit(status);
  }
  ::close(fds[0]);
  // Leave the caller's session so its terminal's signals and hangup no
  // longer reach the daemon.
  ::setsid();
  return MountDaemon(fds[1]);
}

MountDaemon::~MountDaemon() {
  if (report_fd_ >= 0) Report(1);
}

void MountDaemon::Ready() {
  if (report_fd_ < 0) return;
  (void)!::chdir("/");
  const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    std::fflush(nullptr);
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    if (null > STDERR_FILENO) ::close(null);
  }
  Report(0);
}

void MountDaemon::Report(unsigned char status) {
  ssize_t n;
  do {
    n = ::write(report_fd_, &status, 1);
  } while (n < 0 && errno == EINTR);
  ::close(report_fd_);
  report_fd_ = -1;
}

}  // namespace reclaimfs::fs

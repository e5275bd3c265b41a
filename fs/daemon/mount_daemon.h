// Detaching the daemon only once the mount is ready. The process forks
// first, before any thread exists (threads do not survive fork, and the
// filesystem starts many); the parent waits until the child reports, then
// exits with the child's verdict. So `reclaimfs STORE MNT` (and mount(8))
// returns only when the mount works, and every startup error is printed and
// turned into exit status 1 before anything detaches.
//
// Main thread only; Begin before any other thread exists. In the parent,
// Begin waits, unbounded, until the child reports or exits.
#pragma once

namespace reclaimfs::fs {

class MountDaemon {
 public:
  // foreground: no fork, Ready does nothing. Otherwise forks: in the
  // parent this never returns (it exits with the child's status); the child
  // gets a new session and returns.
  static MountDaemon Begin(bool foreground);

  MountDaemon(MountDaemon&& other) noexcept : report_fd_(other.report_fd_) { other.report_fd_ = -1; }
  MountDaemon(const MountDaemon&) = delete;
  MountDaemon& operator=(const MountDaemon&) = delete;
  // Without Ready(), startup failed (the reason is already on stderr): the
  // parent exits 1. Destroyed last, so the parent returns after cleanup.
  ~MountDaemon();

  // Startup succeeded: stdio to /dev/null, cwd "/", the parent exits 0.
  void Ready();

 private:
  explicit MountDaemon(int report_fd) : report_fd_(report_fd) {}
  void Report(unsigned char status);

  int report_fd_ = -1;  // child's end of the pipe to the waiting parent
};

}  // namespace reclaimfs::fs

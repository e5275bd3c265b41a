// Watches our own mount for read-only/read-write remounts and reports each
// change once. A remount is done by mount(2) in another process (see
// mount_remount.h); the kernel enforces EROFS itself, so the daemon only
// needs to learn of it soon enough to flush and record the state: a thread
// waits for mount-table change events on /proc/self/mountinfo, re-reading
// it at least every 200 ms in case an event is missed. Per-request checks
// would cost a mountinfo read (or a statvfs into ourselves) per operation.
//
// Owns its thread. Start and Stop run on the main thread; Stop joins the
// thread, so it waits for an on_change that is running (a flush of the
// filesystem when it goes read-only).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace reclaimfs::fs {

class MountWatcher {
 public:
  // `on_change(read_only)` runs on the watcher's thread, or on the thread
  // calling CheckNow().
  MountWatcher(std::string mount_point, std::string source, bool initially_read_only,
               std::function<void(bool read_only)> on_change);
  ~MountWatcher();  // Stop()

  MountWatcher(const MountWatcher&) = delete;
  MountWatcher& operator=(const MountWatcher&) = delete;

  void Start();
  void Stop();

  // Re-reads the mount table now (the remount command asks for this through
  // the control socket so writes work as soon as `remount,rw` returns).
  void CheckNow() { Check(); }

  // The state last reported (or the initial one).
  bool read_only() const { return read_only_.load(std::memory_order_acquire); }

 private:
  void Run();
  // Reads the table once; reports a change of our mount's ro flag.
  void Check();  // serialised by check_mu_: the thread and CheckNow race

  const std::string mount_point_;
  const std::string source_;
  std::function<void(bool)> on_change_;
  std::atomic<bool> read_only_;
  std::mutex check_mu_;
  uint64_t mount_id_ = 0;  // found on the first read; stable across remounts
  int wake_fd_ = -1;       // eventfd that ends the poll on Stop()
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace reclaimfs::fs

// crash_cycle: child processes, the daemon, the mount table, and the
// supervisor thread that turns SIGINT/SIGTERM and overrun deadlines into a
// kill -9 of the daemon, which makes every syscall blocked on the mount
// return (ENOTCONN) so that nothing the tool waits for can hang it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace crash_cycle {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct ProgramResult {
  int exit_code = -1;  // -1: killed by a signal, timed out or cancelled
  bool timed_out = false;
  std::string output;  // stdout and stderr
  std::string Describe() const;
};

// Runs argv (a path, or a name looked up on PATH) with its output captured.
// Kills it after `timeout`, or as soon as *cancel becomes true.
ProgramResult RunProgram(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::atomic<bool>* cancel = nullptr);

bool IsMounted(const std::string& mnt);
// umount2(MNT_DETACH) until the mount point is no longer in the mount table.
bool DetachMount(const std::string& mnt);
// A normal unmount, retried while the mount is busy; then fusermount3 -u.
bool UnmountClean(const std::string& mnt, std::chrono::milliseconds timeout);
// Fails every pending request of the FUSE connection at `mnt`, when fusectl
// is mounted; a daemon that cannot be reaped then no longer blocks callers.
void AbortConnection(const std::string& mnt);

// The reclaimfs daemon running in the foreground as our child. Kill9 may be
// called from any thread; it never signals a pid that was already reaped.
class Daemon {
 public:
  // Starts argv with stdout+stderr appended to `log` and waits (20 s) until
  // `mnt` is mounted. On failure returns false with `error` set (the daemon
  // is reaped or killed).
  bool Start(const std::vector<std::string>& argv, const std::string& mnt, const std::string& log,
             std::string* error);
  void Kill9();
  // Waits for the daemon to exit; returns its wait status, or nullopt if it
  // is still running after `timeout`.
  std::optional<int> Reap(std::chrono::milliseconds timeout);
  bool running() const;

 private:
  mutable std::mutex mu_;
  pid_t pid_ = -1;
};

std::string DescribeWaitStatus(int status);

// One thread that waits for SIGINT/SIGTERM/SIGHUP (blocked in every other
// thread) and watches the deadline of the current phase. Either way it kills
// the daemon and sets cancelled(). Construct it before starting any other
// thread, so they inherit the blocked signal mask.
class Supervisor {
 public:
  Supervisor(Daemon& daemon, std::string mnt);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  void Arm(std::string what, std::chrono::milliseconds limit);
  void Disarm();

  bool interrupted() const { return interrupted_; }
  bool fired() const { return fired_; }
  std::string fired_what() const;
  // True once interrupted or fired: every loop of the tool checks it.
  const std::atomic<bool>& cancelled() const { return cancelled_; }

 private:
  void Loop();
  void Cancel();

  Daemon& daemon_;
  const std::string mnt_;
  mutable std::mutex mu_;
  std::optional<Clock::time_point> deadline_;
  std::string what_, fired_what_;
  std::atomic<bool> interrupted_ = false, fired_ = false, cancelled_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace crash_cycle

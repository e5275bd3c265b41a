// Process and mount-table helpers for the integration tests: where the
// product's binaries are (from the environment meson's test() sets), running a
// command with a deadline and capturing its output, spawning a long-lived
// child, and querying /proc/self/mountinfo.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace reclaimfs::itest {

using namespace std::chrono_literals;

// Paths of the programs under test and of the helper tools. Each comes from an
// environment variable (see tests/integration/meson.build); the helper tools
// fall back to a lookup on PATH.
struct ToolPaths {
  std::string reclaimfs;   // RECLAIMFS_BIN
  std::string mkfs;        // MKFS_BIN
  std::string fsck;        // FSCK_BIN
  std::string ctl;         // CTL_BIN (empty when the tool is not built yet)
  std::string fusermount;  // FUSERMOUNT_BIN
  std::string mount;       // MOUNT_BIN
  std::string umount;      // UMOUNT_BIN
  std::string fio;         // FIO_BIN (empty: fio tests skip)
  std::string fio_jobs;    // FIO_JOBS_DIR: directory holding seq.fio and rand.fio
};
const ToolPaths& Tools();

struct RunResult {
  int exit_code = -1;       // exit status; -1 when killed by a signal or timed out
  int signal = 0;           // terminating signal, if any
  bool timed_out = false;
  std::string output;       // stdout and stderr, interleaved
  std::string Describe() const;  // "exit 1: <output>" for failure messages
};

// Runs argv[0] (a path, or a name searched on PATH) with stdout+stderr
// captured; kills it (SIGKILL, whole process group) after `timeout`.
RunResult RunCapture(const std::vector<std::string>& argv,
                     std::chrono::milliseconds timeout = 120s);

// Starts argv in a new process group with stdout and stderr appended to
// log_path; returns its pid (throws std::runtime_error on failure).
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path);

// Waits for a child (or a reparented descendant, see BecomeSubreaper) to
// exit. Returns its wait status, or nullopt when it is still running after
// `timeout`.
std::optional<int> WaitPid(pid_t pid, std::chrono::milliseconds timeout);

// Makes orphaned descendants (a daemon that forked into the background)
// reparent to this process so WaitPid can reap them. Idempotent.
void BecomeSubreaper();

// "exited 0", "killed by signal 9", ...
std::string DescribeWaitStatus(int status);

struct MountEntry {
  std::string mount_point;
  std::string fs_type;
  std::string source;
  std::string options;        // per-mount options (rw,nosuid,...)
  std::string super_options;  // per-superblock options
  unsigned dev_major = 0, dev_minor = 0;
};

// The entry of /proc/self/mountinfo mounted exactly at `mount_point` (the
// last one if stacked), or nullopt.
std::optional<MountEntry> FindMount(const std::string& mount_point);
bool IsMounted(const std::string& mount_point);

// Polls until IsMounted(mount_point) == mounted or the timeout passes.
bool WaitMounted(const std::string& mount_point, bool mounted, std::chrono::milliseconds timeout);

// Pids of running processes whose executable has the same file name as
// `exe` (any build of the program) and which have `arg` as an argument.
std::vector<pid_t> FindProcesses(const std::string& exe, const std::string& arg);
// The executable a process runs (readlink of /proc/PID/exe), or "".
std::string ProcessExe(pid_t pid);

bool ProcessAlive(pid_t pid);

// A value from /proc/PID/status in bytes ("VmHWM", "VmRSS"), or nullopt.
std::optional<uint64_t> ProcStatusBytes(pid_t pid, const std::string& key);

// Last `max_bytes` of a file (a daemon log), or a note that it is missing.
std::string TailFile(const std::string& path, size_t max_bytes = 8192);

}  // namespace reclaimfs::itest

// Process and mount-table helpers; see process_util.h.
#include "tests/integration/process_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace reclaimfs::itest {
namespace {

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : fallback;
}

// Builds a NULL-terminated argv before fork, so the child only execs.
std::vector<char*> MakeArgv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  out.reserve(argv.size() + 1);
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

// Child side of RunCapture/Spawn: own process group, die with the parent,
// stdin from /dev/null, stdout+stderr to out_fd, no other inherited fds.
[[noreturn]] void ExecChild(char* const* argv, int out_fd, int death_signal) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, death_signal);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, STDIN_FILENO);
  dup2(out_fd, STDOUT_FILENO);
  dup2(out_fd, STDERR_FILENO);
  close_range(3, ~0U, 0);
  execvp(argv[0], argv);
  dprintf(STDERR_FILENO, "exec %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

std::string Unescape(const std::string& s) {  // mountinfo escapes space, tab, \n, backslash
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

const ToolPaths& Tools() {
  static const ToolPaths paths = [] {
    ToolPaths p;
    p.reclaimfs = Env("RECLAIMFS_BIN");
    p.mkfs = Env("MKFS_BIN");
    p.fsck = Env("FSCK_BIN");
    p.ctl = Env("CTL_BIN");
    p.fusermount = Env("FUSERMOUNT_BIN", "fusermount3");
    p.mount = Env("MOUNT_BIN", "mount");
    p.umount = Env("UMOUNT_BIN", "umount");
    p.fio = Env("FIO_BIN");
    p.fio_jobs = Env("FIO_JOBS_DIR");
    if (p.reclaimfs.empty() || p.mkfs.empty() || p.fsck.empty()) {
      throw std::runtime_error(
          "RECLAIMFS_BIN, MKFS_BIN and FSCK_BIN must be set (run through `meson test`)");
    }
    return p;
  }();
  return paths;
}

std::string RunResult::Describe() const {
  std::ostringstream os;
  if (timed_out) {
    os << "timed out";
  } else if (signal != 0) {
    os << "killed by signal " << signal;
  } else {
    os << "exit " << exit_code;
  }
  os << ", output:\n" << output;
  return os.str();
}

RunResult RunCapture(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  RunResult result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  auto cargv = MakeArgv(argv);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    close(fds[0]);
    ExecChild(cargv.data(), fds[1], SIGKILL);
  }
  close(fds[1]);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::optional<int> status;
  // A program that daemonizes may hand the pipe to a grandchild that keeps
  // it open, so stop reading shortly after the direct child has exited.
  std::optional<std::chrono::steady_clock::time_point> drain_until;
  char buf[4096];
  for (;;) {
    pollfd pfd{fds[0], POLLIN, 0};
    poll(&pfd, 1, 20);
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) result.output.append(buf, n);
    bool eof = (n == 0);
    if (!status) {
      int st;
      if (waitpid(pid, &st, WNOHANG) == pid) {
        status = st;
        drain_until = std::chrono::steady_clock::now() + 200ms;
      }
    }
    if (status && (eof || std::chrono::steady_clock::now() > *drain_until)) break;
    if (!status && std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      int st;
      waitpid(pid, &st, 0);
      result.timed_out = true;
      close(fds[0]);
      return result;
    }
  }
  close(fds[0]);
  if (WIFEXITED(*status)) {
    result.exit_code = WEXITSTATUS(*status);
  } else if (WIFSIGNALED(*status)) {
    result.signal = WTERMSIG(*status);
  }
  return result;
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) throw std::runtime_error("cannot open " + log_path);
  auto cargv = MakeArgv(argv);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) ExecChild(cargv.data(), log, SIGTERM);  // a dying test unmounts its daemon
  close(log);
  return pid;
}

std::optional<int> WaitPid(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return st;
    if (r < 0 && errno == ECHILD) {
      // Not our child (not reparented to us): poll for its disappearance.
      if (!ProcessAlive(pid)) return 0;
    }
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
}

void BecomeSubreaper() { prctl(PR_SET_CHILD_SUBREAPER, 1); }

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

std::optional<MountEntry> FindMount(const std::string& mount_point) {
  std::ifstream in("/proc/self/mountinfo");
  std::optional<MountEntry> found;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, devno, root, mp, opts, field;
    ls >> id >> parent >> devno >> root >> mp >> opts;
    if (Unescape(mp) != mount_point) continue;
    while (ls >> field && field != "-") {
    }
    MountEntry e;
    e.mount_point = Unescape(mp);
    e.options = opts;
    ls >> e.fs_type >> e.source >> e.super_options;
    e.source = Unescape(e.source);
    std::sscanf(devno.c_str(), "%u:%u", &e.dev_major, &e.dev_minor);
    found = e;
  }
  return found;
}

bool IsMounted(const std::string& mount_point) { return FindMount(mount_point).has_value(); }

bool WaitMounted(const std::string& mount_point, bool mounted, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (IsMounted(mount_point) != mounted) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

std::vector<pid_t> FindProcesses(const std::string& exe, const std::string& arg) {
  std::vector<pid_t> pids;
  const auto want = std::filesystem::path(exe).filename();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    const pid_t pid = std::stoi(name);
    if (std::filesystem::path(ProcessExe(pid)).filename() != want || !ProcessAlive(pid)) continue;
    std::ifstream cmd(entry.path() / "cmdline", std::ios::binary);
    std::string a;
    while (std::getline(cmd, a, '\0')) {
      if (a == arg) {
        pids.push_back(pid);
        break;
      }
    }
  }
  return pids;
}

std::string ProcessExe(pid_t pid) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
  return ec ? std::string() : target.string();
}

bool ProcessAlive(pid_t pid) {
  // A zombie still answers kill(0); look at its state instead.
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(st, line)) return false;
  auto close_paren = line.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < line.size() &&
         line[close_paren + 2] != 'Z' && line[close_paren + 2] != 'X';
}

std::optional<uint64_t> ProcStatusBytes(pid_t pid, const std::string& key) {
  std::ifstream st("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(st, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream ls(line.substr(key.size() + 1));
    uint64_t kb = 0;
    if (ls >> kb) return kb * 1024;
  }
  return std::nullopt;
}

std::string TailFile(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "(no log at " + path + ")";
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (all.size() > max_bytes) all = "...\n" + all.substr(all.size() - max_bytes);
  return all;
}

}  // namespace reclaimfs::itest

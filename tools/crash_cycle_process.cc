// crash_cycle: processes, mounts and the supervisor; see crash_cycle_process.h.
#include "tools/crash_cycle_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace crash_cycle {
namespace {

constexpr auto kMountWait = 20s;

sigset_t SupervisedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

std::vector<char*> MakeArgv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

// Child side of a fork: the signal mask is inherited across exec, so unblock
// what the supervisor blocked; own process group (a Ctrl-C reaches only the
// tool, which then cleans up in order); die with the tool.
[[noreturn]] void ExecChild(char* const* argv, int out_fd, int death_signal) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
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

std::string Unescape(const std::string& s) {  // mountinfo writes space, tab, \n and \ as \ooo
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

// The device minor of the mount at `mnt` (the FUSE connection number).
std::optional<unsigned> MountMinor(const std::string& mnt) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::optional<unsigned> minor;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, devno, root, mp;
    ls >> id >> parent >> devno >> root >> mp;
    unsigned maj = 0, min = 0;
    if (Unescape(mp) == mnt && std::sscanf(devno.c_str(), "%u:%u", &maj, &min) == 2) minor = min;
  }
  return minor;
}

std::string Tail(const std::string& path, size_t max_bytes = 4096) {
  std::ifstream in(path, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > max_bytes ? "...\n" + all.substr(all.size() - max_bytes) : all;
}

}  // namespace

std::string ProgramResult::Describe() const {
  std::string s = timed_out ? "timed out" : exit_code >= 0 ? "exit " + std::to_string(exit_code) : "killed";
  return s + ", output:\n" + output;
}

ProgramResult RunProgram(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::atomic<bool>* cancel) {
  ProgramResult result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    result.output = std::string("pipe2: ") + strerror(errno);
    return result;
  }
  auto cargv = MakeArgv(argv);
  const pid_t pid = fork();
  if (pid == 0) ExecChild(cargv.data(), fds[1], SIGKILL);
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    result.output = std::string("fork: ") + strerror(errno);
    return result;
  }
  const auto deadline = Clock::now() + timeout;
  char buf[4096];
  int status = 0;
  for (bool eof = false; !eof;) {
    pollfd pfd{fds[0], POLLIN, 0};
    if (poll(&pfd, 1, 50) > 0) {
      const ssize_t n = read(fds[0], buf, sizeof buf);
      if (n > 0) result.output.append(buf, n);
      eof = n == 0 || (n < 0 && errno != EINTR);
    }
    const bool cancelled = cancel != nullptr && cancel->load();
    if (!eof && (Clock::now() > deadline || cancelled)) {
      result.timed_out = !cancelled;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
  }
  close(fds[0]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!result.timed_out && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

bool IsMounted(const std::string& mnt) { return MountMinor(mnt).has_value(); }

bool DetachMount(const std::string& mnt) {
  for (int i = 0; i < 10 && IsMounted(mnt); ++i) {
    if (umount2(mnt.c_str(), MNT_DETACH) != 0 && errno != EINVAL) std::this_thread::sleep_for(100ms);
  }
  return !IsMounted(mnt);
}

bool UnmountClean(const std::string& mnt, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (IsMounted(mnt)) {
    if (umount2(mnt.c_str(), 0) == 0) continue;
    if (errno == EPERM) {  // not root: the FUSE way
      if (RunProgram({"fusermount3", "-u", mnt}, 30s).exit_code == 0) continue;
    }
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(100ms);  // EBUSY while a closing fd drains
  }
  return true;
}

void AbortConnection(const std::string& mnt) {
  const auto minor = MountMinor(mnt);
  if (!minor) return;
  std::ofstream abort("/sys/fs/fuse/connections/" + std::to_string(*minor) + "/abort");
  if (abort) abort << "1";
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

bool Daemon::Start(const std::vector<std::string>& argv, const std::string& mnt, const std::string& log,
                   std::string* error) {
  const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    *error = "cannot open " + log + ": " + strerror(errno);
    return false;
  }
  auto cargv = MakeArgv(argv);
  // A dying tool unmounts its daemon (SIGTERM) instead of leaving a dead mount.
  const pid_t pid = fork();
  if (pid == 0) ExecChild(cargv.data(), log_fd, SIGTERM);
  close(log_fd);
  if (pid < 0) {
    *error = std::string("fork: ") + strerror(errno);
    return false;
  }
  {
    std::lock_guard lock(mu_);
    pid_ = pid;
  }
  const auto deadline = Clock::now() + kMountWait;
  while (!IsMounted(mnt)) {
    if (auto st = Reap(0ms)) {
      *error = "reclaimfs " + DescribeWaitStatus(*st) + " before mounting; log:\n" + Tail(log);
      return false;
    }
    if (Clock::now() > deadline) {
      Kill9();
      Reap(30s);
      *error = "reclaimfs did not mount " + mnt + " within 20 s; log:\n" + Tail(log);
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

void Daemon::Kill9() {
  std::lock_guard lock(mu_);
  if (pid_ > 0) kill(pid_, SIGKILL);
}

std::optional<int> Daemon::Reap(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    {
      // Under the lock, so Kill9 never signals a pid reaped (and reusable) here.
      std::lock_guard lock(mu_);
      if (pid_ <= 0) return std::nullopt;
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return st;
      }
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
}

bool Daemon::running() const {
  std::lock_guard lock(mu_);
  return pid_ > 0;
}

Supervisor::Supervisor(Daemon& daemon, std::string mnt) : daemon_(daemon), mnt_(std::move(mnt)) {
  const sigset_t set = SupervisedSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  thread_ = std::thread([this] { Loop(); });
}

Supervisor::~Supervisor() {
  stop_ = true;
  thread_.join();
}

void Supervisor::Arm(std::string what, std::chrono::milliseconds limit) {
  std::lock_guard lock(mu_);
  what_ = std::move(what);
  deadline_ = Clock::now() + limit;
}

void Supervisor::Disarm() {
  std::lock_guard lock(mu_);
  deadline_.reset();
}

std::string Supervisor::fired_what() const {
  std::lock_guard lock(mu_);
  return fired_what_;
}

void Supervisor::Cancel() {
  cancelled_ = true;
  daemon_.Kill9();
  AbortConnection(mnt_);
}

void Supervisor::Loop() {
  const sigset_t set = SupervisedSignals();
  const timespec tick{0, 50'000'000};
  while (!stop_) {
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig > 0) {
      std::fprintf(stderr, "crash_cycle: %s, stopping (killing the daemon, detaching the mount)\n",
                   strsignal(sig));
      interrupted_ = true;
      Cancel();
    }
    bool overran = false;
    {
      std::lock_guard lock(mu_);
      if (deadline_ && Clock::now() > *deadline_) {
        fired_what_ = what_;
        deadline_.reset();
        overran = true;
      }
    }
    if (overran) {
      std::fprintf(stderr, "crash_cycle: HANG: %s overran its deadline; killing the daemon\n",
                   fired_what().c_str());
      fired_ = true;
      Cancel();
    }
  }
}

}  // namespace crash_cycle

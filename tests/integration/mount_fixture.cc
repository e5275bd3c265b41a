// The integration-test fixture; see mount_fixture.h.
#include "tests/integration/mount_fixture.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace reclaimfs::itest {
namespace {

constexpr auto kMountWait = 20s;      // daemon start until the mount shows
constexpr auto kDaemonExitWait = 60s;  // unmount until the daemon has exited
constexpr auto kStuckGrace = 60s;      // after the watchdog fired, until we give up

std::string TempRoot() {
  std::error_code ec;
  auto base = std::filesystem::temp_directory_path(ec);
  if (ec) base = "/tmp";
  return base / "reclaimfs-itest-XXXXXX";
}

// Aborts the FUSE connection behind a mount (when fusectl is mounted), which
// makes every pending request fail even if the daemon cannot be killed.
void AbortConnection(const std::string& mnt) {
  auto m = FindMount(mnt);
  if (!m) return;
  std::ofstream abort("/sys/fs/fuse/connections/" + std::to_string(m->dev_minor) + "/abort");
  if (abort) abort << "1";
}

constexpr const char* kEnableUring = "/sys/module/fuse/parameters/enable_uring";

// Turns the kernel's FUSE over io_uring on for the program's run when the
// io_uring transport is under test, and puts the old value back at the end.
class UringEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (TransportUnderTest() != "uring") return;
    std::ifstream in(kEnableUring);
    if (!(in >> saved_)) return;  // no such parameter: tests skip
    std::ofstream(kEnableUring) << "Y";
  }
  void TearDown() override {
    if (!saved_.empty()) std::ofstream(kEnableUring) << saved_;
  }

 private:
  std::string saved_;
};

[[maybe_unused]] ::testing::Environment* const uring_environment =
    ::testing::AddGlobalTestEnvironment(new UringEnvironment);

bool KernelServesUring() {
  std::ifstream in(kEnableUring);
  std::string v;
  return static_cast<bool>(in >> v) && v == "Y";
}

}  // namespace

const std::string& TransportUnderTest() {
  static const std::string t = [] {
    const char* v = std::getenv("RECLAIMFS_TEST_TRANSPORT");
    return std::string(v == nullptr ? "" : v);
  }();
  return t;
}

void ReclaimfsTest::ExpectTransportServed() {
  if (TransportUnderTest() != "uring" || daemon_pid_ <= 0 || !IsMounted(mnt_) || Tools().ctl.empty()) return;
  RunResult r = Run({Tools().ctl, "stat", mnt_}, 30s);
  if (r.exit_code != 0) return;  // a daemon that cannot answer is another test's subject
  const CtlStats st = ParseCtlStats(r.output);
  auto it = st.values.find("fuse_uring_requests");
  EXPECT_TRUE(it != st.values.end() && it->second > 0)
      << "fuse_transport=uring, but no request was served through the rings:\n" << r.output;
}

double ReclaimfsTest::DaemonStat(const std::string& key) {
  RunResult r = Run({Tools().ctl, "stat", mnt_}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  const CtlStats st = ParseCtlStats(r.output);
  auto it = st.values.find(key);
  return it == st.values.end() ? -1 : it->second;
}

ReclaimfsTest::ReclaimfsTest(FixtureConfig config) : config_(std::move(config)) {}
ReclaimfsTest::~ReclaimfsTest() = default;

std::string ReclaimfsTest::Path(std::string_view rel) const {
  return rel.empty() ? mnt_ : mnt_ + "/" + std::string(rel);
}

void ReclaimfsTest::SetUp() {
  if (TransportUnderTest() == "uring" && !KernelServesUring()) {
    GTEST_SKIP() << "FUSE over io_uring under test, but this kernel has no usable " << kEnableUring
                 << " (Linux 6.14+ with the fuse module)";
  }
  BecomeSubreaper();
  std::string tmpl = TempRoot();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  chmod(dir_.c_str(), 0755);  // tests that switch to an unprivileged user traverse it
  store_ = dir_ + "/store";
  mnt_ = dir_ + "/mnt";
  std::filesystem::create_directory(mnt_);
  umask(022);

  watchdog_ = std::make_unique<Watchdog>([this](const std::string& what) { OnWatchdog(what); });
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  budget_.emplace(watchdog_->Arm(std::string("test ") + info->test_suite_name() + "." + info->name(),
                                 config_.budget));

  if (config_.mkfs_in_setup) {
    RunResult r = Mkfs();
    if (r.exit_code != 0) throw std::runtime_error("mkfs failed: " + r.Describe());
    if (config_.mount_in_setup) Mount();
  }
}

void ReclaimfsTest::TearDown() {
  budget_.reset();
  teardown_started_ = true;
  const bool fired = watchdog_ && watchdog_->fired();

  if (daemon_pid_ > 0) {
    if (!fired) ExpectTransportServed();
    const bool detached = DetachMount(/*lazy_fallback=*/true);
    EXPECT_TRUE(detached) << "could not unmount " << mnt_;
    ReapDaemon(daemon_pid_, /*expect_clean_exit=*/!fired, daemon_log_);
    daemon_pid_ = -1;
  }
  if (IsMounted(mnt_)) {  // a foreign mount (mount -t, daemonized) or a leftover
    EXPECT_TRUE(DetachMount(true)) << "could not unmount " << mnt_;
  }
  for (const auto& [pid, log] : retired_) ReapDaemon(pid, !fired, log);
  retired_.clear();

  if (store_made_ && std::filesystem::exists(store_) && !IsMounted(mnt_)) {
    ExpectFsckClean("after the test");
  }
  if (HasFailure()) std::cerr << "---- daemon logs of this test ----\n" << DaemonLog() << "\n";

  watchdog_.reset();  // joins the watchdog thread
  if (!dir_.empty()) {
    if (IsMounted(mnt_)) {
      ADD_FAILURE() << "a mount is left at " << mnt_ << "; not removing " << dir_;
    } else {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
}

RunResult ReclaimfsTest::Run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  return RunCapture(argv, timeout);
}

RunResult ReclaimfsTest::Mkfs(const std::vector<std::string>& extra, std::optional<std::string> size) {
  std::vector<std::string> argv{Tools().mkfs, store_};
  const std::string sz = size.value_or(config_.store_size);
  if (!sz.empty()) {
    argv.push_back("--size");
    argv.push_back(sz);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  RunResult r = Run(argv);
  if (r.exit_code == 0) store_made_ = true;
  return r;
}

RunResult ReclaimfsTest::Fsck() { return Run({Tools().fsck, store_}, 300s); }

void ReclaimfsTest::ExpectFsckClean(const std::string& when) {
  RunResult r = Fsck();
  EXPECT_EQ(r.exit_code, 0) << "fsck.reclaimfs " << when << ": " << r.Describe();
}

std::string ReclaimfsTest::NewLogPath() {
  logs_.push_back(dir_ + "/daemon-" + std::to_string(logs_.size() + 1) + ".log");
  return logs_.back();
}

void ReclaimfsTest::Mount(std::optional<std::string> options) {
  if (daemon_pid_ > 0) throw std::logic_error("Mount() while a daemon is running");
  std::string opts = options.value_or(config_.mount_options);
  if (!TransportUnderTest().empty()) {
    opts += (opts.empty() ? "" : ",") + std::string("fuse_transport=") + TransportUnderTest();
  }
  std::vector<std::string> argv{Tools().reclaimfs, source_prefix_ + store_, mnt_, "-f"};
  if (!opts.empty()) {
    argv.push_back("-o");
    argv.push_back(opts);
  }
  daemon_log_ = NewLogPath();
  const pid_t pid = Spawn(argv, daemon_log_);
  daemon_pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + kMountWait;
  while (!IsMounted(mnt_)) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      daemon_pid_ = -1;
      throw std::runtime_error("reclaimfs " + DescribeWaitStatus(st) + " before mounting (-o '" + opts +
                               "'); log:\n" + TailFile(daemon_log_));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("reclaimfs did not mount " + mnt_ + " within 20 s; log:\n" +
                               TailFile(daemon_log_));
    }
    std::this_thread::sleep_for(10ms);
  }
  struct stat st{};
  if (stat(mnt_.c_str(), &st) != 0) ThrowErrno("stat of the fresh mount", mnt_);
}

bool ReclaimfsTest::DetachMount(bool lazy_fallback) {
  if (!IsMounted(mnt_)) return true;
  for (int i = 0; i < 20 && IsMounted(mnt_); ++i) {  // EBUSY while a closing fd drains
    RunResult r = Run({Tools().fusermount, "-u", mnt_}, 30s);
    if (r.exit_code == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  if (IsMounted(mnt_)) Run({Tools().umount, mnt_}, 30s);
  if (IsMounted(mnt_) && lazy_fallback) Run({Tools().umount, "-l", mnt_}, 30s);
  return WaitMounted(mnt_, false, 5s);
}

void ReclaimfsTest::ReapDaemon(pid_t pid, bool expect_clean_exit, const std::string& log) {
  std::optional<int> st = WaitPid(pid, kDaemonExitWait);
  if (!st) {
    ADD_FAILURE() << "daemon " << pid << " still running 60 s after unmount; SIGKILL. log:\n"
                  << TailFile(log);
    kill(pid, SIGKILL);
    WaitPid(pid, 10s);
    return;
  }
  if (expect_clean_exit) {
    EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0)
        << "daemon " << pid << " " << DescribeWaitStatus(*st) << " after unmount; log:\n" << TailFile(log);
  }
}

void ReclaimfsTest::Unmount() {
  if (daemon_pid_ <= 0) throw std::logic_error("Unmount() without a daemon");
  ExpectTransportServed();
  if (!DetachMount(/*lazy_fallback=*/false)) {
    throw std::runtime_error("cannot unmount " + mnt_ + " (busy?)");
  }
  const pid_t pid = daemon_pid_;
  daemon_pid_ = -1;
  ReapDaemon(pid, true, daemon_log_);
}

void ReclaimfsTest::Remount(std::optional<std::string> options) {
  Unmount();
  ExpectFsckClean("between unmount and remount");
  Mount(std::move(options));
}

void ReclaimfsTest::KillDaemon9() {
  if (daemon_pid_ <= 0) throw std::logic_error("KillDaemon9() without a daemon");
  const pid_t pid = daemon_pid_;
  kill(pid, SIGKILL);
  std::optional<int> st = WaitPid(pid, 30s);
  if (!st) throw std::runtime_error("daemon survived SIGKILL for 30 s");
  daemon_pid_ = -1;
  if (!DetachMount(/*lazy_fallback=*/true)) throw std::runtime_error("cannot detach the dead mount");
}

int ReclaimfsTest::SignalDaemonAndWait(int sig) {
  if (daemon_pid_ <= 0) throw std::logic_error("SignalDaemonAndWait() without a daemon");
  kill(daemon_pid_, sig);
  return WaitDaemonExit("signal " + std::to_string(sig));
}

int ReclaimfsTest::WaitDaemonExit(const std::string& after) {
  if (daemon_pid_ <= 0) throw std::logic_error("WaitDaemonExit() without a daemon");
  const pid_t pid = daemon_pid_;
  std::optional<int> st = WaitPid(pid, kDaemonExitWait);
  if (!st) {
    throw std::runtime_error("daemon did not exit within 60 s of " + after + "; log:\n" + TailFile(daemon_log_));
  }
  daemon_pid_ = -1;
  return *st;
}

void ReclaimfsTest::RetireDaemon() {
  if (daemon_pid_ > 0) retired_.emplace_back(daemon_pid_, daemon_log_);
  daemon_pid_ = -1;
}

void ReclaimfsTest::TrackForeignMount(pid_t pid) { retired_.emplace_back(pid, ""); }

std::string ReclaimfsTest::DaemonLog() const {
  std::string out;
  for (const auto& log : logs_) out += "==> " + log + " <==\n" + TailFile(log) + "\n";
  return out;
}

void ReclaimfsTest::OnWatchdog(const std::string& what) {
  ADD_FAILURE() << "watchdog: " << what << "; killing the daemon to unblock the test. Daemon log:\n"
                << DaemonLog();
  if (killed_by_watchdog_.exchange(true)) return;
  AbortConnection(mnt_);
  const pid_t pid = daemon_pid_;
  if (pid > 0) kill(pid, SIGKILL);
  for (const auto& [p, log] : retired_) kill(p, SIGKILL);
  // If the body is still stuck (not in FUSE), clean up and leave: a hung
  // suite is worse than an aborted one, and no mount may stay behind.
  const auto deadline = std::chrono::steady_clock::now() + kStuckGrace;
  while (!teardown_started_ && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  if (teardown_started_) return;
  std::cerr << "watchdog: the test is still stuck " << kStuckGrace.count()
            << " s after the daemon was killed; detaching " << mnt_ << " and exiting\n";
  Run({Tools().umount, "-l", mnt_}, 30s);
  std::_Exit(1);
}

CtlStats ParseCtlStats(const std::string& output) {
  CtlStats s;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string name, value, extra;
    ls >> name >> value;
    char* end = nullptr;
    double v = value.empty() ? 0 : std::strtod(value.c_str(), &end);
    if (name.empty() || value.empty() || *end != '\0' || (ls >> extra)) {
      s.malformed.push_back(line);
      continue;
    }
    s.values[name] = v;
  }
  return s;
}

}  // namespace reclaimfs::itest

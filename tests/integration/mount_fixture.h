// The integration-test fixture: a private temp directory with store/ and
// mnt/, mkfs, a reclaimfs daemon in the foreground (-f) as a child process
// whose log is kept for failure messages, and a teardown that always leaves
// nothing behind: unmount (fusermount, then lazy umount), reap the daemon
// (SIGKILL after a bound), fsck must be clean, the temp directory goes. A
// watchdog bounds the whole test; when it fires it fails the test, prints the
// daemon log and kills the daemon so a hung syscall returns.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/file_util.h"
#include "tests/integration/process_util.h"
#include "tests/integration/watchdog.h"

namespace reclaimfs::itest {

// The FUSE transport every mount of this test program asks for, from
// RECLAIMFS_TEST_TRANSPORT ("uring", "dev"; unset: the daemon's default).
// With "uring" the program turns the kernel's enable_uring on for its run
// (restoring it at exit), every test is skipped with the reason where the
// kernel lacks it, and each mount must have served requests through the
// rings before it is unmounted.
const std::string& TransportUnderTest();

// How a test wants its store and mount; chain the setters:
//   FixtureConfig().Options("cache_budget=32M").Size("4G").Budget(420s)
struct FixtureConfig {
  std::string mount_options;           // the daemon's -o argument ("" = none)
  std::string store_size = "2G";       // mkfs --size
  std::chrono::seconds budget = 300s;  // the whole test, teardown excluded
  bool mkfs_in_setup = true;
  bool mount_in_setup = true;

  FixtureConfig& Options(std::string o) { mount_options = std::move(o); return *this; }
  FixtureConfig& Size(std::string s) { store_size = std::move(s); return *this; }
  FixtureConfig& Budget(std::chrono::seconds b) { budget = b; return *this; }
  FixtureConfig& NoMkfs() { mkfs_in_setup = false; return *this; }
  FixtureConfig& NoMount() { mount_in_setup = false; return *this; }
};

class ReclaimfsTest : public ::testing::Test {
 protected:
  explicit ReclaimfsTest(FixtureConfig config = {});
  ~ReclaimfsTest() override;
  void SetUp() override;
  void TearDown() override;

  const std::string& dir() const { return dir_; }    // the private temp directory
  const std::string& store() const { return store_; }
  const std::string& mnt() const { return mnt_; }
  std::string Path(std::string_view rel) const;       // mnt/rel
  const FixtureConfig& config() const { return config_; }

  // mkfs.reclaimfs STORE [--size N] [extra...]; the result is not checked.
  RunResult Mkfs(const std::vector<std::string>& extra = {}, std::optional<std::string> size = {});
  RunResult Fsck();
  void ExpectFsckClean(const std::string& when);

  // Starts `reclaimfs STORE MNT -f [-o options]` (the fixture's options when
  // none are given) and waits until it is mounted; throws with the daemon
  // log when it exits or does not mount within 20 s.
  void Mount(std::optional<std::string> options = {});
  // Unmounts, waits for the daemon to exit and expects exit status 0.
  void Unmount();
  // Unmount, fsck must be clean, mount again (with the given options).
  void Remount(std::optional<std::string> options = {});
  // SIGKILL to the daemon, reap it, detach the dead mount.
  void KillDaemon9();
  // Sends `sig` to the daemon and waits (60 s) for it to exit; returns its
  // wait status (throws if it does not exit). The mount is left as it is.
  int SignalDaemonAndWait(int sig);
  // Waits (60 s) for the daemon to exit on its own, e.g. after its last
  // mount point went away (`after` names that for the failure message);
  // returns its wait status.
  int WaitDaemonExit(const std::string& after);
  // Forget the running daemon without waiting (it is reaped in TearDown);
  // used after an unmount that the next mount must race.
  void RetireDaemon();

  // The STORE argument Mount() passes is source_prefix + store() (e.g.
  // "reclaimfs#" forms that mount.fuse3 can parse without a type).
  void set_source_prefix(std::string prefix) { source_prefix_ = std::move(prefix); }

  pid_t daemon_pid() const { return daemon_pid_; }
  std::string DaemonLog() const;  // tails of all daemon logs of this test
  // One value of `reclaimfs-ctl stat` on the mount; -1 if it has no such line.
  double DaemonStat(const std::string& key);
  std::string NewLogPath();
  Watchdog& watchdog() { return *watchdog_; }

  // Runs a tool with the fixture's bound and returns exit status + output.
  RunResult Run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = 120s);

  // Unmounts a mount made outside the fixture's daemon (mount -t, daemonized
  // reclaimfs); TearDown also cleans these.
  void TrackForeignMount(pid_t daemon_pid);

 private:
  void OnWatchdog(const std::string& what);
  // With the io_uring transport under test: the running daemon served
  // requests through its rings (reclaimfs-ctl stat).
  void ExpectTransportServed();
  bool DetachMount(bool lazy_fallback);
  void ReapDaemon(pid_t pid, bool expect_clean_exit, const std::string& log);

  FixtureConfig config_;
  std::string dir_, store_, mnt_;
  std::string source_prefix_;
  std::atomic<pid_t> daemon_pid_ = -1;  // read by the watchdog thread
  std::string daemon_log_;
  std::atomic<bool> teardown_started_ = false;
  std::atomic<bool> killed_by_watchdog_ = false;
  std::vector<std::string> logs_;
  std::vector<std::pair<pid_t, std::string>> retired_;  // pid, log
  bool store_made_ = false;
  std::unique_ptr<Watchdog> watchdog_;
  std::optional<Watchdog::Guard> budget_;
};

// Parses `reclaimfs-ctl stat` output: "name value" per line; lines that do not
// have that shape are returned in `malformed`.
struct CtlStats {
  std::map<std::string, double> values;
  std::vector<std::string> malformed;
};
CtlStats ParseCtlStats(const std::string& output);

}  // namespace reclaimfs::itest

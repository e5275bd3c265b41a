// Mounting reclaimfs: accepted options and config files, `mount -t
// fuse.reclaimfs store:/path`, remount read-only and back (through mount(8)
// and through the daemon binary) with the same daemon, mounting again right
// after an unmount, reclaimfs-ctl stat, and SIGTERM unmounting cleanly.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

// The statistic that reports the cache budget ("budget_limit", or a name
// with "limit").
bool IsBudgetStat(const std::string& name) {
  return name.find("budget") != std::string::npos || name.find("limit") != std::string::npos;
}

class MountOptionsTest : public ReclaimfsTest {
 protected:
  MountOptionsTest() : ReclaimfsTest(FixtureConfig().Size("256M").Budget(240s).NoMount()) {}

  // Writes that a read-only mount must refuse with EROFS.
  void ExpectReadOnly() {
    EXPECT_ERRNO(EROFS, open(Path("new").c_str(), O_CREAT | O_WRONLY, 0644));
    EXPECT_ERRNO(EROFS, open(Path("file").c_str(), O_WRONLY));
    EXPECT_ERRNO(EROFS, mkdir(Path("newdir").c_str(), 0755));
    EXPECT_ERRNO(EROFS, unlink(Path("file").c_str()));
    EXPECT_ERRNO(EROFS, rename(Path("file").c_str(), Path("renamed").c_str()));
    EXPECT_ERRNO(EROFS, chmod(Path("file").c_str(), 0600));
    EXPECT_ERRNO(EROFS, setxattr(Path("file").c_str(), "user.x", "v", 1, 0));
    EXPECT_ERRNO(EROFS, truncate(Path("file").c_str(), 0));
    EXPECT_EQ(ReadFile(Path("file")), "before") << "reads must work read-only";
    auto m = FindMount(mnt());
    ASSERT_TRUE(m.has_value());
    EXPECT_TRUE(m->options == "ro" || m->options.rfind("ro,", 0) == 0) << "mount options: " << m->options;
  }

  void ExpectWritable(const std::string& name) {
    WriteFile(Path(name), name);
    EXPECT_EQ(ReadFile(Path(name)), name);
    auto m = FindMount(mnt());
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->options.rfind("rw", 0), 0u) << "mount options: " << m->options;
  }

  // A mount made by mount(8): /proc/mounts shows the source verbatim and
  // type fuse, IO works, umount(8) ends the daemon cleanly, data persists.
  void ExpectMount8MountWorks(const std::vector<pid_t>& pids, const std::string& source) {
    auto m = FindMount(mnt());
    ASSERT_TRUE(m.has_value()) << "mount(8) returned 0 but nothing is mounted";
    EXPECT_EQ(m->source, source) << "source in /proc/mounts";
    EXPECT_EQ(m->fs_type, "fuse") << "type in /proc/mounts";
    WriteFile(Path("via-mount8"), "hello");
    EXPECT_EQ(ReadFile(Path("via-mount8")), "hello");
    UnmountForeign(pids, {Tools().umount, mnt()});
    ExpectFsckClean("after umount of a mount(8) mount");
    Mount();
    EXPECT_EQ(ReadFile(Path("via-mount8")), "hello");
  }

  // Unmounts a daemonized (not our -f child) reclaimfs and waits for it.
  void UnmountForeign(const std::vector<pid_t>& pids, const std::vector<std::string>& umount_cmd) {
    RunResult r = Run(umount_cmd);
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_TRUE(WaitMounted(mnt(), false, std::chrono::seconds(5)));
    for (pid_t pid : pids) {
      std::optional<int> st = WaitPid(pid, std::chrono::seconds(60));
      ASSERT_TRUE(st.has_value()) << "daemon " << pid << " still running after unmount";
      EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << DescribeWaitStatus(*st);
    }
  }
};

TEST_F(MountOptionsTest, CacheBudgetAndConfigFileAccepted) {
  Mount("cache_budget=32M");
  // More data than the budget, through and back.
  const std::string f = Path("big");
  {
    UniqueFd fd = Open(f, O_CREAT | O_WRONLY);
    for (int i = 0; i < 64; ++i) {
      const std::string b = MakeBlock(60, i, 1 << 20);
      PwriteAll(fd.get(), b.data(), b.size(), off_t{i} << 20);
    }
    ASSERT_SYS_OK(fsync(fd.get()));
  }
  {
    UniqueFd fd = Open(f, O_RDONLY);
    std::string got(1 << 20, '\0');
    for (int i = 0; i < 64; ++i) {
      PreadExact(fd.get(), got.data(), got.size(), off_t{i} << 20);
      ASSERT_EQ(got, MakeBlock(60, i, 1 << 20)) << "MiB " << i;
    }
  }
  if (!Tools().ctl.empty()) {
    RunResult r = Run({Tools().ctl, "stat", mnt()});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    bool budget_seen = false;
    for (const auto& [name, value] : ParseCtlStats(r.output).values) {
      if (IsBudgetStat(name) && value == 32.0 * (1 << 20)) budget_seen = true;
    }
    EXPECT_TRUE(budget_seen) << "no budget/limit statistic equals 32 MiB:\n" << r.output;
  }
  Unmount();

  const std::string cfg = dir() + "/reclaimfs.toml";
  std::ofstream(cfg) << "# flat keys\ncache_budget = \"48M\"\ndirty_ratio = 0.3\nflusher_threads = 2\n"
                        "shrinker_mode = \"nonblocking\"\n";
  Mount("config=" + cfg + ",noatime,dirty_expire_ms=1000,writeback_interval_ms=200");
  EXPECT_EQ(ReadFile(Path("big")).size(), 64u << 20);
  if (!Tools().ctl.empty()) {
    RunResult r = Run({Tools().ctl, "stat", mnt()});
    bool budget_seen = false;
    for (const auto& [name, value] : ParseCtlStats(r.output).values) {
      if (IsBudgetStat(name) && value == 48.0 * (1 << 20)) budget_seen = true;
    }
    EXPECT_TRUE(budget_seen) << "config file's cache_budget = 48M not in effect:\n" << r.output;
  }
}

// `mount -t fuse.reclaimfs SOURCE MNT` makes mount(8) run mount.fuse3 with
// -t reclaimfs, which runs `reclaimfs SOURCE MNT -o ...` found on PATH.
// mount(8) resets PATH to the system's, so the test calls mount.fuse3 the
// same way mount(8) does, with this build's directory on PATH.
TEST_F(MountOptionsTest, MountFuseHelperWithTypeAndStorePrefix) {
  const std::string source = "store:" + store();
  RunResult r = Run({"/sbin/mount.fuse3", source, mnt(), "-t", "reclaimfs", "-o", "noatime,cache_budget=64M"},
                    std::chrono::seconds(60));
  const std::vector<pid_t> pids = FindProcesses(Tools().reclaimfs, mnt());
  for (pid_t pid : pids) TrackForeignMount(pid);
  ASSERT_EQ(r.exit_code, 0) << "mount.fuse3 -t reclaimfs: " << r.Describe();
  ASSERT_EQ(pids.size(), 1u) << "expected one daemon serving " << mnt();
  EXPECT_EQ(ProcessExe(pids[0]), std::filesystem::canonical(Tools().reclaimfs).string());
  ExpectMount8MountWorks(pids, source);
}

// The legacy "program#source" form makes mount.fuse run this build's daemon by
// absolute path, so the mount(8) path is covered without installing anything.
TEST_F(MountOptionsTest, MountTypeFuseWithProgramPath) {
  const std::string source = "store:" + store();
  const std::string program = std::filesystem::canonical(Tools().reclaimfs);
  RunResult r = Run({Tools().mount, "-t", "fuse", program + "#" + source, mnt()}, std::chrono::seconds(60));
  const std::vector<pid_t> pids = FindProcesses(Tools().reclaimfs, mnt());
  for (pid_t pid : pids) TrackForeignMount(pid);
  ASSERT_EQ(r.exit_code, 0) << "mount -t fuse " << program << "#" << source << ": " << r.Describe();
  ASSERT_EQ(pids.size(), 1u) << "expected one daemon serving " << mnt();
  EXPECT_EQ(ProcessExe(pids[0]), program);
  ExpectMount8MountWorks(pids, source);
}

TEST_F(MountOptionsTest, RemountReadOnlyAndBackThroughMount8) {
  // A plain `mount -o remount,ro MNT` hands the mount's source to mount.fuse3
  // without a type; the "program#store" form is what it can run. (Installed
  // systems use "reclaimfs#STORE"; the test names this build's program.)
  set_source_prefix(Tools().reclaimfs + "#");
  Mount();
  WriteFile(Path("file"), "before");
  const pid_t pid = daemon_pid();
  RunResult r = Run({Tools().mount, "-o", "remount,ro", mnt()});
  ASSERT_EQ(r.exit_code, 0) << "mount -o remount,ro: " << r.Describe();
  ExpectReadOnly();
  r = Run({Tools().mount, "-o", "remount,rw", mnt()});
  ASSERT_EQ(r.exit_code, 0) << "mount -o remount,rw: " << r.Describe();
  ExpectWritable("after-rw");
  EXPECT_EQ(daemon_pid(), pid);
  EXPECT_TRUE(ProcessAlive(pid)) << "remount replaced the daemon";
  EXPECT_EQ(FindProcesses(Tools().reclaimfs, mnt()), std::vector<pid_t>{pid});
  Remount();
  EXPECT_EQ(ReadFile(Path("after-rw")), "after-rw");
}

TEST_F(MountOptionsTest, RemountReadOnlyAndBackThroughTheDaemonBinary) {
  Mount();
  WriteFile(Path("file"), "before");
  const pid_t pid = daemon_pid();
  RunResult r = Run({Tools().reclaimfs, store(), mnt(), "-o", "remount,ro"}, std::chrono::seconds(30));
  ASSERT_EQ(r.exit_code, 0) << "reclaimfs -o remount,ro: " << r.Describe();
  ExpectReadOnly();
  r = Run({Tools().reclaimfs, store(), mnt(), "-o", "remount,rw"}, std::chrono::seconds(30));
  ASSERT_EQ(r.exit_code, 0) << "reclaimfs -o remount,rw: " << r.Describe();
  ExpectWritable("after-rw");
  EXPECT_TRUE(ProcessAlive(pid));
  EXPECT_EQ(FindProcesses(Tools().reclaimfs, mnt()), std::vector<pid_t>{pid}) << "a second daemon started";

  // Once `remount,rw` has returned, writing must work at once: repeat the
  // round trip and write immediately each time.
  int erofs = 0;
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(Run({Tools().reclaimfs, store(), mnt(), "-o", "remount,ro"}).exit_code, 0);
    EXPECT_ERRNO(EROFS, open(Path("x").c_str(), O_CREAT | O_WRONLY, 0644));
    ASSERT_EQ(Run({Tools().reclaimfs, store(), mnt(), "-o", "remount,rw"}).exit_code, 0);
    const int fd = open(Path("round" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) {
      close(fd);
    } else if (errno == EROFS) {
      ++erofs;
    } else {
      ADD_FAILURE() << "create after remount,rw: " << strerror(errno);
    }
  }
  EXPECT_EQ(erofs, 0) << "create failed with EROFS right after `remount,rw` returned, in " << erofs
                      << " of 10 rounds";
}

TEST_F(MountOptionsTest, ReadOnlyMountOption) {
  Mount();
  WriteFile(Path("file"), "before");
  Unmount();
  Mount("ro");
  ExpectReadOnly();
}

TEST_F(MountOptionsTest, MountAgainRightAfterUnmount) {
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("round " + std::to_string(i));
    Mount();
    for (int j = 1; j <= i; ++j) {
      EXPECT_EQ(ReadFile(Path("f" + std::to_string(j))), MakeBlock(70, j - 1, 1 << 20)) << "f" << j;
    }
    WriteFile(Path("f" + std::to_string(i + 1)), MakeBlock(70, i, 1 << 20));  // dirty data to flush
    RunResult r = Run({Tools().fusermount, "-u", mnt()});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    RetireDaemon();  // do not wait: the next mount must cope with the old daemon
  }
  Mount();
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(ReadFile(Path("f" + std::to_string(i))), MakeBlock(70, i - 1, 1 << 20)) << "f" << i;
  }
}

TEST_F(MountOptionsTest, CtlStatPrintsNumericCounters) {
  if (Tools().ctl.empty()) GTEST_SKIP() << "reclaimfs-ctl is not built (CTL_BIN unset)";
  Mount("cache_budget=32M");
  for (int i = 0; i < 8; ++i) WriteFile(Path("f" + std::to_string(i)), MakeBlock(80, i, 4 << 20));
  RunResult r = Run({Tools().ctl, "stat", mnt()});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  CtlStats stats = ParseCtlStats(r.output);
  EXPECT_TRUE(stats.malformed.empty()) << "lines that are not \"name value\": " << stats.malformed.front();
  EXPECT_GE(stats.values.size(), 10u) << r.output;
  for (const char* name : {"kswapd_wakeups", "direct_reclaims", "backoff_waits"}) {
    bool found = false;
    for (const auto& [n, v] : stats.values) {
      if (n.find(name) != std::string::npos) {
        found = true;
        EXPECT_GE(v, 0) << n;
      }
    }
    EXPECT_TRUE(found) << "no counter named like " << name << " in:\n" << r.output;
  }
  // Not a reclaimfs mount: an error, not statistics.
  RunResult bad = Run({Tools().ctl, "stat", dir()});
  EXPECT_NE(bad.exit_code, 0) << bad.Describe();
}

TEST_F(MountOptionsTest, SigtermUnmountsCleanly) {
  Mount();
  WriteFile(Path("unsynced"), MakeBlock(90, 0, 3 << 20));  // must be flushed on the way out
  const int st = SignalDaemonAndWait(SIGTERM);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "after SIGTERM the daemon " << DescribeWaitStatus(st)
                                                      << "; log:\n" << DaemonLog();
  EXPECT_TRUE(WaitMounted(mnt(), false, std::chrono::seconds(5))) << "SIGTERM left the mount behind";
  ExpectFsckClean("after SIGTERM");
  if (IsMounted(mnt())) return;  // teardown detaches it
  Mount();
  EXPECT_EQ(ReadFile(Path("unsynced")), MakeBlock(90, 0, 3 << 20)) << "data lost on SIGTERM";
}

}  // namespace
}  // namespace reclaimfs::itest

// One store, two mount points: a second `reclaimfs STORE MNT2` while a daemon
// serves STORE attaches MNT2 to that daemon (a bind mount of its superblock),
// like a block filesystem mounted twice. Each mount point unmounts on its
// own; the daemon exits with the last one.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

class SharedMountTest : public ReclaimfsTest {
 protected:
  void SetUp() override {
    ReclaimfsTest::SetUp();
    mnt2_ = dir() + "/mnt2";
    ASSERT_SYS_OK(mkdir(mnt2_.c_str(), 0755));
  }
  void TearDown() override {
    // A failed test may leave the second mount point attached.
    while (IsMounted(mnt2_)) {
      if (umount2(mnt2_.c_str(), MNT_DETACH) != 0) break;
    }
    ReclaimfsTest::TearDown();
  }

  // Runs `reclaimfs STORE MNT2 [-o options]` as a user would (no -f).
  RunResult AttachSecond(const std::string& options = "") {
    std::vector<std::string> argv = {Tools().reclaimfs, store(), mnt2_};
    if (!options.empty()) argv.insert(argv.end(), {"-o", options});
    return Run(argv, 60s);
  }

  std::string mnt2_;
};

TEST_F(SharedMountTest, SecondMountPointSharesTheRunningDaemon) {
  RunResult r = AttachSecond();
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_TRUE(IsMounted(mnt2_));
  // One daemon serves both.
  EXPECT_EQ(FindProcesses(Tools().reclaimfs, store()).size(), 1u);

  // The rename dance of xfstests generic/732: each mount point sees the
  // other's changes at once.
  ASSERT_SYS_OK(mkdir(Path("A").c_str(), 0755));
  ASSERT_SYS_OK(mkdir(Path("B").c_str(), 0755));
  WriteFile(Path("A/f"), "moved around");
  ASSERT_SYS_OK(rename(Path("A/f").c_str(), Path("B/f").c_str()));
  EXPECT_EQ(ReadFile(mnt2_ + "/B/f"), "moved around");
  ASSERT_SYS_OK(rename((mnt2_ + "/B/f").c_str(), (mnt2_ + "/A/f").c_str()));
  EXPECT_EQ(ReadFile(Path("A/f")), "moved around");
  ASSERT_SYS_OK(rename(Path("A/f").c_str(), Path("B/f").c_str()));
  // Same superblock: same device and inode through both.
  struct stat s1, s2;
  ASSERT_SYS_OK(stat(Path("B/f").c_str(), &s1));
  ASSERT_SYS_OK(stat((mnt2_ + "/B/f").c_str(), &s2));
  EXPECT_EQ(s1.st_dev, s2.st_dev);
  EXPECT_EQ(s1.st_ino, s2.st_ino);

  // The first mount point goes; the second keeps working.
  ASSERT_SYS_OK(umount(mnt().c_str()));
  EXPECT_FALSE(IsMounted(mnt()));
  EXPECT_TRUE(ProcessAlive(daemon_pid()));
  WriteFile(mnt2_ + "/after-first-unmount", "still served");
  EXPECT_EQ(ReadFile(mnt2_ + "/B/f"), "moved around");

  // The last one goes: the daemon writes everything back and exits cleanly.
  ASSERT_SYS_OK(umount(mnt2_.c_str()));
  const int status = WaitDaemonExit("the last unmount");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << DescribeWaitStatus(status);
  ExpectFsckClean("after the last unmount");

  Mount();
  EXPECT_EQ(ReadFile(Path("after-first-unmount")), "still served");
  EXPECT_EQ(ReadFile(Path("B/f")), "moved around");
}

// The same store on the same mount point again is refused, as mount(8)
// refuses a block device already mounted there; the mount is left as it was.
TEST_F(SharedMountTest, SameMountPointAgainIsRefused) {
  RunResult r = Run({Tools().reclaimfs, store(), mnt()}, 60s);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.output.find("already mounted on"), std::string::npos) << r.Describe();
  WriteFile(Path("still-one-mount"), "x");
  Unmount();  // one unmount is enough: nothing was stacked
  EXPECT_FALSE(IsMounted(mnt()));
}

TEST_F(SharedMountTest, ReadOnlySecondMountPoint) {
  RunResult r = AttachSecond("ro");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  WriteFile(Path("shared"), "data");
  EXPECT_EQ(ReadFile(mnt2_ + "/shared"), "data");
  const int fd = open((mnt2_ + "/new").c_str(), O_CREAT | O_WRONLY, 0644);
  const int err = errno;
  if (fd >= 0) close(fd);
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(err, EROFS);
  // The first mount point stays writable.
  WriteFile(Path("still-writable"), "yes");
  ASSERT_SYS_OK(umount(mnt2_.c_str()));
  Unmount();
}

TEST_F(SharedMountTest, RecordOfAKilledDaemonIsIgnored) {
  WriteFile(Path("before"), "x");
  KillDaemon9();
  // The dead daemon's record is still in the store; nobody answers on it.
  struct stat st;
  ASSERT_SYS_OK(stat((store() + "/served-by").c_str(), &st));
  Mount();
  RunResult r = AttachSecond();
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(FindProcesses(Tools().reclaimfs, store()).size(), 1u);
  WriteFile(mnt2_ + "/via-second", "y");
  EXPECT_EQ(ReadFile(Path("via-second")), "y");
  ASSERT_SYS_OK(umount(mnt2_.c_str()));
  Unmount();
}

}  // namespace
}  // namespace reclaimfs::itest

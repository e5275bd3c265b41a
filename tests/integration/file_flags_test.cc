// chattr flags through ioctl(2): FS_IOC_GETFLAGS/SETFLAGS and the fsxattr
// view (FS_IOC_FSGETXATTR/FSSETXATTR), on files and directories; they
// persist across a remount; immutable and append-only are enforced; only
// root changes those two, the owner the others.
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/user_process.h"

namespace reclaimfs::itest {
namespace {

// GETFLAGS of path (a file or, lsattr-style, a directory); -1 with errno.
int GetFlags(const std::string& path, unsigned* flags) {
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK);
  if (fd < 0) return -1;
  const int r = ioctl(fd, FS_IOC_GETFLAGS, flags);
  const int saved = errno;
  close(fd);
  errno = saved;
  return r;
}

int SetFlags(const std::string& path, unsigned flags) {
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK);
  if (fd < 0) return -1;
  const int r = ioctl(fd, FS_IOC_SETFLAGS, &flags);
  const int saved = errno;
  close(fd);
  errno = saved;
  return r;
}

unsigned Flags(const std::string& path) {
  unsigned flags = 0xdeadbeef;
  EXPECT_EQ(GetFlags(path, &flags), 0) << path << ": " << strerror(errno);
  return flags;
}

class FileFlagsTest : public ReclaimfsTest {
 protected:
  FileFlagsTest() : ReclaimfsTest(FixtureConfig().Options("allow_other")) {}
};

TEST_F(FileFlagsTest, FlagsRoundTripAndPersist) {
  const std::string f = Path("f"), d = Path("d");
  WriteFile(f, "data");
  ASSERT_SYS_OK(mkdir(d.c_str(), 0755));
  EXPECT_EQ(Flags(f), 0u);
  EXPECT_EQ(Flags(d), 0u);

  ASSERT_SYS_OK(SetFlags(f, FS_NODUMP_FL | FS_NOATIME_FL | FS_SYNC_FL));
  ASSERT_SYS_OK(SetFlags(d, FS_DIRSYNC_FL | FS_NODUMP_FL));
  EXPECT_EQ(Flags(f), unsigned{FS_NODUMP_FL | FS_NOATIME_FL | FS_SYNC_FL});
  EXPECT_EQ(Flags(d), unsigned{FS_DIRSYNC_FL | FS_NODUMP_FL});

  // Unknown flags, as on ext4: EOPNOTSUPP, nothing changed.
  errno = 0;
  EXPECT_EQ(SetFlags(f, FS_COMPR_FL), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  EXPECT_EQ(Flags(f), unsigned{FS_NODUMP_FL | FS_NOATIME_FL | FS_SYNC_FL});

  // The fsxattr view mirrors the same flags.
  {
    UniqueFd fd = Open(f, O_RDONLY);
    struct fsxattr fa;
    std::memset(&fa, 0xff, sizeof(fa));
    ASSERT_SYS_OK(ioctl(fd.get(), FS_IOC_FSGETXATTR, &fa));
    EXPECT_EQ(fa.fsx_xflags, unsigned{FS_XFLAG_NODUMP | FS_XFLAG_NOATIME | FS_XFLAG_SYNC});
    EXPECT_EQ(fa.fsx_extsize, 0u);
    EXPECT_EQ(fa.fsx_projid, 0u);
    fa.fsx_xflags = FS_XFLAG_NODUMP;
    ASSERT_SYS_OK(ioctl(fd.get(), FS_IOC_FSSETXATTR, &fa));
    fa.fsx_xflags = FS_XFLAG_REALTIME;
    errno = 0;
    EXPECT_EQ(ioctl(fd.get(), FS_IOC_FSSETXATTR, &fa), -1);
    EXPECT_EQ(errno, EOPNOTSUPP);
  }
  EXPECT_EQ(Flags(f), unsigned{FS_NODUMP_FL});

  // noatime: reads leave atime alone.
  ASSERT_SYS_OK(SetFlags(f, FS_NOATIME_FL));
  struct timespec old_times[2] = {{1000, 0}, {1000, 0}};
  ASSERT_SYS_OK(utimensat(AT_FDCWD, f.c_str(), old_times, 0));
  EXPECT_EQ(ReadFile(f), "data");
  EXPECT_EQ(Stat(f).st_atim.tv_sec, 1000);

  Remount();
  EXPECT_EQ(Flags(f), unsigned{FS_NOATIME_FL});
  EXPECT_EQ(Flags(d), unsigned{FS_DIRSYNC_FL | FS_NODUMP_FL});
}

TEST_F(FileFlagsTest, ImmutableIsEnforced) {
  const std::string f = Path("f"), d = Path("d");
  WriteFile(f, "data");
  ASSERT_SYS_OK(setxattr(f.c_str(), "user.a", "1", 1, 0));
  ASSERT_SYS_OK(mkdir(d.c_str(), 0755));
  WriteFile(d + "/inside", "x");
  ASSERT_SYS_OK(mkdir((d + "/full").c_str(), 0755));
  WriteFile(d + "/full/x", "x");
  UniqueFd before = Open(f, O_RDWR);  // opened before the flag was set
  ASSERT_SYS_OK(SetFlags(f, FS_IMMUTABLE_FL));
  ASSERT_SYS_OK(SetFlags(d, FS_IMMUTABLE_FL));

  auto expect_eperm = [](long r, const char* what) {
    const int err = errno;
    EXPECT_EQ(r, -1) << what;
    if (r == -1) {
      EXPECT_EQ(err, EPERM) << what << ": " << strerror(err);
    }
  };
  expect_eperm(open(f.c_str(), O_WRONLY), "open for write");
  expect_eperm(open(f.c_str(), O_RDONLY | O_TRUNC), "open O_TRUNC");
  expect_eperm(truncate(f.c_str(), 0), "truncate");
  expect_eperm(ftruncate(before.get(), 0), "ftruncate");
  expect_eperm(pwrite(before.get(), "zz", 2, 0), "write");
  expect_eperm(fallocate(before.get(), 0, 0, 8192), "fallocate");
  expect_eperm(chmod(f.c_str(), 0600), "chmod");
  expect_eperm(chown(f.c_str(), 1000, 1000), "chown");
  expect_eperm(utimensat(AT_FDCWD, f.c_str(), nullptr, 0), "utimensat now");
  expect_eperm(link(f.c_str(), Path("link").c_str()), "link");
  expect_eperm(unlink(f.c_str()), "unlink");
  expect_eperm(rename(f.c_str(), Path("moved").c_str()), "rename");
  expect_eperm(setxattr(f.c_str(), "user.b", "2", 1, 0), "setxattr");
  expect_eperm(removexattr(f.c_str(), "user.a"), "removexattr");
  // The immutable directory: no new names, none removed.
  expect_eperm(open((d + "/new").c_str(), O_CREAT | O_WRONLY, 0644), "create in it");
  expect_eperm(mkdir((d + "/sub").c_str(), 0755), "mkdir in it");
  expect_eperm(unlink((d + "/inside").c_str()), "unlink in it");
  expect_eperm(rename((d + "/inside").c_str(), Path("out").c_str()), "rename out of it");
  // Who may remove is decided before whether the directory is empty.
  expect_eperm(rmdir((d + "/full").c_str()), "rmdir of a non-empty directory in it");
  // Reading is fine, and so is a change of the directory's file.
  EXPECT_EQ(ReadFile(f), "data");
  WriteFile(d + "/inside", "y");
  EXPECT_EQ(ReadFile(d + "/inside"), "y");

  ASSERT_SYS_OK(before.Close());
  Remount();
  expect_eperm(unlink(f.c_str()), "unlink after remount");
  ASSERT_SYS_OK(SetFlags(f, 0));
  ASSERT_SYS_OK(SetFlags(d, 0));
  EXPECT_SYS_OK(truncate(f.c_str(), 1));
  EXPECT_SYS_OK(unlink(f.c_str()));
  EXPECT_SYS_OK(unlink((d + "/inside").c_str()));
}

// chattr changes ctime, and a stat right after it sees the new one even
// when the kernel had the attributes cached (statx asks for ctime alone).
TEST_F(FileFlagsTest, ChattrUpdatesCtime) {
  const std::string f = Path("f");
  WriteFile(f, "data");
  auto ctime = [&f] {
    struct statx stx;
    EXPECT_EQ(statx(AT_FDCWD, f.c_str(), 0, STATX_CTIME, &stx), 0);
    return std::make_pair(stx.stx_ctime.tv_sec, stx.stx_ctime.tv_nsec);
  };
  const auto before = ctime();
  ASSERT_SYS_OK(SetFlags(f, FS_NOATIME_FL));
  EXPECT_NE(ctime(), before);
}

TEST_F(FileFlagsTest, AppendOnlyIsEnforced) {
  const std::string f = Path("f");
  WriteFile(f, "abc");
  ASSERT_SYS_OK(SetFlags(f, FS_APPEND_FL));

  auto expect_eperm = [](long r, const char* what) {
    const int err = errno;
    EXPECT_EQ(r, -1) << what;
    if (r == -1) {
      EXPECT_EQ(err, EPERM) << what << ": " << strerror(err);
    }
  };
  expect_eperm(open(f.c_str(), O_WRONLY), "open for write without O_APPEND");
  expect_eperm(open(f.c_str(), O_WRONLY | O_APPEND | O_TRUNC), "open O_TRUNC");
  expect_eperm(truncate(f.c_str(), 1), "truncate");
  expect_eperm(unlink(f.c_str()), "unlink");
  expect_eperm(rename(f.c_str(), Path("moved").c_str()), "rename");
  expect_eperm(chmod(f.c_str(), 0600), "chmod");
  {
    UniqueFd fd = Open(f, O_WRONLY | O_APPEND);
    ASSERT_EQ(write(fd.get(), "de", 2), 2);
    // Even at an offset, the data goes to the end.
    ASSERT_EQ(pwrite(fd.get(), "fg", 2, 0), 2);
    expect_eperm(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1), "punch hole");
  }
  EXPECT_EQ(ReadFile(f), "abcdefg");
  ASSERT_SYS_OK(SetFlags(f, 0));
  EXPECT_SYS_OK(unlink(f.c_str()));
}

TEST_F(FileFlagsTest, OnlyRootChangesImmutableAndAppend) {
  const std::string mine = Path("mine"), roots = Path("roots");
  WriteFile(mine, "m");
  WriteFile(roots, "r");
  ASSERT_SYS_OK(chown(mine.c_str(), kTestUser, kTestGroup));
  const std::string report = RunAsUser(022, [&](Report& r) {
    r.ExpectErrno(SetFlags(mine, FS_IMMUTABLE_FL), EPERM, "owner sets immutable");
    r.ExpectErrno(SetFlags(mine, FS_APPEND_FL), EPERM, "owner sets append-only");
    r.ExpectOk(SetFlags(mine, FS_NODUMP_FL | FS_NOATIME_FL), "owner sets nodump,noatime");
    r.ExpectErrno(SetFlags(roots, FS_NODUMP_FL), EPERM, "non-owner sets nodump");
    unsigned flags = 0;
    r.ExpectOk(GetFlags(roots, &flags), "anyone reads the flags");
  });
  EXPECT_EQ(report, "");
  EXPECT_EQ(Flags(mine), unsigned{FS_NODUMP_FL | FS_NOATIME_FL});
  EXPECT_EQ(Flags(roots), 0u);
  // Root may; then the owner may not take it away either.
  ASSERT_SYS_OK(SetFlags(mine, FS_IMMUTABLE_FL));
  EXPECT_EQ(RunAsUser(022, [&](Report& r) {
              r.ExpectErrno(SetFlags(mine, 0), EPERM, "owner clears immutable");
              r.ExpectErrno(open(mine.c_str(), O_WRONLY), EPERM, "owner opens an immutable file for write");
            }),
            "");
  ASSERT_SYS_OK(SetFlags(mine, 0));
}

}  // namespace
}  // namespace reclaimfs::itest

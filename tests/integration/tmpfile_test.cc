// O_TMPFILE: an open file without a name (nlink 0) that linkat can give a
// name, whose space is freed when it is closed unnamed, and that a crash
// frees too (the mount replays it as an orphan; fsck must stay clean).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <string>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/user_process.h"

namespace reclaimfs::itest {
namespace {

class TmpfileTest : public ReclaimfsTest {
 protected:
  UniqueFd OpenTmpfile(const std::string& dir, int flags, mode_t mode) {
    const int fd = open(dir.c_str(), O_TMPFILE | flags, mode);
    if (fd < 0) ThrowErrno("open(O_TMPFILE)", dir);
    return UniqueFd(fd);
  }

  uint64_t FreeBytes() {
    struct statvfs vfs{};
    if (statvfs(mnt().c_str(), &vfs) != 0) ThrowErrno("statvfs", mnt());
    return static_cast<uint64_t>(vfs.f_bfree) * vfs.f_frsize;
  }
};

TEST_F(TmpfileTest, WriteReadLinkAndKeepAcrossRemount) {
  ASSERT_SYS_OK(mkdir(Path("d").c_str(), 0755));
  const mode_t old_umask = umask(022);
  UniqueFd fd = OpenTmpfile(Path("d"), O_RDWR, 0666);
  umask(old_umask);
  const std::string data = MakeBlock(3, 0, 20000);
  PwriteAll(fd.get(), data.data(), data.size(), 0);
  std::string got(data.size(), '\0');
  PreadExact(fd.get(), got.data(), got.size(), 0);
  EXPECT_EQ(got, data);
  struct stat st;
  ASSERT_SYS_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0644u) << "mode 0666 with umask 022";
  EXPECT_EQ(st.st_size, static_cast<off_t>(data.size()));
  EXPECT_TRUE(ListDir(Path("d")).empty()) << "a tmpfile has no name";

  ASSERT_SYS_OK(linkat(fd.get(), "", AT_FDCWD, Path("d/named").c_str(), AT_EMPTY_PATH));
  ASSERT_SYS_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(Stat(Path("d/named")).st_ino, st.st_ino);

  // The other way to name one: linkat through /proc/self/fd.
  UniqueFd fd2 = OpenTmpfile(mnt(), O_WRONLY, 0600);
  PwriteAll(fd2.get(), "second", 6, 0);
  const std::string proc = "/proc/self/fd/" + std::to_string(fd2.get());
  ASSERT_SYS_OK(linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, Path("second").c_str(), AT_SYMLINK_FOLLOW));
  ASSERT_SYS_OK(fd.Close());
  ASSERT_SYS_OK(fd2.Close());

  Remount();
  EXPECT_EQ(ReadFile(Path("d/named")), data);
  EXPECT_EQ(Stat(Path("d/named")).st_nlink, 1u);
  EXPECT_EQ(ReadFile(Path("second")), "second");
  EXPECT_EQ(Stat(Path("second")).st_mode & 07777, 0600u);
}

TEST_F(TmpfileTest, ExclusiveTmpfileCannotBeLinked) {
  UniqueFd fd = OpenTmpfile(mnt(), O_RDWR | O_EXCL, 0644);
  EXPECT_ERRNO(ENOENT, linkat(fd.get(), "", AT_FDCWD, Path("nope").c_str(), AT_EMPTY_PATH));
  EXPECT_FALSE(Exists(Path("nope")));
}

// Without default_permissions the filesystem checks access to the directory
// itself, with the caller's supplementary groups.
TEST_F(TmpfileTest, PermissionsOfTheDirectoryWithSupplementaryGroups) {
  Unmount();
  Mount("allow_other,no_default_permissions");
  const std::string d = Path("groupdir");
  ASSERT_SYS_OK(mkdir(d.c_str(), 0770));
  ASSERT_SYS_OK(chown(d.c_str(), 0, 4242));
  ASSERT_SYS_OK(chmod(d.c_str(), 0770));
  UserIdentity member;
  member.groups = {4242};
  EXPECT_EQ(RunAs(member, 022, [&](Report& r) {
    const int fd = open(d.c_str(), O_TMPFILE | O_RDWR, 0640);
    r.ExpectOk(fd, "O_TMPFILE in a directory writable through a supplementary group");
    if (fd >= 0) {
      struct stat st;
      r.ExpectOk(fstat(fd, &st), "fstat");
      r.Expect(st.st_uid == kTestUser && (st.st_mode & 07777) == 0640, "owner and mode of the tmpfile");
      close(fd);
    }
  }), "");
  EXPECT_EQ(RunAsUser(022, [&](Report& r) {
    r.ExpectErrno(open(d.c_str(), O_TMPFILE | O_RDWR, 0640), EACCES, "O_TMPFILE without write access");
  }), "");
}

TEST_F(TmpfileTest, UnnamedTmpfileSpaceFreedOnClose) {
  const uint64_t before = FreeBytes();
  UniqueFd fd = OpenTmpfile(mnt(), O_RDWR, 0644);
  const std::string chunk = MakeBlock(5, 0, 1 << 20);
  for (int i = 0; i < 8; ++i) PwriteAll(fd.get(), chunk.data(), chunk.size(), off_t{i} << 20);
  ASSERT_SYS_OK(fsync(fd.get()));
  EXPECT_LE(FreeBytes() + (8u << 20), before) << "the tmpfile's data takes space";
  ASSERT_SYS_OK(fd.Close());
  EXPECT_EQ(FreeBytes(), before) << "space of a closed unnamed tmpfile";
  Remount();
  EXPECT_EQ(FreeBytes(), before);
}

TEST_F(TmpfileTest, CrashFreesOpenTmpfile) {
  const uint64_t before = FreeBytes();
  {
    UniqueFd fd = OpenTmpfile(mnt(), O_RDWR, 0644);
    const std::string chunk = MakeBlock(6, 0, 1 << 20);
    for (int i = 0; i < 4; ++i) PwriteAll(fd.get(), chunk.data(), chunk.size(), off_t{i} << 20);
    ASSERT_SYS_OK(fsync(fd.get()));
    EXPECT_LE(FreeBytes() + (4u << 20), before);
    KillDaemon9();
    // The mount is gone; closing the fd only drops the kernel's file.
  }
  ExpectFsckClean("after kill -9 with an open tmpfile");
  Mount();
  EXPECT_EQ(FreeBytes(), before) << "the orphaned tmpfile is freed at mount";
}

}  // namespace
}  // namespace reclaimfs::itest

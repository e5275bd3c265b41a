// Permissions as an unprivileged user on a reclaimfs mounted with
// allow_other,default_permissions: EACCES/EPERM on root's files, the sticky
// bit, umask on create, setgid-directory inheritance and access(2). Checks run
// in a forked child that dropped to uid/gid 1000.
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/user_process.h"

namespace reclaimfs::itest {
namespace {

constexpr uid_t kUser = kTestUser;
constexpr gid_t kGroup = kTestGroup;

class PosixPermTest : public ReclaimfsTest {
 protected:
  PosixPermTest() : ReclaimfsTest(FixtureConfig().Options("allow_other,default_permissions")) {}
};

TEST_F(PosixPermTest, UserCannotModifyRootsFiles) {
  const std::string pub = Path("pub"), sticky = Path("sticky");
  ASSERT_SYS_OK(mkdir(pub.c_str(), 0777));
  ASSERT_SYS_OK(chmod(pub.c_str(), 0777));
  ASSERT_SYS_OK(mkdir(sticky.c_str(), 0777));
  ASSERT_SYS_OK(chmod(sticky.c_str(), 01777));
  WriteFile(pub + "/rootfile", "root", 0644);
  WriteFile(pub + "/secret", "s", 0600);
  WriteFile(sticky + "/rootfile", "root", 0666);

  std::string report = RunAsUser(022, [&](Report& r) {
    const std::string rf = pub + "/rootfile";
    r.ExpectErrno(open(rf.c_str(), O_WRONLY), EACCES, "open(O_WRONLY) of a 0644 root file");
    r.ExpectErrno(open(rf.c_str(), O_RDWR | O_TRUNC), EACCES, "open(O_TRUNC) of a 0644 root file");
    r.ExpectErrno(truncate(rf.c_str(), 0), EACCES, "truncate of a 0644 root file");
    int fd = open(rf.c_str(), O_RDONLY);
    r.ExpectOk(fd, "open(O_RDONLY) of a 0644 root file");
    if (fd >= 0) {
      char buf[8];
      r.Expect(read(fd, buf, sizeof buf) == 4, "read of a 0644 root file");
      close(fd);
    }
    r.ExpectErrno(open((pub + "/secret").c_str(), O_RDONLY), EACCES, "open of a 0600 root file");
    r.ExpectErrno(chmod(rf.c_str(), 0666), EPERM, "chmod of root's file");
    r.ExpectErrno(chown(rf.c_str(), kUser, kGroup), EPERM, "chown of root's file");
    r.ExpectErrno(setxattr(rf.c_str(), "user.x", "v", 1, 0), EACCES, "setxattr on root's file");
    r.ExpectErrno(utimensat(AT_FDCWD, rf.c_str(), nullptr, 0), EACCES, "utimensat(now) on root's file");
    struct timespec ts[2] = {{1, 0}, {1, 0}};
    r.ExpectErrno(utimensat(AT_FDCWD, rf.c_str(), ts, 0), EPERM, "utimensat(times) on root's file");
    r.ExpectErrno(open(Path("in-root-dir").c_str(), O_CREAT | O_WRONLY, 0644), EACCES,
                  "create in root's 0755 directory");
    r.ExpectErrno(mkdir(Path("dir-in-root").c_str(), 0755), EACCES, "mkdir in root's 0755 directory");
    r.ExpectErrno(unlink((sticky + "/rootfile").c_str()), EPERM, "unlink of root's file in a sticky dir");
    r.ExpectErrno(rename((sticky + "/rootfile").c_str(), (sticky + "/mine").c_str()), EPERM,
                  "rename of root's file in a sticky dir");
    // access(2) answers the same questions.
    r.ExpectOk(access(rf.c_str(), R_OK), "access(R_OK) of a 0644 root file");
    r.ExpectErrno(access(rf.c_str(), W_OK), EACCES, "access(W_OK) of a 0644 root file");
    r.ExpectErrno(access((pub + "/secret").c_str(), R_OK), EACCES, "access(R_OK) of a 0600 root file");
    // In a world-writable directory the user may create and remove own files.
    const std::string mine = pub + "/mine";
    int mfd = open(mine.c_str(), O_CREAT | O_WRONLY, 0644);
    r.ExpectOk(mfd, "create in a 0777 directory");
    if (mfd >= 0) close(mfd);
    r.ExpectOk(unlink(mine.c_str()), "unlink of own file");
  });
  EXPECT_EQ(report, "");
  EXPECT_EQ(ReadFile(pub + "/rootfile"), "root");
  EXPECT_TRUE(Exists(sticky + "/rootfile"));
}

TEST_F(PosixPermTest, UmaskAppliedAndOwnerIsTheCaller) {
  const std::string pub = Path("pub");
  ASSERT_SYS_OK(mkdir(pub.c_str(), 0777));
  ASSERT_SYS_OK(chmod(pub.c_str(), 0777));
  std::string report = RunAsUser(027, [&](Report& r) {
    int fd = open((pub + "/file").c_str(), O_CREAT | O_WRONLY, 0666);
    r.ExpectOk(fd, "create");
    if (fd >= 0) close(fd);
    r.ExpectOk(mkdir((pub + "/dir").c_str(), 0777), "mkdir");
    r.ExpectOk(mknod((pub + "/fifo").c_str(), S_IFIFO | 0666, 0), "mknod");
  });
  ASSERT_EQ(report, "");
  struct stat f = Stat(pub + "/file"), d = Stat(pub + "/dir"), p = Stat(pub + "/fifo");
  EXPECT_EQ(f.st_mode & 07777, 0640u) << "umask 027 on create(0666)";
  EXPECT_EQ(d.st_mode & 07777, 0750u) << "umask 027 on mkdir(0777)";
  EXPECT_EQ(p.st_mode & 07777, 0640u) << "umask 027 on mknod(0666)";
  for (const struct stat& st : {f, d, p}) {
    EXPECT_EQ(st.st_uid, kUser);
    EXPECT_EQ(st.st_gid, kGroup);
  }
}

TEST_F(PosixPermTest, SetgidDirectoryInheritance) {
  constexpr gid_t kDirGroup = 3000;  // the user is not a member
  const std::string sg = Path("sg");
  ASSERT_SYS_OK(mkdir(sg.c_str(), 0755));
  ASSERT_SYS_OK(chown(sg.c_str(), kUser, kDirGroup));
  ASSERT_SYS_OK(chmod(sg.c_str(), 02775));
  ASSERT_EQ(Stat(sg).st_mode & 07777, 02775u);

  std::string report = RunAsUser(022, [&](Report& r) {
    int fd = open((sg + "/file").c_str(), O_CREAT | O_WRONLY, 0644);
    r.ExpectOk(fd, "create in a setgid directory");
    if (fd >= 0) close(fd);
    r.ExpectOk(mkdir((sg + "/sub").c_str(), 0755), "mkdir in a setgid directory");
    r.ExpectOk(mkdir((sg + "/sub/deeper").c_str(), 0755), "mkdir in an inherited setgid directory");
  });
  ASSERT_EQ(report, "");
  struct stat f = Stat(sg + "/file"), s = Stat(sg + "/sub"), deeper = Stat(sg + "/sub/deeper");
  EXPECT_EQ(f.st_uid, kUser);
  EXPECT_EQ(f.st_gid, kDirGroup) << "a file in a setgid directory takes the directory's group";
  EXPECT_EQ(f.st_mode & S_ISGID, 0u) << "a plain file does not become setgid";
  EXPECT_EQ(s.st_gid, kDirGroup) << "a subdirectory takes the directory's group";
  EXPECT_NE(s.st_mode & S_ISGID, 0u) << "a subdirectory inherits S_ISGID";
  EXPECT_EQ(deeper.st_gid, kDirGroup);
  EXPECT_NE(deeper.st_mode & S_ISGID, 0u);
  // Persisted, not only cached.
  Remount();
  EXPECT_EQ(Stat(sg + "/sub").st_gid, kDirGroup);
  EXPECT_NE(Stat(sg + "/sub").st_mode & S_ISGID, 0u);
}

}  // namespace
}  // namespace reclaimfs::itest

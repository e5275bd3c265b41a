// Idmapped mounts (mount_setattr MOUNT_ATTR_IDMAP): granted by FUSE_ALLOW_IDMAP
// in INIT. Through such a mount ids are shifted by the user namespace's map:
// what the store records as uid 0 shows as the mapped uid, and what a mapped
// user creates is recorded as the unmapped id. Requests that create nothing
// arrive without ids; the kernel has checked them, and the filesystem must
// not refuse them on its own (an owner's chmod through the mount works).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/user_process.h"

namespace reclaimfs::itest {
namespace {

constexpr uid_t kMapBase = 10000;  // store id 0 shows as 10000 through the idmapped mount
constexpr uid_t kMapCount = 100;

// A user namespace with "0 kMapBase kMapCount" as uid and gid map, held by a
// child process that waits until the namespace's fd has been opened.
class UserNamespace {
 public:
  UserNamespace() {
    int ready[2];
    if (pipe(ready) != 0) ThrowErrno("pipe", "");
    const pid_t child = fork();
    if (child == 0) {
      close(ready[0]);
      const char c = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
      (void)!write(ready[1], &c, 1);
      for (;;) pause();  // killed once the namespace is held by its fd
    }
    close(ready[1]);
    char c = 0;
    const bool unshared = read(ready[0], &c, 1) == 1 && c == 'y';
    close(ready[0]);
    const std::string proc = "/proc/" + std::to_string(child);
    const std::string map = "0 " + std::to_string(kMapBase) + " " + std::to_string(kMapCount) + "\n";
    const bool mapped = unshared && WriteWhole(proc + "/uid_map", map) && WriteWhole(proc + "/gid_map", map);
    if (mapped) fd_ = open((proc + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC);
    const int saved = errno;
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    errno = saved;
    if (!unshared) ThrowErrno("unshare(CLONE_NEWUSER)", "");
    if (!mapped) ThrowErrno("write", proc + "/uid_map");
    if (fd_ < 0) ThrowErrno("open", proc + "/ns/user");
  }
  ~UserNamespace() { close(fd_); }
  int fd() const { return fd_; }

 private:
  // One write(2): id maps must be written whole, at offset 0, without seeking.
  static bool WriteWhole(const std::string& path, const std::string& text) {
    const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    close(fd);
    return ok;
  }
  int fd_ = -1;
};

// An idmapped copy of `source` attached at `target`; detached when it goes.
class IdmappedMount {
 public:
  IdmappedMount(const std::string& source, const std::string& target, int userns_fd) : target_(target) {
    const int tree = static_cast<int>(
        syscall(SYS_open_tree, AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (tree < 0) ThrowErrno("open_tree", source);
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = static_cast<uint64_t>(userns_fd);
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
      const int saved = errno;
      close(tree);
      errno = saved;
      ThrowErrno("mount_setattr(MOUNT_ATTR_IDMAP)", source);
    }
    if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      const int saved = errno;
      close(tree);
      errno = saved;
      ThrowErrno("move_mount", target);
    }
    close(tree);
  }
  ~IdmappedMount() { umount2(target_.c_str(), MNT_DETACH); }

 private:
  std::string target_;
};

class IdmappedMountTest : public ReclaimfsTest {
 protected:
  IdmappedMountTest() : ReclaimfsTest(FixtureConfig().Options("allow_other")) {}
  void SetUp() override {
    ReclaimfsTest::SetUp();
    idmapped_ = dir() + "/idmapped";
    ASSERT_SYS_OK(mkdir(idmapped_.c_str(), 0755));
  }
  std::string Mapped(const std::string& rel) const { return idmapped_ + "/" + rel; }

  std::string idmapped_;
};

TEST_F(IdmappedMountTest, IdsAreShiftedBothWays) {
  ASSERT_SYS_OK(mkdir(Path("shared").c_str(), 0777));
  ASSERT_SYS_OK(chmod(Path("shared").c_str(), 0777));  // past the umask
  WriteFile(Path("shared/by-root"), "root's");
  WriteFile(Path("shared/by-stranger"), "x");
  ASSERT_SYS_OK(chown(Path("shared/by-stranger").c_str(), 5000, 5000));  // outside the map

  UserNamespace ns;
  IdmappedMount m(mnt(), idmapped_, ns.fd());

  // Store ids seen through the map.
  struct stat st = Stat(Mapped("shared/by-root"));
  EXPECT_EQ(st.st_uid, kMapBase);
  EXPECT_EQ(st.st_gid, kMapBase);
  EXPECT_EQ(ReadFile(Mapped("shared/by-root")), "root's");
  EXPECT_EQ(Stat(Mapped("shared/by-stranger")).st_uid, 65534u);  // the overflow id

  // A mapped user creates: the store records the unmapped ids.
  const std::string base = idmapped_;
  const UserIdentity mapped_user{kMapBase + 7, kMapBase + 7, {}};
  const std::string report = RunAs(mapped_user, 022, [&](Report& r) {
    const int fd = open((base + "/shared/new").c_str(), O_CREAT | O_WRONLY, 0644);
    r.ExpectOk(fd, "create through the idmapped mount");
    if (fd >= 0) {
      r.ExpectOk(write(fd, "hello", 5), "write");
      close(fd);
    }
    r.ExpectOk(mkdir((base + "/shared/newdir").c_str(), 0755), "mkdir through the idmapped mount");
  });
  EXPECT_EQ(report, "");
  st = Stat(Path("shared/new"));
  EXPECT_EQ(st.st_uid, 7u);
  EXPECT_EQ(st.st_gid, 7u);
  EXPECT_EQ(Stat(Path("shared/newdir")).st_uid, 7u);
  EXPECT_EQ(ReadFile(Path("shared/new")), "hello");
  EXPECT_EQ(Stat(Mapped("shared/new")).st_uid, kMapBase + 7);
}

TEST_F(IdmappedMountTest, RequestsWithoutIdsFollowTheKernelsChecks) {
  ASSERT_SYS_OK(mkdir(Path("shared").c_str(), 0777));
  ASSERT_SYS_OK(chmod(Path("shared").c_str(), 0777));  // past the umask
  WriteFile(Path("shared/mine"), "x");
  ASSERT_SYS_OK(chown(Path("shared/mine").c_str(), 7, 7));
  WriteFile(Path("shared/theirs"), "y");
  ASSERT_SYS_OK(chown(Path("shared/theirs").c_str(), 8, 8));

  UserNamespace ns;
  IdmappedMount m(mnt(), idmapped_, ns.fd());
  const std::string base = idmapped_;
  const UserIdentity owner{kMapBase + 7, kMapBase + 7, {}};
  const std::string report = RunAs(owner, 022, [&](Report& r) {
    // The owner (through the map) may chmod, set times and set an xattr.
    r.ExpectOk(chmod((base + "/shared/mine").c_str(), 0600), "owner's chmod");
    r.ExpectOk(utimensat(AT_FDCWD, (base + "/shared/mine").c_str(), nullptr, 0), "owner's utimensat");
    r.ExpectOk(truncate((base + "/shared/mine").c_str(), 3), "owner's truncate");
    r.ExpectOk(rename((base + "/shared/mine").c_str(), (base + "/shared/moved").c_str()), "rename");
    // Someone else's file stays someone else's.
    r.ExpectErrno(chmod((base + "/shared/theirs").c_str(), 0666), EPERM, "chmod of another user's file");
    r.ExpectErrno(open((base + "/shared/theirs").c_str(), O_WRONLY), EACCES, "open another's 0644 file for writing");
  });
  EXPECT_EQ(report, "");
  EXPECT_EQ(Stat(Path("shared/moved")).st_mode & 07777, 0600u);
  EXPECT_EQ(Stat(Path("shared/moved")).st_size, 3);
  EXPECT_EQ(Stat(Path("shared/theirs")).st_mode & 07777, 0644u);
}

}  // namespace
}  // namespace reclaimfs::itest

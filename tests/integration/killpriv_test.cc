// Set-id bits and file capabilities dropped on modification (xfstests
// generic/355, 683, 684, 688): a write, truncation or fallocate by a caller
// without CAP_FSETID clears S_ISUID, and S_ISGID when group-execute is set;
// root keeps them; security.capability goes on any modification. Checks run
// as uid/gid 1000 on a mount with allow_other.
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/user_process.h"

namespace reclaimfs::itest {
namespace {

constexpr char kCaps[] = "security.capability";
// A VFS_CAP_REVISION_2 value granting nothing in particular; only its
// presence matters here.
constexpr unsigned char kCapValue[20] = {0, 0, 0, 2, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

// One modification of an existing 8 KiB file; returns -1 with errno set
// when it failed.
struct Modification {
  const char* name;
  std::function<int(const std::string&)> run;
};

int WithFd(const std::string& path, int flags, const std::function<int(int)>& fn) {
  const int fd = open(path.c_str(), flags);
  if (fd < 0) return -1;
  const int r = fn(fd);
  const int saved = errno;
  close(fd);
  errno = saved;
  return r;
}

std::vector<Modification> Modifications() {
  return {
      {"write", [](const std::string& p) {
         return WithFd(p, O_WRONLY, [](int fd) { return write(fd, "a", 1) == 1 ? 0 : -1; });
       }},
      {"pwrite", [](const std::string& p) {
         return WithFd(p, O_WRONLY, [](int fd) { return pwrite(fd, "b", 1, 4096) == 1 ? 0 : -1; });
       }},
      {"O_DIRECT write", [](const std::string& p) {
         return WithFd(p, O_WRONLY | O_DIRECT, [](int fd) {
           void* buf = nullptr;
           if (posix_memalign(&buf, 4096, 4096) != 0) return -1;
           memset(buf, 'c', 4096);
           const int r = pwrite(fd, buf, 4096, 0) == 4096 ? 0 : -1;
           free(buf);
           return r;
         });
       }},
      {"truncate", [](const std::string& p) { return truncate(p.c_str(), 4096); }},
      {"ftruncate", [](const std::string& p) {
         return WithFd(p, O_WRONLY, [](int fd) { return ftruncate(fd, 12288); });
       }},
      {"open O_TRUNC", [](const std::string& p) { return WithFd(p, O_WRONLY | O_TRUNC, [](int) { return 0; }); }},
      {"fallocate", [](const std::string& p) {
         return WithFd(p, O_WRONLY, [](int fd) { return fallocate(fd, 0, 0, 16384); });
       }},
      {"fallocate KEEP_SIZE", [](const std::string& p) {
         return WithFd(p, O_WRONLY, [](int fd) { return fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 65536); });
       }},
      {"fallocate PUNCH_HOLE", [](const std::string& p) {
         return WithFd(p, O_WRONLY,
                       [](int fd) { return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096); });
       }},
  };
}

// The mode as `stat -c %A` asks for it: statx for STATX_MODE alone, which
// the kernel answers from its attribute cache unless that was invalidated.
unsigned StatxMode(const std::string& path) {
  struct statx stx;
  if (statx(AT_FDCWD, path.c_str(), 0, STATX_MODE, &stx) != 0) return ~0u;
  return stx.stx_mode;
}

std::string Octal(unsigned mode) {
  char buf[16];
  snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

class KillprivTest : public ReclaimfsTest {
 protected:
  KillprivTest() : ReclaimfsTest(FixtureConfig().Options("allow_other")) {}

  void SetUp() override {
    ReclaimfsTest::SetUp();
    sub_ = Path("d");
    ASSERT_SYS_OK(mkdir(sub_.c_str(), 0777));
    ASSERT_SYS_OK(chmod(sub_.c_str(), 0777));
  }

  // A fresh 8 KiB file of owner uid:gid with mode `mode` (set-id bits included).
  std::string MakeFile(const std::string& name, uid_t uid, gid_t gid, mode_t mode) {
    const std::string f = sub_ + "/" + name;
    unlink(f.c_str());
    WriteFile(f, std::string(8192, 'x'), 0644);
    EXPECT_SYS_OK(chown(f.c_str(), uid, gid));
    EXPECT_SYS_OK(chmod(f.c_str(), mode));
    return f;
  }

  std::string sub_;
};

// For every modification and mode: the user (not the owner; in the file's
// group, so S_ISGID without group-execute stays, as on Linux) clears S_ISUID,
// and S_ISGID only when group-execute is set.
TEST_F(KillprivTest, UserModificationClearsSetIdBits) {
  struct Case {
    mode_t before, after;
  };
  const Case cases[] = {{06666, 02666}, {06676, 0676}, {06766, 02766}, {06777, 0777}, {02676, 0676}, {02666, 02666}};
  int n = 0;
  for (const Modification& m : Modifications()) {
    for (const Case& c : cases) {
      const std::string f = MakeFile("f" + std::to_string(n++), 0, kTestGroup, c.before);
      const std::string report = RunAsUser(022, [&](Report& r) { r.ExpectOk(m.run(f), m.name); });
      EXPECT_EQ(report, "") << m.name << " on " << Octal(c.before);
      // First as the kernel's cache has it (cached by the chmod just before).
      EXPECT_EQ(Octal(StatxMode(f)), Octal(c.after)) << m.name << " by the user on " << Octal(c.before)
                                                      << " (statx STATX_MODE)";
      EXPECT_EQ(Octal(Stat(f).st_mode), Octal(c.after)) << m.name << " by the user on " << Octal(c.before);
    }
  }
}

// A writer outside the file's group (generic/683, 684 test 1): not the owner,
// may still fallocate, and S_ISGID goes even without group-execute.
TEST_F(KillprivTest, NonOwnerWriterMayFallocate) {
  int n = 0;
  for (const Modification& m : Modifications()) {
    if (std::string(m.name).rfind("fallocate", 0) != 0 && std::string(m.name) != "truncate") continue;
    const std::string f = MakeFile("g" + std::to_string(n++), 0, 0, 06666);
    const std::string report = RunAsUser(022, [&](Report& r) { r.ExpectOk(m.run(f), m.name); });
    EXPECT_EQ(report, "") << m.name;
    EXPECT_EQ(Octal(Stat(f).st_mode), "0666") << m.name << " by a writer outside the group";
  }
  // chmod by a non-owner is still refused, even one that only clears bits.
  const std::string f = MakeFile("chmod", 0, 0, 06666);
  const std::string report = RunAsUser(022, [&](Report& r) {
    r.ExpectErrno(chmod(f.c_str(), 0666), EPERM, "chmod by a writer that is not the owner");
  });
  EXPECT_EQ(report, "");
  EXPECT_EQ(Octal(Stat(f).st_mode), "6666");
}

TEST_F(KillprivTest, RootModificationKeepsSetIdBits) {
  int n = 0;
  for (const Modification& m : Modifications()) {
    for (mode_t mode : {06666, 06777, 02676}) {
      const std::string f = MakeFile("r" + std::to_string(n++), kTestUser, kTestGroup, mode);
      EXPECT_EQ(m.run(f), 0) << m.name << ": " << strerror(errno);
      EXPECT_EQ(Octal(Stat(f).st_mode), Octal(mode)) << m.name << " by root";
    }
  }
}

// security.capability goes on any modification, by the user or by root.
TEST_F(KillprivTest, ModificationRemovesCapability) {
  int n = 0;
  for (const Modification& m : Modifications()) {
    for (bool as_root : {false, true}) {
      const std::string f = MakeFile("c" + std::to_string(n++), 0, 0, 0777);
      ASSERT_SYS_OK(setxattr(f.c_str(), kCaps, kCapValue, sizeof kCapValue, 0));
      ASSERT_EQ(getxattr(f.c_str(), kCaps, nullptr, 0), static_cast<ssize_t>(sizeof kCapValue));
      if (as_root) {
        EXPECT_EQ(m.run(f), 0) << m.name << ": " << strerror(errno);
      } else {
        EXPECT_EQ(RunAsUser(022, [&](Report& r) { r.ExpectOk(m.run(f), m.name); }), "") << m.name;
      }
      errno = 0;
      EXPECT_EQ(getxattr(f.c_str(), kCaps, nullptr, 0), -1) << m.name << (as_root ? " by root" : " by the user");
      EXPECT_EQ(errno, ENODATA) << m.name;
    }
  }
  // The user still cannot remove it with removexattr(2).
  const std::string f = MakeFile("kept", 0, 0, 0777);
  ASSERT_SYS_OK(setxattr(f.c_str(), kCaps, kCapValue, sizeof kCapValue, 0));
  EXPECT_EQ(RunAsUser(022, [&](Report& r) {
              r.ExpectErrno(removexattr(f.c_str(), kCaps), EPERM, "removexattr(security.capability) by the user");
            }),
            "");
  EXPECT_EQ(getxattr(f.c_str(), kCaps, nullptr, 0), static_cast<ssize_t>(sizeof kCapValue));
  // A capability set again after a write is dropped by the next write.
  ASSERT_EQ(Modifications()[0].run(f), 0);
  ASSERT_SYS_OK(setxattr(f.c_str(), kCaps, kCapValue, sizeof kCapValue, 0));
  ASSERT_EQ(Modifications()[0].run(f), 0);
  EXPECT_EQ(getxattr(f.c_str(), kCaps, nullptr, 0), -1);
}

// A file known to have no capability answers its reads without the store
// (the kernel asks before every cached write); every change is seen at once.
TEST_F(KillprivTest, CapabilityReadsFollowEveryChange) {
  const std::string f = MakeFile("r", 0, 0, 0777);
  auto caps_size = [&] {
    errno = 0;
    const ssize_t n = getxattr(f.c_str(), kCaps, nullptr, 0);
    return n < 0 ? -errno : n;
  };
  const ssize_t full = sizeof kCapValue;
  EXPECT_EQ(caps_size(), -ENODATA);
  EXPECT_EQ(caps_size(), -ENODATA);  // from the mark the first read left
  ASSERT_SYS_OK(setxattr(f.c_str(), kCaps, kCapValue, sizeof kCapValue, 0));
  EXPECT_EQ(caps_size(), full) << "a capability set after an absent read is not seen";
  ASSERT_SYS_OK(removexattr(f.c_str(), kCaps));
  EXPECT_EQ(caps_size(), -ENODATA);
  EXPECT_EQ(caps_size(), -ENODATA);
  ASSERT_SYS_OK(setxattr(f.c_str(), kCaps, kCapValue, sizeof kCapValue, XATTR_CREATE));
  EXPECT_EQ(caps_size(), full);
  ASSERT_EQ(Modifications()[0].run(f), 0);  // a write drops it and marks the file
  EXPECT_EQ(caps_size(), -ENODATA);
  ASSERT_SYS_OK(setxattr(f.c_str(), kCaps, kCapValue, sizeof kCapValue, 0));
  EXPECT_EQ(caps_size(), full);
  Remount();
  EXPECT_EQ(caps_size(), full);
}

// The dropped bits and capability are on disk, not only in memory.
TEST_F(KillprivTest, ClearedBitsPersist) {
  const std::string f = MakeFile("p", 0, kTestGroup, 06776);
  ASSERT_SYS_OK(setxattr(f.c_str(), kCaps, kCapValue, sizeof kCapValue, 0));
  EXPECT_EQ(RunAsUser(022, [&](Report& r) { r.ExpectOk(Modifications()[2].run(f), "O_DIRECT write"); }), "");
  Remount();
  EXPECT_EQ(Octal(Stat(f).st_mode), "0776");
  EXPECT_EQ(getxattr(f.c_str(), kCaps, nullptr, 0), -1);
}

}  // namespace
}  // namespace reclaimfs::itest

// POSIX ACLs on a mount with allow_other,default_permissions: the kernel
// enforces the ACLs it reads from us (named users and groups, the mask), the
// mode follows the ACL and chmod follows into the ACL (and the kernel's
// cached copy), default ACLs are inherited with the umask ignored, setting
// an ACL clears set-gid for an owner outside the group, ACLs persist across
// a remount, and malformed ACLs are EINVAL. ACLs travel in their xattr form
// (system.posix_acl_access / _default), no libacl needed. With
// no_default_permissions the filesystem's own checks enforce the ACL.
#include <fcntl.h>
#include <linux/posix_acl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tests/integration/file_util.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/user_process.h"

namespace reclaimfs::itest {
namespace {

constexpr char kAccess[] = "system.posix_acl_access";
constexpr char kDefault[] = "system.posix_acl_default";
constexpr uint32_t kNoId = 0xffffffffu;
constexpr uid_t kOtherUser = 1001;
constexpr gid_t kProjectGroup = 2000;

struct Entry {
  uint16_t tag, perm;
  uint32_t id = kNoId;
};

// The xattr form: little-endian {u32 version 2} then {u16 tag, u16 perm, u32 id}.
std::string AclValue(const std::vector<Entry>& entries) {
  std::string out;
  auto put = [&out](uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i, v >>= 8) out.push_back(static_cast<char>(v & 0xff));
  };
  put(2, 4);
  for (const Entry& e : entries) {
    put(e.tag, 2);
    put(e.perm, 2);
    put(e.id, 4);
  }
  return out;
}

// What getxattr answers, or "" with errno set.
std::string GetAcl(const std::string& path, const char* name) {
  char buf[1024];
  const ssize_t n = getxattr(path.c_str(), name, buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

int SetAcl(const std::string& path, const char* name, const std::string& value) {
  return setxattr(path.c_str(), name, value.data(), value.size(), 0);
}

bool CanOpen(const std::string& path, int flags) {
  const int fd = open(path.c_str(), flags);
  if (fd >= 0) close(fd);
  return fd >= 0;
}

class AclTest : public ReclaimfsTest {
 protected:
  AclTest() : ReclaimfsTest(FixtureConfig().Options("allow_other,default_permissions")) {}

  // A root-owned 0600 file with `acl` as its access ACL.
  std::string RootFileWithAcl(const std::string& name, const std::string& acl) {
    const std::string p = Path(name);
    WriteFile(p, "secret", 0600);
    EXPECT_SYS_OK(chmod(p.c_str(), 0600));
    EXPECT_SYS_OK(SetAcl(p, kAccess, acl)) << name;
    return p;
  }
};

TEST_F(AclTest, NamedUserReadsRootFileAndChmodMovesTheMask) {
  // u::rw-, u:1000:r--, g::---, m::r--, o::---
  const std::string f = RootFileWithAcl(
      "f", AclValue({{ACL_USER_OBJ, 6}, {ACL_USER, 4, kTestUser}, {ACL_GROUP_OBJ, 0}, {ACL_MASK, 4},
                     {ACL_OTHER, 0}}));
  EXPECT_EQ(Stat(f).st_mode & 07777, 0640u);  // group bits show the mask
  std::string report = RunAsUser(022, [&](Report& r) {
    const bool readable = CanOpen(f, O_RDONLY);
    r.Expect(readable, "named user cannot read");
    if (readable) r.Expect(ReadFile(f) == "secret", "named user reads wrong data");
    r.ExpectErrno(open(f.c_str(), O_WRONLY), EACCES, "named user with r-- may write");
    r.ExpectErrno(setxattr(f.c_str(), kAccess, "", 0, 0), EPERM, "non-owner changed the ACL");
  });
  EXPECT_EQ(report, "");
  report = RunAs(UserIdentity{kOtherUser, kOtherUser, {}}, 022, [&](Report& r) {
    r.ExpectErrno(open(f.c_str(), O_RDONLY), EACCES, "a user without an entry reads a 0600 file");
  });
  EXPECT_EQ(report, "");

  // chmod rewrites the mask, and the kernel's cached ACL follows: the named
  // user loses read access and getxattr shows m::---.
  ASSERT_SYS_OK(chmod(f.c_str(), 0600));
  EXPECT_EQ(GetAcl(f, kAccess), AclValue({{ACL_USER_OBJ, 6}, {ACL_USER, 4, kTestUser}, {ACL_GROUP_OBJ, 0},
                                          {ACL_MASK, 0}, {ACL_OTHER, 0}}));
  report = RunAsUser(022, [&](Report& r) {
    r.ExpectErrno(open(f.c_str(), O_RDONLY), EACCES, "named user reads after chmod 0600 emptied the mask");
  });
  EXPECT_EQ(report, "");
  ASSERT_SYS_OK(chmod(f.c_str(), 0660));
  report = RunAsUser(022, [&](Report& r) {
    r.Expect(CanOpen(f, O_RDONLY), "named user cannot read after chmod 0660 restored the mask");
  });
  EXPECT_EQ(report, "");
}

TEST_F(AclTest, NamedGroupAndMaskLimit) {
  // u::rw-, u:1000:rwx, g::---, g:2000:rw-, m::r--, o::---: the mask caps
  // both named entries at read.
  const std::string f = RootFileWithAcl(
      "f", AclValue({{ACL_USER_OBJ, 6}, {ACL_USER, 7, kTestUser}, {ACL_GROUP_OBJ, 0},
                     {ACL_GROUP, 6, kProjectGroup}, {ACL_MASK, 4}, {ACL_OTHER, 0}}));
  const UserIdentity member{kOtherUser, kOtherUser, {kProjectGroup}};
  std::string report = RunAs(member, 022, [&](Report& r) {
    r.Expect(CanOpen(f, O_RDONLY), "named group member cannot read");
    r.ExpectErrno(open(f.c_str(), O_WRONLY), EACCES, "the mask did not limit the named group");
  });
  EXPECT_EQ(report, "");
  report = RunAsUser(022, [&](Report& r) {
    r.ExpectErrno(open(f.c_str(), O_WRONLY), EACCES, "the mask did not limit the named user");
  });
  EXPECT_EQ(report, "");

  // A wider mask lets the group write; a non-member still gets nothing.
  ASSERT_SYS_OK(SetAcl(f, kAccess,
                       AclValue({{ACL_USER_OBJ, 6}, {ACL_USER, 7, kTestUser}, {ACL_GROUP_OBJ, 0},
                                 {ACL_GROUP, 6, kProjectGroup}, {ACL_MASK, 6}, {ACL_OTHER, 0}})));
  EXPECT_EQ(Stat(f).st_mode & 07777, 0660u);
  report = RunAs(member, 022, [&](Report& r) {
    r.Expect(CanOpen(f, O_WRONLY), "named group member cannot write with mask rw-");
  });
  EXPECT_EQ(report, "");
  report = RunAs(UserIdentity{1002, 1002, {}}, 022, [&](Report& r) {
    r.ExpectErrno(open(f.c_str(), O_RDONLY), EACCES, "a non-member reads");
  });
  EXPECT_EQ(report, "");
}

TEST_F(AclTest, DefaultAclIsInheritedAndUmaskIgnored) {
  const std::string d = Path("d");
  ASSERT_SYS_OK(mkdir(d.c_str(), 0755));
  ASSERT_SYS_OK(chmod(d.c_str(), 0755));
  // The user may create in d through its access ACL; new nodes get
  // u::rwx, u:1000:rwx, g::r-x, m::rwx, o::r-x masked by their mode.
  ASSERT_SYS_OK(SetAcl(d, kAccess,
                       AclValue({{ACL_USER_OBJ, 7}, {ACL_USER, 7, kTestUser}, {ACL_GROUP_OBJ, 5},
                                 {ACL_MASK, 7}, {ACL_OTHER, 5}})));
  const std::string dflt = AclValue({{ACL_USER_OBJ, 7}, {ACL_USER, 7, kTestUser}, {ACL_GROUP_OBJ, 5},
                                     {ACL_MASK, 7}, {ACL_OTHER, 5}});
  ASSERT_SYS_OK(SetAcl(d, kDefault, dflt));
  EXPECT_EQ(GetAcl(d, kDefault), dflt);

  const std::string f = d + "/f", sub = d + "/sub";
  std::string report = RunAsUser(077, [&](Report& r) {
    const int fd = open(f.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0666);
    r.ExpectOk(fd, "create in a directory the ACL opens");
    if (fd >= 0) close(fd);
    r.ExpectOk(mkdir(sub.c_str(), 0777), "mkdir in a directory the ACL opens");
  });
  ASSERT_EQ(report, "");
  // umask 077 ignored: 0666 & default = 0664; directories 0775.
  EXPECT_EQ(Stat(f).st_mode & 07777, 0664u);
  EXPECT_EQ(GetAcl(f, kAccess), AclValue({{ACL_USER_OBJ, 6}, {ACL_USER, 7, kTestUser}, {ACL_GROUP_OBJ, 5},
                                          {ACL_MASK, 6}, {ACL_OTHER, 4}}));
  errno = 0;
  EXPECT_EQ(GetAcl(f, kDefault), "");
  EXPECT_EQ(errno, ENODATA);
  EXPECT_EQ(Stat(sub).st_mode & 07777, 0775u);
  EXPECT_EQ(GetAcl(sub, kDefault), dflt);
  EXPECT_EQ(GetAcl(sub, kAccess), dflt);

  // Inherited entries are enforced: a root file created 0660 in sub is
  // readable and writable by the named user, whom the mode alone shuts out.
  const std::string rf = sub + "/rootfile";
  const int fd = open(rf.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0660);
  ASSERT_SYS_OK(fd);
  close(fd);
  EXPECT_EQ(Stat(rf).st_mode & 07777, 0660u);
  report = RunAsUser(022, [&](Report& r) {
    r.Expect(CanOpen(rf, O_RDWR), "inherited named-user entry not enforced");
  });
  EXPECT_EQ(report, "");

  // Without a default ACL the umask applies as before.
  const std::string plain = Path("plain");
  report = RunAs(UserIdentity{0, 0, {}}, 027, [&](Report& r) {
    const int pfd = open(plain.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0666);
    r.ExpectOk(pfd, "create outside the ACL directory");
    if (pfd >= 0) close(pfd);
  });
  EXPECT_EQ(report, "");
  EXPECT_EQ(Stat(plain).st_mode & 07777, 0640u);
}

// A directory remembers that it has no default ACL once a create has looked
// for one; setting one later, or removing it, applies to the next create.
TEST_F(AclTest, DefaultAclSetOrRemovedAfterCreatesAppliesToTheNextCreate) {
  const mode_t saved_umask = umask(022);
  const std::string d = Path("later");
  ASSERT_SYS_OK(mkdir(d.c_str(), 0755));
  auto create = [&](const std::string& name) {
    const int fd = open((d + "/" + name).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0666);
    EXPECT_GE(fd, 0) << name << ": " << strerror(errno);
    if (fd >= 0) close(fd);
    return Stat(d + "/" + name).st_mode & 07777;
  };
  EXPECT_EQ(create("before"), 0644u);
  const std::string dflt = AclValue({{ACL_USER_OBJ, 7}, {ACL_USER, 7, kTestUser}, {ACL_GROUP_OBJ, 5},
                                     {ACL_MASK, 7}, {ACL_OTHER, 5}});
  ASSERT_SYS_OK(SetAcl(d, kDefault, dflt));
  EXPECT_EQ(create("with"), 0664u) << "default ACL set after a create was not inherited";
  EXPECT_NE(GetAcl(d + "/with", kAccess), "");
  ASSERT_SYS_OK(removexattr(d.c_str(), kDefault));
  EXPECT_EQ(create("after"), 0644u) << "removed default ACL still inherited";
  errno = 0;
  EXPECT_EQ(GetAcl(d + "/after", kAccess), "");
  umask(saved_umask);
}

TEST_F(AclTest, SettingAclClearsSetgidOfOwnerOutsideGroup) {
  const std::string acl = AclValue({{ACL_USER_OBJ, 7}, {ACL_USER, 5, kOtherUser}, {ACL_GROUP_OBJ, 5},
                                    {ACL_MASK, 5}, {ACL_OTHER, 0}});
  for (const bool in_group : {false, true}) {
    const std::string f = Path(in_group ? "member" : "outsider");
    WriteFile(f, "x", 0755);
    ASSERT_SYS_OK(chown(f.c_str(), kTestUser, kProjectGroup));
    ASSERT_SYS_OK(chmod(f.c_str(), 02755));
    UserIdentity owner{kTestUser, kTestGroup, {}};
    if (in_group) owner.groups = {kProjectGroup};
    std::string report = RunAs(owner, 022, [&](Report& r) {
      r.ExpectOk(SetAcl(f, kAccess, acl), "owner sets an ACL");
    });
    EXPECT_EQ(report, "");
    EXPECT_EQ(Stat(f).st_mode & 07777, in_group ? 02750u : 0750u) << f;
  }
}

TEST_F(AclTest, AclsPersistAcrossRemount) {
  const std::string acl = AclValue({{ACL_USER_OBJ, 6}, {ACL_USER, 4, kTestUser}, {ACL_GROUP_OBJ, 0},
                                    {ACL_MASK, 4}, {ACL_OTHER, 0}});
  const std::string f = RootFileWithAcl("f", acl);
  const std::string d = Path("d");
  const std::string dflt = AclValue({{ACL_USER_OBJ, 7}, {ACL_GROUP_OBJ, 5}, {ACL_GROUP, 5, kProjectGroup},
                                     {ACL_MASK, 5}, {ACL_OTHER, 0}});
  ASSERT_SYS_OK(mkdir(d.c_str(), 0755));
  ASSERT_SYS_OK(SetAcl(d, kDefault, dflt));
  Remount();
  EXPECT_EQ(GetAcl(f, kAccess), acl);
  EXPECT_EQ(GetAcl(d, kDefault), dflt);
  EXPECT_EQ(Stat(f).st_mode & 07777, 0640u);
  std::string report = RunAsUser(022, [&](Report& r) {
    r.Expect(CanOpen(f, O_RDONLY), "named user cannot read after remount");
  });
  EXPECT_EQ(report, "");
  // Inheritance still works from the persisted default.
  WriteFile(d + "/g", "g", 0640);
  EXPECT_EQ(Stat(d + "/g").st_mode & 07777, 0640u);
  EXPECT_EQ(GetAcl(d + "/g", kAccess), AclValue({{ACL_USER_OBJ, 6}, {ACL_GROUP_OBJ, 5},
                                                 {ACL_GROUP, 5, kProjectGroup}, {ACL_MASK, 4},
                                                 {ACL_OTHER, 0}}));
}

TEST_F(AclTest, MalformedAclsAreRejected) {
  const std::string f = Path("f");
  WriteFile(f, "x", 0644);
  ASSERT_SYS_OK(chmod(f.c_str(), 0644));
  // Named entry without a mask; missing OTHER; out of order; a bad version
  // (which the kernel itself answers with EOPNOTSUPP).
  EXPECT_ERRNO(EINVAL, SetAcl(f, kAccess,
                              AclValue({{ACL_USER_OBJ, 6}, {ACL_USER, 4, kTestUser}, {ACL_GROUP_OBJ, 4},
                                        {ACL_OTHER, 0}})));
  EXPECT_ERRNO(EINVAL, SetAcl(f, kAccess, AclValue({{ACL_USER_OBJ, 6}, {ACL_GROUP_OBJ, 4}})));
  EXPECT_ERRNO(EINVAL, SetAcl(f, kAccess, AclValue({{ACL_GROUP_OBJ, 4}, {ACL_USER_OBJ, 6}, {ACL_OTHER, 4}})));
  std::string v1 = AclValue({{ACL_USER_OBJ, 6}, {ACL_GROUP_OBJ, 4}, {ACL_OTHER, 4}});
  v1[0] = 1;
  EXPECT_ERRNO(EOPNOTSUPP, SetAcl(f, kAccess, v1));
  EXPECT_ERRNO(EINVAL, SetAcl(f, kAccess, "abc"));
  // A default ACL on a file.
  EXPECT_ERRNO(EACCES, SetAcl(f, kDefault, AclValue({{ACL_USER_OBJ, 6}, {ACL_GROUP_OBJ, 4}, {ACL_OTHER, 4}})));
  EXPECT_EQ(Stat(f).st_mode & 07777, 0644u);
  errno = 0;
  EXPECT_EQ(GetAcl(f, kAccess), "");
  EXPECT_EQ(errno, ENODATA);

  // An ACL the mode expresses is not stored, only applied; removal works.
  ASSERT_SYS_OK(SetAcl(f, kAccess, AclValue({{ACL_USER_OBJ, 7}, {ACL_GROUP_OBJ, 5}, {ACL_OTHER, 1}})));
  EXPECT_EQ(Stat(f).st_mode & 07777, 0751u);
  errno = 0;
  EXPECT_EQ(GetAcl(f, kAccess), "");
  EXPECT_EQ(errno, ENODATA);
  ASSERT_SYS_OK(SetAcl(f, kAccess, AclValue({{ACL_USER_OBJ, 7}, {ACL_GROUP_OBJ, 5}, {ACL_MASK, 4},
                                             {ACL_OTHER, 1}})));
  EXPECT_NE(GetAcl(f, kAccess), "");
  EXPECT_SYS_OK(removexattr(f.c_str(), kAccess));
  errno = 0;
  EXPECT_EQ(GetAcl(f, kAccess), "");
  EXPECT_EQ(errno, ENODATA);
}

// -o noacl (ext4's option): the ACL xattrs are refused, ACLs an earlier
// mount stored are neither shown nor used (mode bits decide, the umask
// applies to creates, nothing is inherited), and they are back, unchanged,
// on a mount with ACLs again.
TEST_F(AclTest, NoaclMountIgnoresStoredAclsAndRefusesNewOnes) {
  const std::string f = RootFileWithAcl(
      "f", AclValue({{ACL_USER_OBJ, 6}, {ACL_USER, 4, kTestUser}, {ACL_GROUP_OBJ, 0}, {ACL_MASK, 4},
                     {ACL_OTHER, 0}}));
  const std::string d = Path("d");
  const std::string dflt = AclValue({{ACL_USER_OBJ, 7}, {ACL_GROUP_OBJ, 5}, {ACL_GROUP, 5, kProjectGroup},
                                     {ACL_MASK, 5}, {ACL_OTHER, 0}});
  ASSERT_SYS_OK(mkdir(d.c_str(), 0755));
  ASSERT_SYS_OK(SetAcl(d, kDefault, dflt));

  Remount("allow_other,default_permissions,noacl");
  errno = 0;
  EXPECT_EQ(GetAcl(f, kAccess), "");
  EXPECT_EQ(errno, EOPNOTSUPP);
  EXPECT_ERRNO(EOPNOTSUPP, SetAcl(f, kAccess, AclValue({{ACL_USER_OBJ, 6}, {ACL_GROUP_OBJ, 4}, {ACL_OTHER, 4}})));
  EXPECT_ERRNO(EOPNOTSUPP, removexattr(f.c_str(), kAccess));
  char names[256];
  EXPECT_EQ(listxattr(d.c_str(), names, sizeof names), 0) << "the default ACL is listed";
  // The stored named-user entry grants nothing: 0640 root:root, other gets ---.
  std::string report = RunAsUser(022, [&](Report& r) {
    r.ExpectErrno(open(f.c_str(), O_RDONLY), EACCES, "a stored ACL was used on a noacl mount");
  });
  EXPECT_EQ(report, "");
  const mode_t old_umask = umask(027);
  WriteFile(d + "/g", "g", 0666);
  EXPECT_SYS_OK(mkdir((d + "/sub").c_str(), 0777));
  umask(old_umask);
  EXPECT_EQ(Stat(d + "/g").st_mode & 07777, 0640u) << "the umask was not applied";
  EXPECT_EQ(Stat(d + "/sub").st_mode & 07777, 0750u) << "the umask was not applied";

  Remount("allow_other,default_permissions");
  EXPECT_EQ(GetAcl(d, kDefault), dflt);
  errno = 0;
  EXPECT_EQ(GetAcl(d + "/g", kAccess), "") << "a noacl create inherited the default ACL";
  EXPECT_EQ(errno, ENODATA);
  report = RunAsUser(022, [&](Report& r) {
    r.Expect(CanOpen(f, O_RDONLY), "the named user's entry is gone after the noacl mount");
  });
  EXPECT_EQ(report, "");
}

// With no_default_permissions the kernel does not use ACLs; our own checks
// do, and the same ACL grants and limits the same way.
class AclOwnChecksTest : public ReclaimfsTest {
 protected:
  AclOwnChecksTest() : ReclaimfsTest(FixtureConfig().Options("allow_other,no_default_permissions")) {}
};

TEST_F(AclOwnChecksTest, FilesystemEnforcesAcl) {
  const std::string f = Path("f");
  WriteFile(f, "secret", 0600);
  ASSERT_SYS_OK(chmod(f.c_str(), 0600));
  ASSERT_SYS_OK(SetAcl(f, kAccess,
                       AclValue({{ACL_USER_OBJ, 6}, {ACL_USER, 7, kTestUser}, {ACL_GROUP_OBJ, 0},
                                 {ACL_GROUP, 4, kProjectGroup}, {ACL_MASK, 4}, {ACL_OTHER, 0}})));
  std::string report = RunAsUser(022, [&](Report& r) {
    r.Expect(CanOpen(f, O_RDONLY), "named user cannot read");
    r.ExpectErrno(open(f.c_str(), O_WRONLY), EACCES, "the mask did not limit the named user");
  });
  EXPECT_EQ(report, "");
  report = RunAs(UserIdentity{kOtherUser, kOtherUser, {kProjectGroup}}, 022, [&](Report& r) {
    r.Expect(CanOpen(f, O_RDONLY), "named group member cannot read");
  });
  EXPECT_EQ(report, "");
  report = RunAs(UserIdentity{kOtherUser, kOtherUser, {}}, 022, [&](Report& r) {
    r.ExpectErrno(open(f.c_str(), O_RDONLY), EACCES, "a user without an entry reads");
  });
  EXPECT_EQ(report, "");
}

}  // namespace
}  // namespace reclaimfs::itest

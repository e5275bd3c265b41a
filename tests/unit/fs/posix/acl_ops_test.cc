// Tests of POSIX ACLs in the POSIX layer (fs/posix/acl_ops.cc), driving
// Filesystem directly: validation, mode sync on set, chmod rewriting the
// ACL, inheritance on create, ownership rules, persistence.
#include <fcntl.h>
#include <linux/posix_acl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "fs/cache/errno_status.h"
#include "fs/posix/filesystem.h"
#include "fs/posix/posix_acl.h"
#include "store_fixture.h"
#include "gtest/gtest.h"
#include "storage/meta_store.h"

namespace reclaimfs::fs {
namespace {

constexpr uint64_t kRoot = 1;
constexpr uint32_t kNoId = 0xffffffffu;
const std::string kAccess(kAclAccessXattr);
const std::string kDefault(kAclDefaultXattr);

AclEntry E(uint16_t tag, uint16_t perm, uint32_t id = kNoId) { return AclEntry{tag, perm, id}; }

// u::rw-, u:1000:r--, g::r--, m::r--, o::---
std::string NamedUserAcl() {
  return EncodeAcl({E(ACL_USER_OBJ, 6), E(ACL_USER, 4, 1000), E(ACL_GROUP_OBJ, 4), E(ACL_MASK, 4),
                    E(ACL_OTHER, 0)});
}

class AclOpsTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    root_.umask = 022;
    owner_.uid = 1000;
    owner_.gid = 1000;
    owner_.umask = 022;
    Mount();
  }
  Attributes MakeFile(uint64_t parent, const std::string& name, uint32_t mode, const RequestContext& ctx) {
    auto r = fs_->Create(ctx, parent, name, mode, O_CREAT | O_EXCL | O_RDWR);
    EXPECT_TRUE(r.ok()) << name << ": " << r.status();
    if (!r.ok()) return {};
    EXPECT_TRUE(fs_->Release(r->first.ino, r->second.fh).ok());
    return r->first;
  }
  uint32_t Mode(uint64_t ino) { return fs_->GetAttr(ino)->mode; }
  // The stored ACL, decoded (empty when none).
  Acl Stored(uint64_t ino, const std::string& name) {
    auto v = fs_->GetXattr(ino, name);
    if (!v.ok()) {
      EXPECT_EQ(ToErrno(v.status()), ENODATA) << v.status();
      return {};
    }
    auto acl = DecodeAcl(*v);
    EXPECT_TRUE(acl.ok()) << acl.status();
    return acl.ok() ? *acl : Acl{};
  }

  RequestContext root_;
  RequestContext owner_;
};

TEST_F(AclOpsTest, AccessAclSetsModeAndPersists) {
  Attributes f = MakeFile(kRoot, "f", 0777, root_);
  ASSERT_EQ(Mode(f.ino) & 07777, 0755u);
  ASSERT_TRUE(fs_->SetXattr(root_, f.ino, kAccess, NamedUserAcl(), 0).ok());
  EXPECT_EQ(Mode(f.ino), S_IFREG | 0640u);  // group bits from the mask
  Remount();
  EXPECT_EQ(Mode(f.ino), S_IFREG | 0640u);
  EXPECT_EQ(EncodeAcl(Stored(f.ino, kAccess)), NamedUserAcl());
  auto names = fs_->ListXattr(f.ino);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{kAccess});
}

TEST_F(AclOpsTest, EquivalentAclIsNotStored) {
  Attributes f = MakeFile(kRoot, "f", 0644, root_);
  ASSERT_TRUE(fs_->SetXattr(root_, f.ino, kAccess, NamedUserAcl(), 0).ok());
  ASSERT_TRUE(fs_->SetXattr(root_, f.ino, kAccess, EncodeAcl(AclFromMode(0751)), 0).ok());
  EXPECT_EQ(Mode(f.ino), S_IFREG | 0751u);
  EXPECT_EQ(ToErrno(fs_->GetXattr(f.ino, kAccess).status()), ENODATA);
}

TEST_F(AclOpsTest, MalformedAndMisplacedAcls) {
  Attributes f = MakeFile(kRoot, "f", 0644, root_);
  const std::string no_mask =
      EncodeAcl({E(ACL_USER_OBJ, 6), E(ACL_USER, 4, 7), E(ACL_GROUP_OBJ, 4), E(ACL_OTHER, 0)});
  EXPECT_EQ(ToErrno(fs_->SetXattr(root_, f.ino, kAccess, no_mask, 0)), EINVAL);
  EXPECT_EQ(ToErrno(fs_->SetXattr(root_, f.ino, kAccess, "garbage", 0)), EINVAL);
  EXPECT_EQ(Mode(f.ino), S_IFREG | 0644u);
  // Default ACLs belong to directories.
  EXPECT_EQ(ToErrno(fs_->SetXattr(root_, f.ino, kDefault, NamedUserAcl(), 0)), EACCES);
  EXPECT_TRUE(fs_->RemoveXattr(root_, f.ino, kDefault).ok());
  // No ACLs on symlinks.
  auto l = fs_->Symlink(root_, kRoot, "l", "f");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(ToErrno(fs_->SetXattr(root_, l->ino, kAccess, NamedUserAcl(), 0)), EOPNOTSUPP);
}

TEST_F(AclOpsTest, OnlyOwnerOrRootChangesAcls) {
  Attributes f = MakeFile(kRoot, "f", 0666, root_);
  EXPECT_EQ(ToErrno(fs_->SetXattr(owner_, f.ino, kAccess, NamedUserAcl(), 0)), EPERM);
  EXPECT_EQ(ToErrno(fs_->RemoveXattr(owner_, f.ino, kAccess)), EPERM);
  Attributes mine = MakeFile(kRoot, "mine", 0644, root_);
  SetAttrRequest chown;
  chown.uid = 1000;
  ASSERT_TRUE(fs_->SetAttr(root_, mine.ino, chown).ok());
  EXPECT_TRUE(fs_->SetXattr(owner_, mine.ino, kAccess, NamedUserAcl(), 0).ok());
}

TEST_F(AclOpsTest, RemovalAndEmptyValue) {
  Attributes f = MakeFile(kRoot, "f", 0644, root_);
  EXPECT_TRUE(fs_->RemoveXattr(root_, f.ino, kAccess).ok());  // none there: fine
  ASSERT_TRUE(fs_->SetXattr(root_, f.ino, kAccess, NamedUserAcl(), 0).ok());
  EXPECT_EQ(ToErrno(fs_->SetXattr(root_, f.ino, kAccess, NamedUserAcl(), XATTR_CREATE)), EEXIST);
  ASSERT_TRUE(fs_->RemoveXattr(root_, f.ino, kAccess).ok());
  EXPECT_EQ(ToErrno(fs_->GetXattr(f.ino, kAccess).status()), ENODATA);
  EXPECT_EQ(Mode(f.ino), S_IFREG | 0640u);  // removal leaves the mode
  ASSERT_TRUE(fs_->SetXattr(root_, f.ino, kAccess, NamedUserAcl(), 0).ok());
  ASSERT_TRUE(fs_->SetXattr(root_, f.ino, kAccess, "", 0).ok());
  EXPECT_EQ(ToErrno(fs_->GetXattr(f.ino, kAccess).status()), ENODATA);
}

TEST_F(AclOpsTest, SetgidClearedForOwnerOutsideGroup) {
  Attributes f = MakeFile(kRoot, "f", 02755, root_);
  SetAttrRequest chown;
  chown.uid = 1000;
  chown.gid = 50;
  ASSERT_TRUE(fs_->SetAttr(root_, f.ino, chown).ok());
  SetAttrRequest sgid;
  sgid.mode = 02755;
  ASSERT_TRUE(fs_->SetAttr(root_, f.ino, sgid).ok());
  ASSERT_EQ(Mode(f.ino) & 07777, 02755u);
  // Root keeps it; an owner in the group keeps it; one outside loses it.
  ASSERT_TRUE(fs_->SetXattr(root_, f.ino, kAccess, NamedUserAcl(), 0).ok());
  EXPECT_EQ(Mode(f.ino) & 07777, 02640u);
  RequestContext member = owner_;
  member.groups = {50};
  ASSERT_TRUE(fs_->SetXattr(member, f.ino, kAccess, EncodeAcl(AclFromMode(0750)), 0).ok());
  EXPECT_EQ(Mode(f.ino) & 07777, 02750u);
  ASSERT_TRUE(fs_->SetXattr(owner_, f.ino, kAccess, NamedUserAcl(), 0).ok());
  EXPECT_EQ(Mode(f.ino) & 07777, 0640u);
}

TEST_F(AclOpsTest, ChmodRewritesAccessAcl) {
  Attributes f = MakeFile(kRoot, "f", 0644, root_);
  ASSERT_TRUE(fs_->SetXattr(root_, f.ino, kAccess, NamedUserAcl(), 0).ok());
  SetAttrRequest chmod;
  chmod.mode = 0705;
  ASSERT_TRUE(fs_->SetAttr(root_, f.ino, chmod).ok());
  const Acl want{E(ACL_USER_OBJ, 7), E(ACL_USER, 4, 1000), E(ACL_GROUP_OBJ, 4), E(ACL_MASK, 0),
                 E(ACL_OTHER, 5)};
  EXPECT_EQ(Stored(f.ino, kAccess), want);
  Remount();
  EXPECT_EQ(Stored(f.ino, kAccess), want);
  EXPECT_EQ(Mode(f.ino), S_IFREG | 0705u);
}

// Our own checks (no_default_permissions, and defence in depth) follow the
// ACL: named user, owning and named groups (fetched lazily when not given),
// the mask, and OTHER for everyone else.
TEST_F(AclOpsTest, OwnChecksHonourAcl) {
  Attributes f = MakeFile(kRoot, "f", 0600, root_);
  ASSERT_TRUE(fs_->SetXattr(root_, f.ino, kAccess,
                            EncodeAcl({E(ACL_USER_OBJ, 6), E(ACL_USER, 7, 1000), E(ACL_GROUP_OBJ, 0),
                                       E(ACL_GROUP, 6, 50), E(ACL_MASK, 4), E(ACL_OTHER, 0)}),
                            0)
                  .ok());
  EXPECT_TRUE(fs_->Access(owner_, f.ino, R_OK).ok());
  EXPECT_EQ(ToErrno(fs_->Access(owner_, f.ino, W_OK)), EACCES);  // the mask caps rwx at r--
  EXPECT_TRUE(fs_->Open(owner_, f.ino, O_RDONLY).ok());

  RequestContext stranger;
  stranger.uid = 1001;
  stranger.gid = 1001;
  EXPECT_EQ(ToErrno(fs_->Access(stranger, f.ino, R_OK)), EACCES);
  RequestContext member = stranger;
  member.groups = {50};
  EXPECT_TRUE(fs_->Access(member, f.ino, R_OK).ok());
  EXPECT_EQ(ToErrno(fs_->Access(member, f.ino, W_OK)), EACCES);
  int loads = 0;
  RequestContext lazy = stranger;
  lazy.load_groups = [&loads] {
    ++loads;
    return std::vector<uint32_t>{50};
  };
  EXPECT_TRUE(fs_->Access(lazy, f.ino, R_OK).ok());
  EXPECT_EQ(loads, 1);

  // chmod 0660 widens the mask: the group may write, the named user too.
  SetAttrRequest chmod;
  chmod.mode = 0660;
  ASSERT_TRUE(fs_->SetAttr(root_, f.ino, chmod).ok());
  EXPECT_TRUE(fs_->Access(member, f.ino, W_OK).ok());
  EXPECT_TRUE(fs_->Access(owner_, f.ino, R_OK | W_OK).ok());
  EXPECT_EQ(ToErrno(fs_->Access(stranger, f.ino, R_OK)), EACCES);
  // Without group bits the ACL is not consulted (as Linux): OTHER decides.
  chmod.mode = 0604;
  ASSERT_TRUE(fs_->SetAttr(root_, f.ino, chmod).ok());
  EXPECT_TRUE(fs_->Access(stranger, f.ino, R_OK).ok());
}

// No ACL, mode 0050: a caller whose supplementary group owns the file may
// read it; its groups are fetched because membership decides (and only then).
TEST_F(AclOpsTest, SupplementaryGroupDecidesWithoutAcl) {
  Attributes f = MakeFile(kRoot, "g", 0600, root_);
  SetAttrRequest r;
  r.mode = 0050;
  r.gid = 50;
  ASSERT_TRUE(fs_->SetAttr(root_, f.ino, r).ok());
  int loads = 0;
  RequestContext lazy;
  lazy.uid = 1001;
  lazy.gid = 1001;
  lazy.load_groups = [&loads] {
    ++loads;
    return std::vector<uint32_t>{50};
  };
  EXPECT_TRUE(fs_->Access(lazy, f.ino, R_OK | X_OK).ok());
  EXPECT_TRUE(fs_->Open(lazy, f.ino, O_RDONLY).ok());
  EXPECT_GE(loads, 1);
  RequestContext outsider = lazy;
  outsider.load_groups = [] { return std::vector<uint32_t>{51}; };
  EXPECT_EQ(ToErrno(fs_->Access(outsider, f.ino, R_OK)), EACCES);
  // Mode 0055: group and other agree, so nobody's groups are read.
  r = SetAttrRequest();
  r.mode = 0055;
  ASSERT_TRUE(fs_->SetAttr(root_, f.ino, r).ok());
  loads = 0;
  EXPECT_TRUE(fs_->Access(lazy, f.ino, R_OK).ok());
  EXPECT_EQ(loads, 0);
}

TEST_F(AclOpsTest, DefaultAclInheritance) {
  auto d = fs_->Mkdir(root_, kRoot, "d", 0755);
  ASSERT_TRUE(d.ok());
  const Acl dflt{E(ACL_USER_OBJ, 7), E(ACL_USER, 7, 1000), E(ACL_GROUP_OBJ, 5), E(ACL_MASK, 7),
                 E(ACL_OTHER, 5)};
  ASSERT_TRUE(fs_->SetXattr(root_, d->ino, kDefault, EncodeAcl(dflt), 0).ok());
  EXPECT_EQ(Mode(d->ino), S_IFDIR | 0755u);  // a default ACL leaves the mode alone

  // umask 022 is ignored: 0666 & the default gives 0664 and a masked ACL.
  Attributes f = MakeFile(d->ino, "f", 0666, root_);
  EXPECT_EQ(f.mode, S_IFREG | 0664u);
  EXPECT_EQ(Stored(f.ino, kAccess), (Acl{E(ACL_USER_OBJ, 6), E(ACL_USER, 7, 1000), E(ACL_GROUP_OBJ, 5),
                                         E(ACL_MASK, 6), E(ACL_OTHER, 4)}));
  EXPECT_TRUE(Stored(f.ino, kDefault).empty());

  auto sub = fs_->Mkdir(root_, d->ino, "sub", 0777);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->mode, S_IFDIR | 0775u);
  EXPECT_EQ(Stored(sub->ino, kDefault), dflt);
  EXPECT_EQ(Stored(sub->ino, kAccess), dflt);  // 0777 narrows nothing

  auto fifo = fs_->Mknod(root_, d->ino, "p", S_IFIFO | 0600, 0);
  ASSERT_TRUE(fifo.ok());
  EXPECT_EQ(fifo->mode, S_IFIFO | 0600u);
  EXPECT_EQ(Stored(fifo->ino, kAccess)[3], E(ACL_MASK, 0));

  // Symlinks are exempt; without a default ACL the umask applies.
  auto l = fs_->Symlink(root_, d->ino, "l", "f");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(ToErrno(fs_->GetXattr(l->ino, kAccess).status()), ENODATA);
  Attributes plain = MakeFile(kRoot, "plain", 0666, root_);
  EXPECT_EQ(plain.mode, S_IFREG | 0644u);
  EXPECT_EQ(ToErrno(fs_->GetXattr(plain.ino, kAccess).status()), ENODATA);

  Remount();
  EXPECT_EQ(Stored(sub->ino, kDefault), dflt);
  EXPECT_EQ(Mode(f.ino), S_IFREG | 0664u);
}

}  // namespace
}  // namespace reclaimfs::fs

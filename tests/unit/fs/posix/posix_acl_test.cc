// Tests of the ACL xattr form and mode arithmetic (fs/posix/posix_acl.h).
#include "fs/posix/posix_acl.h"

#include <linux/posix_acl.h>
#include <sys/stat.h>

#include <cerrno>
#include <string>

#include "fs/cache/errno_status.h"
#include "gtest/gtest.h"

namespace reclaimfs::fs {
namespace {

constexpr uint32_t kNoId = 0xffffffffu;

AclEntry E(uint16_t tag, uint16_t perm, uint32_t id = kNoId) { return AclEntry{tag, perm, id}; }

// A file's ACL with a named user and group: u::rw-, u:1000:r--, g::r--,
// g:50:rw-, m::rw-, o::---.
Acl Named() {
  return {E(ACL_USER_OBJ, 6), E(ACL_USER, 4, 1000), E(ACL_GROUP_OBJ, 4), E(ACL_GROUP, 6, 50),
          E(ACL_MASK, 6), E(ACL_OTHER, 0)};
}

int DecodeErrno(const std::string& value) { return ToErrno(DecodeAcl(value).status()); }

TEST(PosixAclTest, EncodeDecodeRoundTrip) {
  const std::string raw = EncodeAcl(Named());
  ASSERT_EQ(raw.size(), 4u + 6 * 8);
  // Little-endian version 2 header, then USER_OBJ with an undefined id.
  EXPECT_EQ(raw.substr(0, 4), std::string("\x02\x00\x00\x00", 4));
  EXPECT_EQ(raw.substr(4, 8), std::string("\x01\x00\x06\x00\xff\xff\xff\xff", 8));
  auto acl = DecodeAcl(raw);
  ASSERT_TRUE(acl.ok()) << acl.status();
  EXPECT_EQ(*acl, Named());
}

TEST(PosixAclTest, EmptyValueOrBareHeaderIsNoAcl) {
  auto none = DecodeAcl("");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto bare = DecodeAcl(EncodeAcl({}));
  ASSERT_TRUE(bare.ok());
  EXPECT_TRUE(bare->empty());
}

TEST(PosixAclTest, ObjectIdsAreIgnored) {
  std::string raw = EncodeAcl(AclFromMode(0640));
  raw[8] = 7;  // USER_OBJ's id: whatever it says, it means the owner
  auto acl = DecodeAcl(raw);
  ASSERT_TRUE(acl.ok());
  EXPECT_EQ(*acl, AclFromMode(0640));
}

TEST(PosixAclTest, MalformedIsEinval) {
  const std::string good = EncodeAcl(AclFromMode(0644));
  EXPECT_EQ(DecodeErrno(good.substr(0, 3)), EINVAL);            // short header
  EXPECT_EQ(DecodeErrno(good + "x"), EINVAL);                   // partial entry
  std::string v1 = good;
  v1[0] = 1;
  EXPECT_EQ(DecodeErrno(v1), EINVAL);                           // version 1
  EXPECT_EQ(DecodeErrno(EncodeAcl({E(ACL_USER_OBJ, 6), E(ACL_GROUP_OBJ, 4)})), EINVAL);  // no OTHER
  EXPECT_EQ(DecodeErrno(EncodeAcl({E(ACL_GROUP_OBJ, 4), E(ACL_USER_OBJ, 6), E(ACL_OTHER, 4)})),
            EINVAL);                                            // out of order
  EXPECT_EQ(DecodeErrno(EncodeAcl({E(ACL_USER_OBJ, 6), E(ACL_USER_OBJ, 6), E(ACL_GROUP_OBJ, 4),
                                   E(ACL_OTHER, 4)})),
            EINVAL);                                            // two USER_OBJ
  EXPECT_EQ(DecodeErrno(EncodeAcl({E(ACL_USER_OBJ, 6), E(ACL_GROUP_OBJ, 4), E(ACL_OTHER, 4),
                                   E(ACL_OTHER, 4)})),
            EINVAL);                                            // two OTHER
  EXPECT_EQ(DecodeErrno(EncodeAcl({E(ACL_USER_OBJ, 6), E(ACL_USER, 4, 5), E(ACL_GROUP_OBJ, 4),
                                   E(ACL_OTHER, 4)})),
            EINVAL);                                            // named without MASK
  EXPECT_EQ(DecodeErrno(EncodeAcl({E(ACL_USER_OBJ, 6), E(ACL_USER, 4, 9), E(ACL_USER, 4, 5),
                                   E(ACL_GROUP_OBJ, 4), E(ACL_MASK, 4), E(ACL_OTHER, 4)})),
            EINVAL);                                            // ids descending
  EXPECT_EQ(DecodeErrno(EncodeAcl({E(ACL_USER_OBJ, 6), E(ACL_GROUP_OBJ, 4), E(ACL_GROUP, 4, 5),
                                   E(ACL_GROUP, 4, 5), E(ACL_MASK, 4), E(ACL_OTHER, 4)})),
            EINVAL);                                            // repeated group
  EXPECT_EQ(DecodeErrno(EncodeAcl({E(ACL_USER_OBJ, 8), E(ACL_GROUP_OBJ, 4), E(ACL_OTHER, 4)})),
            EINVAL);                                            // perm beyond rwx
  EXPECT_EQ(DecodeErrno(EncodeAcl({E(ACL_USER_OBJ, 6), E(0x40, 4), E(ACL_GROUP_OBJ, 4), E(ACL_OTHER, 4)})),
            EINVAL);                                            // unknown tag
  // A mask without named entries is valid.
  EXPECT_TRUE(DecodeAcl(EncodeAcl({E(ACL_USER_OBJ, 6), E(ACL_GROUP_OBJ, 4), E(ACL_MASK, 4), E(ACL_OTHER, 4)}))
                  .ok());
}

TEST(PosixAclTest, ModeFromAclTakesGroupBitsFromMask) {
  bool equiv = true;
  EXPECT_EQ(ModeFromAcl(Named(), S_IFREG | S_ISGID | 0777, &equiv), S_IFREG | S_ISGID | 0660u);
  EXPECT_FALSE(equiv);
  EXPECT_EQ(ModeFromAcl(AclFromMode(0751), S_IFREG | 0000, &equiv), S_IFREG | 0751u);
  EXPECT_TRUE(equiv);
  // A mask alone already makes the ACL more than the mode (as Linux).
  EXPECT_EQ(ModeFromAcl({E(ACL_USER_OBJ, 6), E(ACL_GROUP_OBJ, 4), E(ACL_MASK, 0), E(ACL_OTHER, 4)}, 0, &equiv),
            0604u);
  EXPECT_FALSE(equiv);
}

TEST(PosixAclTest, ChmodUpdatesMaskOrGroupObj) {
  Acl acl = Named();
  ChmodAcl(&acl, 0705);
  EXPECT_EQ(acl, (Acl{E(ACL_USER_OBJ, 7), E(ACL_USER, 4, 1000), E(ACL_GROUP_OBJ, 4), E(ACL_GROUP, 6, 50),
                      E(ACL_MASK, 0), E(ACL_OTHER, 5)}));
  Acl plain = AclFromMode(0644);
  ChmodAcl(&plain, 0750);
  EXPECT_EQ(plain, AclFromMode(0750));
}

TEST(PosixAclTest, InheritMasksDefaultByMode) {
  // Default u::rwx, u:1000:rwx, g::r-x, m::rwx, o::r-x; creating a file 0666.
  const Acl dflt{E(ACL_USER_OBJ, 7), E(ACL_USER, 7, 1000), E(ACL_GROUP_OBJ, 5), E(ACL_MASK, 7),
                 E(ACL_OTHER, 5)};
  Acl access;
  EXPECT_EQ(InheritAcl(dflt, S_IFREG | 0666, &access), S_IFREG | 0664u);
  EXPECT_EQ(access, (Acl{E(ACL_USER_OBJ, 6), E(ACL_USER, 7, 1000), E(ACL_GROUP_OBJ, 5), E(ACL_MASK, 6),
                         E(ACL_OTHER, 4)}));
  // A minimal default ACL gives no access ACL, only the narrowed mode; set-id
  // bits pass through.
  EXPECT_EQ(InheritAcl(AclFromMode(0750), S_IFDIR | S_ISGID | 0777, &access), S_IFDIR | S_ISGID | 0750u);
  EXPECT_TRUE(access.empty());
}

TEST(PosixAclTest, AclNames) {
  EXPECT_TRUE(IsAclXattr("system.posix_acl_access"));
  EXPECT_TRUE(IsAclXattr("system.posix_acl_default"));
  EXPECT_FALSE(IsAclXattr("system.posix_acl"));
  EXPECT_FALSE(IsAclXattr("user.posix_acl_access"));
}

}  // namespace
}  // namespace reclaimfs::fs

// Extended attributes on a mounted reclaimfs: set/get/list/remove, the
// XATTR_CREATE / XATTR_REPLACE errors, ENODATA, ERANGE for short buffers,
// binary and large values, and persistence across remount.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <set>
#include <string>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

class PosixXattrTest : public ReclaimfsTest {};

std::string Get(const std::string& path, const std::string& name) {
  ssize_t n = getxattr(path.c_str(), name.c_str(), nullptr, 0);
  if (n < 0) ThrowErrno("getxattr " + name, path);
  std::string v(n, '\0');
  n = getxattr(path.c_str(), name.c_str(), v.data(), v.size());
  if (n < 0) ThrowErrno("getxattr " + name, path);
  v.resize(n);
  return v;
}

std::multiset<std::string> List(const std::string& path) {
  ssize_t n = listxattr(path.c_str(), nullptr, 0);
  if (n < 0) ThrowErrno("listxattr", path);
  std::string buf(n, '\0');
  n = listxattr(path.c_str(), buf.data(), buf.size());
  if (n < 0) ThrowErrno("listxattr", path);
  std::multiset<std::string> out;
  for (size_t pos = 0; pos < static_cast<size_t>(n);) {
    std::string name = buf.c_str() + pos;
    pos += name.size() + 1;
    out.insert(name);
  }
  return out;
}

TEST_F(PosixXattrTest, SetGetListRemove) {
  const std::string f = Path("f");
  WriteFile(f, "x");
  EXPECT_TRUE(List(f).empty());
  ASSERT_SYS_OK(setxattr(f.c_str(), "user.a", "alpha", 5, 0));
  ASSERT_SYS_OK(setxattr(f.c_str(), "user.b", "", 0, 0));
  const std::string binary("\0\x01\xff zero\0end", 12);
  ASSERT_SYS_OK(setxattr(f.c_str(), "user.bin", binary.data(), binary.size(), 0));
  const std::string large = MakeBlock(9, 0, 4000);
  ASSERT_SYS_OK(setxattr(f.c_str(), "user.large", large.data(), large.size(), 0));

  EXPECT_EQ(Get(f, "user.a"), "alpha");
  EXPECT_EQ(Get(f, "user.b"), "");
  EXPECT_EQ(Get(f, "user.bin"), binary);
  EXPECT_EQ(Get(f, "user.large"), large);
  EXPECT_EQ(getxattr(f.c_str(), "user.a", nullptr, 0), 5) << "size query";
  EXPECT_EQ(List(f), (std::multiset<std::string>{"user.a", "user.b", "user.bin", "user.large"}));

  // Replace without flags, then remove.
  ASSERT_SYS_OK(setxattr(f.c_str(), "user.a", "A", 1, 0));
  EXPECT_EQ(Get(f, "user.a"), "A");
  ASSERT_SYS_OK(removexattr(f.c_str(), "user.a"));
  char buf[16];
  EXPECT_ERRNO(ENODATA, getxattr(f.c_str(), "user.a", buf, sizeof buf));
  EXPECT_ERRNO(ENODATA, removexattr(f.c_str(), "user.a"));
  EXPECT_EQ(List(f), (std::multiset<std::string>{"user.b", "user.bin", "user.large"}));

  // Directories carry xattrs too.
  ASSERT_SYS_OK(mkdir(Path("d").c_str(), 0755));
  ASSERT_SYS_OK(setxattr(Path("d").c_str(), "user.dir", "yes", 3, 0));
  EXPECT_EQ(Get(Path("d"), "user.dir"), "yes");

  Remount();
  EXPECT_EQ(Get(f, "user.bin"), binary);
  EXPECT_EQ(Get(f, "user.large"), large);
  EXPECT_EQ(Get(Path("d"), "user.dir"), "yes");
  EXPECT_EQ(List(f), (std::multiset<std::string>{"user.b", "user.bin", "user.large"}));
}

TEST_F(PosixXattrTest, FlagsAndErrors) {
  const std::string f = Path("f");
  WriteFile(f, "x");
  ASSERT_SYS_OK(setxattr(f.c_str(), "user.k", "v1", 2, XATTR_CREATE));
  EXPECT_ERRNO(EEXIST, setxattr(f.c_str(), "user.k", "v2", 2, XATTR_CREATE));
  EXPECT_EQ(Get(f, "user.k"), "v1");
  EXPECT_ERRNO(ENODATA, setxattr(f.c_str(), "user.none", "v", 1, XATTR_REPLACE));
  EXPECT_ERRNO(ENODATA, getxattr(f.c_str(), "user.none", nullptr, 0));
  ASSERT_SYS_OK(setxattr(f.c_str(), "user.k", "value-two", 9, XATTR_REPLACE));
  EXPECT_EQ(Get(f, "user.k"), "value-two");

  char small[4];
  EXPECT_ERRNO(ERANGE, getxattr(f.c_str(), "user.k", small, sizeof small));
  EXPECT_ERRNO(ERANGE, listxattr(f.c_str(), small, sizeof small));
  EXPECT_ERRNO(ENOENT, getxattr(Path("missing").c_str(), "user.k", small, sizeof small));

  // Through an fd as well.
  UniqueFd fd = Open(f, O_RDONLY);
  ASSERT_SYS_OK(fsetxattr(fd.get(), "user.fd", "via-fd", 6, 0));
  char buf[16];
  EXPECT_EQ(fgetxattr(fd.get(), "user.fd", buf, sizeof buf), 6);
  EXPECT_EQ(std::string(buf, 6), "via-fd");
  ASSERT_SYS_OK(fremovexattr(fd.get(), "user.fd"));
  EXPECT_EQ(List(f), std::multiset<std::string>{"user.k"});
  // Removing the file removes its attributes: a new file starts with none.
  fd.Close();
  ASSERT_SYS_OK(unlink(f.c_str()));
  WriteFile(f, "y");
  EXPECT_TRUE(List(f).empty());
}

}  // namespace
}  // namespace reclaimfs::itest

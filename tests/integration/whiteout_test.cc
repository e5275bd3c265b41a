// renameat2(RENAME_WHITEOUT), as overlayfs uses it: the source name is left
// to a whiteout (a character device 0/0 with mode 0) in the same step as the
// move; with RENAME_NOREPLACE allowed, with RENAME_EXCHANGE EINVAL.
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <string>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/user_process.h"

namespace reclaimfs::itest {
namespace {

int Rename2(const std::string& from, const std::string& to, unsigned flags) {
  return static_cast<int>(syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags));
}

std::set<std::string> List(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) names.insert(e->d_name);
  closedir(d);
  return names;
}

void ExpectWhiteout(const std::string& path) {
  struct stat st = Lstat(path);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << path << " mode " << std::oct << st.st_mode;
  EXPECT_EQ(st.st_mode & 07777, 0u) << path;
  EXPECT_EQ(major(st.st_rdev), 0u) << path;
  EXPECT_EQ(minor(st.st_rdev), 0u) << path;
  EXPECT_EQ(st.st_nlink, 1u) << path;
}

class WhiteoutTest : public ReclaimfsTest {
 protected:
  WhiteoutTest() : ReclaimfsTest(FixtureConfig().Options("allow_other")) {}
};

TEST_F(WhiteoutTest, SourceBecomesWhiteout) {
  const std::string a = Path("a"), b = Path("b");
  WriteFile(a, "payload");
  const ino_t moved = Stat(a).st_ino;
  ASSERT_SYS_OK(Rename2(a, b, RENAME_WHITEOUT));
  EXPECT_EQ(ReadFile(b), "payload");
  EXPECT_EQ(Stat(b).st_ino, moved);
  ExpectWhiteout(a);
  EXPECT_NE(Lstat(a).st_ino, moved);
  EXPECT_EQ(List(Path("")), (std::set<std::string>{".", "..", "a", "b"}));

  Remount();
  ExpectWhiteout(a);
  EXPECT_EQ(ReadFile(b), "payload");
  // A whiteout is an ordinary node to us: it can be removed.
  EXPECT_SYS_OK(unlink(a.c_str()));
  EXPECT_EQ(List(Path("")), (std::set<std::string>{".", "..", "b"}));
}

TEST_F(WhiteoutTest, ReplacesTargetAndMovesDirectories) {
  const std::string a = Path("a"), b = Path("b");
  WriteFile(a, "new");
  WriteFile(b, "old");
  ASSERT_SYS_OK(Rename2(a, b, RENAME_WHITEOUT));
  EXPECT_EQ(ReadFile(b), "new");
  ExpectWhiteout(a);

  // Across directories, and a directory as the source.
  const std::string d1 = Path("d1"), d2 = Path("d2");
  ASSERT_SYS_OK(mkdir(d1.c_str(), 0755));
  ASSERT_SYS_OK(mkdir(d2.c_str(), 0755));
  ASSERT_SYS_OK(mkdir((d1 + "/sub").c_str(), 0755));
  WriteFile(d1 + "/sub/f", "f");
  ASSERT_SYS_OK(Rename2(d1 + "/sub", d2 + "/sub", RENAME_WHITEOUT));
  EXPECT_EQ(ReadFile(d2 + "/sub/f"), "f");
  ExpectWhiteout(d1 + "/sub");
  EXPECT_EQ(Stat(d1).st_nlink, 2u);  // the whiteout is no subdirectory
  EXPECT_EQ(Stat(d2).st_nlink, 3u);
}

TEST_F(WhiteoutTest, FlagCombinations) {
  const std::string a = Path("a"), b = Path("b"), c = Path("c");
  WriteFile(a, "a");
  WriteFile(b, "b");
  errno = 0;
  EXPECT_EQ(Rename2(a, b, RENAME_WHITEOUT | RENAME_EXCHANGE), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(Rename2(a, b, RENAME_WHITEOUT | RENAME_NOREPLACE), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(ReadFile(a), "a");
  EXPECT_EQ(ReadFile(b), "b");
  ASSERT_SYS_OK(Rename2(a, c, RENAME_WHITEOUT | RENAME_NOREPLACE));
  EXPECT_EQ(ReadFile(c), "a");
  ExpectWhiteout(a);

  // Only a caller that may make device nodes may leave a whiteout.
  ASSERT_SYS_OK(chmod(Path("").c_str(), 0777));
  WriteFile(Path("u"), "u", 0666);
  EXPECT_EQ(RunAsUser(022, [&](Report& r) {
              r.ExpectErrno(Rename2(Path("u"), Path("v"), RENAME_WHITEOUT), EPERM, "whiteout by a user");
            }),
            "");
  EXPECT_EQ(ReadFile(Path("u")), "u");
}

}  // namespace
}  // namespace reclaimfs::itest

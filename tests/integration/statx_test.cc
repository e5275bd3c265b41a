// statx(STATX_BTIME): the birth time is reported (FUSE_STATX), set once at
// creation, unchanged by writes, renames and attribute changes, and the same
// after a remount.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <string>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

struct statx StatxOf(const std::string& path, unsigned mask) {
  struct statx sx {};
  if (statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, mask, &sx) != 0) ThrowErrno("statx", path);
  return sx;
}

class StatxTest : public ReclaimfsTest {};

TEST_F(StatxTest, BirthTimeIsSetAtCreationAndKept) {
  const time_t before = time(nullptr);
  WriteFile(Path("f"), "x");
  ASSERT_SYS_OK(mkdir(Path("d").c_str(), 0755));
  const time_t after = time(nullptr);

  for (const char* name : {"f", "d"}) {
    struct statx sx = StatxOf(Path(name), STATX_BASIC_STATS | STATX_BTIME);
    ASSERT_TRUE(sx.stx_mask & STATX_BTIME) << name << ": no birth time in mask 0x" << std::hex << sx.stx_mask;
    EXPECT_GE(sx.stx_btime.tv_sec, before) << name;
    EXPECT_LE(sx.stx_btime.tv_sec, after) << name;
    // The basic fields come with it.
    EXPECT_TRUE((sx.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS) << name;
    EXPECT_EQ(sx.stx_ino, Stat(Path(name)).st_ino) << name;
  }
  const struct statx born = StatxOf(Path("f"), STATX_BTIME);

  sleep(1);
  WriteFile(Path("f"), "changed");
  ASSERT_SYS_OK(chmod(Path("f").c_str(), 0600));
  ASSERT_SYS_OK(rename(Path("f").c_str(), Path("g").c_str()));
  struct statx later = StatxOf(Path("g"), STATX_BTIME | STATX_MTIME | STATX_SIZE);
  EXPECT_EQ(later.stx_btime.tv_sec, born.stx_btime.tv_sec);
  EXPECT_EQ(later.stx_btime.tv_nsec, born.stx_btime.tv_nsec);
  EXPECT_GT(later.stx_mtime.tv_sec, born.stx_btime.tv_sec);
  EXPECT_EQ(later.stx_size, 7u);

  Remount();
  struct statx remounted = StatxOf(Path("g"), STATX_BTIME);
  ASSERT_TRUE(remounted.stx_mask & STATX_BTIME);
  EXPECT_EQ(remounted.stx_btime.tv_sec, born.stx_btime.tv_sec);
  EXPECT_EQ(remounted.stx_btime.tv_nsec, born.stx_btime.tv_nsec);
}

TEST_F(StatxTest, MissingAndRemovedNodes) {
  struct statx sx {};
  EXPECT_ERRNO(ENOENT, statx(AT_FDCWD, Path("none").c_str(), 0, STATX_BTIME, &sx));
  WriteFile(Path("f"), "x");
  const int fd = open(Path("f").c_str(), O_RDONLY);
  ASSERT_SYS_OK(fd);
  ASSERT_SYS_OK(unlink(Path("f").c_str()));
  // An open unlinked file still answers, with nlink 0.
  ASSERT_SYS_OK(statx(fd, "", AT_EMPTY_PATH, STATX_BTIME | STATX_NLINK, &sx));
  EXPECT_TRUE(sx.stx_mask & STATX_BTIME);
  EXPECT_EQ(sx.stx_nlink, 0u);
  close(fd);
}

}  // namespace
}  // namespace reclaimfs::itest

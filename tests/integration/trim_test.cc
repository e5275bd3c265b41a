// FITRIM (fstrim): free blocks of the store are punched out of the data file
// so the filesystem under it gets the space back; the argument rules follow
// ext4 (EINVAL for a start past the end, a length under a block, a minimum
// over the size), it is root-only and refused read-only. Data in use is
// never touched, and ro,norecovery mounts without writing the store.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/user_process.h"

namespace reclaimfs::itest {
namespace {

class TrimTest : public ReclaimfsTest {
 protected:
  TrimTest() : ReclaimfsTest(FixtureConfig().Options("allow_other").Size("256M")) {}

  // FITRIM on the mount's root; the range's len comes back as bytes trimmed.
  int Trim(fstrim_range* range) {
    const int fd = open(mnt().c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    const int r = ioctl(fd, FITRIM, range);
    const int saved = errno;
    close(fd);
    errno = saved;
    return r;
  }
  // Bytes the data file occupies on the filesystem under the store.
  uint64_t DataFileBytes() { return static_cast<uint64_t>(Stat(store() + "/data").st_blocks) * 512; }
};

TEST_F(TrimTest, FreedSpaceGoesBackToTheStoreAndDataStays) {
  const std::string keep(3 << 20, 'k');
  WriteFile(Path("keep"), keep);
  WriteFile(Path("gone"), std::string(64 << 20, 'g'));
  for (const char* name : {"keep", "gone"}) {  // on disk, not just in the cache
    UniqueFd fd(open(Path(name).c_str(), O_RDONLY));
    ASSERT_SYS_OK(fsync(fd.get()));
  }
  const uint64_t before = DataFileBytes();
  ASSERT_GE(before, 64ull << 20);
  ASSERT_SYS_OK(unlink(Path("gone").c_str()));

  fstrim_range range{0, UINT64_MAX, 0};
  ASSERT_SYS_OK(Trim(&range));
  // Most of the 256 MiB store is free and was trimmed.
  EXPECT_GT(range.len, 200ull << 20);
  EXPECT_LE(range.len, 256ull << 20);
  // The 64 MiB of the deleted file are no longer held by the data file.
  EXPECT_LE(DataFileBytes() + (60ull << 20), before) << "before " << before << " after " << DataFileBytes();
  EXPECT_EQ(ReadFile(Path("keep")), keep);

  // The trimmed space is usable again, and what is written there reads back.
  const std::string again(32 << 20, 'a');
  WriteFile(Path("again"), again);
  Remount();
  EXPECT_EQ(ReadFile(Path("keep")), keep);
  EXPECT_EQ(ReadFile(Path("again")), again);
}

TEST_F(TrimTest, RangeAndMinimumLengthAreHonoured) {
  // Only the first 16 MiB: at most that much is trimmed.
  fstrim_range first{0, 16ull << 20, 0};
  ASSERT_SYS_OK(Trim(&first));
  EXPECT_LE(first.len, 16ull << 20);
  EXPECT_GT(first.len, 8ull << 20);
  // A start near the end leaves little to trim; a length beyond the end is clamped.
  fstrim_range tail{255ull << 20, UINT64_MAX, 0};
  ASSERT_SYS_OK(Trim(&tail));
  EXPECT_LE(tail.len, 1ull << 20);
  // A minimum longer than any free run trims nothing but succeeds: with
  // 160 MiB of the 256 MiB in use no free run reaches 100 MiB.
  WriteFile(Path("filler"), std::string(160 << 20, 'f'));
  UniqueFd filler(open(Path("filler").c_str(), O_RDONLY));
  ASSERT_SYS_OK(fsync(filler.get()));
  fstrim_range big_min{0, UINT64_MAX, 100ull << 20};
  ASSERT_SYS_OK(Trim(&big_min));
  EXPECT_EQ(big_min.len, 0u);
}

TEST_F(TrimTest, BadArgumentsAreEinval) {
  fstrim_range past_end{1ull << 40, UINT64_MAX, 0};
  EXPECT_ERRNO(EINVAL, Trim(&past_end));
  fstrim_range max_start{UINT64_MAX, 1 << 20, 0};
  EXPECT_ERRNO(EINVAL, Trim(&max_start));
  fstrim_range zero_len{0, 0, 0};
  EXPECT_ERRNO(EINVAL, Trim(&zero_len));
  fstrim_range short_len{0, 100, 0};
  EXPECT_ERRNO(EINVAL, Trim(&short_len));
  fstrim_range huge_min{0, UINT64_MAX, 1ull << 40};
  EXPECT_ERRNO(EINVAL, Trim(&huge_min));
}

TEST_F(TrimTest, OnlyRootAndOnlyReadWrite) {
  const std::string root = mnt();
  const std::string report = RunAsUser(022, [&](Report& r) {
    const int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY);
    r.ExpectOk(fd, "open the mount root");
    fstrim_range range{0, UINT64_MAX, 0};
    r.ExpectErrno(ioctl(fd, FITRIM, &range), EPERM, "FITRIM as a user");
    close(fd);
  });
  EXPECT_EQ(report, "");

  Remount("ro");
  fstrim_range range{0, UINT64_MAX, 0};
  EXPECT_ERRNO(EROFS, Trim(&range));
}

TEST_F(TrimTest, NoRecoveryNeedsReadOnlyAndWritesNothing) {
  WriteFile(Path("f"), "data");
  Unmount();
  // Without ro the mount is refused with a message naming the rule.
  RunResult rw = Run({Tools().reclaimfs, store(), mnt(), "-f", "-o", "norecovery"});
  EXPECT_NE(rw.exit_code, 0);
  EXPECT_NE(rw.output.find("norecovery"), std::string::npos) << rw.output;

  Mount("ro,norecovery");
  EXPECT_EQ(ReadFile(Path("f")), "data");
  EXPECT_ERRNO(EROFS, open(Path("new").c_str(), O_CREAT | O_WRONLY, 0644));
  Remount("");
  EXPECT_EQ(ReadFile(Path("f")), "data");
}

}  // namespace
}  // namespace reclaimfs::itest

// POSIX file-data operations on a mounted reclaimfs: create/open/read/write,
// pread/pwrite, O_APPEND, O_TRUNC, O_EXCL, truncate/ftruncate, fallocate
// (default and punch hole), SEEK_DATA/SEEK_HOLE and a sparse 1 TiB file.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

class PosixFileTest : public ReclaimfsTest {};

TEST_F(PosixFileTest, CreateWriteReadAndOpenErrors) {
  const std::string f = Path("f");
  {
    UniqueFd fd = Open(f, O_CREAT | O_WRONLY, 0640);
    ASSERT_EQ(write(fd.get(), "hello", 5), 5);
    EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), 5);
    EXPECT_ERRNO(EBADF, read(fd.get(), std::string(5, 0).data(), 5));
    ASSERT_EQ(fd.Close(), 0);
  }
  struct stat st = Stat(f);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_size, 5);
  EXPECT_EQ(ReadFile(f), "hello");

  {
    UniqueFd fd = Open(f, O_RDONLY);
    char buf[16];
    EXPECT_EQ(read(fd.get(), buf, sizeof buf), 5);
    EXPECT_EQ(read(fd.get(), buf, sizeof buf), 0) << "read at EOF";
    EXPECT_ERRNO(EBADF, write(fd.get(), "x", 1));
  }

  EXPECT_ERRNO(ENOENT, open(Path("missing").c_str(), O_RDONLY));
  EXPECT_ERRNO(EEXIST, open(f.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644));
  EXPECT_ERRNO(ENOTDIR, open(Path("f/x").c_str(), O_RDONLY));
  EXPECT_ERRNO(ENOENT, open(Path("nodir/x").c_str(), O_CREAT | O_WRONLY, 0644));
  ASSERT_SYS_OK(mkdir(Path("d").c_str(), 0755));
  EXPECT_ERRNO(EISDIR, open(Path("d").c_str(), O_WRONLY));
  EXPECT_ERRNO(EEXIST, open(Path("d").c_str(), O_CREAT | O_EXCL | O_RDONLY, 0644));

  // O_CREAT without O_EXCL on an existing file opens it, keeping its data.
  UniqueFd again = Open(f, O_CREAT | O_RDWR, 0600);
  EXPECT_EQ(ReadAt(again.get(), 16, 0), "hello");
  EXPECT_EQ(Stat(f).st_mode & 07777, 0640u) << "mode of an existing file changed by O_CREAT";
}

// Closing a read-only descriptor costs no FLUSH round trip (FOPEN_NOFLUSH);
// closing a writable one still does, as a writer must hear of a failed
// writeback at close.
TEST_F(PosixFileTest, OnlyWritableDescriptorsAreFlushedOnClose) {
  WriteFile(Path("f"), "data");
  const double before = DaemonStat("fuse_flush_requests");
  ASSERT_GE(before, 0);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ReadFile(Path("f")), "data");
  EXPECT_EQ(DaemonStat("fuse_flush_requests"), before) << "read-only closes sent FLUSH";
  {
    UniqueFd fd = Open(Path("f"), O_WRONLY);
    ASSERT_EQ(fd.Close(), 0);
  }
  {
    UniqueFd fd = Open(Path("g"), O_CREAT | O_RDWR);
    ASSERT_EQ(fd.Close(), 0);
  }
  EXPECT_EQ(DaemonStat("fuse_flush_requests"), before + 2) << "writable closes must be flushed";
}

// The kernel looks a new name up before creating it; the create's own
// check that the name is free is answered from that lookup's absence, and
// the names are all there afterwards.
TEST_F(PosixFileTest, CreatesOfNewNamesReadTheStoreOnceAndAllNamesExist) {
  ASSERT_SYS_OK(mkdir(Path("new").c_str(), 0755));
  const double before = DaemonStat("meta_absent_dentry_hits");
  ASSERT_GE(before, 0);
  constexpr int kFiles = 20;
  for (int i = 0; i < kFiles; ++i) {
    UniqueFd fd = Open(Path("new/f" + std::to_string(i)), O_CREAT | O_EXCL | O_WRONLY, 0644);
    ASSERT_EQ(fd.Close(), 0);
  }
  EXPECT_GE(DaemonStat("meta_absent_dentry_hits"), before + kFiles);
  for (int i = 0; i < kFiles; ++i) {
    const std::string f = Path("new/f" + std::to_string(i));
    EXPECT_EQ(open(f.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644), -1) << f << " created twice";
    EXPECT_EQ(errno, EEXIST);
  }
}

TEST_F(PosixFileTest, PreadPwriteAndGaps) {
  UniqueFd fd = Open(Path("p"), O_CREAT | O_RDWR);
  PwriteAll(fd.get(), "hello", 5, 0);
  PwriteAll(fd.get(), "XYZ", 3, 10);  // leaves a 5-byte gap
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), 0) << "pwrite moved the file offset";
  struct stat st{};
  ASSERT_SYS_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 13);
  EXPECT_EQ(ReadAt(fd.get(), 100, 0), std::string("hello\0\0\0\0\0XYZ", 13));
  EXPECT_EQ(ReadAt(fd.get(), 4, 3), std::string("lo\0\0", 4));
  EXPECT_EQ(ReadAt(fd.get(), 10, 13), "") << "pread at EOF";
  EXPECT_EQ(ReadAt(fd.get(), 10, 1 << 20), "") << "pread past EOF";

  // Unaligned writes spanning page boundaries overwrite exactly their range.
  std::string big = MakeBlock(1, 0, 3 * 4096 + 123);
  PwriteAll(fd.get(), big.data(), big.size(), 0);
  PwriteAll(fd.get(), "abcdefgh", 8, 4096 - 4);
  big.replace(4096 - 4, 8, "abcdefgh");
  EXPECT_EQ(ReadAt(fd.get(), big.size() + 10, 0), big);
  EXPECT_ERRNO(EINVAL, pwrite(fd.get(), "x", 1, -1));
}

TEST_F(PosixFileTest, AppendWritesAtEndOfFile) {
  const std::string f = Path("a");
  WriteFile(f, "12345");
  UniqueFd a = Open(f, O_WRONLY | O_APPEND);
  UniqueFd b = Open(f, O_WRONLY | O_APPEND);
  ASSERT_EQ(lseek(a.get(), 0, SEEK_SET), 0);
  ASSERT_EQ(write(a.get(), "67", 2), 2);
  ASSERT_EQ(write(b.get(), "89", 2), 2);  // b's offset is stale; O_APPEND ignores it
  ASSERT_EQ(write(a.get(), "X", 1), 1);
  EXPECT_EQ(ReadFile(f), "123456789X");
  EXPECT_EQ(Stat(f).st_size, 10);
}

TEST_F(PosixFileTest, OTruncEmptiesTheFile) {
  const std::string f = Path("t");
  WriteFile(f, std::string(100000, 'q'));
  Fsync(f);
  {
    UniqueFd fd = Open(f, O_WRONLY | O_TRUNC);
    EXPECT_EQ(Stat(f).st_size, 0);
    ASSERT_EQ(write(fd.get(), "new", 3), 3);
  }
  EXPECT_EQ(ReadFile(f), "new");
  // O_TRUNC on a read-write open truncates before any write.
  WriteFile(f, "again");
  UniqueFd fd = Open(f, O_RDWR | O_TRUNC);
  EXPECT_EQ(Stat(f).st_size, 0);
}

// Shrinking must drop the tail for good: extending again reads zeros, with
// and without the shrunk data having reached the store first.
TEST_F(PosixFileTest, TruncateShrinkThenExtendReadsZeros) {
  for (bool synced : {false, true}) {
    SCOPED_TRACE(synced ? "fsync'd before shrinking" : "dirty when shrinking");
    const std::string f = Path(synced ? "synced" : "dirty");
    WriteFile(f, std::string(3 * 4096, 'A'));
    if (synced) Fsync(f);
    ASSERT_SYS_OK(truncate(f.c_str(), 100));
    EXPECT_EQ(Stat(f).st_size, 100);
    EXPECT_EQ(ReadFile(f), std::string(100, 'A'));
    if (synced) Fsync(f);
    ASSERT_SYS_OK(truncate(f.c_str(), 10000));
    std::string expect = std::string(100, 'A') + std::string(9900, '\0');
    std::string got = ReadFile(f);
    EXPECT_EQ(got.size(), 10000u);
    EXPECT_EQ(FirstDifference(got, expect), -1) << "stale data after shrink+extend";

    UniqueFd fd = Open(f, O_RDWR);
    ASSERT_SYS_OK(ftruncate(fd.get(), 0));
    ASSERT_SYS_OK(ftruncate(fd.get(), 4096));
    EXPECT_EQ(ReadAt(fd.get(), 8192, 0), std::string(4096, '\0'));
  }
  ASSERT_SYS_OK(mkdir(Path("d").c_str(), 0755));
  EXPECT_ERRNO(EISDIR, truncate(Path("d").c_str(), 0));
  EXPECT_ERRNO(EINVAL, truncate(Path("synced").c_str(), -1));
  EXPECT_ERRNO(ENOENT, truncate(Path("missing").c_str(), 0));
  UniqueFd ro = Open(Path("synced"), O_RDONLY);
  EXPECT_ERRNO(EINVAL, ftruncate(ro.get(), 0));
}

TEST_F(PosixFileTest, FallocateDefaultAllocatesZeros) {
  const std::string f = Path("fa");
  UniqueFd fd = Open(f, O_CREAT | O_RDWR);
  const blkcnt_t before = Stat(f).st_blocks;
  ASSERT_SYS_OK(fallocate(fd.get(), 0, 0, 1 << 20));
  struct stat st = Stat(f);
  EXPECT_EQ(st.st_size, 1 << 20);
  EXPECT_GE(st.st_blocks - before, (1 << 20) / 512) << "fallocate did not allocate";
  EXPECT_EQ(ReadAt(fd.get(), 1 << 20, 0), std::string(1 << 20, '\0'));

  // KEEP_SIZE allocates past EOF without changing the size.
  ASSERT_SYS_OK(fallocate(fd.get(), FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20));
  st = Stat(f);
  EXPECT_EQ(st.st_size, 1 << 20);
  EXPECT_GE(st.st_blocks, 2 * (1 << 20) / 512);

  EXPECT_ERRNO(EINVAL, fallocate(fd.get(), 0, 0, 0));
  EXPECT_ERRNO(EOPNOTSUPP, fallocate(fd.get(), FALLOC_FL_COLLAPSE_RANGE, 0, 4096));
}

TEST_F(PosixFileTest, FallocatePunchHoleReadsZerosAndFreesBlocks) {
  const std::string f = Path("ph");
  const std::string data(1 << 20, '\xab');
  UniqueFd fd = Open(f, O_CREAT | O_RDWR);
  PwriteAll(fd.get(), data.data(), data.size(), 0);
  ASSERT_SYS_OK(fsync(fd.get()));
  const blkcnt_t full = Stat(f).st_blocks;
  EXPECT_GE(full, (1 << 20) / 512);

  ASSERT_SYS_OK(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 256 << 10, 512 << 10));
  std::string expect = data;
  std::fill(expect.begin() + (256 << 10), expect.begin() + (768 << 10), '\0');
  EXPECT_EQ(FirstDifference(ReadAt(fd.get(), 1 << 20, 0), expect), -1);
  ASSERT_SYS_OK(fsync(fd.get()));
  struct stat st = Stat(f);
  EXPECT_EQ(st.st_size, 1 << 20) << "KEEP_SIZE changed the size";
  EXPECT_LE(st.st_blocks, full - (512 << 10) / 512) << "punched blocks still counted";

  // An unaligned punch zeroes partial pages too.
  ASSERT_SYS_OK(fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 5000));
  std::fill(expect.begin() + 100, expect.begin() + 5100, '\0');
  EXPECT_EQ(FirstDifference(ReadAt(fd.get(), 1 << 20, 0), expect), -1);
}

TEST_F(PosixFileTest, SeekDataAndSeekHole) {
  UniqueFd fd = Open(Path("sparse"), O_CREAT | O_RDWR);
  ASSERT_SYS_OK(ftruncate(fd.get(), 16 << 20));
  const std::string block = MakeBlock(2, 0, 4096);
  PwriteAll(fd.get(), block.data(), block.size(), 4 << 20);
  PwriteAll(fd.get(), block.data(), block.size(), 8 << 20);
  // Dirty data counts as data; check before and after it reached the store.
  for (bool synced : {false, true}) {
    SCOPED_TRACE(synced ? "after fsync" : "before fsync");
    if (synced) {
      ASSERT_SYS_OK(fsync(fd.get()));
    }
    EXPECT_EQ(lseek(fd.get(), 0, SEEK_DATA), 4 << 20);
    EXPECT_EQ(lseek(fd.get(), 0, SEEK_HOLE), 0);
    EXPECT_EQ(lseek(fd.get(), 4 << 20, SEEK_HOLE), (4 << 20) + 4096);
    EXPECT_EQ(lseek(fd.get(), (4 << 20) + 4096, SEEK_DATA), 8 << 20);
    EXPECT_EQ(lseek(fd.get(), (8 << 20) + 100, SEEK_DATA), (8 << 20) + 100);
    EXPECT_EQ(lseek(fd.get(), (8 << 20) + 4096, SEEK_HOLE), (8 << 20) + 4096);
    EXPECT_ERRNO(ENXIO, lseek(fd.get(), (8 << 20) + 4096, SEEK_DATA));
    EXPECT_ERRNO(ENXIO, lseek(fd.get(), 16 << 20, SEEK_HOLE));
    // A negative offset is ENXIO for SEEK_DATA and SEEK_HOLE, as on Linux.
    EXPECT_ERRNO(ENXIO, lseek(fd.get(), -1, SEEK_DATA));
    EXPECT_ERRNO(ENXIO, lseek(fd.get(), -1, SEEK_HOLE));
    EXPECT_ERRNO(ENXIO, lseek(fd.get(), 17 << 20, SEEK_DATA));
  }
}

TEST_F(PosixFileTest, SparseOneTebibyteFile) {
  constexpr off_t kTiB = off_t{1} << 40;
  const std::string f = Path("huge");
  UniqueFd fd = Open(f, O_CREAT | O_RDWR);
  ASSERT_SYS_OK(ftruncate(fd.get(), kTiB));
  const std::string block = MakeBlock(3, 0, 4096);
  PwriteAll(fd.get(), block.data(), block.size(), kTiB - 4096);
  ASSERT_SYS_OK(fsync(fd.get()));
  EXPECT_EQ(ReadAt(fd.get(), 4096, kTiB - 4096), block);
  EXPECT_EQ(ReadAt(fd.get(), 4096, kTiB / 2), std::string(4096, '\0'));
  EXPECT_EQ(ReadAt(fd.get(), 4096, kTiB), "");
  struct stat st = Stat(f);
  EXPECT_EQ(st.st_size, kTiB);
  EXPECT_LE(st.st_blocks, (1 << 20) / 512) << "a sparse file allocated its holes";
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_DATA), kTiB - 4096);
}

}  // namespace
}  // namespace reclaimfs::itest

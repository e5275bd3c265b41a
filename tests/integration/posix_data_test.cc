// Data paths on a mounted reclaimfs: shared writable mmap on a direct-IO file
// (written through the mapping, read back with read(2), also after remount)
// and a 256 MiB file written and verified by checksum, before and after
// remount.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

class PosixDataTest : public ReclaimfsTest {};

TEST_F(PosixDataTest, SharedWritableMmap) {
  const std::string f = Path("mapped");
  constexpr size_t kLen = 64 << 10;
  {
    UniqueFd fd = Open(f, O_CREAT | O_RDWR);
    ASSERT_SYS_OK(ftruncate(fd.get(), kLen));
    void* p = mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    ASSERT_NE(p, MAP_FAILED) << "MAP_SHARED|PROT_WRITE on a direct-IO file: " << strerror(errno);
    char* m = static_cast<char*>(p);
    EXPECT_EQ(m[100], '\0');
    const std::string pattern = MakeBlock(11, 0, kLen);
    std::memcpy(m, pattern.data(), kLen);
    EXPECT_SYS_OK(msync(m, kLen, MS_SYNC));
    EXPECT_SYS_OK(munmap(m, kLen));
    ASSERT_EQ(fd.Close(), 0);

    std::string back = ReadFile(f);
    EXPECT_EQ(back.size(), kLen);
    EXPECT_EQ(FirstDifference(back, pattern), -1) << "data written through the mapping";
  }
  // A write(2) is visible through a fresh mapping.
  {
    UniqueFd fd = Open(f, O_RDWR);
    PwriteAll(fd.get(), "via-write", 9, 4096);
    void* p = mmap(nullptr, kLen, PROT_READ, MAP_SHARED, fd.get(), 0);
    ASSERT_NE(p, MAP_FAILED);
    EXPECT_EQ(std::string(static_cast<char*>(p) + 4096, 9), "via-write");
    munmap(p, kLen);
  }
  std::string expect = MakeBlock(11, 0, kLen);
  expect.replace(4096, 9, "via-write");
  Remount();
  std::string back = ReadFile(f);
  EXPECT_EQ(FirstDifference(back, expect), -1) << "after remount";
}

TEST_F(PosixDataTest, TwoHundredFiftySixMibFileChecksum) {
  constexpr size_t kChunk = 1 << 20;
  constexpr size_t kChunks = 256;
  const std::string f = Path("big");
  std::vector<char> chunk(kChunk);
  uint64_t written = 0xcbf29ce484222325ull;
  {
    UniqueFd fd = Open(f, O_CREAT | O_WRONLY | O_TRUNC);
    for (size_t i = 0; i < kChunks; ++i) {
      FillBlock(12, i, chunk);
      written = Checksum(chunk, written);
      PwriteAll(fd.get(), chunk.data(), kChunk, i * kChunk);
    }
    ASSERT_SYS_OK(fsync(fd.get()));
    ASSERT_EQ(fd.Close(), 0);
  }
  EXPECT_EQ(Stat(f).st_size, static_cast<off_t>(kChunk * kChunks));
  EXPECT_EQ(FileChecksum(f), written) << "256 MiB read back differs";

  // Also verify block by block so a mismatch names its place.
  auto verify = [&](const char* when) {
    UniqueFd fd = Open(f, O_RDONLY);
    std::vector<char> want(kChunk);
    for (size_t i = 0; i < kChunks; ++i) {
      PreadExact(fd.get(), chunk.data(), kChunk, i * kChunk);
      FillBlock(12, i, want);
      long d = FirstDifference(chunk, want);
      ASSERT_EQ(d, -1) << when << ": first bad byte at offset " << i * kChunk + d;
    }
  };
  verify("before remount");
  Remount();
  EXPECT_EQ(FileChecksum(f), written) << "after remount";
  verify("after remount");
}

}  // namespace
}  // namespace reclaimfs::itest

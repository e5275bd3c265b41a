// A shared writable mapping and pwrite(2) on the same pages at once (what
// xfstests' holetest does): every page gets one marker through the mapping
// and one through pwrite, at different offsets, from two threads racing
// page by page. Both markers must be seen through the mapping, by pread,
// and after a remount. Files are direct-IO, so a pwrite bypasses the
// kernel's page cache; a page the mapping faults in while the write is on
// its way must still end up holding the written bytes.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kPages = 512;
constexpr size_t kLen = kPage * kPages;
constexpr size_t kMappedOffset = 1024;  // within each page
constexpr size_t kWrittenOffset = 3072;

uint64_t Marker(int round, int who) { return (uint64_t{0x5eed} << 48) | (uint64_t(round) << 8) | uint64_t(who); }

// How many pages lack a marker in `data` (kLen bytes).
int MissingMarkers(const char* data, int round, std::string* first) {
  int missing = 0;
  for (size_t p = 0; p < kPages; ++p) {
    for (auto [offset, who] : {std::pair{kMappedOffset, 1}, std::pair{kWrittenOffset, 2}}) {
      uint64_t v;
      std::memcpy(&v, data + p * kPage + offset, sizeof(v));
      if (v != Marker(round, who)) {
        if (missing++ == 0) {
          *first = "page " + std::to_string(p) + (who == 1 ? " mapped" : " written") + " marker reads " + std::to_string(v);
        }
      }
    }
  }
  return missing;
}

class MmapCoherenceTest : public ReclaimfsTest {};

TEST_F(MmapCoherenceTest, PwriteRacingFaultsIsSeenEverywhere) {
  constexpr int kRounds = 24;
  for (int round = 0; round < kRounds; ++round) {
    const std::string f = Path("race" + std::to_string(round));
    UniqueFd fd = Open(f, O_CREAT | O_RDWR);
    ASSERT_SYS_OK(ftruncate(fd.get(), kLen));  // all holes, as in holetest's last case
    void* p = mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    ASSERT_NE(p, MAP_FAILED) << strerror(errno);
    char* m = static_cast<char*>(p);

    std::thread mapper([&] {
      const uint64_t v = Marker(round, 1);
      for (size_t i = 0; i < kPages; ++i) std::memcpy(m + i * kPage + kMappedOffset, &v, sizeof(v));
    });
    std::thread writer([&] {
      const uint64_t v = Marker(round, 2);
      for (size_t i = 0; i < kPages; ++i) {
        ASSERT_EQ(pwrite(fd.get(), &v, sizeof(v), i * kPage + kWrittenOffset), ssize_t(sizeof(v)));
      }
    });
    mapper.join();
    writer.join();

    std::string first;
    EXPECT_EQ(MissingMarkers(m, round, &first), 0) << "round " << round << ", through the mapping: " << first;
    ASSERT_SYS_OK(msync(m, kLen, MS_SYNC));
    ASSERT_SYS_OK(munmap(m, kLen));
    std::string back(kLen, '\0');
    ASSERT_EQ(pread(fd.get(), back.data(), kLen, 0), ssize_t(kLen));
    EXPECT_EQ(MissingMarkers(back.data(), round, &first), 0) << "round " << round << ", by pread: " << first;
    ASSERT_EQ(fd.Close(), 0);
    if (HasFailure()) break;
  }

  // The mechanism: the written bytes were copied into the mapped pages.
  EXPECT_GT(DaemonStat("fuse_mapped_write_stores"), 0);
  EXPECT_EQ(DaemonStat("fuse_mapped_write_stores_skipped"), 0);

  Remount();
  for (int round = 0; round < kRounds && !HasFailure(); ++round) {
    const std::string back = ReadFile(Path("race" + std::to_string(round)));
    ASSERT_EQ(back.size(), kLen);
    std::string first;
    EXPECT_EQ(MissingMarkers(back.data(), round, &first), 0) << "round " << round << ", after remount: " << first;
  }
}

// Files only read and written with read(2)/write(2) are not taken for
// mapped ones: their writes are answered directly, with no store.
TEST_F(MmapCoherenceTest, PlainReadsAndWritesNeedNoStores) {
  const std::string data = MakeBlock(3, 0, 1 << 20);
  WriteFile(Path("plain"), data);
  EXPECT_EQ(ReadFile(Path("plain")), data);
  {
    UniqueFd fd = Open(Path("plain"), O_RDWR);
    ASSERT_EQ(pwrite(fd.get(), "x", 1, 4096), 1);
    char c = 0;
    ASSERT_EQ(pread(fd.get(), &c, 1, 4096), 1);
    EXPECT_EQ(c, 'x');
  }
  EXPECT_EQ(DaemonStat("fuse_mapped_files"), 0);
  EXPECT_EQ(DaemonStat("fuse_mapped_write_stores"), 0);

  // One page faulted in through a mapping marks the file.
  {
    UniqueFd fd = Open(Path("plain"), O_RDWR);
    void* p = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd.get(), 0);
    ASSERT_NE(p, MAP_FAILED) << strerror(errno);
    EXPECT_EQ(static_cast<const char*>(p)[0], data[0]);
    ASSERT_EQ(pwrite(fd.get(), "y", 1, 8), 1);
    EXPECT_EQ(static_cast<const char*>(p)[8], 'y') << "a direct write is seen through the mapping";
    ASSERT_SYS_OK(munmap(p, 4096));
  }
  EXPECT_EQ(DaemonStat("fuse_mapped_files"), 1);
  EXPECT_GE(DaemonStat("fuse_mapped_write_stores"), 1);
}

}  // namespace
}  // namespace reclaimfs::itest

// Durability of reclaimfs: a tree (dirs, files, symlinks, hard links,
// special files, xattrs, modes, owners, times) is identical after remount;
// fsync'd data survives kill -9 of the daemon byte-exact; on a 64 MiB store
// writes fail with ENOSPC and everything acknowledged before is intact after
// remount. fsck must be clean after each.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

class DurabilityTest : public ReclaimfsTest {};

class EnospcTest : public ReclaimfsTest {
 protected:
  EnospcTest() : ReclaimfsTest(FixtureConfig().Size("64M")) {}
};

void BuildTree(const std::string& root) {
  for (const char* d : {"a", "a/b", "a/b/c", "empty", "modes"}) {
    if (mkdir((root + "/" + d).c_str(), 0755) != 0) ThrowErrno("mkdir", d);
  }
  WriteFile(root + "/zero", "");
  WriteFile(root + "/a/small", "hello world\n");
  WriteFile(root + "/a/b/page", MakeBlock(20, 0, 4096));
  WriteFile(root + "/a/b/unaligned", MakeBlock(21, 0, 4095));
  WriteFile(root + "/a/b/c/big", MakeBlock(22, 0, (3 << 20) + 7));
  {  // a sparse file with data at both ends
    UniqueFd fd = Open(root + "/a/sparse", O_CREAT | O_WRONLY);
    PwriteAll(fd.get(), "head", 4, 0);
    PwriteAll(fd.get(), "tail", 4, (64 << 20) - 4);
  }
  WriteFile(root + "/modes/m600", "x", 0600);
  WriteFile(root + "/modes/m4755", "x", 0755);
  chmod((root + "/modes/m4755").c_str(), 04755);
  chmod((root + "/modes").c_str(), 01777);
  WriteFile(root + "/modes/owned", "x");
  chown((root + "/modes/owned").c_str(), 1234, 5678);
  symlink("a/small", (root + "/link").c_str());
  symlink("/absolute/dangling", (root + "/a/dangling").c_str());
  lchown((root + "/a/dangling").c_str(), 99, 98);
  link((root + "/a/small").c_str(), (root + "/a/b/hardlink").c_str());
  mknod((root + "/fifo").c_str(), S_IFIFO | 0640, 0);
  mknod((root + "/chr").c_str(), S_IFCHR | 0600, makedev(4, 5));
  setxattr((root + "/a/small").c_str(), "user.one", "1", 1, 0);
  setxattr((root + "/a/small").c_str(), "user.bin", "\0\1\2", 3, 0);
  setxattr((root + "/a").c_str(), "user.dir", "dir-attr", 8, 0);
  struct timespec ts[2] = {{1500000000, 111}, {1600000000, 222222222}};
  utimensat(AT_FDCWD, (root + "/a/b/page").c_str(), ts, 0);
  utimensat(AT_FDCWD, (root + "/a/b").c_str(), ts, 0);
  utimensat(AT_FDCWD, (root + "/link").c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

TEST_F(DurabilityTest, TreeIdenticalAfterRemount) {
  BuildTree(mnt());
  const TreeSnapshot before = SnapshotTree(mnt());
  ASSERT_GT(before.size(), 15u);
  Remount();
  const TreeSnapshot after = SnapshotTree(mnt());
  EXPECT_EQ(DiffSnapshots(before, after), "");
  Remount("noatime");
  EXPECT_EQ(DiffSnapshots(before, SnapshotTree(mnt())), "") << "after a second remount";
}

TEST_F(DurabilityTest, FsyncedDataSurvivesKill9) {
  const std::string synced = Path("dir/synced"), lost_ok = Path("dir/unsynced");
  ASSERT_SYS_OK(mkdir(Path("dir").c_str(), 0755));
  std::vector<std::string> blocks;
  {
    UniqueFd fd = Open(synced, O_CREAT | O_WRONLY);
    for (int i = 0; i < 8; ++i) {
      blocks.push_back(MakeBlock(30, i, 1 << 20));
      PwriteAll(fd.get(), blocks.back().data(), blocks.back().size(), off_t{i} << 20);
    }
    PwriteAll(fd.get(), "odd tail", 8, 8 << 20);
    ASSERT_SYS_OK(fsync(fd.get()));
  }
  Fsync(Path("dir"));
  Fsync(mnt());
  {
    // An overwrite of a synced range that is itself synced must win...
    UniqueFd fd = Open(synced, O_WRONLY);
    blocks[3] = MakeBlock(31, 3, 1 << 20);
    PwriteAll(fd.get(), blocks[3].data(), blocks[3].size(), 3 << 20);
    ASSERT_SYS_OK(fdatasync(fd.get()));
  }
  // ...and unsynced work in flight may be lost but must not corrupt anything.
  WriteFile(lost_ok, MakeBlock(32, 0, 2 << 20));

  KillDaemon9();
  EXPECT_FALSE(IsMounted(mnt()));
  ExpectFsckClean("right after kill -9 (before any replay)");
  Mount();

  struct stat st = Stat(synced);
  EXPECT_EQ(st.st_size, (8 << 20) + 8);
  UniqueFd fd = Open(synced, O_RDONLY);
  std::string got(1 << 20, '\0');
  for (int i = 0; i < 8; ++i) {
    PreadExact(fd.get(), got.data(), got.size(), off_t{i} << 20);
    EXPECT_EQ(FirstDifference(got, blocks[i]), -1) << "fsync'd block " << i << " after kill -9";
  }
  char tail[8];
  PreadExact(fd.get(), tail, 8, 8 << 20);
  EXPECT_EQ(std::string(tail, 8), "odd tail");
  if (Exists(lost_ok)) {
    // Whatever survived of the unsynced file is a prefix of what was written
    // or zeros, never foreign data.
    const std::string back = ReadFile(lost_ok);
    const std::string written = MakeBlock(32, 0, 2 << 20);
    for (size_t i = 0; i < back.size(); i += 4096) {
      const std::string_view b(back.data() + i, std::min<size_t>(4096, back.size() - i));
      const bool zeros = b.find_first_not_of('\0') == std::string_view::npos;
      EXPECT_TRUE(zeros || b == std::string_view(written).substr(i, b.size()))
          << "unsynced file holds foreign data at " << i;
      if (!(zeros || b == std::string_view(written).substr(i, b.size()))) break;
    }
  }
  // The store is writable again.
  WriteFile(Path("after"), "ok");
  fd.Close();
  Remount();
  EXPECT_EQ(ReadFile(Path("after")), "ok");
}

TEST_F(EnospcTest, WriteUntilEnospcKeepsAcknowledgedData) {
  // A few small files first: they must survive the full store too.
  for (int i = 0; i < 5; ++i) WriteFile(Path("small" + std::to_string(i)), MakeBlock(40, i, 5000));
  Fsync(mnt());

  const std::string f = Path("filler");
  constexpr size_t kChunk = 256 << 10;
  UniqueFd fd = Open(f, O_CREAT | O_WRONLY);
  size_t acked = 0;  // bytes write() reported as written
  int err = 0;
  std::string chunk(kChunk, '\0');
  for (size_t i = 0;; ++i) {
    ASSERT_LT(acked, size_t{128} << 20) << "a 64 MiB store accepted 128 MiB without ENOSPC";
    FillBlock(41, i, chunk);
    ssize_t n = write(fd.get(), chunk.data(), chunk.size());
    if (n < 0) {
      err = errno;
      break;
    }
    acked += n;
    if (static_cast<size_t>(n) < chunk.size()) {  // short write: the next one must fail
      n = write(fd.get(), chunk.data() + n, chunk.size() - n);
      ASSERT_EQ(n, -1) << "write after a short write succeeded";
      err = errno;
      break;
    }
    if (i % 16 == 15) {
      ASSERT_SYS_OK(fsync(fd.get()));
    }
  }
  EXPECT_EQ(err, ENOSPC) << "write failed with " << strerrorname_np(err) << " after " << acked << " bytes";
  EXPECT_GT(acked, size_t{32} << 20) << "a 64 MiB store filled up after only " << acked << " bytes";
  EXPECT_SYS_OK(fsync(fd.get())) << "fsync after ENOSPC lost acknowledged data";
  EXPECT_EQ(fd.Close(), 0) << "close after ENOSPC: " << strerror(errno);
  EXPECT_EQ(static_cast<size_t>(Stat(f).st_size), acked);
  struct statvfs vfs{};
  ASSERT_SYS_OK(statvfs(mnt().c_str(), &vfs));
  EXPECT_LT(vfs.f_bavail * vfs.f_frsize, kChunk) << "ENOSPC while statfs reports free space";
  // Metadata-only operations still work on a full store.
  EXPECT_SYS_OK(mkdir(Path("dir-on-full-store").c_str(), 0755));

  auto verify = [&](const char* when) {
    SCOPED_TRACE(when);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(ReadFile(Path("small" + std::to_string(i))), MakeBlock(40, i, 5000)) << "small" << i;
    }
    UniqueFd in = Open(f, O_RDONLY);
    ASSERT_EQ(static_cast<size_t>(Stat(f).st_size), acked);
    std::string got(kChunk, '\0');
    for (size_t off = 0, i = 0; off < acked; off += kChunk, ++i) {
      const size_t len = std::min(kChunk, acked - off);
      FillBlock(41, i, chunk);
      got.resize(len);
      PreadExact(in.get(), got.data(), len, off);
      const long d = FirstDifference(got, std::string_view(chunk).substr(0, len));
      ASSERT_EQ(d, -1) << "acknowledged data differs at offset " << off + d;
    }
  };
  verify("before remount");
  Remount();
  verify("after remount");

  // Deleting the file gives the space back (possibly in the background).
  ASSERT_SYS_OK(unlink(f.c_str()));
  Fsync(mnt());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  bool wrote = false;
  while (!wrote && std::chrono::steady_clock::now() < deadline) {
    UniqueFd again = Open(Path("again"), O_CREAT | O_WRONLY | O_TRUNC);
    FillBlock(42, 0, chunk);
    wrote = write(again.get(), chunk.data(), chunk.size()) == static_cast<ssize_t>(chunk.size()) &&
            fsync(again.get()) == 0;
    if (!wrote) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(wrote) << "space of an unlinked file did not come back within 15 s";
}

// Space of a deleted file is free at once, as a user who deletes to make room
// expects: no ENOSPC and no stale statfs while its deallocation is deferred.
TEST_F(EnospcTest, SpaceOfAnUnlinkedFileIsBackAtOnce) {
  constexpr size_t kChunk = 1 << 20;
  std::string chunk(kChunk, '\0');
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string f = Path("fill" + std::to_string(round));
    size_t filled = 0;
    {
      UniqueFd fd = Open(f, O_CREAT | O_WRONLY);
      for (size_t i = 0;; ++i) {
        ASSERT_LT(filled, size_t{128} << 20) << "no ENOSPC from a 64 MiB store";
        FillBlock(43, i, chunk);
        const ssize_t n = write(fd.get(), chunk.data(), chunk.size());
        if (n <= 0) {
          ASSERT_EQ(errno, ENOSPC);
          break;
        }
        filled += static_cast<size_t>(n);
      }
      ASSERT_GT(filled, size_t{32} << 20);
    }
    ASSERT_SYS_OK(unlink(f.c_str()));

    struct statvfs vfs{};
    ASSERT_SYS_OK(statvfs(mnt().c_str(), &vfs));
    EXPECT_GE(vfs.f_bavail * vfs.f_frsize, filled - kChunk) << "statfs right after the unlink";
    UniqueFd again = Open(Path("again"), O_CREAT | O_WRONLY | O_TRUNC);
    FillBlock(44, round, chunk);
    ASSERT_EQ(write(again.get(), chunk.data(), chunk.size()), static_cast<ssize_t>(kChunk))
        << "write right after the unlink: " << strerror(errno);
    ASSERT_SYS_OK(fsync(again.get()));
  }
}

// A write that fails with ENOSPC partway leaves none of its bytes past the end
// of file: a later extension reads zeros.
TEST_F(EnospcTest, FailedAppendLeavesNothingPastEndOfFile) {
  const std::string f = Path("small");
  WriteFile(f, std::string(4000, 'A'));
  {
    UniqueFd filler = Open(Path("filler"), O_CREAT | O_WRONLY);
    std::string chunk(1 << 20, 'F');
    off_t filled = 0;
    for (ssize_t n; (n = write(filler.get(), chunk.data(), chunk.size())) > 0;) filled += n;
    ASSERT_EQ(errno, ENOSPC);
    // Room for part of the append only: some of its pages fill, then ENOSPC.
    ASSERT_SYS_OK(ftruncate(filler.get(), filled - (256 << 10)));
  }
  off_t eof = 0;
  {
    UniqueFd fd = Open(f, O_WRONLY | O_APPEND);
    const std::string big(4 << 20, 'B');
    while (write(fd.get(), big.data(), big.size()) > 0) {  // short writes until ENOSPC
    }
    ASSERT_EQ(errno, ENOSPC);
    eof = Stat(f).st_size;
    ASSERT_SYS_OK(unlink(Path("filler").c_str()));
    ASSERT_SYS_OK(ftruncate(fd.get(), eof + (1 << 20)));
    ASSERT_SYS_OK(fsync(fd.get()));
  }
  for (int pass = 0; pass < 2; ++pass) {
    const std::string got = ReadFile(f);
    ASSERT_EQ(got.size(), static_cast<size_t>(eof) + (1 << 20));
    EXPECT_EQ(std::count(got.begin() + eof, got.end(), 'B'), 0)
        << "bytes of the failed append came back past the old end of file (pass " << pass << ")";
    if (pass == 0) Remount();
  }
}

// Bytes past the end of file on disk are not guaranteed to be zero (a shrink
// whose zeroing was lost in a crash, a write that failed halfway). Growing
// the file must expose zeros there, never old data.
TEST_F(DurabilityTest, GrowingAFileNeverExposesOldBytes) {
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string f = Path("grow" + std::to_string(round));
    {
      UniqueFd fd = Open(f, O_CREAT | O_WRONLY);
      const std::string a(8192, 'A');
      PwriteAll(fd.get(), a.data(), a.size(), 0);
      ASSERT_SYS_OK(fsync(fd.get()));
      ASSERT_SYS_OK(ftruncate(fd.get(), 1000));  // not synced: its zeroing may be lost
    }
    KillDaemon9();
    Mount();
    const off_t size_after_kill = Stat(f).st_size;
    ASSERT_TRUE(size_after_kill == 1000 || size_after_kill == 8192) << size_after_kill;
    if (size_after_kill != 1000) continue;
    {
      UniqueFd fd = Open(f, O_WRONLY);
      switch (round) {
        case 0: ASSERT_SYS_OK(ftruncate(fd.get(), 8192)); break;              // truncate up
        case 1: PwriteAll(fd.get(), "z", 1, 8191); break;                       // write past EOF
        case 2: ASSERT_SYS_OK(fallocate(fd.get(), 0, 0, 8192)); break;         // preallocate past EOF
      }
      ASSERT_SYS_OK(fsync(fd.get()));
    }
    for (int pass = 0; pass < 2; ++pass) {
      const std::string got = ReadFile(f);
      ASSERT_EQ(got.size(), 8192u);
      EXPECT_EQ(got.substr(0, 1000), std::string(1000, 'A'));
      const size_t stale = std::count(got.begin() + 1000, got.begin() + 8191, 'A');
      EXPECT_EQ(stale, 0u) << "old bytes past the old end of file came back (pass " << pass << ")";
      if (pass == 0) Remount();
    }
  }
}

}  // namespace
}  // namespace reclaimfs::itest

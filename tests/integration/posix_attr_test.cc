// POSIX attributes on a mounted reclaimfs: stat fields, chmod/chown,
// utimensat with nanoseconds / UTIME_NOW / UTIME_OMIT, atime/mtime/ctime
// semantics (relatime and noatime), access(2) and statfs figures.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

class PosixAttrTest : public ReclaimfsTest {};

int64_t NowNanos() {
  struct timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return Nanos(ts);
}

constexpr int64_t kSecond = 1'000'000'000;

// Lets the clock move so a timestamp that must change visibly does.
void Tick() { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }

TEST_F(PosixAttrTest, StatFields) {
  const int64_t t0 = NowNanos();
  const std::string f = Path("f");
  WriteFile(f, std::string(3000, 'x'), 0640);
  Fsync(f);
  const int64_t t1 = NowNanos();
  struct stat st = Stat(f);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(st.st_size, 3000);
  EXPECT_EQ(st.st_rdev, 0u);
  EXPECT_GT(st.st_blksize, 0);
  EXPECT_GE(st.st_blocks * 512, 3000) << "st_blocks after fsync";
  EXPECT_NE(st.st_ino, 0u);
  EXPECT_EQ(st.st_dev, Stat(mnt()).st_dev);
  for (int64_t t : {Nanos(st.st_mtim), Nanos(st.st_ctim), Nanos(st.st_atim)}) {
    EXPECT_GE(t, t0 - kSecond);
    EXPECT_LE(t, t1 + kSecond);
  }

  WriteFile(Path("g"), "");
  EXPECT_NE(Stat(Path("g")).st_ino, st.st_ino) << "two files share an inode number";
  EXPECT_EQ(Stat(f).st_ino, st.st_ino) << "inode number not stable";
  EXPECT_EQ(Stat(Path("g")).st_size, 0);

  UniqueFd fd = Open(f, O_RDONLY);
  struct stat fst{};
  ASSERT_SYS_OK(fstat(fd.get(), &fst));
  EXPECT_EQ(fst.st_ino, st.st_ino);
  EXPECT_EQ(fst.st_size, st.st_size);
  EXPECT_EQ(Nanos(fst.st_mtim), Nanos(st.st_mtim));

  struct stat root = Stat(mnt());
  EXPECT_TRUE(S_ISDIR(root.st_mode));
  EXPECT_GE(root.st_nlink, 2u);
  EXPECT_ERRNO(ENOENT, stat(Path("missing").c_str(), &st));
}

TEST_F(PosixAttrTest, ChmodAndChown) {
  const std::string f = Path("f");
  WriteFile(f, "data");
  const int64_t ctime0 = Nanos(Stat(f).st_ctim);
  Tick();
  ASSERT_SYS_OK(chmod(f.c_str(), 0600));
  struct stat st = Stat(f);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_TRUE(S_ISREG(st.st_mode)) << "chmod changed the file type";
  EXPECT_GT(Nanos(st.st_ctim), ctime0);
  ASSERT_SYS_OK(chmod(f.c_str(), 07755));
  EXPECT_EQ(Stat(f).st_mode & 07777, 07755u);
  {
    UniqueFd fd = Open(f, O_RDONLY);
    ASSERT_SYS_OK(fchmod(fd.get(), 0444));
  }
  EXPECT_EQ(Stat(f).st_mode & 07777, 0444u);

  ASSERT_SYS_OK(chown(f.c_str(), 1234, 5678));
  st = Stat(f);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  ASSERT_SYS_OK(chown(f.c_str(), static_cast<uid_t>(-1), 42));
  st = Stat(f);
  EXPECT_EQ(st.st_uid, 1234u) << "chown(-1, gid) changed the owner";
  EXPECT_EQ(st.st_gid, 42u);

  // chown clears set-id bits of a regular file; the kernel sends the mode
  // change together with the owner change.
  ASSERT_SYS_OK(chmod(f.c_str(), 06755));
  ASSERT_SYS_OK(chown(f.c_str(), 1, 1));
  st = Stat(f);
  EXPECT_EQ(st.st_mode & 07777, 0755u) << "set-id bits survive chown";
  EXPECT_EQ(st.st_uid, 1u);

  // lchown changes the link, not its target.
  ASSERT_SYS_OK(symlink("f", Path("l").c_str()));
  ASSERT_SYS_OK(lchown(Path("l").c_str(), 77, 88));
  EXPECT_EQ(Lstat(Path("l")).st_uid, 77u);
  EXPECT_EQ(Stat(f).st_uid, 1u);

  EXPECT_ERRNO(ENOENT, chmod(Path("missing").c_str(), 0644));
  EXPECT_ERRNO(ENOENT, chown(Path("missing").c_str(), 0, 0));
}

TEST_F(PosixAttrTest, UtimensatNanosecondsNowAndOmit) {
  const std::string f = Path("f");
  WriteFile(f, "x");
  struct timespec ts[2] = {{1234567890, 123456789}, {1000000000, 987654321}};
  const int64_t before = NowNanos();
  ASSERT_SYS_OK(utimensat(AT_FDCWD, f.c_str(), ts, 0));
  struct stat st = Stat(f);
  EXPECT_EQ(Nanos(st.st_atim), Nanos(ts[0]));
  EXPECT_EQ(Nanos(st.st_mtim), Nanos(ts[1]));
  EXPECT_GE(Nanos(st.st_ctim), before - kSecond) << "utimensat must set ctime to now";
  const int64_t ctime1 = Nanos(st.st_ctim);

  // UTIME_NOW for atime, UTIME_OMIT keeps mtime.
  Tick();
  struct timespec now_omit[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  const int64_t t0 = NowNanos();
  ASSERT_SYS_OK(utimensat(AT_FDCWD, f.c_str(), now_omit, 0));
  const int64_t t1 = NowNanos();
  st = Stat(f);
  EXPECT_GE(Nanos(st.st_atim), t0 - kSecond);
  EXPECT_LE(Nanos(st.st_atim), t1 + kSecond);
  EXPECT_EQ(Nanos(st.st_mtim), Nanos(ts[1])) << "UTIME_OMIT changed mtime";
  EXPECT_GT(Nanos(st.st_ctim), ctime1);

  // UTIME_OMIT for atime, explicit mtime through futimens.
  struct timespec omit_set[2] = {{0, UTIME_OMIT}, {2000000000, 1}};
  const int64_t atime2 = Nanos(st.st_atim);
  {
    UniqueFd fd = Open(f, O_WRONLY);
    ASSERT_SYS_OK(futimens(fd.get(), omit_set));
  }
  st = Stat(f);
  EXPECT_EQ(Nanos(st.st_atim), atime2);
  EXPECT_EQ(Nanos(st.st_mtim), 2000000000LL * kSecond + 1);

  // Both UTIME_NOW (times == NULL).
  Tick();
  ASSERT_SYS_OK(utimensat(AT_FDCWD, f.c_str(), nullptr, 0));
  st = Stat(f);
  EXPECT_GE(Nanos(st.st_mtim), t1);
  EXPECT_GE(Nanos(st.st_atim), t1);

  // On a symlink itself, leaving the target alone.
  ASSERT_SYS_OK(symlink("f", Path("l").c_str()));
  const int64_t target_mtime = Nanos(Stat(f).st_mtim);
  ASSERT_SYS_OK(utimensat(AT_FDCWD, Path("l").c_str(), ts, AT_SYMLINK_NOFOLLOW));
  EXPECT_EQ(Nanos(Lstat(Path("l")).st_mtim), Nanos(ts[1]));
  EXPECT_EQ(Nanos(Stat(f).st_mtim), target_mtime);
}

TEST_F(PosixAttrTest, WriteBumpsMtimeAndCtimeChmodOnlyCtime) {
  const std::string f = Path("f");
  WriteFile(f, "abc");
  struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_SYS_OK(utimensat(AT_FDCWD, f.c_str(), old, 0));
  struct stat st0 = Stat(f);
  Tick();
  {
    UniqueFd fd = Open(f, O_WRONLY);
    ASSERT_EQ(pwrite(fd.get(), "z", 1, 1), 1);
  }
  struct stat st1 = Stat(f);
  EXPECT_GT(Nanos(st1.st_mtim), Nanos(st0.st_mtim)) << "write did not bump mtime";
  EXPECT_GT(Nanos(st1.st_ctim), Nanos(st0.st_ctim)) << "write did not bump ctime";

  Tick();
  ASSERT_SYS_OK(chmod(f.c_str(), 0600));
  struct stat st2 = Stat(f);
  EXPECT_EQ(Nanos(st2.st_mtim), Nanos(st1.st_mtim)) << "chmod changed mtime";
  EXPECT_GT(Nanos(st2.st_ctim), Nanos(st1.st_ctim)) << "chmod did not bump ctime";

  Tick();
  ASSERT_SYS_OK(truncate(f.c_str(), 1));
  struct stat st3 = Stat(f);
  EXPECT_GT(Nanos(st3.st_mtim), Nanos(st2.st_mtim)) << "truncate did not bump mtime";
  EXPECT_GT(Nanos(st3.st_ctim), Nanos(st2.st_ctim)) << "truncate did not bump ctime";

  // Creating an entry bumps the directory's mtime and ctime.
  ASSERT_SYS_OK(mkdir(Path("d").c_str(), 0755));
  struct stat d0 = Stat(Path("d"));
  Tick();
  WriteFile(Path("d/child"), "");
  struct stat d1 = Stat(Path("d"));
  EXPECT_GT(Nanos(d1.st_mtim), Nanos(d0.st_mtim)) << "create did not bump the parent's mtime";
  EXPECT_GT(Nanos(d1.st_ctim), Nanos(d0.st_ctim));
  Tick();
  ASSERT_SYS_OK(unlink(Path("d/child").c_str()));
  EXPECT_GT(Nanos(Stat(Path("d")).st_mtim), Nanos(d1.st_mtim)) << "unlink did not bump the parent's mtime";
}

// There is no strictatime option in the contract. relatime must update an
// atime that is older than mtime/ctime and leave a fresh one alone; noatime
// must never update it.
TEST_F(PosixAttrTest, ReadUpdatesAtimeUnlessNoatime) {
  const std::string f = Path("f");
  WriteFile(f, "some data");
  const int64_t old_ns = 1000000000LL * kSecond;
  struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};

  Remount("relatime");
  ASSERT_SYS_OK(utimensat(AT_FDCWD, f.c_str(), old, 0));
  const int64_t t0 = NowNanos();
  EXPECT_EQ(ReadFile(f), "some data");
  struct stat st = Stat(f);
  EXPECT_GE(Nanos(st.st_atim), t0 - kSecond) << "read did not update an old atime (relatime)";
  EXPECT_EQ(Nanos(st.st_mtim), old_ns) << "read changed mtime";
  Tick();
  EXPECT_EQ(ReadFile(f), "some data");
  EXPECT_EQ(Nanos(Stat(f).st_atim), Nanos(st.st_atim))
      << "relatime updated an atime newer than mtime and ctime";

  Remount("noatime");
  ASSERT_SYS_OK(utimensat(AT_FDCWD, f.c_str(), old, 0));
  EXPECT_EQ(ReadFile(f), "some data");
  EXPECT_EQ(Nanos(Stat(f).st_atim), old_ns) << "read updated atime under noatime";
  Remount("noatime");
  EXPECT_EQ(Nanos(Stat(f).st_atim), old_ns) << "atime changed across remount under noatime";
}

TEST_F(PosixAttrTest, AccessAsRoot) {
  WriteFile(Path("plain"), "x", 0644);
  WriteFile(Path("exec"), "x", 0744);
  EXPECT_SYS_OK(access(Path("plain").c_str(), F_OK));
  EXPECT_SYS_OK(access(Path("plain").c_str(), R_OK | W_OK));
  EXPECT_ERRNO(EACCES, access(Path("plain").c_str(), X_OK)) << "root may exec only with an x bit";
  EXPECT_SYS_OK(access(Path("exec").c_str(), X_OK));
  EXPECT_ERRNO(ENOENT, access(Path("missing").c_str(), F_OK));
  ASSERT_SYS_OK(mkdir(Path("d").c_str(), 0));
  EXPECT_SYS_OK(access(Path("d").c_str(), R_OK | W_OK | X_OK)) << "root may search any directory";
}

TEST_F(PosixAttrTest, StatfsFigures) {
  struct statvfs s0{};
  ASSERT_SYS_OK(statvfs(mnt().c_str(), &s0));
  ASSERT_GT(s0.f_frsize, 0u);
  EXPECT_EQ(uint64_t{s0.f_blocks} * s0.f_frsize, 2ull << 30) << "f_blocks does not match mkfs --size 2G";
  EXPECT_LE(s0.f_bfree, s0.f_blocks);
  EXPECT_LE(s0.f_bavail, s0.f_bfree);
  EXPECT_EQ(s0.f_namemax, 255u);

  const size_t kBytes = 16 << 20;
  const std::string f = Path("fill");
  {
    UniqueFd fd = Open(f, O_CREAT | O_WRONLY);
    const std::string chunk = MakeBlock(5, 0, 1 << 20);
    for (size_t off = 0; off < kBytes; off += chunk.size()) PwriteAll(fd.get(), chunk.data(), chunk.size(), off);
    ASSERT_SYS_OK(fsync(fd.get()));
  }
  struct statvfs s1{};
  ASSERT_SYS_OK(statvfs(mnt().c_str(), &s1));
  EXPECT_EQ(s1.f_blocks, s0.f_blocks);
  EXPECT_GE(s0.f_bfree - s1.f_bfree, kBytes / s0.f_frsize) << "f_bfree did not drop by the data written";

  // Space comes back after unlink (freeing may run in the background).
  ASSERT_SYS_OK(unlink(f.c_str()));
  Fsync(mnt());
  struct statvfs s2{};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  do {
    ASSERT_SYS_OK(statvfs(mnt().c_str(), &s2));
    if (s2.f_bfree + 64 >= s0.f_bfree) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_GE(s2.f_bfree + 64, s0.f_bfree) << "blocks of an unlinked file not freed within 15 s";
}

}  // namespace
}  // namespace reclaimfs::itest

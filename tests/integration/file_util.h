// File helpers for tests that drive a mounted reclaimfs through real
// syscalls: an owning fd, whole-file read/write that throw on error, errno
// assertions, deterministic block contents and checksums, directory listings
// and a comparable snapshot of a tree.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "gtest/gtest.h"

// Errno assertions that accept streamed messages, like gtest's:
//   EXPECT_ERRNO(ENOENT, open(path, O_RDONLY)) << "context";
//   EXPECT_SYS_OK(mkdir(path, 0755));   ASSERT_SYS_OK(...);
#define ITEST_SYSCALL_(call) \
  const ::reclaimfs::itest::SysResult itest_r_{(errno = 0, static_cast<long>(call)), errno}
#define EXPECT_ERRNO(err, call)                                         \
  GTEST_AMBIGUOUS_ELSE_BLOCKER_                                         \
  if (ITEST_SYSCALL_(call); itest_r_.FailedWith(err)) {                 \
  } else                                                                \
    ADD_FAILURE() << #call << ": " << itest_r_.Describe(err) << " "
#define EXPECT_SYS_OK(call)                                             \
  GTEST_AMBIGUOUS_ELSE_BLOCKER_                                         \
  if (ITEST_SYSCALL_(call); itest_r_.ok()) {                            \
  } else                                                                \
    ADD_FAILURE() << #call << ": " << itest_r_.Describe(0) << " "
#define ASSERT_SYS_OK(call)                                             \
  GTEST_AMBIGUOUS_ELSE_BLOCKER_                                         \
  if (ITEST_SYSCALL_(call); itest_r_.ok()) {                            \
  } else                                                                \
    FAIL() << #call << ": " << itest_r_.Describe(0) << " "

namespace reclaimfs::itest {

// A syscall's return value and the errno right after it.
struct SysResult {
  long ret;
  int err;
  bool ok() const { return ret != -1; }
  bool FailedWith(int e) const { return ret == -1 && err == e; }
  // "succeeded, expected ENOENT" / "failed with EACCES (Permission denied)".
  std::string Describe(int expected) const;
};

// Throws std::system_error naming the operation and the path.
[[noreturn]] void ThrowErrno(const std::string& what, const std::string& path);

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  ~UniqueFd();
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int Close();  // close(2)'s result; the fd is gone either way

 private:
  int fd_ = -1;
};

UniqueFd Open(const std::string& path, int flags, mode_t mode = 0644);  // throws

void PwriteAll(int fd, const void* data, size_t len, off_t off);  // throws
void PreadExact(int fd, void* data, size_t len, off_t off);       // throws, short read too
std::string ReadAt(int fd, size_t len, off_t off);                  // up to len bytes; short only at EOF
void WriteFile(const std::string& path, std::string_view data, mode_t mode = 0644);
std::string ReadFile(const std::string& path);
void Fsync(const std::string& path);  // fsync of a file or directory

struct stat Stat(const std::string& path);
struct stat Lstat(const std::string& path);
bool Exists(const std::string& path);  // lstat succeeds

// Names in a directory, without "." and "..", in readdir order.
std::vector<std::string> ListDir(const std::string& path);

// Deterministic pseudo-random contents of block `index` of stream `seed`.
void FillBlock(uint64_t seed, uint64_t index, std::span<char> out);
std::string MakeBlock(uint64_t seed, uint64_t index, size_t len);
uint64_t Checksum(std::span<const char> data, uint64_t h = 0xcbf29ce484222325ull);
// Checksum chained over the file in 1 MiB units (same as chaining Checksum
// over 1 MiB blocks in order).
uint64_t FileChecksum(const std::string& path);

// Index of the first differing byte, or -1.
long FirstDifference(std::span<const char> a, std::span<const char> b);

int64_t Nanos(const struct timespec& ts);

// What a tree looks like: per path (relative to the root), the fields a
// filesystem must keep across remount.
struct NodeSnapshot {
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  nlink_t nlink = 0;
  off_t size = 0;
  ino_t ino = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  dev_t rdev = 0;
  std::string symlink;
  uint64_t content = 0;  // checksum of regular files
  std::map<std::string, std::string> xattrs;
  bool operator==(const NodeSnapshot&) const = default;
};
struct SnapshotOptions {
  bool content = true;
  bool xattrs = true;
  bool ino_and_ctime = true;  // a store directory's ctime is not ours to compare
};
using TreeSnapshot = std::map<std::string, NodeSnapshot>;
TreeSnapshot SnapshotTree(const std::string& root, SnapshotOptions options = {});
// Human-readable differences (empty when equal).
std::string DiffSnapshots(const TreeSnapshot& before, const TreeSnapshot& after);

}  // namespace reclaimfs::itest

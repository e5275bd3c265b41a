// Tests of the POSIX layer (fs/posix/filesystem.h) on a real store in a scratch
// directory, driving Filesystem directly: namespace operations and their
// errors, lookup counts, readdir offsets, rename, permissions, times,
// persistence, orphans, the inode cache and its shrinker, the eviction retry
// queue, xattrs, statfs, large sparse files and read-only mounts.
#include "fs/posix/filesystem.h"

#include <cstdio>  // RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fs/cache/errno_status.h"
#include "gtest/gtest.h"
#include "storage/allocator.h"
#include "storage/meta_store.h"
#include "store_fixture.h"

namespace reclaimfs::fs {
namespace {

using namespace std::chrono_literals;

absl::Status StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

#define FS_CONCAT_INNER(a, b) a##b
#define FS_CONCAT(a, b) FS_CONCAT_INNER(a, b)
#define ASSERT_OK(expr)                                      \
  do {                                                       \
    const absl::Status s_ = StatusOf(expr);                  \
    ASSERT_TRUE(s_.ok()) << #expr << ": " << s_.ToString();  \
  } while (0)
#define EXPECT_OK(expr)                                      \
  do {                                                       \
    const absl::Status s_ = StatusOf(expr);                  \
    EXPECT_TRUE(s_.ok()) << #expr << ": " << s_.ToString();  \
  } while (0)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) ASSERT_OK_AND_ASSIGN_IMPL(FS_CONCAT(so_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr)                           \
  auto tmp = (expr);                                                        \
  ASSERT_TRUE(tmp.ok()) << #expr << ": " << tmp.status().ToString();        \
  lhs = std::move(*tmp)
#define EXPECT_ERRNO(expr, err) EXPECT_EQ(ToErrno(StatusOf(expr)), (err)) << #expr

constexpr uint64_t kRoot = 1;
constexpr uint64_t kTiB = 1ull << 40;

uint64_t DivUpPages(uint64_t bytes) { return (bytes + 4095) / 4096; }

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

SetAttrRequest ModeReq(uint32_t mode) {
  SetAttrRequest r;
  r.mode = mode;
  return r;
}
SetAttrRequest SizeReq(uint64_t size) {
  SetAttrRequest r;
  r.size = size;
  return r;
}
SetAttrRequest UidReq(uint32_t uid) {
  SetAttrRequest r;
  r.uid = uid;
  return r;
}
SetAttrRequest GidReq(uint32_t gid) {
  SetAttrRequest r;
  r.gid = gid;
  return r;
}
SetAttrRequest OwnerReq(uint32_t uid, uint32_t gid) {
  SetAttrRequest r;
  r.uid = uid;
  r.gid = gid;
  return r;
}

int Cmp(const storage::Timespec& a, const storage::Timespec& b) {
  if (a.sec != b.sec) return a.sec < b.sec ? -1 : 1;
  if (a.nsec != b.nsec) return a.nsec < b.nsec ? -1 : 1;
  return 0;
}

class FilesystemTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    user_.uid = 1000;
    user_.gid = 1000;
    user_.umask = 0;
    other_.uid = 1001;
    other_.gid = 1001;
    other_.umask = 0;
    root_.umask = 0;
    Mount();
  }

  // Creates a regular file (closing it); the lookup reference stays.
  Attributes MakeFile(uint64_t parent, const std::string& name, uint32_t mode = 0644,
                      const RequestContext* ctx = nullptr) {
    auto r = fs_->Create(ctx ? *ctx : root_, parent, name, mode, O_CREAT | O_EXCL | O_RDWR);
    EXPECT_TRUE(r.ok()) << name << ": " << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_OK(fs_->Release(r->first.ino, r->second.fh));
    return r->first;
  }

  Attributes MakeDir(uint64_t parent, const std::string& name, uint32_t mode = 0755,
                     const RequestContext* ctx = nullptr) {
    auto r = fs_->Mkdir(ctx ? *ctx : root_, parent, name, mode);
    EXPECT_TRUE(r.ok()) << name << ": " << r.status().ToString();
    return r.ok() ? *r : Attributes();
  }

  Attributes Attr(uint64_t ino) {
    auto r = fs_->GetAttr(ino);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : Attributes();
  }

  // Names in the directory (without "." and ".."), in readdir order.
  std::vector<std::string> List(uint64_t dir) {
    std::vector<std::string> names;
    auto fh = fs_->OpenDir(root_, dir, O_RDONLY);
    EXPECT_TRUE(fh.ok());
    EXPECT_OK(fs_->ReadDir(root_, dir, *fh, 0, false, [&](const DirListEntry& e) {
      if (e.name != "." && e.name != "..") names.push_back(e.name);
      return true;
    }));
    EXPECT_OK(fs_->ReleaseDir(dir, *fh));
    return names;
  }

  uint64_t Stat(const std::string& name) {
    std::istringstream in(fs_->StatsText());
    std::string key;
    uint64_t value;
    while (in >> key >> value) {
      if (key == name) return value;
    }
    ADD_FAILURE() << "no statistic " << name;
    return 0;
  }

  // Writes through a fresh handle and closes it.
  absl::Status WriteFile(uint64_t ino, uint64_t off, const std::string& data) {
    auto of = fs_->Open(root_, ino, O_WRONLY);
    if (!of.ok()) return of.status();
    auto n = fs_->Write(ino, of->fh, off, data.data(), data.size());
    absl::Status rs = fs_->Release(ino, of->fh);
    if (!n.ok()) return n.status();
    if (*n != data.size()) return absl::InternalError("short write");
    return rs;
  }

  absl::StatusOr<std::string> ReadFile(uint64_t ino, uint64_t off, size_t len) {
    auto of = fs_->Open(root_, ino, O_RDONLY);
    if (!of.ok()) return of.status();
    std::string buf(len, '\0');
    auto n = fs_->Read(ino, of->fh, off, len, buf.data());
    (void)fs_->Release(ino, of->fh);
    if (!n.ok()) return n.status();
    buf.resize(*n);
    return buf;
  }

  RequestContext root_, user_, other_;
};

// ---------------------------------------------------------------------------
// Mount

TEST_F(FilesystemTest, OpenRejectsMissingAndCorruptStores) {
  FilesystemOptions bad = options_;
  bad.store_dir = dir_ + "/nothing-here";
  auto r = Filesystem::Open(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nothing-here"), std::string_view::npos) << r.status().ToString();

  // A second mount of a mounted store is refused (the store is locked).
  FilesystemOptions again = options_;
  again.meta.lock_wait_ms = 0;
  EXPECT_FALSE(Filesystem::Open(again).ok());
}

TEST_F(FilesystemTest, OpenRejectsWrongFormatVersion) {
  ASSERT_OK(fs_->Shutdown());
  fs_.reset();
  {
    ASSERT_OK_AND_ASSIGN(auto meta, storage::MetaStore::Open(store_ + "/meta", storage::MetaOptions()));
    ASSERT_OK_AND_ASSIGN(storage::Superblock sb, meta->ReadSuperblock());
    sb.version = storage::kFormatVersion + 41;
    storage::MetaStore::Batch batch;
    batch.PutSuperblock(sb);
    ASSERT_OK(meta->Commit(batch, true));
  }
  auto r = Filesystem::Open(options_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(store_), std::string_view::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("version"), std::string_view::npos) << r.status().ToString();
}

TEST_F(FilesystemTest, RootAndShutdownIsIdempotent) {
  Attributes root = Attr(kRoot);
  EXPECT_TRUE(S_ISDIR(root.mode));
  EXPECT_EQ(root.nlink, 2u);
  EXPECT_OK(fs_->Shutdown());
  EXPECT_OK(fs_->Shutdown());
  fs_.reset();
  Mount();
  EXPECT_TRUE(S_ISDIR(Attr(kRoot).mode));
}

// ---------------------------------------------------------------------------
// Namespace basics and errors

TEST_F(FilesystemTest, CreateLookupAndErrors) {
  Attributes f = MakeFile(kRoot, "file");
  EXPECT_TRUE(S_ISREG(f.mode));
  EXPECT_EQ(f.nlink, 1u);
  EXPECT_EQ(f.size, 0u);
  ASSERT_OK_AND_ASSIGN(Attributes l, fs_->Lookup(root_, kRoot, "file"));
  EXPECT_EQ(l.ino, f.ino);

  EXPECT_ERRNO(fs_->Lookup(root_, kRoot, "missing"), ENOENT);
  EXPECT_ERRNO(fs_->Lookup(root_, f.ino, "x"), ENOTDIR);
  EXPECT_ERRNO(fs_->Create(root_, kRoot, "file", 0644, O_CREAT | O_EXCL | O_RDWR), EEXIST);
  EXPECT_ERRNO(fs_->Mkdir(root_, kRoot, "file", 0755), EEXIST);
  EXPECT_ERRNO(fs_->Mknod(root_, kRoot, "file", S_IFREG | 0644, 0), EEXIST);
  EXPECT_ERRNO(fs_->Mkdir(root_, kRoot, ".", 0755), EEXIST);
  EXPECT_ERRNO(fs_->Mkdir(root_, f.ino, "sub", 0755), ENOTDIR);
  EXPECT_ERRNO(fs_->Mkdir(root_, kRoot, "a/b", 0755), EINVAL);
  EXPECT_ERRNO(fs_->Mkdir(root_, kRoot, "", 0755), ENOENT);
  EXPECT_ERRNO(fs_->GetAttr(987654), ENOENT);

  // Create without O_EXCL of an existing file opens it.
  auto again = fs_->Create(root_, kRoot, "file", 0644, O_CREAT | O_RDWR);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->first.ino, f.ino);
  EXPECT_OK(fs_->Release(f.ino, again->second.fh));

  // "." and ".." resolve.
  Attributes d = MakeDir(kRoot, "d");
  ASSERT_OK_AND_ASSIGN(Attributes dot, fs_->Lookup(root_, d.ino, "."));
  EXPECT_EQ(dot.ino, d.ino);
  ASSERT_OK_AND_ASSIGN(Attributes dotdot, fs_->Lookup(root_, d.ino, ".."));
  EXPECT_EQ(dotdot.ino, kRoot);
}

TEST_F(FilesystemTest, NameTooLong) {
  const std::string ok(255, 'a');
  const std::string longer(256, 'b');
  MakeFile(kRoot, ok);
  ASSERT_OK(fs_->Lookup(root_, kRoot, ok));
  Attributes d = MakeDir(kRoot, "d");
  EXPECT_ERRNO(fs_->Lookup(root_, kRoot, longer), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Create(root_, kRoot, longer, 0644, O_CREAT | O_RDWR), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Mkdir(root_, kRoot, longer, 0755), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Mknod(root_, kRoot, longer, S_IFIFO | 0644, 0), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Symlink(root_, kRoot, longer, "t"), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Link(root_, d.ino, kRoot, longer), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Unlink(root_, kRoot, longer), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Rmdir(root_, kRoot, longer), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Rename(root_, kRoot, ok, kRoot, longer, 0), ENAMETOOLONG);
}

TEST_F(FilesystemTest, LookupCountsAndForget) {
  Attributes f = MakeFile(kRoot, "f");  // one reference from Create
  ASSERT_OK(fs_->Lookup(root_, kRoot, "f"));  // two
  ASSERT_OK(fs_->Unlink(root_, kRoot, "f"));
  // Still referenced by the kernel: the inode stays.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(Attr(f.ino).nlink, 0u);
  fs_->Forget(f.ino, 1);
  std::this_thread::sleep_for(50ms);
  ASSERT_OK(fs_->GetAttr(f.ino));
  EXPECT_EQ(Stat("inode_deallocations"), 0u);
  fs_->Forget(f.ino, 1);
  ASSERT_TRUE(WaitFor([&] { return Stat("inode_deallocations") == 1; }));
  EXPECT_ERRNO(fs_->GetAttr(f.ino), ENOENT);
  // Forgetting an unknown node is harmless.
  fs_->Forget(123456, 3);
}

TEST_F(FilesystemTest, LookupDotAndDotDotOfAnyNode) {
  // What the kernel asks when it decodes a file handle: "." of any node id
  // and ".." of a directory, for nodes it has no inode for (here: nothing
  // is cached after the remount).
  Attributes d = MakeDir(kRoot, "d");
  Attributes sub = MakeDir(d.ino, "sub");
  Attributes f = MakeFile(sub.ino, "f");
  Remount();
  ASSERT_OK_AND_ASSIGN(Attributes self, fs_->Lookup(root_, f.ino, "."));
  EXPECT_EQ(self.ino, f.ino);
  EXPECT_EQ(self.generation, f.generation);
  EXPECT_TRUE(S_ISREG(self.mode));
  ASSERT_OK_AND_ASSIGN(Attributes up, fs_->Lookup(root_, sub.ino, ".."));
  EXPECT_EQ(up.ino, d.ino);
  EXPECT_EQ(up.generation, d.generation);
  ASSERT_OK_AND_ASSIGN(Attributes top, fs_->Lookup(root_, kRoot, ".."));
  EXPECT_EQ(top.ino, kRoot);
  EXPECT_ERRNO(fs_->Lookup(root_, f.ino, ".."), ENOTDIR);
  EXPECT_ERRNO(fs_->Lookup(root_, 1u << 30, "."), ENOENT);
  fs_->Forget(d.ino, 1);
  fs_->Forget(kRoot, 1);

  // The "." lookup holds a reference like any lookup: the unlinked file
  // stays until it is forgotten; then "." of it is stale.
  ASSERT_OK(fs_->Unlink(root_, sub.ino, "f"));
  EXPECT_ERRNO(fs_->Lookup(root_, f.ino, "."), ENOENT);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(Stat("inode_deallocations"), 0u);
  fs_->Forget(f.ino, 1);
  ASSERT_TRUE(WaitFor([&] { return Stat("inode_deallocations") == 1; }));
  EXPECT_ERRNO(fs_->Lookup(root_, f.ino, "."), ENOENT);
  EXPECT_ERRNO(fs_->GetAttr(f.ino), ENOENT);
}

TEST_F(FilesystemTest, GenerationsStableAndNeverReused) {
  Attributes keep = MakeFile(kRoot, "keep");
  Attributes a = MakeFile(kRoot, "a");
  EXPECT_NE(keep.generation, a.generation);
  ASSERT_OK(fs_->Unlink(root_, kRoot, "a"));
  fs_->Forget(a.ino, 1);
  ASSERT_TRUE(WaitFor([&] { return Stat("inode_deallocations") == 1; }));
  Remount();
  EXPECT_EQ(Attr(keep.ino).generation, keep.generation);
  // The highest inode number was freed: the next file gets it again, and a
  // generation it never had.
  Attributes b = MakeFile(kRoot, "b");
  ASSERT_EQ(b.ino, a.ino);
  EXPECT_NE(b.generation, a.generation);
  EXPECT_NE(static_cast<uint32_t>(b.generation), static_cast<uint32_t>(a.generation));
  ASSERT_OK_AND_ASSIGN(Attributes looked, fs_->Lookup(root_, kRoot, "b"));
  EXPECT_EQ(looked.generation, b.generation);
  Remount();
  EXPECT_EQ(Attr(b.ino).generation, b.generation);
}

TEST_F(FilesystemTest, MknodTypes) {
  ASSERT_OK_AND_ASSIGN(Attributes fifo, fs_->Mknod(root_, kRoot, "fifo", S_IFIFO | 0640, 0));
  EXPECT_TRUE(S_ISFIFO(fifo.mode));
  ASSERT_OK_AND_ASSIGN(Attributes sock, fs_->Mknod(root_, kRoot, "sock", S_IFSOCK | 0640, 0));
  EXPECT_TRUE(S_ISSOCK(sock.mode));
  ASSERT_OK_AND_ASSIGN(Attributes chr, fs_->Mknod(root_, kRoot, "chr", S_IFCHR | 0600, makedev(1, 3)));
  EXPECT_TRUE(S_ISCHR(chr.mode));
  EXPECT_EQ(chr.rdev, makedev(1, 3));
  ASSERT_OK_AND_ASSIGN(Attributes blk, fs_->Mknod(root_, kRoot, "blk", S_IFBLK | 0600, makedev(8, 1)));
  EXPECT_TRUE(S_ISBLK(blk.mode));
  EXPECT_EQ(blk.rdev, makedev(8, 1));
  ASSERT_OK_AND_ASSIGN(Attributes reg, fs_->Mknod(root_, kRoot, "reg", 0644, 0));
  EXPECT_TRUE(S_ISREG(reg.mode));
  EXPECT_ERRNO(fs_->Mknod(root_, kRoot, "dir", S_IFDIR | 0755, 0), EPERM);
  EXPECT_ERRNO(fs_->Mknod(root_, kRoot, "bad", 0170000, 0), EINVAL);
  ASSERT_OK(fs_->SetAttr(root_, kRoot, ModeReq(0777)));
  EXPECT_ERRNO(fs_->Mknod(user_, kRoot, "userdev", S_IFCHR | 0600, makedev(1, 3)), EPERM);
  EXPECT_OK(fs_->Mknod(user_, kRoot, "userfifo", S_IFIFO | 0600, 0));
}

TEST_F(FilesystemTest, Symlinks) {
  const std::string target = "some/where/else";
  ASSERT_OK_AND_ASSIGN(Attributes l, fs_->Symlink(root_, kRoot, "link", target));
  EXPECT_TRUE(S_ISLNK(l.mode));
  EXPECT_EQ(l.mode & 07777, 0777u);
  EXPECT_EQ(l.size, target.size());
  ASSERT_OK_AND_ASSIGN(std::string got, fs_->Readlink(l.ino));
  EXPECT_EQ(got, target);
  ASSERT_OK(fs_->Symlink(root_, kRoot, "max", std::string(4095, 'x')));
  EXPECT_ERRNO(fs_->Symlink(root_, kRoot, "toolong", std::string(4096, 'x')), ENAMETOOLONG);
  EXPECT_ERRNO(fs_->Symlink(root_, kRoot, "empty", ""), ENOENT);
  Attributes f = MakeFile(kRoot, "f");
  EXPECT_ERRNO(fs_->Readlink(f.ino), EINVAL);
  EXPECT_ERRNO(fs_->Open(root_, l.ino, O_RDONLY), ELOOP);
}

TEST_F(FilesystemTest, HardLinks) {
  Attributes f = MakeFile(kRoot, "f");
  Attributes d = MakeDir(kRoot, "d");
  std::this_thread::sleep_for(2ms);
  ASSERT_OK_AND_ASSIGN(Attributes l, fs_->Link(root_, f.ino, d.ino, "g"));
  EXPECT_EQ(l.ino, f.ino);
  EXPECT_EQ(l.nlink, 2u);
  EXPECT_GT(Cmp(l.ctime, f.ctime), 0);
  EXPECT_GT(Cmp(Attr(d.ino).mtime, d.mtime), 0);
  EXPECT_ERRNO(fs_->Link(root_, d.ino, kRoot, "dlink"), EPERM);
  EXPECT_ERRNO(fs_->Link(root_, f.ino, kRoot, "f"), EEXIST);
  EXPECT_ERRNO(fs_->Link(root_, f.ino, f.ino, "x"), ENOTDIR);
  ASSERT_OK(fs_->Unlink(root_, kRoot, "f"));
  EXPECT_EQ(Attr(f.ino).nlink, 1u);
  ASSERT_OK_AND_ASSIGN(Attributes via, fs_->Lookup(root_, d.ino, "g"));
  EXPECT_EQ(via.ino, f.ino);
}

TEST_F(FilesystemTest, UnlinkAndRmdirErrorsAndNlink) {
  Attributes a = MakeDir(kRoot, "a");
  EXPECT_EQ(Attr(kRoot).nlink, 3u);
  Attributes b = MakeDir(a.ino, "b");
  MakeDir(b.ino, "c");
  EXPECT_EQ(Attr(a.ino).nlink, 3u);
  EXPECT_EQ(Attr(b.ino).nlink, 3u);
  MakeFile(b.ino, "file");

  EXPECT_ERRNO(fs_->Unlink(root_, a.ino, "b"), EISDIR);
  EXPECT_ERRNO(fs_->Rmdir(root_, b.ino, "file"), ENOTDIR);
  EXPECT_ERRNO(fs_->Rmdir(root_, a.ino, "b"), ENOTEMPTY);
  EXPECT_ERRNO(fs_->Rmdir(root_, a.ino, "."), EINVAL);
  EXPECT_ERRNO(fs_->Rmdir(root_, a.ino, ".."), ENOTEMPTY);
  EXPECT_ERRNO(fs_->Unlink(root_, a.ino, "nothing"), ENOENT);
  EXPECT_ERRNO(fs_->Rmdir(root_, a.ino, "nothing"), ENOENT);

  ASSERT_OK(fs_->Rmdir(root_, b.ino, "c"));
  EXPECT_EQ(Attr(b.ino).nlink, 2u);
  ASSERT_OK(fs_->Unlink(root_, b.ino, "file"));
  ASSERT_OK(fs_->Rmdir(root_, a.ino, "b"));
  EXPECT_EQ(Attr(a.ino).nlink, 2u);
  EXPECT_EQ(Attr(b.ino).nlink, 0u);  // still referenced
  // Creating inside a removed directory fails.
  EXPECT_ERRNO(fs_->Mkdir(root_, b.ino, "x", 0755), ENOENT);
  EXPECT_TRUE(List(a.ino).empty());
}

// ---------------------------------------------------------------------------
// Rename

TEST_F(FilesystemTest, RenameFileOverFile) {
  Attributes a = MakeFile(kRoot, "a");
  Attributes b = MakeFile(kRoot, "b");
  std::this_thread::sleep_for(2ms);
  ASSERT_OK(fs_->Rename(root_, kRoot, "a", kRoot, "b", 0));
  EXPECT_ERRNO(fs_->Lookup(root_, kRoot, "a"), ENOENT);
  ASSERT_OK_AND_ASSIGN(Attributes now_b, fs_->Lookup(root_, kRoot, "b"));
  EXPECT_EQ(now_b.ino, a.ino);
  EXPECT_GT(Cmp(now_b.ctime, a.ctime), 0);
  EXPECT_EQ(Attr(b.ino).nlink, 0u);  // replaced, still referenced
  fs_->Forget(b.ino, 1);
  ASSERT_TRUE(WaitFor([&] { return Stat("inode_deallocations") == 1; }));
  EXPECT_EQ(List(kRoot), std::vector<std::string>{"b"});
}

TEST_F(FilesystemTest, RenameDirectories) {
  Attributes p = MakeDir(kRoot, "p");
  Attributes q = MakeDir(kRoot, "q");
  Attributes d = MakeDir(p.ino, "d");
  MakeDir(q.ino, "empty");
  Attributes full = MakeDir(q.ino, "full");
  MakeFile(full.ino, "x");
  MakeFile(q.ino, "file");

  EXPECT_ERRNO(fs_->Rename(root_, p.ino, "d", q.ino, "full", 0), ENOTEMPTY);
  EXPECT_ERRNO(fs_->Rename(root_, p.ino, "d", q.ino, "file", 0), ENOTDIR);
  EXPECT_ERRNO(fs_->Rename(root_, q.ino, "file", q.ino, "empty", 0), EISDIR);
  EXPECT_ERRNO(fs_->Rename(root_, p.ino, "missing", q.ino, "new", 0), ENOENT);

  // Directory over an empty directory, across parents.
  EXPECT_EQ(Attr(p.ino).nlink, 3u);
  EXPECT_EQ(Attr(q.ino).nlink, 4u);
  ASSERT_OK(fs_->Rename(root_, p.ino, "d", q.ino, "empty", 0));
  EXPECT_EQ(Attr(p.ino).nlink, 2u);
  EXPECT_EQ(Attr(q.ino).nlink, 4u);  // gained d, lost the old "empty"
  ASSERT_OK_AND_ASSIGN(Attributes moved, fs_->Lookup(root_, q.ino, "empty"));
  EXPECT_EQ(moved.ino, d.ino);
  ASSERT_OK_AND_ASSIGN(Attributes up, fs_->Lookup(root_, d.ino, ".."));
  EXPECT_EQ(up.ino, q.ino);

  // Into its own subtree, or onto itself as a parent.
  Attributes sub = MakeDir(d.ino, "sub");
  EXPECT_ERRNO(fs_->Rename(root_, q.ino, "empty", sub.ino, "loop", 0), EINVAL);
  EXPECT_ERRNO(fs_->Rename(root_, q.ino, "empty", d.ino, "self", 0), EINVAL);
  EXPECT_ERRNO(fs_->Rename(root_, kRoot, "q", sub.ino, "deep", 0), EINVAL);

  // Plain move to a new name in another directory.
  ASSERT_OK(fs_->Rename(root_, q.ino, "empty", kRoot, "top", 0));
  EXPECT_EQ(Attr(q.ino).nlink, 3u);
  EXPECT_EQ(Attr(kRoot).nlink, 5u);
}

TEST_F(FilesystemTest, RenameFlags) {
  Attributes a = MakeFile(kRoot, "a");
  Attributes b = MakeFile(kRoot, "b");
  EXPECT_ERRNO(fs_->Rename(root_, kRoot, "a", kRoot, "b", RENAME_NOREPLACE), EEXIST);
  ASSERT_OK(fs_->Rename(root_, kRoot, "a", kRoot, "c", RENAME_NOREPLACE));
  EXPECT_ERRNO(fs_->Rename(root_, kRoot, "c", kRoot, "b", RENAME_NOREPLACE | RENAME_EXCHANGE), EINVAL);
  EXPECT_ERRNO(fs_->Rename(root_, kRoot, "c", kRoot, "b", RENAME_WHITEOUT | RENAME_EXCHANGE), EINVAL);
  EXPECT_ERRNO(fs_->Rename(root_, kRoot, "c", kRoot, "b", RENAME_WHITEOUT | RENAME_NOREPLACE), EEXIST);
  EXPECT_ERRNO(fs_->Rename(user_, kRoot, "c", kRoot, "w", RENAME_WHITEOUT), EPERM);
  EXPECT_ERRNO(fs_->Rename(root_, kRoot, "c", kRoot, "none", RENAME_EXCHANGE), ENOENT);
  // Same name: nothing happens.
  ASSERT_OK(fs_->Rename(root_, kRoot, "c", kRoot, "c", 0));
  // Two names of one inode: nothing happens, both stay.
  ASSERT_OK(fs_->Link(root_, b.ino, kRoot, "b2"));
  ASSERT_OK(fs_->Rename(root_, kRoot, "b", kRoot, "b2", 0));
  EXPECT_OK(fs_->Lookup(root_, kRoot, "b"));
  EXPECT_OK(fs_->Lookup(root_, kRoot, "b2"));
  EXPECT_EQ(Attr(b.ino).nlink, 2u);
  EXPECT_EQ(Attr(a.ino).nlink, 1u);

  // RENAME_WHITEOUT: the source name now names a 0/0 character device.
  ASSERT_OK(fs_->Rename(root_, kRoot, "c", kRoot, "w", RENAME_WHITEOUT | RENAME_NOREPLACE));
  ASSERT_OK_AND_ASSIGN(Attributes moved, fs_->Lookup(root_, kRoot, "w"));
  EXPECT_EQ(moved.ino, a.ino);
  ASSERT_OK_AND_ASSIGN(Attributes wh, fs_->Lookup(root_, kRoot, "c"));
  EXPECT_NE(wh.ino, a.ino);
  EXPECT_EQ(wh.mode, static_cast<uint32_t>(S_IFCHR));
  EXPECT_EQ(wh.rdev, 0u);
  EXPECT_EQ(wh.nlink, 1u);
}

TEST_F(FilesystemTest, RenameExchangeFileAndDirectory) {
  Attributes p = MakeDir(kRoot, "p");
  Attributes q = MakeDir(kRoot, "q");
  Attributes f = MakeFile(p.ino, "f");
  Attributes d = MakeDir(q.ino, "d");
  MakeFile(d.ino, "inside");
  ASSERT_OK(fs_->Rename(root_, p.ino, "f", q.ino, "d", RENAME_EXCHANGE));
  ASSERT_OK_AND_ASSIGN(Attributes pf, fs_->Lookup(root_, p.ino, "f"));
  ASSERT_OK_AND_ASSIGN(Attributes qd, fs_->Lookup(root_, q.ino, "d"));
  EXPECT_EQ(pf.ino, d.ino);
  EXPECT_EQ(qd.ino, f.ino);
  EXPECT_EQ(Attr(p.ino).nlink, 3u);  // gained the directory
  EXPECT_EQ(Attr(q.ino).nlink, 2u);  // lost it
  ASSERT_OK_AND_ASSIGN(Attributes up, fs_->Lookup(root_, d.ino, ".."));
  EXPECT_EQ(up.ino, p.ino);
  EXPECT_OK(fs_->Lookup(root_, d.ino, "inside"));
  // A directory cannot be exchanged with something inside itself.
  Attributes sub = MakeDir(d.ino, "sub");
  MakeFile(sub.ino, "leaf");
  EXPECT_ERRNO(fs_->Rename(root_, sub.ino, "leaf", p.ino, "f", RENAME_EXCHANGE), EINVAL);
}

TEST_F(FilesystemTest, RenamePersists) {
  Attributes p = MakeDir(kRoot, "p");
  Attributes q = MakeDir(kRoot, "q");
  Attributes d = MakeDir(p.ino, "d");
  ASSERT_OK(fs_->Rename(root_, p.ino, "d", q.ino, "e", 0));
  Remount();
  EXPECT_ERRNO(fs_->Lookup(root_, p.ino, "d"), ENOENT);
  ASSERT_OK_AND_ASSIGN(Attributes e, fs_->Lookup(root_, q.ino, "e"));
  EXPECT_EQ(e.ino, d.ino);
  ASSERT_OK_AND_ASSIGN(Attributes up, fs_->Lookup(root_, e.ino, ".."));
  EXPECT_EQ(up.ino, q.ino);
  EXPECT_EQ(Attr(p.ino).nlink, 2u);
  EXPECT_EQ(Attr(q.ino).nlink, 3u);
}

// ---------------------------------------------------------------------------
// Readdir

TEST_F(FilesystemTest, ReadDirOffsets) {
  Attributes d = MakeDir(kRoot, "d");
  for (int i = 0; i < 5; ++i) MakeFile(d.ino, "f" + std::to_string(i));
  std::vector<DirListEntry> all;
  ASSERT_OK_AND_ASSIGN(uint64_t fh, fs_->OpenDir(root_, d.ino, O_RDONLY));
  ASSERT_OK(fs_->ReadDir(root_, d.ino, fh, 0, false, [&](const DirListEntry& e) {
    all.push_back(e);
    return true;
  }));
  ASSERT_EQ(all.size(), 7u);
  EXPECT_EQ(all[0].name, ".");
  EXPECT_EQ(all[0].next_offset, 1u);
  EXPECT_EQ(all[0].ino, d.ino);
  EXPECT_EQ(all[1].name, "..");
  EXPECT_EQ(all[1].next_offset, 2u);
  EXPECT_EQ(all[1].ino, kRoot);
  for (size_t i = 2; i < all.size(); ++i) {
    EXPECT_GT(all[i].next_offset, all[i - 1].next_offset);
    EXPECT_TRUE(S_ISREG(all[i].type));
  }
  // Continuing from any offset gives exactly the rest.
  for (size_t k = 0; k < all.size(); ++k) {
    std::vector<std::string> rest;
    ASSERT_OK(fs_->ReadDir(root_, d.ino, fh, all[k].next_offset, false, [&](const DirListEntry& e) {
      rest.push_back(e.name);
      return true;
    }));
    ASSERT_EQ(rest.size(), all.size() - k - 1);
    for (size_t j = 0; j < rest.size(); ++j) EXPECT_EQ(rest[j], all[k + 1 + j].name);
  }
  // A full buffer: the refused entry is not consumed.
  int calls = 0;
  ASSERT_OK(fs_->ReadDir(root_, d.ino, fh, 0, false, [&](const DirListEntry&) { return ++calls < 3; }));
  EXPECT_EQ(calls, 3);
  ASSERT_OK(fs_->ReleaseDir(d.ino, fh));
  EXPECT_ERRNO(fs_->OpenDir(root_, MakeFile(kRoot, "notdir").ino, O_RDONLY), ENOTDIR);
}

TEST_F(FilesystemTest, ReadDirStableWhileDirectoryChanges) {
  Attributes d = MakeDir(kRoot, "d");
  constexpr int kFiles = 300;
  for (int i = 0; i < kFiles; ++i) MakeFile(d.ino, "f" + std::to_string(i));
  ASSERT_OK_AND_ASSIGN(uint64_t fh, fs_->OpenDir(root_, d.ino, O_RDONLY));
  std::vector<std::string> seen;
  uint64_t offset = 0;
  ASSERT_OK(fs_->ReadDir(root_, d.ino, fh, 0, false, [&](const DirListEntry& e) {
    if (seen.size() == kFiles / 2 + 2) return false;
    seen.push_back(e.name);
    offset = e.next_offset;
    return true;
  }));
  std::set<std::string> listed(seen.begin() + 2, seen.end());
  // Remove some listed and some unlisted entries; add new ones.
  std::set<std::string> removed;
  for (int i = 0; i < kFiles; i += 7) {
    const std::string n = "f" + std::to_string(i);
    ASSERT_OK(fs_->Unlink(root_, d.ino, n));
    removed.insert(n);
  }
  for (int i = 0; i < 40; ++i) MakeFile(d.ino, "new" + std::to_string(i));
  ASSERT_OK(fs_->Rename(root_, d.ino, "f1", d.ino, "renamed", 0));
  removed.insert("f1");
  std::vector<std::string> rest;
  ASSERT_OK(fs_->ReadDir(root_, d.ino, fh, offset, false, [&](const DirListEntry& e) {
    rest.push_back(e.name);
    return true;
  }));
  std::set<std::string> all(listed);
  for (const std::string& n : rest) {
    EXPECT_TRUE(all.insert(n).second) << "returned twice: " << n;
    EXPECT_EQ(removed.count(n), 0u) << "removed entry returned: " << n;
  }
  for (int i = 0; i < kFiles; ++i) {
    const std::string n = "f" + std::to_string(i);
    if (!removed.count(n)) {
      EXPECT_EQ(all.count(n), 1u) << "survivor skipped: " << n;
    }
  }
  ASSERT_OK(fs_->ReleaseDir(d.ino, fh));
}

TEST_F(FilesystemTest, ReadDirEndsWhileEveryEntryIsRenamed) {
  // Each listed entry is renamed at once (a new cookie above all others):
  // the scan must still list every file once and end.
  Attributes d = MakeDir(kRoot, "d");
  constexpr int kFiles = 500;
  for (int i = 0; i < kFiles; ++i) MakeFile(d.ino, "f" + std::to_string(i));
  ASSERT_OK_AND_ASSIGN(uint64_t fh, fs_->OpenDir(root_, d.ino, O_RDONLY));
  std::set<std::string> seen;
  int listed = 0;
  uint64_t offset = 0;
  for (int pass = 0; pass < 4 * kFiles; ++pass) {
    std::vector<std::string> batch;
    ASSERT_OK(fs_->ReadDir(root_, d.ino, fh, offset, false, [&](const DirListEntry& e) {
      if (batch.size() == 16) return false;  // a small getdents buffer
      batch.push_back(e.name);
      offset = e.next_offset;
      return true;
    }));
    if (batch.empty()) break;
    for (const std::string& n : batch) {
      if (n == "." || n == "..") continue;
      ++listed;
      EXPECT_TRUE(seen.insert(n).second) << "listed twice: " << n;
      ASSERT_OK(fs_->Rename(root_, d.ino, n, d.ino, n + "-renamed", 0));
    }
  }
  EXPECT_EQ(listed, kFiles);
  for (const std::string& n : seen) EXPECT_EQ(n.find("-renamed"), std::string::npos) << n;
  // Rewinding starts a new scan, which sees the new names.
  std::set<std::string> again;
  ASSERT_OK(fs_->ReadDir(root_, d.ino, fh, 0, false, [&](const DirListEntry& e) {
    if (e.name != "." && e.name != "..") again.insert(e.name);
    return true;
  }));
  EXPECT_EQ(again.size(), static_cast<size_t>(kFiles));
  EXPECT_EQ(again.count("f0-renamed"), 1u);
  ASSERT_OK(fs_->ReleaseDir(d.ino, fh));
}

TEST_F(FilesystemTest, ReadDirPlusTakesReferencesOnlyForAcceptedEntries) {
  Attributes d = MakeDir(kRoot, "d");
  Attributes a = MakeFile(d.ino, "a");
  Attributes b = MakeFile(d.ino, "b");
  fs_->Forget(a.ino, 1);  // drop the creation references
  fs_->Forget(b.ino, 1);
  ASSERT_OK_AND_ASSIGN(uint64_t fh, fs_->OpenDir(root_, d.ino, O_RDONLY));
  std::vector<DirListEntry> got;
  ASSERT_OK(fs_->ReadDir(root_, d.ino, fh, 0, true, [&](const DirListEntry& e) {
    if (e.name == "b") return false;  // buffer full at b
    got.push_back(e);
    return true;
  }));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2].name, "a");
  EXPECT_EQ(got[2].attr.ino, a.ino);
  EXPECT_TRUE(S_ISREG(got[2].attr.mode));
  EXPECT_EQ(got[0].attr.ino, d.ino);
  ASSERT_OK(fs_->ReleaseDir(d.ino, fh));
  // a holds the readdirplus reference, b none: after unlinking both, only b
  // is deallocated until a is forgotten.
  ASSERT_OK(fs_->Unlink(root_, d.ino, "a"));
  ASSERT_OK(fs_->Unlink(root_, d.ino, "b"));
  ASSERT_TRUE(WaitFor([&] { return Stat("inode_deallocations") == 1; }));
  EXPECT_ERRNO(fs_->GetAttr(b.ino), ENOENT);
  EXPECT_OK(fs_->GetAttr(a.ino));
  fs_->Forget(a.ino, 1);
  ASSERT_TRUE(WaitFor([&] { return Stat("inode_deallocations") == 2; }));
}

// ---------------------------------------------------------------------------
// Permissions

TEST_F(FilesystemTest, PermissionsForOrdinaryUser) {
  EXPECT_ERRNO(fs_->Mkdir(user_, kRoot, "mine", 0755), EACCES);  // root dir is 0755 root
  Attributes priv = MakeDir(kRoot, "priv", 0700);
  MakeFile(priv.ino, "secret", 0644);
  EXPECT_ERRNO(fs_->Lookup(user_, priv.ino, "secret"), EACCES);
  EXPECT_ERRNO(fs_->OpenDir(user_, priv.ino, O_RDONLY), EACCES);

  Attributes pub = MakeDir(kRoot, "pub", 0777);
  Attributes f = MakeFile(pub.ino, "rootfile", 0600);
  EXPECT_ERRNO(fs_->Open(user_, f.ino, O_RDONLY), EACCES);
  EXPECT_ERRNO(fs_->Open(user_, f.ino, O_WRONLY), EACCES);
  EXPECT_ERRNO(fs_->Access(user_, f.ino, R_OK), EACCES);
  EXPECT_OK(fs_->Access(user_, f.ino, F_OK));
  EXPECT_OK(fs_->Access(root_, f.ino, R_OK | W_OK));
  EXPECT_ERRNO(fs_->Access(root_, f.ino, X_OK), EACCES);  // no x bit at all
  EXPECT_ERRNO(fs_->SetAttr(user_, f.ino, ModeReq(0666)), EPERM);
  EXPECT_ERRNO(fs_->SetAttr(user_, f.ino, SizeReq(0)), EACCES);

  // An execute-only program: reading is refused, the kernel's exec open
  // (flagged __FMODE_EXEC) is allowed.
  constexpr int kFmodeExec = 0x20;
  Attributes prog = MakeFile(pub.ino, "prog", 0711);
  EXPECT_ERRNO(fs_->Open(user_, prog.ino, O_RDONLY), EACCES);
  absl::StatusOr<OpenFile> exec_open = fs_->Open(user_, prog.ino, O_RDONLY | kFmodeExec);
  ASSERT_OK(exec_open);
  EXPECT_OK(fs_->Release(prog.ino, exec_open->fh));
  EXPECT_ERRNO(fs_->Open(user_, f.ino, O_RDONLY | kFmodeExec), EACCES);  // 0600: no x for others

  Attributes mine = MakeFile(pub.ino, "userfile", 0644, &user_);
  EXPECT_EQ(mine.uid, 1000u);
  EXPECT_EQ(mine.gid, 1000u);
  EXPECT_OK(fs_->SetAttr(user_, mine.ino, ModeReq(0600)));
  EXPECT_ERRNO(fs_->SetAttr(user_, mine.ino, UidReq(0)), EPERM);
  EXPECT_ERRNO(fs_->SetAttr(user_, mine.ino, GidReq(50)), EPERM);
  RequestContext member = user_;
  member.groups = {50};
  ASSERT_OK_AND_ASSIGN(Attributes chgrp, fs_->SetAttr(member, mine.ino, GidReq(50)));
  EXPECT_EQ(chgrp.gid, 50u);
  ASSERT_OK_AND_ASSIGN(Attributes chown, fs_->SetAttr(root_, mine.ino, UidReq(1001)));
  EXPECT_EQ(chown.uid, 1001u);
  // Others may not remove files from a directory they cannot write.
  EXPECT_ERRNO(fs_->Unlink(user_, priv.ino, "secret"), EACCES);
  EXPECT_ERRNO(fs_->Rename(user_, priv.ino, "secret", pub.ino, "stolen", 0), EACCES);
}

TEST_F(FilesystemTest, StickyDirectory) {
  Attributes tmp = MakeDir(kRoot, "tmp", 01777);
  EXPECT_EQ(tmp.mode & 07777, 01777u);
  MakeFile(tmp.ino, "users", 0666, &user_);
  MakeFile(tmp.ino, "users2", 0666, &user_);
  EXPECT_ERRNO(fs_->Unlink(other_, tmp.ino, "users"), EPERM);
  EXPECT_ERRNO(fs_->Rename(other_, tmp.ino, "users", tmp.ino, "mine", 0), EPERM);
  MakeFile(tmp.ino, "others", 0666, &other_);
  EXPECT_ERRNO(fs_->Rename(user_, tmp.ino, "users", tmp.ino, "others", 0), EPERM);  // target is other's
  EXPECT_OK(fs_->Unlink(user_, tmp.ino, "users"));
  EXPECT_OK(fs_->Unlink(root_, tmp.ino, "users2"));
  // Without the sticky bit anyone with write access may.
  Attributes pub = MakeDir(kRoot, "pub", 0777);
  MakeFile(pub.ino, "users", 0644, &user_);
  EXPECT_OK(fs_->Unlink(other_, pub.ino, "users"));
}

TEST_F(FilesystemTest, SetgidDirectoryAndUmask) {
  // mkdir masks S_ISGID out of the mode (as Linux does); chmod sets it.
  Attributes sg = MakeDir(kRoot, "sg", 02777);
  EXPECT_EQ(sg.mode & 07777, 0777u);
  ASSERT_OK(fs_->SetAttr(root_, sg.ino, GidReq(500)));
  ASSERT_OK(fs_->SetAttr(root_, sg.ino, ModeReq(02777)));
  EXPECT_EQ(Attr(sg.ino).mode & 07777, 02777u);
  Attributes f = MakeFile(sg.ino, "f", 0666, &user_);
  EXPECT_EQ(f.gid, 500u);
  EXPECT_EQ(f.mode & S_ISGID, 0u);
  Attributes sub = MakeDir(sg.ino, "sub", 0755, &user_);
  EXPECT_EQ(sub.gid, 500u);
  EXPECT_NE(sub.mode & S_ISGID, 0u);
  // A setgid executable for a group the creator is not in loses the bit.
  Attributes x = MakeFile(sg.ino, "x", 02755, &user_);
  EXPECT_EQ(x.mode & S_ISGID, 0u);

  RequestContext masked = user_;
  masked.umask = 027;
  Attributes pub = MakeDir(kRoot, "pub", 0777);
  Attributes m = MakeFile(pub.ino, "m", 0666, &masked);
  EXPECT_EQ(m.mode & 07777, 0640u);
  ASSERT_OK_AND_ASSIGN(Attributes md, fs_->Mkdir(masked, pub.ino, "md", 0777));
  EXPECT_EQ(md.mode & 07777, 0750u);
  EXPECT_EQ(md.gid, 1000u);

  // chmod g+s by a non-member owner clears setgid.
  Attributes own = MakeFile(pub.ino, "own", 0644, &user_);
  ASSERT_OK(fs_->SetAttr(root_, own.ino, GidReq(77)));
  ASSERT_OK_AND_ASSIGN(Attributes after, fs_->SetAttr(user_, own.ino, ModeReq(02755)));
  EXPECT_EQ(after.mode & 07777, 0755u);
  ASSERT_OK_AND_ASSIGN(Attributes by_root, fs_->SetAttr(root_, own.ino, ModeReq(06755)));
  EXPECT_EQ(by_root.mode & 07777, 06755u);
  // chown clears set-id bits.
  ASSERT_OK_AND_ASSIGN(Attributes chowned, fs_->SetAttr(root_, own.ino, UidReq(1001)));
  EXPECT_EQ(chowned.mode & (S_ISUID | S_ISGID), 0u);
}

// What the kernel sends when a writer without CAP_FSETID modifies a file: a
// mode that only clears set-id bits (accepted from a writer that is not the
// owner), a REMOVEXATTR of security.capability, and flagged direct writes.
TEST_F(FilesystemTest, KillPrivilegesOnModification) {
  Attributes pub = MakeDir(kRoot, "pub", 0777);
  Attributes f = MakeFile(pub.ino, "f", 0666);  // root's, writable by all
  ASSERT_OK(fs_->SetAttr(root_, f.ino, ModeReq(06676)));
  EXPECT_ERRNO(fs_->SetAttr(user_, f.ino, ModeReq(06666)), EPERM);  // more than set-id bits
  EXPECT_ERRNO(fs_->SetAttr(user_, f.ino, ModeReq(06676)), EPERM);  // no change
  EXPECT_ERRNO(fs_->SetAttr(user_, f.ino, ModeReq(07676)), EPERM);  // adds the sticky bit
  ASSERT_OK_AND_ASSIGN(Attributes killed, fs_->SetAttr(user_, f.ino, ModeReq(0676)));
  EXPECT_EQ(killed.mode & 07777, 0676u);
  // Not for a caller who may not write the file.
  Attributes ro = MakeFile(pub.ino, "ro", 0644);
  ASSERT_OK(fs_->SetAttr(root_, ro.ino, ModeReq(06644)));
  EXPECT_ERRNO(fs_->SetAttr(user_, ro.ino, ModeReq(0644)), EPERM);

  // security.capability: the user may remove it from a file it may write.
  ASSERT_OK(fs_->SetXattr(root_, f.ino, "security.capability", "caps", 0));
  EXPECT_ERRNO(fs_->RemoveXattr(user_, ro.ino, "security.selinux"), EPERM);
  EXPECT_OK(fs_->RemoveXattr(user_, f.ino, "security.capability"));
  ASSERT_OK(fs_->SetXattr(root_, ro.ino, "security.capability", "caps", 0));
  EXPECT_ERRNO(fs_->RemoveXattr(user_, ro.ino, "security.capability"), EPERM);

  // Writes: set-id bits go only when flagged, the capability always.
  ASSERT_OK(fs_->SetAttr(root_, f.ino, ModeReq(06676)));
  ASSERT_OK(fs_->SetXattr(root_, f.ino, "security.capability", "caps", 0));
  ASSERT_OK_AND_ASSIGN(OpenFile of, fs_->Open(root_, f.ino, O_WRONLY));
  ASSERT_OK(fs_->Write(f.ino, of.fh, 0, "x", 1));
  EXPECT_ERRNO(fs_->GetXattr(f.ino, "security.capability"), ENODATA);
  ASSERT_OK_AND_ASSIGN(Attributes kept, fs_->GetAttr(f.ino));
  EXPECT_EQ(kept.mode & 07777, 06676u);
  WritePrivs privs;
  privs.kill_suidgid = true;
  ASSERT_OK(fs_->SetXattr(root_, f.ino, "security.capability", "caps", 0));
  ASSERT_OK(fs_->Write(f.ino, of.fh, 0, "x", 1, privs));
  ASSERT_OK_AND_ASSIGN(Attributes cleared, fs_->GetAttr(f.ino));
  EXPECT_EQ(cleared.mode & 07777, 0676u);
  EXPECT_ERRNO(fs_->GetXattr(f.ino, "security.capability"), ENODATA);
  // Data written back from a kernel cache keeps a capability set since.
  privs.kill_caps = false;
  ASSERT_OK(fs_->SetXattr(root_, f.ino, "security.capability", "caps", 0));
  ASSERT_OK(fs_->Write(f.ino, of.fh, 0, "x", 1, privs));
  EXPECT_OK(fs_->GetXattr(f.ino, "security.capability"));
  ASSERT_OK(fs_->Release(f.ino, of.fh));
}

TEST_F(FilesystemTest, InodeFlagsRulesAndEnforcement) {
  Attributes pub = MakeDir(kRoot, "pub", 0777);
  Attributes mine = MakeFile(pub.ino, "mine", 0644, &user_);
  EXPECT_ERRNO(fs_->SetFlags(root_, mine.ino, FS_COMPR_FL), EOPNOTSUPP);
  EXPECT_ERRNO(fs_->SetFlags(user_, mine.ino, FS_IMMUTABLE_FL), EPERM);
  EXPECT_ERRNO(fs_->SetFlags(user_, mine.ino, FS_APPEND_FL), EPERM);
  ASSERT_OK(fs_->SetFlags(user_, mine.ino, FS_NODUMP_FL));
  EXPECT_ERRNO(fs_->SetFlags(user_, pub.ino, FS_NODUMP_FL), EPERM);  // not the owner

  // Immutable file.
  ASSERT_OK(fs_->SetFlags(root_, mine.ino, FS_IMMUTABLE_FL | FS_NODUMP_FL));
  EXPECT_ERRNO(fs_->Open(root_, mine.ino, O_WRONLY), EPERM);
  EXPECT_ERRNO(fs_->SetAttr(root_, mine.ino, ModeReq(0600)), EPERM);
  EXPECT_ERRNO(fs_->SetXattr(root_, mine.ino, "user.x", "1", 0), EPERM);
  EXPECT_ERRNO(fs_->Unlink(root_, pub.ino, "mine"), EPERM);
  EXPECT_ERRNO(fs_->Link(root_, mine.ino, pub.ino, "other"), EPERM);
  EXPECT_ERRNO(fs_->Rename(root_, pub.ino, "mine", pub.ino, "moved", 0), EPERM);
  Remount();
  ASSERT_OK_AND_ASSIGN(uint32_t flags, fs_->GetFlags(mine.ino));
  EXPECT_EQ(flags, uint32_t{FS_IMMUTABLE_FL | FS_NODUMP_FL});

  // Append-only file: writes need O_APPEND and land at the end.
  ASSERT_OK(fs_->SetFlags(root_, mine.ino, FS_APPEND_FL));
  EXPECT_ERRNO(fs_->Open(root_, mine.ino, O_WRONLY), EPERM);
  ASSERT_OK_AND_ASSIGN(OpenFile ap, fs_->Open(root_, mine.ino, O_WRONLY | O_APPEND));
  ASSERT_OK(fs_->Write(mine.ino, ap.fh, 0, "ab", 2));
  ASSERT_OK(fs_->Write(mine.ino, ap.fh, 0, "cd", 2));
  ASSERT_OK(fs_->Release(mine.ino, ap.fh));
  EXPECT_EQ(Attr(mine.ino).size, 4u);
  SetAttrRequest shrink;
  shrink.size = 0;
  EXPECT_ERRNO(fs_->SetAttr(root_, mine.ino, shrink), EPERM);
  ASSERT_OK(fs_->SetFlags(root_, mine.ino, 0));

  // Immutable directory: no new names, but O_CREAT of an existing one opens it.
  ASSERT_OK(fs_->SetFlags(root_, pub.ino, FS_IMMUTABLE_FL));
  EXPECT_ERRNO(fs_->Create(root_, pub.ino, "new", 0644, O_CREAT | O_RDWR), EPERM);
  EXPECT_ERRNO(fs_->Mkdir(root_, pub.ino, "sub", 0755), EPERM);
  ASSERT_OK_AND_ASSIGN(auto opened, fs_->Create(root_, pub.ino, "mine", 0644, O_CREAT | O_RDWR));
  ASSERT_OK(fs_->Release(opened.first.ino, opened.second.fh));
  fs_->Forget(opened.first.ino, 1);
  EXPECT_ERRNO(fs_->Unlink(root_, pub.ino, "mine"), EPERM);
  ASSERT_OK(fs_->SetFlags(root_, pub.ino, 0));
  EXPECT_OK(fs_->Unlink(root_, pub.ino, "mine"));
}

TEST_F(FilesystemTest, TimesPermissionRules) {
  Attributes pub = MakeDir(kRoot, "pub", 0777);
  Attributes f = MakeFile(pub.ino, "f", 0666);   // root's, writable by all
  Attributes g = MakeFile(pub.ino, "g", 0644);   // root's, read-only for others
  SetAttrRequest explicit_times;
  explicit_times.mtime = storage::Timespec{1000, 5};
  EXPECT_ERRNO(fs_->SetAttr(user_, f.ino, explicit_times), EPERM);
  SetAttrRequest now;
  now.atime_now = now.mtime_now = true;
  EXPECT_OK(fs_->SetAttr(user_, f.ino, now));
  EXPECT_ERRNO(fs_->SetAttr(user_, g.ino, now), EACCES);
  EXPECT_OK(fs_->SetAttr(root_, g.ino, explicit_times));
}

// ---------------------------------------------------------------------------
// Times

TEST_F(FilesystemTest, Times) {
  Attributes root0 = Attr(kRoot);
  std::this_thread::sleep_for(2ms);
  Attributes f = MakeFile(kRoot, "f");
  Attributes root1 = Attr(kRoot);
  EXPECT_GT(Cmp(root1.mtime, root0.mtime), 0);
  EXPECT_GT(Cmp(root1.ctime, root0.ctime), 0);
  EXPECT_EQ(Cmp(f.atime, f.mtime), 0);

  // Explicit times with nanoseconds; ctime moves to now.
  SetAttrRequest set;
  set.atime = storage::Timespec{1'000'000'000, 123'456'789};
  set.mtime = storage::Timespec{1'100'000'000, 987'654'321};
  std::this_thread::sleep_for(2ms);
  ASSERT_OK_AND_ASSIGN(Attributes a, fs_->SetAttr(root_, f.ino, set));
  EXPECT_EQ(a.atime, set.atime.value());
  EXPECT_EQ(a.mtime, set.mtime.value());
  EXPECT_GT(Cmp(a.ctime, f.ctime), 0);

  // "now"
  SetAttrRequest now;
  now.mtime_now = true;
  ASSERT_OK_AND_ASSIGN(Attributes b, fs_->SetAttr(root_, f.ino, now));
  EXPECT_GT(b.mtime.sec, 1'100'000'000);
  EXPECT_EQ(b.atime, set.atime.value());

  // chmod changes ctime only.
  std::this_thread::sleep_for(2ms);
  ASSERT_OK_AND_ASSIGN(Attributes c, fs_->SetAttr(root_, f.ino, ModeReq(0600)));
  EXPECT_GT(Cmp(c.ctime, b.ctime), 0);
  EXPECT_EQ(c.mtime, b.mtime);

  // Truncation to a new size changes mtime and ctime.
  std::this_thread::sleep_for(2ms);
  ASSERT_OK_AND_ASSIGN(Attributes d, fs_->SetAttr(root_, f.ino, SizeReq(100)));
  EXPECT_EQ(d.size, 100u);
  EXPECT_GT(Cmp(d.mtime, c.mtime), 0);
  EXPECT_GT(Cmp(d.ctime, c.ctime), 0);

  // Times survive a remount exactly.
  ASSERT_OK(fs_->SetAttr(root_, f.ino, set));
  Attributes before = Attr(f.ino);
  Remount();
  Attributes after = Attr(f.ino);
  EXPECT_EQ(after.atime, before.atime);
  EXPECT_EQ(after.mtime, before.mtime);
  EXPECT_EQ(after.ctime, before.ctime);
}

TEST_F(FilesystemTest, RelatimeAndNoatime) {
  Attributes f = MakeFile(kRoot, "f");
  std::this_thread::sleep_for(2ms);
  // relatime: atime == mtime, so the first read updates it, the second not.
  ASSERT_OK(ReadFile(f.ino, 0, 10));
  Attributes r1 = Attr(f.ino);
  EXPECT_GT(Cmp(r1.atime, f.atime), 0);
  std::this_thread::sleep_for(2ms);
  ASSERT_OK(ReadFile(f.ino, 0, 10));
  EXPECT_EQ(Attr(f.ino).atime, r1.atime);

  Remount();  // the lazily written atime was persisted
  EXPECT_EQ(Attr(f.ino).atime, r1.atime);

  ASSERT_OK(fs_->Shutdown());
  fs_.reset();
  options_.atime = false;
  Mount();
  Attributes g = MakeFile(kRoot, "g");
  std::this_thread::sleep_for(2ms);
  ASSERT_OK(ReadFile(g.ino, 0, 10));
  EXPECT_EQ(Attr(g.ino).atime, g.atime);
}

// ---------------------------------------------------------------------------
// Open, handles, read-only

TEST_F(FilesystemTest, OpenFlagsAndHandles) {
  Attributes f = MakeFile(kRoot, "f");
  Attributes d = MakeDir(kRoot, "d");
  EXPECT_ERRNO(fs_->Open(root_, d.ino, O_WRONLY), EISDIR);
  EXPECT_ERRNO(fs_->Open(root_, d.ino, O_RDWR), EISDIR);
  EXPECT_ERRNO(fs_->Open(root_, 424242, O_RDONLY), ENOENT);
  EXPECT_ERRNO(fs_->Open(root_, f.ino, O_ACCMODE), EINVAL);

  ASSERT_OK_AND_ASSIGN(OpenFile ro, fs_->Open(root_, f.ino, O_RDONLY));
  EXPECT_TRUE(ro.direct_io);
  char c = 'x';
  EXPECT_ERRNO(fs_->Write(f.ino, ro.fh, 0, &c, 1), EBADF);
  ASSERT_OK_AND_ASSIGN(OpenFile wo, fs_->Open(root_, f.ino, O_WRONLY));
  EXPECT_ERRNO(fs_->Read(f.ino, wo.fh, 0, 1, &c), EBADF);
  EXPECT_ERRNO(fs_->Read(f.ino, 999999, 0, 1, &c), EBADF);
  EXPECT_ERRNO(fs_->Read(d.ino, ro.fh, 0, 1, &c), EBADF);  // handle of another inode
  EXPECT_OK(fs_->Flush(f.ino, ro.fh));
  EXPECT_OK(fs_->Release(f.ino, ro.fh));
  EXPECT_OK(fs_->Release(f.ino, wo.fh));
  EXPECT_ERRNO(fs_->Release(f.ino, wo.fh), EBADF);

  // O_TRUNC truncates.
  ASSERT_OK(fs_->SetAttr(root_, f.ino, SizeReq(5000)));
  ASSERT_OK_AND_ASSIGN(OpenFile tr, fs_->Open(root_, f.ino, O_WRONLY | O_TRUNC));
  EXPECT_EQ(Attr(f.ino).size, 0u);
  EXPECT_OK(fs_->Release(f.ino, tr.fh));

  ASSERT_OK(fs_->Shutdown());
  fs_.reset();
  options_.kernel_cache = true;
  Mount();
  ASSERT_OK_AND_ASSIGN(OpenFile kc, fs_->Open(root_, f.ino, O_RDONLY));
  EXPECT_FALSE(kc.direct_io);
  EXPECT_OK(fs_->Release(f.ino, kc.fh));
}

TEST_F(FilesystemTest, ReadOnlyMount) {
  Attributes f = MakeFile(kRoot, "f");
  Attributes d = MakeDir(kRoot, "d");
  ASSERT_OK(fs_->SetXattr(root_, f.ino, "user.a", "1", 0));
  ASSERT_OK(fs_->Shutdown());
  fs_.reset();
  options_.read_only = true;
  Mount();
  EXPECT_ERRNO(fs_->Mkdir(root_, kRoot, "x", 0755), EROFS);
  EXPECT_ERRNO(fs_->Create(root_, kRoot, "x", 0644, O_CREAT | O_RDWR), EROFS);
  EXPECT_ERRNO(fs_->Mknod(root_, kRoot, "x", S_IFIFO | 0644, 0), EROFS);
  EXPECT_ERRNO(fs_->Symlink(root_, kRoot, "x", "t"), EROFS);
  EXPECT_ERRNO(fs_->Link(root_, f.ino, kRoot, "x"), EROFS);
  EXPECT_ERRNO(fs_->Unlink(root_, kRoot, "f"), EROFS);
  EXPECT_ERRNO(fs_->Rmdir(root_, kRoot, "d"), EROFS);
  EXPECT_ERRNO(fs_->Rename(root_, kRoot, "f", kRoot, "g", 0), EROFS);
  EXPECT_ERRNO(fs_->SetAttr(root_, f.ino, ModeReq(0600)), EROFS);
  EXPECT_ERRNO(fs_->SetAttr(root_, f.ino, SizeReq(0)), EROFS);
  EXPECT_ERRNO(fs_->SetXattr(root_, f.ino, "user.b", "2", 0), EROFS);
  EXPECT_ERRNO(fs_->RemoveXattr(root_, f.ino, "user.a"), EROFS);
  EXPECT_ERRNO(fs_->Open(root_, f.ino, O_WRONLY), EROFS);
  EXPECT_ERRNO(fs_->Open(root_, f.ino, O_RDONLY | O_TRUNC), EROFS);
  EXPECT_ERRNO(fs_->Access(root_, f.ino, W_OK), EROFS);
  // Reading works, without atime updates.
  EXPECT_OK(fs_->Lookup(root_, kRoot, "f"));
  EXPECT_OK(fs_->GetXattr(f.ino, "user.a"));
  EXPECT_OK(ReadFile(f.ino, 0, 1));
  EXPECT_EQ(List(kRoot).size(), 2u);
  (void)d;
  // Remount read-write.
  ASSERT_OK(fs_->SetReadOnly(false));
  EXPECT_OK(fs_->Mkdir(root_, kRoot, "x", 0755));
  ASSERT_OK(fs_->SetReadOnly(true));
  EXPECT_ERRNO(fs_->Mkdir(root_, kRoot, "y", 0755), EROFS);
}

// ---------------------------------------------------------------------------
// Xattrs

TEST_F(FilesystemTest, Xattrs) {
  Attributes f = MakeFile(kRoot, "f");
  std::this_thread::sleep_for(2ms);
  ASSERT_OK(fs_->SetXattr(root_, f.ino, "user.one", "value1", 0));
  EXPECT_GT(Cmp(Attr(f.ino).ctime, f.ctime), 0);
  ASSERT_OK(fs_->SetXattr(root_, f.ino, "trusted.two", std::string("bin\0ary", 7), 0));
  ASSERT_OK(fs_->SetXattr(root_, f.ino, "security.three", "", 0));
  ASSERT_OK_AND_ASSIGN(std::string v, fs_->GetXattr(f.ino, "user.one"));
  EXPECT_EQ(v, "value1");
  ASSERT_OK_AND_ASSIGN(std::string bin, fs_->GetXattr(f.ino, "trusted.two"));
  EXPECT_EQ(bin, std::string("bin\0ary", 7));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, fs_->ListXattr(f.ino));
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()),
            (std::set<std::string>{"user.one", "trusted.two", "security.three"}));

  EXPECT_ERRNO(fs_->SetXattr(root_, f.ino, "user.one", "x", XATTR_CREATE), EEXIST);
  EXPECT_ERRNO(fs_->SetXattr(root_, f.ino, "user.none", "x", XATTR_REPLACE), ENODATA);
  EXPECT_ERRNO(fs_->SetXattr(root_, f.ino, "user.x", "x", XATTR_CREATE | XATTR_REPLACE), EINVAL);
  ASSERT_OK(fs_->SetXattr(root_, f.ino, "user.one", "replaced", XATTR_REPLACE));
  EXPECT_EQ(*fs_->GetXattr(f.ino, "user.one"), "replaced");
  EXPECT_ERRNO(fs_->GetXattr(f.ino, "user.none"), ENODATA);
  EXPECT_ERRNO(fs_->GetXattr(f.ino, "other.ns"), EOPNOTSUPP);
  EXPECT_ERRNO(fs_->SetXattr(root_, f.ino, "system.other", "x", 0), EOPNOTSUPP);
  EXPECT_ERRNO(fs_->SetXattr(root_, f.ino, "system.posix_acl_access", "x", 0), EINVAL);
  EXPECT_ERRNO(fs_->SetXattr(root_, f.ino, "user." + std::string(251, 'n'), "x", 0), ERANGE);
  EXPECT_OK(fs_->SetXattr(root_, f.ino, "user." + std::string(250, 'n'), "x", 0));
  EXPECT_OK(fs_->SetXattr(root_, f.ino, "user.big", std::string(64 * 1024, 'v'), 0));
  EXPECT_ERRNO(fs_->SetXattr(root_, f.ino, "user.huge", std::string(64 * 1024 + 1, 'v'), 0), E2BIG);
  EXPECT_ERRNO(fs_->RemoveXattr(root_, f.ino, "user.none"), ENODATA);
  ASSERT_OK(fs_->RemoveXattr(root_, f.ino, "user.one"));
  EXPECT_ERRNO(fs_->GetXattr(f.ino, "user.one"), ENODATA);

  // Permissions: user.* needs write access and lives only on files and
  // directories; trusted.* and security.* need root.
  ASSERT_OK_AND_ASSIGN(Attributes l, fs_->Symlink(root_, kRoot, "l", "f"));
  EXPECT_ERRNO(fs_->SetXattr(root_, l.ino, "user.x", "1", 0), EPERM);
  EXPECT_ERRNO(fs_->SetXattr(user_, f.ino, "user.x", "1", 0), EACCES);
  EXPECT_ERRNO(fs_->SetXattr(user_, f.ino, "trusted.x", "1", 0), EPERM);
  ASSERT_OK(fs_->SetAttr(root_, f.ino, ModeReq(0666)));
  EXPECT_OK(fs_->SetXattr(user_, f.ino, "user.x", "1", 0));

  Remount();
  EXPECT_EQ(*fs_->GetXattr(f.ino, "trusted.two"), std::string("bin\0ary", 7));
  EXPECT_EQ(*fs_->GetXattr(f.ino, "user.x"), "1");
}

// ---------------------------------------------------------------------------
// Persistence

TEST_F(FilesystemTest, EverythingSurvivesRemount) {
  Attributes d = MakeDir(kRoot, "dir", 0750);
  Attributes f = MakeFile(d.ino, "file", 0640);
  ASSERT_OK(fs_->SetAttr(root_, f.ino, OwnerReq(12, 34)));
  ASSERT_OK(fs_->SetAttr(root_, f.ino, SizeReq(12345)));
  ASSERT_OK(fs_->Symlink(root_, d.ino, "link", "file"));
  ASSERT_OK(fs_->Link(root_, f.ino, kRoot, "hard"));
  ASSERT_OK(fs_->Mknod(root_, d.ino, "fifo", S_IFIFO | 0600, 0));
  ASSERT_OK(fs_->SetXattr(root_, d.ino, "user.k", "v", 0));
  const Attributes before = Attr(f.ino);
  const std::vector<std::string> names = List(d.ino);
  Remount();
  ASSERT_OK_AND_ASSIGN(Attributes dd, fs_->Lookup(root_, kRoot, "dir"));
  EXPECT_EQ(dd.ino, d.ino);
  EXPECT_EQ(dd.mode & 07777, 0750u);
  EXPECT_EQ(dd.nlink, 2u);
  const Attributes after = Attr(f.ino);
  EXPECT_EQ(after.mode, before.mode);
  EXPECT_EQ(after.uid, 12u);
  EXPECT_EQ(after.gid, 34u);
  EXPECT_EQ(after.size, 12345u);
  EXPECT_EQ(after.nlink, 2u);
  EXPECT_EQ(after.mtime, before.mtime);
  EXPECT_EQ(List(d.ino), names);
  ASSERT_OK_AND_ASSIGN(Attributes l, fs_->Lookup(root_, d.ino, "link"));
  EXPECT_EQ(*fs_->Readlink(l.ino), "file");
  EXPECT_EQ(*fs_->GetXattr(d.ino, "user.k"), "v");
  // New inode numbers do not collide with the old ones.
  Attributes n = MakeFile(kRoot, "new");
  EXPECT_GT(n.ino, f.ino);
  ASSERT_OK_AND_ASSIGN(FsStats st, fs_->StatFs());
  EXPECT_EQ(st.files - st.files_free, 6u);  // root, dir, file (also "hard"), link, fifo, new
}

// ---------------------------------------------------------------------------
// Inode cache, shrinker and eviction

TEST_F(FilesystemTest, ShrinkerEvictsIdleBodiesKeepsReferencedStubs) {
  Attributes d = MakeDir(kRoot, "d");
  std::vector<Attributes> files;
  for (int i = 0; i < 50; ++i) files.push_back(MakeFile(d.ino, "f" + std::to_string(i)));
  // The kernel forgets half of them.
  for (int i = 0; i < 25; ++i) fs_->Forget(files[i].ino, 1);
  const uint64_t stubs_before = Stat("inode_stubs");
  const uint64_t evicted_before = Stat("inode_bodies_evicted");
  fs_->memory().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
  EXPECT_GE(Stat("inode_bodies_evicted") - evicted_before, 50u);
  EXPECT_LE(Stat("inode_stubs"), stubs_before - 25);
  EXPECT_LT(Stat("inode_body_bytes"), 50 * 100u);
  // Referenced nodes still answer (their bodies are reloaded).
  const uint64_t loaded_before = Stat("inode_bodies_loaded");
  for (int i = 25; i < 50; ++i) {
    ASSERT_OK_AND_ASSIGN(Attributes a, fs_->GetAttr(files[i].ino));
    EXPECT_EQ(a.ino, files[i].ino);
    EXPECT_EQ(a.mode, files[i].mode);
  }
  EXPECT_GE(Stat("inode_bodies_loaded") - loaded_before, 25u);
  // Forgotten ones too, by lookup.
  ASSERT_OK_AND_ASSIGN(Attributes a0, fs_->Lookup(root_, d.ino, "f0"));
  EXPECT_EQ(a0.ino, files[0].ino);
}

TEST_F(FilesystemTest, BusyInodeGoesToRetryQueue) {
  Attributes f = MakeFile(kRoot, "f");
  std::this_thread::sleep_for(2ms);
  // A read makes the record dirty (atime), so eviction would have to write.
  ASSERT_OK(ReadFile(f.ino, 0, 1));
  const Attributes dirty = Attr(f.ino);
  EXPECT_GT(Cmp(dirty.atime, f.atime), 0);
  const uint64_t evicted_before = Stat("inode_bodies_evicted");
  fs_->memory().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
  EXPECT_GE(Stat("evict_deferred"), 1u);
  ASSERT_TRUE(WaitFor([&] { return Stat("evict_done") >= 1 && Stat("evict_pending") == 0; }));
  EXPECT_GT(Stat("inode_bodies_evicted"), evicted_before);
  // The retry queue wrote the record: it reloads with the new atime.
  EXPECT_EQ(Attr(f.ino).atime, dirty.atime);
}

TEST_F(FilesystemTest, ShutdownWaitsForQueuedEvictions) {
  std::vector<Attributes> files;
  for (int i = 0; i < 20; ++i) files.push_back(MakeFile(kRoot, "f" + std::to_string(i)));
  std::this_thread::sleep_for(2ms);
  std::vector<storage::Timespec> atimes;
  for (auto& f : files) {
    ASSERT_OK(ReadFile(f.ino, 0, 1));
    atimes.push_back(Attr(f.ino).atime);
  }
  fs_->memory().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
  EXPECT_GE(Stat("evict_deferred"), 20u);
  ASSERT_OK(fs_->Shutdown());
  EXPECT_EQ(Stat("evict_pending"), 0u);
  EXPECT_GE(Stat("evict_done"), 20u);
  fs_.reset();
  Mount();
  for (size_t i = 0; i < files.size(); ++i) EXPECT_EQ(Attr(files[i].ino).atime, atimes[i]);
}

TEST_F(FilesystemTest, InvalidatorCalledFromWorkerThread) {
  ASSERT_OK(fs_->Shutdown());
  fs_.reset();
  options_.inode_cache_fraction = 0;  // always over its share
  Mount();
  std::mutex mu;
  std::vector<Filesystem::InvalRequest> got;
  std::set<std::thread::id> threads;
  fs_->SetInvalidator([&](const Filesystem::InvalRequest& r) {
    std::lock_guard l(mu);
    got.push_back(r);
    threads.insert(std::this_thread::get_id());
  });
  Attributes d = MakeDir(kRoot, "d");
  for (int i = 0; i < 10; ++i) MakeFile(d.ino, "f" + std::to_string(i));
  fs_->memory().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard l(mu);
    return got.size() >= 10;
  }));
  std::lock_guard l(mu);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
  std::set<std::string> names;
  for (auto& r : got) {
    if (r.parent == d.ino) names.insert(r.name);
  }
  EXPECT_EQ(names.size(), 10u);
  fs_->SetInvalidator(nullptr);
}

TEST_F(FilesystemTest, ConcurrentNamespaceOpsWithReclaim) {
  std::atomic<bool> stop{false};
  std::thread reclaimer([&] {
    while (!stop) {
      fs_->memory().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
      std::this_thread::sleep_for(1ms);
    }
  });
  Attributes shared = MakeDir(kRoot, "shared", 0777);
  std::vector<std::thread> workers;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      RequestContext ctx = root_;
      const std::string prefix = "t" + std::to_string(t) + "_";
      for (int i = 0; i < 60; ++i) {
        const std::string n = prefix + std::to_string(i);
        auto c = fs_->Create(ctx, shared.ino, n, 0644, O_CREAT | O_EXCL | O_RDWR);
        if (!c.ok()) {
          ++failures;
          continue;
        }
        if (!fs_->Release(c->first.ino, c->second.fh).ok()) ++failures;
        if (!fs_->GetAttr(c->first.ino).ok()) ++failures;
        if (!fs_->SetXattr(ctx, c->first.ino, "user.i", n, 0).ok()) ++failures;
        if (i % 3 == 0) {
          if (!fs_->Rename(ctx, shared.ino, n, shared.ino, n + "r", 0).ok()) ++failures;
        } else if (i % 3 == 1) {
          if (!fs_->Unlink(ctx, shared.ino, n).ok()) ++failures;
          fs_->Forget(c->first.ino, 1);
        }
        auto l = fs_->Lookup(ctx, shared.ino, i % 3 == 0 ? n + "r" : n);
        if (i % 3 == 1) {
          if (l.ok()) ++failures;
        } else if (!l.ok()) {
          ++failures;
        } else {
          fs_->Forget(l->ino, 1);
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  stop = true;
  reclaimer.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(List(shared.ino).size(), 4u * 40);
  Remount();
  EXPECT_EQ(List(shared.ino).size(), 4u * 40);
}

// ---------------------------------------------------------------------------
// Orphans

TEST_F(FilesystemTest, OrphanRecoveryFreesBlocks) {
  ASSERT_OK_AND_ASSIGN(FsStats empty, fs_->StatFs());
  ASSERT_OK(fs_->Shutdown());
  fs_.reset();
  // What a crash leaves behind: an unlinked inode with data and an orphan
  // record.
  uint64_t ino = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto meta, storage::MetaStore::Open(store_ + "/meta", storage::MetaOptions()));
    ASSERT_OK_AND_ASSIGN(storage::Superblock sb, meta->ReadSuperblock());
    storage::Allocator alloc(sb.total_blocks());
    ASSERT_OK(alloc.Load(*meta));
    ASSERT_OK_AND_ASSIGN(std::vector<storage::BlockRun> runs, alloc.Allocate(16, 0, false));
    ino = meta->AllocateIno();
    storage::InodeRecord rec;
    rec.ino = ino;
    rec.mode = S_IFREG | 0644;
    rec.nlink = 0;
    rec.size = 16 * sb.block_size;
    storage::MetaStore::Batch batch;
    batch.PutInode(rec);
    uint64_t fb = 0;
    for (const auto& r : runs) {
      batch.PutExtent(ino, storage::Extent{fb, r.start, r.length, false});
      fb += r.length;
    }
    batch.AddOrphan(ino);
    batch.PutXattr(ino, "user.gone", "soon");
    ASSERT_OK(meta->Commit(batch, true, [&](storage::MetaStore::Batch& b) {
      alloc.CommitAllocation(runs, &b);
      return absl::OkStatus();
    }));
    EXPECT_EQ(alloc.free_blocks(), empty.blocks_free - 16);
  }
  Mount();
  EXPECT_EQ(Stat("orphans_replayed"), 1u);
  EXPECT_ERRNO(fs_->GetAttr(ino), ENOENT);
  ASSERT_OK_AND_ASSIGN(FsStats st, fs_->StatFs());
  EXPECT_EQ(st.blocks_free, empty.blocks_free);
  EXPECT_EQ(st.files, empty.files);
  Remount();
  EXPECT_EQ(Stat("orphans_replayed"), 0u);
}

TEST_F(FilesystemTest, UnlinkedInodeOrphanSurvivesCrashlessRemount) {
  // Unlinked while the kernel still refers to it at unmount: the orphan
  // record stays, and the next mount frees it.
  Attributes f = MakeFile(kRoot, "f");
  ASSERT_OK(fs_->Unlink(root_, kRoot, "f"));
  Remount();
  EXPECT_EQ(Stat("orphans_replayed"), 1u);
  EXPECT_ERRNO(fs_->GetAttr(f.ino), ENOENT);
}

// ---------------------------------------------------------------------------
// Data (needs FileData)

TEST_F(FilesystemTest, WriteReadAppendAndPersist) {
  Attributes f = MakeFile(kRoot, "f");
  ASSERT_OK(WriteFile(f.ino, 0, "hello world"));
  EXPECT_EQ(Attr(f.ino).size, 11u);
  ASSERT_OK_AND_ASSIGN(std::string got, ReadFile(f.ino, 0, 100));
  EXPECT_EQ(got, "hello world");
  ASSERT_OK_AND_ASSIGN(std::string mid, ReadFile(f.ino, 6, 3));
  EXPECT_EQ(mid, "wor");
  ASSERT_OK_AND_ASSIGN(std::string past, ReadFile(f.ino, 100, 10));
  EXPECT_EQ(past, "");

  ASSERT_OK_AND_ASSIGN(OpenFile ap, fs_->Open(root_, f.ino, O_WRONLY | O_APPEND));
  ASSERT_OK_AND_ASSIGN(size_t n, fs_->Write(f.ino, ap.fh, 0, "!!", 2));
  EXPECT_EQ(n, 2u);
  ASSERT_OK(fs_->Fsync(f.ino, ap.fh, false));
  ASSERT_OK(fs_->Release(f.ino, ap.fh));
  EXPECT_EQ(*ReadFile(f.ino, 0, 100), "hello world!!");

  Remount();
  EXPECT_EQ(Attr(f.ino).size, 13u);
  EXPECT_EQ(*ReadFile(f.ino, 0, 100), "hello world!!");
}

TEST_F(FilesystemTest, WriteClearsSetuidForNonRoot) {
  Attributes pub = MakeDir(kRoot, "pub", 0777);
  Attributes f = MakeFile(pub.ino, "suid", 06777);
  EXPECT_EQ(f.mode & 07777, 06777u);
  ASSERT_OK_AND_ASSIGN(OpenFile of, fs_->Open(user_, f.ino, O_WRONLY));
  // The kernel flags the writes of a caller without CAP_FSETID.
  WritePrivs privs;
  privs.kill_suidgid = true;
  ASSERT_OK(fs_->Write(f.ino, of.fh, 0, "x", 1, privs));
  ASSERT_OK(fs_->Release(f.ino, of.fh));
  EXPECT_EQ(Attr(f.ino).mode & 07777, 0777u);
}

TEST_F(FilesystemTest, UnlinkedOpenFileReadableUntilReleaseThenFreed) {
  ASSERT_OK_AND_ASSIGN(FsStats before, fs_->StatFs());
  auto c = fs_->Create(root_, kRoot, "victim", 0644, O_CREAT | O_EXCL | O_RDWR);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const uint64_t ino = c->first.ino;
  const uint64_t fh = c->second.fh;
  const std::string data(1 << 20, 'z');
  ASSERT_OK_AND_ASSIGN(size_t n, fs_->Write(ino, fh, 0, data.data(), data.size()));
  ASSERT_EQ(n, data.size());
  ASSERT_OK(fs_->Fsync(ino, fh, false));
  ASSERT_OK_AND_ASSIGN(FsStats written, fs_->StatFs());
  EXPECT_LE(written.blocks_free + 256, before.blocks_free);

  ASSERT_OK(fs_->Unlink(root_, kRoot, "victim"));
  fs_->Forget(ino, 1);  // the kernel drops its dentry
  EXPECT_ERRNO(fs_->Lookup(root_, kRoot, "victim"), ENOENT);
  std::string buf(4096, '\0');
  ASSERT_OK_AND_ASSIGN(size_t r, fs_->Read(ino, fh, 4096, buf.size(), buf.data()));
  EXPECT_EQ(r, buf.size());
  EXPECT_EQ(buf, std::string(4096, 'z'));
  EXPECT_EQ(Attr(ino).nlink, 0u);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(Stat("inode_deallocations"), 0u);

  ASSERT_OK(fs_->Release(ino, fh));
  ASSERT_TRUE(WaitFor([&] { return Stat("inode_deallocations") == 1; }));
  ASSERT_OK_AND_ASSIGN(FsStats after, fs_->StatFs());
  EXPECT_EQ(after.blocks_free, before.blocks_free);
  EXPECT_EQ(after.blocks_avail, before.blocks_avail);
}

TEST_F(FilesystemTest, TmpfileIsAnOrphanUntilLinked) {
  Attributes d = MakeDir(kRoot, "d");
  RequestContext masked = root_;
  masked.umask = 022;
  ASSERT_OK_AND_ASSIGN(auto t, fs_->Tmpfile(masked, d.ino, 0666, O_RDWR));
  const uint64_t ino = t.first.ino;
  EXPECT_EQ(t.first.nlink, 0u);
  EXPECT_EQ(t.first.mode, S_IFREG | 0644u);
  EXPECT_TRUE(List(d.ino).empty());
  ASSERT_OK(fs_->Write(ino, t.second.fh, 0, "tmp data", 8));
  EXPECT_ERRNO(fs_->Tmpfile(root_, d.ino, 0644, O_RDONLY), EINVAL);

  // Linking gives it a name and takes it off the orphan list.
  ASSERT_OK_AND_ASSIGN(Attributes linked, fs_->Link(root_, ino, d.ino, "named"));
  EXPECT_EQ(linked.nlink, 1u);
  ASSERT_OK(fs_->Release(ino, t.second.fh));
  fs_->Forget(ino, 2);  // the tmpfile's lookup and the link's
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(Stat("inode_deallocations"), 0u);
  Remount();
  EXPECT_EQ(Stat("orphans_replayed"), 0u);
  ASSERT_OK_AND_ASSIGN(Attributes again, fs_->Lookup(root_, d.ino, "named"));
  EXPECT_EQ(again.ino, ino);
  EXPECT_EQ(again.nlink, 1u);
  EXPECT_EQ(*ReadFile(ino, 0, 100), "tmp data");

  // Unlinked again, it is an ordinary removed file: no second name.
  ASSERT_OK_AND_ASSIGN(OpenFile of, fs_->Open(root_, ino, O_RDONLY));
  ASSERT_OK(fs_->Unlink(root_, d.ino, "named"));
  EXPECT_ERRNO(fs_->Link(root_, ino, d.ino, "back"), ENOENT);
  ASSERT_OK(fs_->Release(ino, of.fh));
  fs_->Forget(ino, 1);
  ASSERT_TRUE(WaitFor([&] { return Stat("inode_deallocations") == 1; }));
}

TEST_F(FilesystemTest, UnnamedTmpfileFreedOnCloseOrAtNextMount) {
  ASSERT_OK_AND_ASSIGN(FsStats before, fs_->StatFs());
  ASSERT_OK_AND_ASSIGN(auto t, fs_->Tmpfile(root_, kRoot, 0600, O_WRONLY));
  const std::string data(256 << 10, 'q');
  ASSERT_OK(fs_->Write(t.first.ino, t.second.fh, 0, data.data(), data.size()));
  ASSERT_OK(fs_->Fsync(t.first.ino, t.second.fh, false));
  ASSERT_OK(fs_->Release(t.first.ino, t.second.fh));
  fs_->Forget(t.first.ino, 1);
  ASSERT_TRUE(WaitFor([&] { return Stat("inode_deallocations") == 1; }));
  EXPECT_ERRNO(fs_->GetAttr(t.first.ino), ENOENT);
  ASSERT_OK_AND_ASSIGN(FsStats closed, fs_->StatFs());
  EXPECT_EQ(closed.blocks_free, before.blocks_free);

  // Still open at unmount (as after a crash): the next mount frees it.
  ASSERT_OK_AND_ASSIGN(auto u, fs_->Tmpfile(root_, kRoot, 0600, O_RDWR));
  ASSERT_OK(fs_->Write(u.first.ino, u.second.fh, 0, data.data(), data.size()));
  ASSERT_OK(fs_->Fsync(u.first.ino, u.second.fh, false));
  Remount();
  EXPECT_EQ(Stat("orphans_replayed"), 1u);
  EXPECT_ERRNO(fs_->GetAttr(u.first.ino), ENOENT);
  ASSERT_OK_AND_ASSIGN(FsStats after, fs_->StatFs());
  EXPECT_EQ(after.blocks_free, before.blocks_free);
}

TEST_F(FilesystemTest, StatFsFollowsWrites) {
  ASSERT_OK_AND_ASSIGN(FsStats st0, fs_->StatFs());
  EXPECT_EQ(st0.block_size, 4096u);
  EXPECT_EQ(st0.blocks, (64ull << 20) / 4096);
  EXPECT_EQ(st0.name_max, 255u);
  Attributes f = MakeFile(kRoot, "f");
  ASSERT_OK_AND_ASSIGN(FsStats st1, fs_->StatFs());
  EXPECT_EQ(st1.files - st1.files_free, st0.files - st0.files_free + 1);
  ASSERT_OK(WriteFile(f.ino, 0, std::string(512 * 1024, 'a')));
  ASSERT_OK_AND_ASSIGN(FsStats st2, fs_->StatFs());
  EXPECT_LE(st2.blocks_avail + 128, st1.blocks_avail);  // reserved or allocated
  ASSERT_OK_AND_ASSIGN(OpenFile of, fs_->Open(root_, f.ino, O_RDONLY));
  ASSERT_OK(fs_->Fsync(f.ino, of.fh, false));
  ASSERT_OK(fs_->Release(f.ino, of.fh));
  ASSERT_OK_AND_ASSIGN(FsStats st3, fs_->StatFs());
  EXPECT_LE(st3.blocks_free + 128, st1.blocks_free);
  EXPECT_GE(Attr(f.ino).blocks, 1024u);
}

TEST_F(FilesystemTest, SparseTerabyteFile) {
  Attributes f = MakeFile(kRoot, "big");
  ASSERT_OK_AND_ASSIGN(Attributes a, fs_->SetAttr(root_, f.ino, SizeReq(kTiB)));
  EXPECT_EQ(a.size, kTiB);
  ASSERT_OK(WriteFile(f.ino, kTiB - 4096, std::string(4096, 'e')));
  EXPECT_EQ(Attr(f.ino).size, kTiB);
  ASSERT_OK_AND_ASSIGN(std::string hole, ReadFile(f.ino, kTiB / 2, 8192));
  EXPECT_EQ(hole, std::string(8192, '\0'));
  ASSERT_OK_AND_ASSIGN(std::string end, ReadFile(f.ino, kTiB - 4096, 8192));
  EXPECT_EQ(end, std::string(4096, 'e'));
  // Writing past the end grows it.
  ASSERT_OK(WriteFile(f.ino, 2 * kTiB, "x"));
  EXPECT_EQ(Attr(f.ino).size, 2 * kTiB + 1);
  // SEEK_DATA / SEEK_HOLE.
  ASSERT_OK_AND_ASSIGN(OpenFile of, fs_->Open(root_, f.ino, O_RDONLY));
  ASSERT_OK_AND_ASSIGN(uint64_t data_at, fs_->Lseek(f.ino, of.fh, 0, SEEK_DATA));
  EXPECT_EQ(data_at, kTiB - 4096);
  ASSERT_OK_AND_ASSIGN(uint64_t hole_at, fs_->Lseek(f.ino, of.fh, 0, SEEK_HOLE));
  EXPECT_EQ(hole_at, 0u);
  EXPECT_ERRNO(fs_->Lseek(f.ino, of.fh, 3 * kTiB, SEEK_DATA), ENXIO);
  EXPECT_ERRNO(fs_->Lseek(f.ino, of.fh, 0, SEEK_END), EINVAL);
  ASSERT_OK(fs_->Release(f.ino, of.fh));
  Remount();
  EXPECT_EQ(Attr(f.ino).size, 2 * kTiB + 1);
  EXPECT_EQ(*ReadFile(f.ino, kTiB - 4096, 4096), std::string(4096, 'e'));
}

TEST_F(FilesystemTest, FileSizeLimit) {
  Attributes f = MakeFile(kRoot, "f");
  EXPECT_OK(fs_->SetAttr(root_, f.ino, SizeReq(8 * kTiB)));
  EXPECT_ERRNO(fs_->SetAttr(root_, f.ino, SizeReq(1ull << 62)), EFBIG);
  ASSERT_OK_AND_ASSIGN(OpenFile of, fs_->Open(root_, f.ino, O_RDWR));
  char c = 'x';
  EXPECT_ERRNO(fs_->Write(f.ino, of.fh, 1ull << 62, &c, 1), EFBIG);
  EXPECT_ERRNO(fs_->Fallocate(root_, f.ino, of.fh, 0, 1ull << 62, 4096), EFBIG);
  EXPECT_ERRNO(fs_->SetAttr(root_, MakeDir(kRoot, "d").ino, SizeReq(0)), EISDIR);
  ASSERT_OK(fs_->Release(f.ino, of.fh));
}

TEST_F(FilesystemTest, FallocateModes) {
  Attributes f = MakeFile(kRoot, "f");
  ASSERT_OK_AND_ASSIGN(OpenFile of, fs_->Open(root_, f.ino, O_RDWR));
  EXPECT_ERRNO(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), EINVAL);  // past EOF
  EXPECT_ERRNO(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4096),
               EOPNOTSUPP);
  EXPECT_ERRNO(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                              0, 4096),
               EOPNOTSUPP);
  EXPECT_ERRNO(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_PUNCH_HOLE, 0, 4096), EOPNOTSUPP);
  ASSERT_OK(fs_->Fallocate(root_, f.ino, of.fh, 0, 0, 64 * 1024));
  EXPECT_EQ(Attr(f.ino).size, 64u * 1024);
  EXPECT_GE(Attr(f.ino).blocks, 128u);
  ASSERT_OK(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_KEEP_SIZE, 64 * 1024, 64 * 1024));
  EXPECT_EQ(Attr(f.ino).size, 64u * 1024);
  ASSERT_OK_AND_ASSIGN(size_t n, fs_->Write(f.ino, of.fh, 0, std::string(16384, 'q').data(), 16384));
  EXPECT_EQ(n, 16384u);
  ASSERT_OK(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192));
  std::string buf(16384, '\0');
  ASSERT_OK_AND_ASSIGN(size_t r, fs_->Read(f.ino, of.fh, 0, buf.size(), buf.data()));
  ASSERT_EQ(r, buf.size());
  EXPECT_EQ(buf.substr(0, 4096), std::string(4096, 'q'));
  EXPECT_EQ(buf.substr(4096, 8192), std::string(8192, '\0'));
  EXPECT_EQ(buf.substr(12288), std::string(4096, 'q'));
  ASSERT_OK(fs_->Release(f.ino, of.fh));
  ASSERT_OK_AND_ASSIGN(OpenFile ro, fs_->Open(root_, f.ino, O_RDONLY));
  EXPECT_ERRNO(fs_->Fallocate(root_, f.ino, ro.fh, 0, 0, 4096), EBADF);
  ASSERT_OK(fs_->Release(f.ino, ro.fh));
}

// ZERO_RANGE, COLLAPSE_RANGE and INSERT_RANGE called directly (the kernel's
// FUSE client may not pass all of them): a fixed-seed random sequence mixed
// with writes, truncates, punches and reads, compared with a model, across
// remounts; then the errors.
TEST_F(FilesystemTest, FallocateZeroCollapseInsertMatchModel) {
  constexpr uint64_t kPage = 4096;
  Attributes f = MakeFile(kRoot, "f");
  std::string model;
  int shifts = 0, zeroes = 0;
  std::mt19937_64 rng(20261130);
  auto below = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  auto check = [&](const std::string& when) {
    ASSERT_EQ(Attr(f.ino).size, model.size()) << when;
    ASSERT_OK_AND_ASSIGN(std::string got, ReadFile(f.ino, 0, model.size() + kPage));
    ASSERT_EQ(got.size(), model.size()) << when;
    for (size_t i = 0; i < model.size(); ++i) {
      ASSERT_EQ(got[i], model[i]) << when << ": first difference at byte " << i;
    }
  };
  for (int step = 0; step < 300; ++step) {
    if (step == 150) {
      Remount();
      ASSERT_NO_FATAL_FAILURE(check("after the remount halfway"));
    }
    ASSERT_OK_AND_ASSIGN(OpenFile of, fs_->Open(root_, f.ino, O_RDWR));
    const uint64_t size = model.size();
    const std::string what = "step " + std::to_string(step);
    SCOPED_TRACE(what);
    switch (below(8)) {
      case 0: {  // write, sometimes past EOF
        const uint64_t off = below(size + 3 * kPage), len = 1 + below(3 * kPage);
        const std::string data(len, static_cast<char>('a' + step % 26));
        ASSERT_OK(fs_->Write(f.ino, of.fh, off, data.data(), len));
        if (model.size() < off + len) model.resize(off + len, '\0');
        model.replace(off, len, data);
        break;
      }
      case 1: {
        const uint64_t to = below(size + 2 * kPage);
        ASSERT_OK(fs_->SetAttr(root_, f.ino, SizeReq(to)));
        model.resize(to, '\0');
        break;
      }
      case 2: {  // punch
        const uint64_t off = below(size + kPage), len = 1 + below(4 * kPage);
        ASSERT_OK(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len));
        if (off < size) std::fill_n(model.begin() + off, std::min(len, size - off), '\0');
        break;
      }
      case 3: {  // zero, with or without KEEP_SIZE
        const uint64_t off = below(size + kPage), len = 1 + below(4 * kPage);
        const bool keep = below(2);
        ASSERT_OK(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_ZERO_RANGE | (keep ? FALLOC_FL_KEEP_SIZE : 0),
                                 off, len));
        if (!keep && model.size() < off + len) model.resize(off + len, '\0');
        if (off < model.size()) std::fill_n(model.begin() + off, std::min(len, model.size() - off), '\0');
        ++zeroes;
        break;
      }
      case 4: {  // collapse
        const uint64_t blocks = size / kPage;
        if (blocks < 2) break;
        const uint64_t first = below(blocks - 1), n = 1 + below(std::min<uint64_t>(4, blocks - 1 - first));
        ASSERT_OK(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_COLLAPSE_RANGE, first * kPage, n * kPage));
        model.erase(first * kPage, n * kPage);
        ++shifts;
        break;
      }
      case 5: {  // insert
        if (size == 0) break;
        const uint64_t first = below(DivUpPages(size)), n = 1 + below(4);
        ASSERT_OK(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_INSERT_RANGE, first * kPage, n * kPage));
        model.insert(first * kPage, n * kPage, '\0');
        ++shifts;
        break;
      }
      case 6:
        ASSERT_NO_FATAL_FAILURE(check(what));
        break;
      case 7: {  // preallocate, with or without KEEP_SIZE
        const uint64_t off = below(size + 2 * kPage), len = 1 + below(4 * kPage);
        const bool keep = below(2);
        ASSERT_OK(fs_->Fallocate(root_, f.ino, of.fh, keep ? FALLOC_FL_KEEP_SIZE : 0, off, len));
        if (!keep && model.size() < off + len) model.resize(off + len, '\0');
        break;
      }
    }
    ASSERT_OK(fs_->Release(f.ino, of.fh));
  }
  ASSERT_NO_FATAL_FAILURE(check("at the end"));
  EXPECT_GT(shifts, 50);
  EXPECT_GT(zeroes, 20);
  Remount();
  ASSERT_NO_FATAL_FAILURE(check("after the last remount"));

  // Errors.
  ASSERT_OK(fs_->SetAttr(root_, f.ino, SizeReq(8 * kPage)));
  model.resize(8 * kPage, '\0');
  ASSERT_OK_AND_ASSIGN(OpenFile of, fs_->Open(root_, f.ino, O_RDWR));
  EXPECT_ERRNO(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_COLLAPSE_RANGE, 100, kPage), EINVAL);
  EXPECT_ERRNO(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_COLLAPSE_RANGE, 0, 100), EINVAL);
  EXPECT_ERRNO(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_COLLAPSE_RANGE, 4 * kPage, 4 * kPage), EINVAL);
  EXPECT_ERRNO(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_INSERT_RANGE, kPage, 100), EINVAL);
  EXPECT_ERRNO(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_INSERT_RANGE, 8 * kPage, kPage), EINVAL);
  EXPECT_ERRNO(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_INSERT_RANGE, 0, 16 * kTiB), EFBIG);
  EXPECT_ERRNO(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_INSERT_RANGE | FALLOC_FL_KEEP_SIZE, 0, kPage),
               EOPNOTSUPP);
  EXPECT_EQ(Attr(f.ino).size, 8 * kPage);  // nothing changed
  ASSERT_OK(fs_->Release(f.ino, of.fh));
  ASSERT_NO_FATAL_FAILURE(check("after the errors"));
  EXPECT_ERRNO(fs_->Fallocate(root_, MakeDir(kRoot, "d").ino, of.fh, FALLOC_FL_ZERO_RANGE, 0, kPage), EBADF);
}

// Zeroing keeps (or makes) the range allocated: no block is freed, holes get
// blocks, and the range reads as zeros after a remount.
TEST_F(FilesystemTest, FallocateZeroRangeAllocates) {
  constexpr uint64_t kPage = 4096;
  Attributes f = MakeFile(kRoot, "f");
  ASSERT_OK(WriteFile(f.ino, 0, std::string(4 * kPage, 'w')));
  ASSERT_OK_AND_ASSIGN(OpenFile of, fs_->Open(root_, f.ino, O_RDWR));
  ASSERT_OK(fs_->Fsync(f.ino, of.fh, false));
  const uint64_t written = Attr(f.ino).blocks;
  // Over written blocks and a hole past EOF, growing the file.
  ASSERT_OK(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_ZERO_RANGE, kPage + 10, 6 * kPage));
  EXPECT_EQ(Attr(f.ino).size, 7 * kPage + 10);
  EXPECT_GE(Attr(f.ino).blocks, 8 * (kPage / 512)) << "zeroed range not allocated (was " << written << ")";
  // KEEP_SIZE past EOF allocates without growing.
  ASSERT_OK(fs_->Fallocate(root_, f.ino, of.fh, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 16 * kPage, 4 * kPage));
  EXPECT_EQ(Attr(f.ino).size, 7 * kPage + 10);
  EXPECT_GE(Attr(f.ino).blocks, 12 * (kPage / 512));
  ASSERT_OK(fs_->Release(f.ino, of.fh));
  Remount();
  ASSERT_OK_AND_ASSIGN(std::string got, ReadFile(f.ino, 0, 8 * kPage));
  ASSERT_EQ(got.size(), 7 * kPage + 10);
  EXPECT_EQ(got.substr(0, kPage + 10), std::string(kPage + 10, 'w'));
  EXPECT_EQ(got.substr(kPage + 10), std::string(6 * kPage, '\0'));
  EXPECT_GE(Attr(f.ino).blocks, 12 * (kPage / 512));
}

// Each mode over a file whose blocks are in every state: written back (0-3),
// a hole (4-5), preallocated (6-9), dirty in the cache (10-13) and a dirty
// partial last block (14); compared with a model before and after a remount.
TEST_F(FilesystemTest, FallocateModesOverMixedBlockStates) {
  constexpr uint64_t kPage = 4096;
  struct Op {
    int mode;
    uint64_t off, len;
  };
  const Op ops[] = {
      {FALLOC_FL_ZERO_RANGE, 1000, 13 * kPage + 7},
      {FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 12 * kPage + 3000, 8 * kPage},
      {FALLOC_FL_COLLAPSE_RANGE, 2 * kPage, 6 * kPage},   // written, hole, preallocated go
      {FALLOC_FL_COLLAPSE_RANGE, 8 * kPage, 2 * kPage},   // dirty pages go, the tail moves
      {FALLOC_FL_INSERT_RANGE, 3 * kPage, 5 * kPage},     // inside written-back data
      {FALLOC_FL_INSERT_RANGE, 11 * kPage, 2 * kPage},    // between dirty pages
      {FALLOC_FL_INSERT_RANGE, 14 * kPage, kPage},        // the partial last block moves
  };
  std::vector<std::pair<uint64_t, std::string>> files;
  for (const Op& op : ops) {
    SCOPED_TRACE("op " + std::to_string(files.size()));
    Attributes f = MakeFile(kRoot, "m" + std::to_string(files.size()));
    std::string model = std::string(4 * kPage, 'w');
    ASSERT_OK_AND_ASSIGN(OpenFile of, fs_->Open(root_, f.ino, O_RDWR));
    ASSERT_OK(fs_->Write(f.ino, of.fh, 0, model.data(), model.size()));
    ASSERT_OK(fs_->Fsync(f.ino, of.fh, false));
    ASSERT_OK(fs_->Fallocate(root_, f.ino, of.fh, 0, 6 * kPage, 4 * kPage));
    const std::string dirty(4 * kPage + 100, 'd');
    ASSERT_OK(fs_->Write(f.ino, of.fh, 10 * kPage, dirty.data(), dirty.size()));
    model.resize(10 * kPage, '\0');
    model += dirty;
    ASSERT_OK(fs_->Fallocate(root_, f.ino, of.fh, op.mode, op.off, op.len));
    switch (op.mode & ~FALLOC_FL_KEEP_SIZE) {
      case FALLOC_FL_ZERO_RANGE:
        if (!(op.mode & FALLOC_FL_KEEP_SIZE) && model.size() < op.off + op.len) model.resize(op.off + op.len, '\0');
        std::fill_n(model.begin() + op.off, std::min<uint64_t>(op.len, model.size() - op.off), '\0');
        break;
      case FALLOC_FL_COLLAPSE_RANGE: model.erase(op.off, op.len); break;
      case FALLOC_FL_INSERT_RANGE: model.insert(op.off, op.len, '\0'); break;
    }
    ASSERT_OK(fs_->Release(f.ino, of.fh));
    EXPECT_EQ(Attr(f.ino).size, model.size());
    ASSERT_OK_AND_ASSIGN(std::string got, ReadFile(f.ino, 0, model.size() + kPage));
    EXPECT_EQ(got, model);
    // st_blocks: a shift moves blocks, it does not lose or invent any.
    const uint64_t blocks = Attr(f.ino).blocks;
    EXPECT_GE(blocks, 8u) << "blocks lost";
    EXPECT_LE(blocks, (model.size() / kPage + 12) * (kPage / 512));
    files.emplace_back(f.ino, model);
  }
  Remount();
  for (const auto& [ino, model] : files) {
    EXPECT_EQ(Attr(ino).size, model.size());
    ASSERT_OK_AND_ASSIGN(std::string got, ReadFile(ino, 0, model.size() + kPage));
    EXPECT_EQ(got, model) << "inode " << ino << " after remount";
  }
}

// Space a zeroing allocated is there for the writes that follow, even on a
// full store.
TEST_F(FilesystemTest, FallocateZeroRangeReservesSpaceForLaterWrites) {
  Attributes z = MakeFile(kRoot, "z");
  ASSERT_OK_AND_ASSIGN(OpenFile zf, fs_->Open(root_, z.ino, O_RDWR));
  ASSERT_OK(fs_->Fallocate(root_, z.ino, zf.fh, FALLOC_FL_ZERO_RANGE, 0, 24 << 20));
  Attributes filler = MakeFile(kRoot, "filler");
  ASSERT_OK_AND_ASSIGN(OpenFile ff, fs_->Open(root_, filler.ino, O_RDWR));
  const std::string chunk(1 << 20, 'f');
  bool full = false;
  for (uint64_t off = 0; off < (64u << 20) && !full; off += chunk.size()) {
    auto n = fs_->Write(filler.ino, ff.fh, off, chunk.data(), chunk.size());
    if (!n.ok()) {
      ASSERT_EQ(ToErrno(n.status()), ENOSPC) << n.status().ToString();
      full = true;
    }
  }
  ASSERT_TRUE(full) << "the store never filled";
  const std::string data(24 << 20, 'z');
  ASSERT_OK_AND_ASSIGN(size_t n, fs_->Write(z.ino, zf.fh, 0, data.data(), data.size()));
  EXPECT_EQ(n, data.size());
  ASSERT_OK(fs_->Fsync(z.ino, zf.fh, false));
  ASSERT_OK(fs_->Release(z.ino, zf.fh));
  ASSERT_OK(fs_->Release(filler.ino, ff.fh));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadFile(z.ino, 0, data.size()));
  EXPECT_TRUE(got == data);
}

TEST_F(FilesystemTest, TruncateShrinksAndZeroes) {
  Attributes f = MakeFile(kRoot, "f");
  ASSERT_OK(WriteFile(f.ino, 0, std::string(10000, 'a')));
  ASSERT_OK(fs_->SetAttr(root_, f.ino, SizeReq(5000)));
  ASSERT_OK(fs_->SetAttr(root_, f.ino, SizeReq(9000)));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadFile(f.ino, 0, 10000));
  ASSERT_EQ(got.size(), 9000u);
  EXPECT_EQ(got.substr(0, 5000), std::string(5000, 'a'));
  EXPECT_EQ(got.substr(5000), std::string(4000, '\0'));
  Remount();
  EXPECT_EQ(*ReadFile(f.ino, 0, 10000), got);
}

TEST_F(FilesystemTest, ParallelWritersOnDifferentFiles) {
  constexpr int kThreads = 4;
  std::vector<Attributes> files;
  for (int t = 0; t < kThreads; ++t) files.push_back(MakeFile(kRoot, "w" + std::to_string(t)));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const uint64_t ino = files[t].ino;
      auto of = fs_->Open(root_, ino, O_RDWR);
      if (!of.ok()) {
        ++failures;
        return;
      }
      std::string block(8192, static_cast<char>('a' + t));
      for (int i = 0; i < 64; ++i) {
        auto n = fs_->Write(ino, of->fh, static_cast<uint64_t>(i) * block.size(), block.data(), block.size());
        if (!n.ok() || *n != block.size()) ++failures;
        std::string back(block.size(), '\0');
        auto r = fs_->Read(ino, of->fh, static_cast<uint64_t>(i) * block.size(), back.size(), back.data());
        if (!r.ok() || back != block) ++failures;
      }
      if (!fs_->Release(ino, of->fh).ok()) ++failures;
    });
  }
  std::thread reclaimer([&] {
    for (int i = 0; i < 50; ++i) {
      fs_->memory().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
      std::this_thread::sleep_for(1ms);
    }
  });
  for (auto& t : threads) t.join();
  reclaimer.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(Attr(files[t].ino).size, 64u * 8192);
  Remount();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(Attr(files[t].ino).size, 64u * 8192);
    EXPECT_EQ(*ReadFile(files[t].ino, 8192 * 10, 8192), std::string(8192, static_cast<char>('a' + t)));
  }
}

TEST_F(FilesystemTest, DirtyDataEvictionDeferredThenCompleted) {
  Attributes f = MakeFile(kRoot, "f");
  ASSERT_OK(WriteFile(f.ino, 0, std::string(64 * 1024, 'd')));
  // Dirty pages (or an attr-dirty record): the shrinker must not block.
  fs_->memory().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
  EXPECT_GE(Stat("evict_deferred"), 1u);
  ASSERT_TRUE(WaitFor([&] { return Stat("evict_pending") == 0; }));
  EXPECT_EQ(Attr(f.ino).size, 64u * 1024);
  EXPECT_EQ(*ReadFile(f.ino, 0, 64 * 1024), std::string(64 * 1024, 'd'));
}

TEST_F(FilesystemTest, StatsText) {
  const std::string text = fs_->StatsText();
  for (const char* key : {"budget_limit", "inode_stubs", "inode_bodies", "inode_bodies_loaded",
                          "inode_bodies_evicted", "evict_deferred", "evict_retried", "evict_done",
                          "inode_deallocations"}) {
    EXPECT_NE(text.find(std::string(key) + " "), std::string::npos) << key;
  }
}

}  // namespace
}  // namespace reclaimfs::fs

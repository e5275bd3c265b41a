// fsck's checks: clean on consistent stores, and each injected kind of
// corruption is reported.
#include "tools/fsck_checks.h"

#include <sys/stat.h>

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/allocator.h"
#include "temp_dir.h"

namespace reclaimfs::storage {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using tools::CheckStore;
using tools::FsckReport;

constexpr uint64_t kBlocks = 512;

class FsckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeStore(tmp_.path(), MkfsOptions{.size_bytes = kBlocks * 4096}).ok());
    MetaOptions o;
    o.lock_wait_ms = 0;
    auto m = MetaStore::Open(tmp_.Sub(kMetaDirName), o);
    ASSERT_TRUE(m.ok()) << m.status();
    meta_ = std::move(*m);
  }

  InodeRecord Inode(uint64_t ino, uint32_t mode, uint32_t nlink, uint64_t parent = 0,
                    uint64_t next_cookie = 3) {
    InodeRecord r;
    r.ino = ino;
    r.mode = mode;
    r.nlink = nlink;
    r.parent = parent;
    r.next_dir_cookie = next_cookie;
    return r;
  }

  void Commit(MetaStore::Batch& b) { ASSERT_TRUE(meta_->Commit(b, true).ok()); }

  // A consistent tree: /a (dir) with /a/f and a hard link /g to it, /a/b
  // (dir), /s (symlink); f owns blocks [0, 8) and [20, 24); an unlinked but
  // open file 9 (an orphan) owns [100, 104). Root's cookies 3..5 are used.
  void Populate() {
    MetaStore::Batch b;
    InodeRecord root = *meta_->GetInode(kRootIno);
    root.nlink = 3;  // . and .. plus /a's ..
    root.next_dir_cookie = 6;
    b.PutInode(root);
    b.PutInode(Inode(2, S_IFDIR | 0755, 3, kRootIno, 5));
    b.PutInode(Inode(3, S_IFREG | 0644, 2));
    b.PutInode(Inode(4, S_IFDIR | 0755, 2, 2));
    InodeRecord link = Inode(5, S_IFLNK | 0777, 1);
    link.symlink = "a/f";
    b.PutInode(link);
    b.PutInode(Inode(9, S_IFREG | 0644, 0));
    b.AddOrphan(9);
    b.PutDentry(kRootIno, "a", DirEntry{2, S_IFDIR, 3});
    b.PutDentry(kRootIno, "g", DirEntry{3, S_IFREG, 4});
    b.PutDentry(kRootIno, "s", DirEntry{5, S_IFLNK, 5});
    b.PutDentry(2, "f", DirEntry{3, S_IFREG, 3});
    b.PutDentry(2, "b", DirEntry{4, S_IFDIR, 4});
    b.PutExtent(3, Extent{0, 0, 8, false});
    b.PutExtent(3, Extent{8, 20, 4, true});
    b.PutExtent(9, Extent{0, 100, 4, false});
    // The free map without those blocks.
    b.DeleteFreeExtent(0);
    b.PutFreeExtent(8, 12);
    b.PutFreeExtent(24, 76);
    b.PutFreeExtent(104, kBlocks - 104);
    Commit(b);
  }

  FsckReport Check() {
    meta_.reset();  // fsck opens the store itself, read-only
    auto r = CheckStore(tmp_.path());
    EXPECT_TRUE(r.ok()) << r.status();
    MetaOptions o;
    o.lock_wait_ms = 0;
    auto m = MetaStore::Open(tmp_.Sub(kMetaDirName), o);
    EXPECT_TRUE(m.ok());
    if (m.ok()) meta_ = std::move(*m);
    return r.ok() ? *r : FsckReport{};
  }

  static std::string All(const FsckReport& r) {
    std::string s;
    for (const auto& p : r.problems) s += p + "\n";
    return s;
  }

  TempDir tmp_;
  std::unique_ptr<MetaStore> meta_;
};

TEST_F(FsckTest, FreshStoreIsClean) {
  FsckReport r = Check();
  EXPECT_TRUE(r.clean()) << All(r);
  EXPECT_EQ(r.inodes, 1u);
  EXPECT_EQ(r.free_blocks, kBlocks);
  EXPECT_EQ(r.total_blocks, kBlocks);
  EXPECT_THAT(r.Summary(), HasSubstr("clean"));
}

TEST_F(FsckTest, PopulatedStoreIsClean) {
  Populate();
  FsckReport r = Check();
  EXPECT_TRUE(r.clean()) << All(r);
  EXPECT_EQ(r.inodes, 6u);
  EXPECT_EQ(r.dentries, 5u);
  EXPECT_EQ(r.extents, 3u);
  EXPECT_EQ(r.orphans, 1u);
  EXPECT_EQ(r.used_blocks, 16u);
  EXPECT_EQ(r.free_blocks, kBlocks - 16);
}

TEST_F(FsckTest, StoreMadeByAllocatorIsClean) {
  // The allocator's own bookkeeping yields a store fsck accepts.
  Allocator alloc(kBlocks);
  ASSERT_TRUE(alloc.Load(*meta_).ok());
  auto runs = alloc.Allocate(50, 10, false);
  ASSERT_TRUE(runs.ok());
  MetaStore::Batch b;
  InodeRecord file = Inode(2, S_IFREG | 0644, 1);
  b.PutInode(file);
  InodeRecord root = *meta_->GetInode(kRootIno);
  root.next_dir_cookie = 4;
  b.PutInode(root);
  b.PutDentry(kRootIno, "file", DirEntry{2, S_IFREG, 3});
  uint64_t fb = 0;
  for (const auto& run : *runs) {
    b.PutExtent(2, Extent{fb, run.start, run.length, false});
    fb += run.length;
  }
  ASSERT_TRUE(meta_->Commit(b, true, [&](MetaStore::Batch& batch) {
    alloc.CommitAllocation(*runs, &batch);
    return absl::OkStatus();
  }).ok());
  FsckReport r = Check();
  EXPECT_TRUE(r.clean()) << All(r);
  EXPECT_EQ(r.used_blocks, 50u);
}

TEST_F(FsckTest, DanglingEntry) {
  Populate();
  MetaStore::Batch b;
  b.PutDentry(2, "ghost", DirEntry{77, S_IFREG, 4});  // also a duplicate cookie
  Commit(b);
  FsckReport r = Check();
  EXPECT_FALSE(r.clean());
  EXPECT_THAT(All(r), HasSubstr("names inode 77, which does not exist"));
}

TEST_F(FsckTest, WrongTypeInEntry) {
  Populate();
  MetaStore::Batch b;
  b.PutDentry(kRootIno, "s", DirEntry{5, S_IFREG, 5});
  Commit(b);
  EXPECT_THAT(All(Check()), HasSubstr("says type 0100000, inode 5 has type 0120000"));
}

TEST_F(FsckTest, WrongNlink) {
  Populate();
  MetaStore::Batch b;
  b.PutInode(Inode(3, S_IFREG | 0644, 1));          // two names
  b.PutInode(Inode(2, S_IFDIR | 0755, 2, kRootIno, 5));  // has a subdirectory
  Commit(b);
  const std::string all = All(Check());
  EXPECT_THAT(all, HasSubstr("inode 3 has nlink 1 but 2 entries name it"));
  EXPECT_THAT(all, HasSubstr("directory 2 has nlink 2, expected 3"));
}

TEST_F(FsckTest, UnlistedUnlinkedInodeIsALeak) {
  Populate();
  MetaStore::Batch b;
  b.RemoveOrphan(9);
  b.AddOrphan(5);  // and a linked inode in the orphan list
  Commit(b);
  const std::string all = All(Check());
  EXPECT_THAT(all, HasSubstr("inode 9 has nlink 0 but is not in the orphan list"));
  EXPECT_THAT(all, HasSubstr("orphan list names inode 5, whose nlink is 1"));
}

TEST_F(FsckTest, OverlappingExtentsAcrossFiles) {
  Populate();
  MetaStore::Batch b;
  b.PutExtent(9, Extent{4, 22, 3, false});  // [22, 25) overlaps file 3's [20, 24)
  b.PutInode(Inode(9, S_IFREG | 0644, 0));
  Commit(b);
  const std::string all = All(Check());
  EXPECT_THAT(all, HasSubstr("disk blocks [22, 24) are used twice"));
  EXPECT_THAT(all, HasSubstr("both free and used by inode 9"));  // block 24
}

TEST_F(FsckTest, OverlappingExtentsWithinAFile) {
  Populate();
  MetaStore::Batch b;
  b.PutExtent(3, Extent{4, 300, 2, false});  // file blocks [4, 6) already mapped
  Commit(b);
  EXPECT_THAT(All(Check()), HasSubstr("inode 3: extent at file block 4 overlaps the previous one"));
}

TEST_F(FsckTest, ExtentOutsideTheDataFile) {
  Populate();
  MetaStore::Batch b;
  b.PutExtent(3, Extent{100, kBlocks - 2, 5, false});
  Commit(b);
  EXPECT_THAT(All(Check()), HasSubstr("outside the data file"));
}

TEST_F(FsckTest, FreeAndUsedMismatch) {
  Populate();
  MetaStore::Batch b;
  b.PutFreeExtent(24, 70);  // 6 blocks now belong to nobody
  Commit(b);
  FsckReport r = Check();
  EXPECT_THAT(All(r), HasSubstr("blocks leaked"));

  MetaStore::Batch b2;
  b2.PutFreeExtent(24, 76);
  b2.PutFreeExtent(2, 6);  // inside file 3's [0, 8), adjacent to [8, 20)
  Commit(b2);
  EXPECT_THAT(All(Check()), HasSubstr("disk blocks [2, 8) are both free and used by inode 3"));
}

TEST_F(FsckTest, DirectoryCycleDisconnectedFromRoot) {
  Populate();
  MetaStore::Batch b;
  // 10 and 11 name each other; nothing reachable names either.
  b.PutInode(Inode(10, S_IFDIR | 0755, 3, 11, 4));
  b.PutInode(Inode(11, S_IFDIR | 0755, 3, 10, 4));
  b.PutDentry(10, "down", DirEntry{11, S_IFDIR, 3});
  b.PutDentry(11, "up", DirEntry{10, S_IFDIR, 3});
  Commit(b);
  FsckReport r = Check();
  EXPECT_THAT(All(r), HasSubstr("directory cycle disconnected from the root"));
}

TEST_F(FsckTest, DisconnectedInode) {
  Populate();
  MetaStore::Batch b;
  b.DeleteDentry(kRootIno, "s", 5);  // the symlink keeps nlink 1
  Commit(b);
  const std::string all = All(Check());
  EXPECT_THAT(all, HasSubstr("inode 5 (nlink 1) is not reachable from the root"));
  EXPECT_THAT(all, HasSubstr("inode 5 has nlink 1 but 0 entries name it"));
}

TEST_F(FsckTest, HardLinkedDirectory) {
  Populate();
  MetaStore::Batch b;
  b.PutDentry(4, "loop", DirEntry{2, S_IFDIR, 3});  // /a/b/loop -> /a: a cycle through the root's tree
  b.PutInode(Inode(4, S_IFDIR | 0755, 3, 2, 4));
  b.PutInode(Inode(2, S_IFDIR | 0755, 3, kRootIno, 5));
  Commit(b);
  EXPECT_THAT(All(Check()), HasSubstr("directory 2 has 2 names"));
}

TEST_F(FsckTest, MissingCookieIndexEntry) {
  Populate();
  MetaStore::Batch b;
  // Deleting a name that does not exist with /a/f's cookie removes only the
  // index record: readdir would no longer show /a/f.
  b.DeleteDentry(2, "nonexistent", 3);
  Commit(b);
  EXPECT_THAT(All(Check()), HasSubstr("directory 2: readdir index lists 1 entries, 2 exist"));
}

TEST_F(FsckTest, NotAStoreCannotBeOpened) {
  TempDir other;
  auto r = CheckStore(other.path());
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("not a reclaimfs store"));
  EXPECT_FALSE(CheckStore(other.Sub("missing")).ok());
}

TEST_F(FsckTest, DataFileSizeMismatch) {
  std::filesystem::resize_file(tmp_.Sub(kDataFileName), 4096);
  EXPECT_THAT(All(Check()), HasSubstr("data file is 4096 bytes"));
}

}  // namespace
}  // namespace reclaimfs::storage

// MetaStore against a real RocksDB in a scratch directory.
#include "storage/meta_store.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "temp_dir.h"

namespace reclaimfs::storage {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

std::set<std::string> Listing(const std::string& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.insert(e.path().filename().string());
  return names;
}

MetaOptions SmallOptions() {
  MetaOptions o;
  o.block_cache_bytes = 1 << 20;
  o.memtable_bytes = 1 << 20;
  o.lock_wait_ms = 200;
  return o;
}

class MetaStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    MkfsOptions mk;
    mk.size_bytes = 8 << 20;
    ASSERT_TRUE(MakeStore(tmp_.path(), mk).ok());
    Reopen();
  }

  void Reopen() {
    meta_.reset();
    auto m = MetaStore::Open(meta_dir(), SmallOptions());
    ASSERT_TRUE(m.ok()) << m.status();
    meta_ = std::move(*m);
  }

  std::string meta_dir() const { return tmp_.Sub(kMetaDirName); }

  InodeRecord File(uint64_t ino) {
    InodeRecord r;
    r.ino = ino;
    r.mode = S_IFREG | 0644;
    r.nlink = 1;
    return r;
  }

  TempDir tmp_;
  std::unique_ptr<MetaStore> meta_;
};

TEST_F(MetaStoreTest, ReadsSuperblockAndRoot) {
  auto sb = meta_->ReadSuperblock();
  ASSERT_TRUE(sb.ok()) << sb.status();
  EXPECT_EQ(sb->size_bytes, 8u << 20);
  auto root = meta_->GetInode(kRootIno);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_TRUE(S_ISDIR(root->mode));
  EXPECT_EQ(root->nlink, 2u);
  EXPECT_TRUE(absl::IsNotFound(meta_->GetInode(12345).status()));
  EXPECT_TRUE(absl::IsNotFound(meta_->GetDentry(kRootIno, "nope").status()));
}

TEST_F(MetaStoreTest, BatchAcrossFamiliesPersists) {
  MetaStore::Batch b;
  b.PutInode(File(7));
  b.PutDentry(kRootIno, "seven", DirEntry{7, S_IFREG, 3});
  b.PutExtent(7, Extent{0, 100, 4, false});
  b.PutXattr(7, "user.a", "va");
  b.AddOrphan(7);
  EXPECT_EQ(b.Count(), 6u);  // the dentry writes its cookie index too
  ASSERT_TRUE(meta_->Commit(b, true).ok());
  EXPECT_TRUE(b.empty()) << "a committed batch is cleared";
  Reopen();
  EXPECT_TRUE(meta_->GetInode(7).ok());
  auto d = meta_->GetDentry(kRootIno, "seven");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->ino, 7u);
  auto ext = meta_->GetExtents(7);
  ASSERT_TRUE(ext.ok());
  ASSERT_EQ(ext->size(), 1u);
  EXPECT_EQ((*ext)[0].disk_block, 100u);
  EXPECT_EQ(*meta_->GetXattr(7, "user.a"), "va");
  std::vector<uint64_t> orphans;
  ASSERT_TRUE(meta_->ForEachOrphan([&](uint64_t ino) { orphans.push_back(ino); return true; }).ok());
  EXPECT_EQ(orphans, std::vector<uint64_t>{7});
}

TEST_F(MetaStoreTest, FailedPrepareWritesNothing) {
  MetaStore::Batch b;
  b.PutInode(File(8));
  bool ran = false;
  absl::Status s = meta_->Commit(b, false, [&](MetaStore::Batch& batch) {
    ran = true;
    batch.PutDentry(kRootIno, "eight", DirEntry{8, S_IFREG, 3});
    return absl::ResourceExhaustedError("no space");
  });
  EXPECT_TRUE(ran);
  EXPECT_TRUE(absl::IsResourceExhausted(s));
  EXPECT_TRUE(absl::IsNotFound(meta_->GetInode(8).status()));
  EXPECT_TRUE(absl::IsNotFound(meta_->GetDentry(kRootIno, "eight").status()));
}

TEST_F(MetaStoreTest, PrepareAddsToTheSameBatch) {
  MetaStore::Batch b;
  b.PutInode(File(9));
  ASSERT_TRUE(meta_->Commit(b, false, [](MetaStore::Batch& batch) {
    batch.PutFreeExtent(1000, 5);
    return absl::OkStatus();
  }).ok());
  bool found = false;
  ASSERT_TRUE(meta_->ForEachFreeExtent([&](uint64_t start, uint64_t len) {
    found |= (start == 1000 && len == 5);
    return true;
  }).ok());
  EXPECT_TRUE(found);
}

// A reader checks, in the reverse order of the writes, that a batch's parts
// are never seen partly: once the dentry is visible, the rest must be.
TEST_F(MetaStoreTest, ConcurrentReadersSeeWholeBatches) {
  constexpr int kN = 300;
  std::atomic<bool> started{false}, done{false};
  std::atomic<int> partial{0}, seen{0};
  std::thread reader([&] {
    started = true;
    bool last = false;
    while (!last) {
      last = done.load();  // one more full pass after the writer finished
      for (int i = 0; i < kN; ++i) {
        const uint64_t ino = 100 + i;
        if (!meta_->GetDentry(kRootIno, "f" + std::to_string(i)).ok()) continue;
        ++seen;
        auto ext = meta_->GetExtents(ino);
        if (!meta_->GetInode(ino).ok() || !meta_->GetXattr(ino, "user.k").ok() || !ext.ok() ||
            ext->empty()) {
          ++partial;
        }
      }
    }
  });
  while (!started.load()) std::this_thread::yield();
  for (int i = 0; i < kN; ++i) {
    MetaStore::Batch b;
    b.PutExtent(100 + i, Extent{0, static_cast<uint64_t>(i), 1, false});
    b.PutXattr(100 + i, "user.k", "v");
    b.PutInode(File(100 + i));
    b.PutDentry(kRootIno, "f" + std::to_string(i), DirEntry{100ull + i, S_IFREG, 3ull + i});
    ASSERT_TRUE(meta_->Commit(b, false).ok());
  }
  done = true;
  reader.join();
  EXPECT_EQ(partial.load(), 0);
  EXPECT_GE(seen.load(), kN) << "the final pass sees every batch";
}

TEST_F(MetaStoreTest, ListDirInCookieOrderAndResumes) {
  // Names sort differently from cookies, so order proves the cookie index.
  MetaStore::Batch b;
  const std::vector<std::string> names = {"zeta", "alpha", "mid", "beta", "omega"};
  for (size_t i = 0; i < names.size(); ++i) {
    b.PutDentry(kRootIno, names[i], DirEntry{10 + i, S_IFREG, 3 + i});
  }
  ASSERT_TRUE(meta_->Commit(b, false).ok());

  std::vector<std::string> got;
  std::vector<uint64_t> cookies;
  ASSERT_TRUE(meta_->ListDir(kRootIno, 0, [&](std::string_view n, const DirEntry& e) {
    got.emplace_back(n);
    cookies.push_back(e.cookie);
    return true;
  }).ok());
  EXPECT_EQ(got, names);

  // Read two, then the directory changes, then resume after the second.
  got.clear();
  uint64_t last = 0;
  ASSERT_TRUE(meta_->ListDir(kRootIno, 0, [&](std::string_view n, const DirEntry& e) {
    got.emplace_back(n);
    last = e.cookie;
    return got.size() < 2;
  }).ok());
  ASSERT_EQ(got, (std::vector<std::string>{"zeta", "alpha"}));

  MetaStore::Batch change;
  change.DeleteDentry(kRootIno, "mid", 5);                          // not yet read: disappears
  change.DeleteDentry(kRootIno, "zeta", 3);                         // already read
  change.PutDentry(kRootIno, "new", DirEntry{20, S_IFDIR, 100});    // added: appears at the end
  ASSERT_TRUE(meta_->Commit(change, false).ok());

  ASSERT_TRUE(meta_->ListDir(kRootIno, last, [&](std::string_view n, const DirEntry&) {
    got.emplace_back(n);
    return true;
  }).ok());
  EXPECT_EQ(got, (std::vector<std::string>{"zeta", "alpha", "beta", "omega", "new"}));

  // Other directories do not leak into this one.
  MetaStore::Batch other;
  other.PutDentry(kRootIno + 1, "elsewhere", DirEntry{30, S_IFREG, 3});
  ASSERT_TRUE(meta_->Commit(other, false).ok());
  int count = 0;
  ASSERT_TRUE(meta_->ListDir(kRootIno, 0, [&](std::string_view, const DirEntry&) {
    ++count;
    return true;
  }).ok());
  EXPECT_EQ(count, 4);
  ASSERT_TRUE(meta_->ListDir(kRootIno, UINT64_MAX, [&](std::string_view, const DirEntry&) {
    ADD_FAILURE() << "nothing comes after the last cookie";
    return true;
  }).ok());
}

TEST_F(MetaStoreTest, DirIsEmpty) {
  EXPECT_TRUE(*meta_->DirIsEmpty(kRootIno));
  MetaStore::Batch b;
  b.PutDentry(kRootIno + 1, "x", DirEntry{5, S_IFREG, 3});
  ASSERT_TRUE(meta_->Commit(b, false).ok());
  EXPECT_TRUE(*meta_->DirIsEmpty(kRootIno));
  EXPECT_FALSE(*meta_->DirIsEmpty(kRootIno + 1));
  EXPECT_TRUE(*meta_->DirIsEmpty(kRootIno + 2));
}

TEST_F(MetaStoreTest, ExtentsOrderedByFileBlock) {
  MetaStore::Batch b;
  for (uint64_t fb : {300ull, 5ull, 0x10000ull, 256ull, 0ull}) {
    b.PutExtent(4, Extent{fb, fb + 1000, 1, fb == 5});
  }
  b.PutExtent(3, Extent{1, 1, 1, false});
  b.PutExtent(5, Extent{2, 2, 1, false});
  ASSERT_TRUE(meta_->Commit(b, false).ok());
  auto ext = meta_->GetExtents(4);
  ASSERT_TRUE(ext.ok());
  std::vector<uint64_t> order;
  for (const auto& e : *ext) order.push_back(e.file_block);
  EXPECT_EQ(order, (std::vector<uint64_t>{0, 5, 256, 300, 0x10000}));
  EXPECT_TRUE((*ext)[1].unwritten);
  EXPECT_EQ((*ext)[4].disk_block, 0x10000u + 1000);

  MetaStore::Batch del;
  del.DeleteExtent(4, 256);
  ASSERT_TRUE(meta_->Commit(del, false).ok());
  EXPECT_EQ(meta_->GetExtents(4)->size(), 4u);
  EXPECT_TRUE(meta_->GetExtents(6)->empty());
}

TEST_F(MetaStoreTest, Xattrs) {
  MetaStore::Batch b;
  b.PutXattr(7, "user.b", "2");
  b.PutXattr(7, "user.a", std::string("\0bin", 4));
  b.PutXattr(8, "user.other", "x");
  ASSERT_TRUE(meta_->Commit(b, false).ok());
  EXPECT_EQ(*meta_->ListXattrs(7), (std::vector<std::string>{"user.a", "user.b"}));
  EXPECT_EQ(*meta_->GetXattr(7, "user.a"), std::string("\0bin", 4));
  MetaStore::Batch d;
  d.DeleteXattr(7, "user.a");
  ASSERT_TRUE(meta_->Commit(d, false).ok());
  EXPECT_EQ(*meta_->ListXattrs(7), (std::vector<std::string>{"user.b"}));
  EXPECT_TRUE(absl::IsNotFound(meta_->GetXattr(7, "user.a").status()));
  EXPECT_TRUE(meta_->ListXattrs(9)->empty());
}

TEST_F(MetaStoreTest, ForEachScans) {
  MetaStore::Batch b;
  for (uint64_t i = 2; i < 12; ++i) {
    b.PutInode(File(i));
    b.PutDentry(kRootIno, "n" + std::to_string(i), DirEntry{i, S_IFREG, i + 1});
    b.PutExtent(i, Extent{0, i * 10, 2, false});
  }
  b.AddOrphan(5);
  b.AddOrphan(3);
  ASSERT_TRUE(meta_->Commit(b, false).ok());

  std::vector<uint64_t> inos;
  ASSERT_TRUE(meta_->ForEachInode([&](const InodeRecord& r) { inos.push_back(r.ino); return true; }).ok());
  ASSERT_EQ(inos.size(), 11u);
  EXPECT_TRUE(std::is_sorted(inos.begin(), inos.end()));
  EXPECT_EQ(inos.front(), kRootIno);

  int dentries = 0;
  ASSERT_TRUE(meta_->ForEachDentry([&](uint64_t parent, std::string_view name, const DirEntry& e) {
    EXPECT_EQ(parent, kRootIno);
    EXPECT_EQ(name, "n" + std::to_string(e.ino));
    ++dentries;
    return true;
  }).ok());
  EXPECT_EQ(dentries, 10);

  uint64_t blocks = 0;
  ASSERT_TRUE(meta_->ForEachExtent([&](uint64_t ino, const Extent& e) {
    EXPECT_EQ(e.disk_block, ino * 10);
    blocks += e.length;
    return true;
  }).ok());
  EXPECT_EQ(blocks, 20u);

  std::vector<uint64_t> orphans;
  ASSERT_TRUE(meta_->ForEachOrphan([&](uint64_t ino) { orphans.push_back(ino); return true; }).ok());
  EXPECT_EQ(orphans, (std::vector<uint64_t>{3, 5}));

  // Returning false stops a scan.
  int visited = 0;
  ASSERT_TRUE(meta_->ForEachInode([&](const InodeRecord&) { return ++visited < 3; }).ok());
  EXPECT_EQ(visited, 3);
}

TEST_F(MetaStoreTest, CorruptRecordIsDataLossNotCrash) {
  // A dentry value that is not a dentry, written through the raw RocksDB
  // interface after closing the store.
  meta_.reset();
  {
    rocksdb::DBOptions dbo;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(dbo, meta_dir(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> desc;
    for (auto& n : names) desc.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(dbo, rocksdb::ColumnFamilyOptions()), meta_dir(),
                                  desc, &handles, &db).ok());
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == "dentries") {
        ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[i], DentryKey(kRootIno, "bad"), "xx").ok());
      }
      if (names[i] == "inodes") {
        ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[i], InodeKey(50), "garbage").ok());
      }
    }
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  Reopen();
  EXPECT_EQ(meta_->GetDentry(kRootIno, "bad").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(meta_->GetInode(50).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(meta_->ForEachInode([](const InodeRecord&) { return true; }).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(meta_->ListDir(kRootIno, 0, [](std::string_view, const DirEntry&) { return true; }).code(),
            absl::StatusCode::kOk)
      << "the bad entry has no cookie index, so readdir does not see it";
}

TEST_F(MetaStoreTest, AllocateInoContinuesAfterReopen) {
  const uint64_t a = meta_->AllocateIno();
  const uint64_t b2 = meta_->AllocateIno();
  EXPECT_GT(a, kRootIno);
  EXPECT_EQ(b2, a + 1);
  MetaStore::Batch b;
  b.PutInode(File(b2));
  b.PutInode(File(500));
  ASSERT_TRUE(meta_->Commit(b, true).ok());
  Reopen();
  EXPECT_EQ(meta_->AllocateIno(), 501u);
}

TEST_F(MetaStoreTest, AllocateInoIsUniqueAcrossThreads) {
  std::vector<std::thread> threads;
  std::vector<std::vector<uint64_t>> got(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) got[t].push_back(meta_->AllocateIno());
    });
  }
  for (auto& t : threads) t.join();
  std::set<uint64_t> all;
  for (auto& v : got) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 4000u);
}

TEST_F(MetaStoreTest, SecondOpenFailsWhileInUse) {
  MetaOptions o = SmallOptions();
  o.lock_wait_ms = 300;
  const auto start = std::chrono::steady_clock::now();
  auto second = MetaStore::Open(meta_dir(), o);
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsUnavailable(second.status())) << second.status();
  EXPECT_NE(second.status().message().find("store is in use by another process"), std::string::npos)
      << second.status();
  EXPECT_GE(waited, std::chrono::milliseconds(250));
}

TEST_F(MetaStoreTest, SecondOpenSucceedsWhenFirstCloses) {
  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    meta_.reset();
  });
  MetaOptions o = SmallOptions();
  o.lock_wait_ms = 5000;
  auto second = MetaStore::Open(meta_dir(), o);
  closer.join();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE((*second)->GetInode(kRootIno).ok());
}

// The lock held by another process (a daemon still shutting down): RocksDB
// words this differently from a lock held in the same process.
TEST_F(MetaStoreTest, LockHeldByAnotherProcess) {
  meta_.reset();
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    auto held = MetaStore::Open(meta_dir(), SmallOptions());
    const char c = held.ok() ? 'y' : 'n';
    if (::write(ready[1], &c, 1) != 1) ::_exit(2);
    ::usleep(600 * 1000);
    held->reset();
    ::_exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ASSERT_EQ(c, 'y');

  MetaOptions quick = SmallOptions();
  quick.lock_wait_ms = 100;
  auto busy = MetaStore::Open(meta_dir(), quick);
  EXPECT_TRUE(absl::IsUnavailable(busy.status())) << busy.status();
  EXPECT_NE(busy.status().message().find("store is in use by another process"), std::string::npos);

  MetaOptions patient = SmallOptions();
  patient.lock_wait_ms = 10'000;
  auto later = MetaStore::Open(meta_dir(), patient);
  EXPECT_TRUE(later.ok()) << later.status();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  // Waiting for the lock wrote no RocksDB LOG files: each attempt used to
  // rotate them, racing the closing holder's pruning of the same files.
  for (const auto& entry : std::filesystem::directory_iterator(meta_dir())) {
    EXPECT_NE(entry.path().filename().string().rfind("LOG", 0), 0u) << entry.path();
  }
}

TEST_F(MetaStoreTest, ReadOnlyOpenReadsAndRefusesCommit) {
  meta_.reset();
  MetaOptions o = SmallOptions();
  o.read_only = true;
  auto ro = MetaStore::Open(meta_dir(), o);
  ASSERT_TRUE(ro.ok()) << ro.status();
  EXPECT_TRUE((*ro)->GetInode(kRootIno).ok());
  MetaStore::Batch b;
  b.PutInode(File(3));
  EXPECT_FALSE((*ro)->Commit(b, false).ok());
}

TEST_F(MetaStoreTest, MemoryUsageIsReportedAndBounded) {
  MetaStore::Batch b;
  for (uint64_t i = 2; i < 3000; ++i) b.PutInode(File(i));
  ASSERT_TRUE(meta_->Commit(b, false).ok());
  for (uint64_t i = 2; i < 3000; i += 7) ASSERT_TRUE(meta_->GetInode(i).ok());
  const uint64_t used = meta_->ApproximateMemoryUsage();
  EXPECT_GT(used, 0u);
  EXPECT_LT(used, 16u << 20);
  EXPECT_TRUE(meta_->SyncWal().ok());
}

TEST_F(MetaStoreTest, MovedFromBatchIsUsable) {
  MetaStore::Batch a;
  a.PutInode(File(3));
  MetaStore::Batch b = std::move(a);
  EXPECT_EQ(b.Count(), 1u);
  a.PutInode(File(4));  // NOLINT(bugprone-use-after-move): defined to start afresh
  EXPECT_EQ(a.Count(), 1u);
  ASSERT_TRUE(meta_->Commit(a, false).ok());
  ASSERT_TRUE(meta_->Commit(b, false).ok());
  EXPECT_TRUE(meta_->GetInode(3).ok());
  EXPECT_TRUE(meta_->GetInode(4).ok());
}

// --- Opening things that are not stores ---

TEST(MetaStoreOpenTest, MissingDirectory) {
  TempDir tmp;
  const std::string dir = tmp.Sub("absent");
  auto m = MetaStore::Open(dir, SmallOptions());
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(absl::IsNotFound(m.status()));
  EXPECT_NE(m.status().message().find("not a reclaimfs store"), std::string::npos) << m.status();
  EXPECT_FALSE(fs::exists(dir)) << "opening must not create the directory";
}

TEST(MetaStoreOpenTest, EmptyDirectory) {
  TempDir tmp;
  auto m = MetaStore::Open(tmp.path(), SmallOptions());
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(absl::IsNotFound(m.status()));
  EXPECT_NE(m.status().message().find("not a reclaimfs store"), std::string::npos) << m.status();
  EXPECT_TRUE(Listing(tmp.path()).empty());
}

TEST(MetaStoreOpenTest, GarbageDirectory) {
  TempDir tmp;
  std::ofstream(tmp.Sub("notes.txt")) << "hello";
  std::ofstream(tmp.Sub("000001.log")) << "not a log";
  const auto before = Listing(tmp.path());
  auto m = MetaStore::Open(tmp.path(), SmallOptions());
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(absl::IsNotFound(m.status())) << m.status();
  EXPECT_EQ(Listing(tmp.path()), before);

  // A CURRENT file that points nowhere: an error, and still nothing created.
  std::ofstream(tmp.Sub("CURRENT")) << "MANIFEST-999999\n";
  const auto before2 = Listing(tmp.path());
  m = MetaStore::Open(tmp.path(), SmallOptions());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find(tmp.path()), std::string::npos) << m.status();
  EXPECT_EQ(Listing(tmp.path()), before2);
}

TEST(MetaStoreOpenTest, PlainRocksDbIsNotAStore) {
  TempDir tmp;
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, tmp.path(), &db).ok());
    delete db;
  }
  auto m = MetaStore::Open(tmp.path(), SmallOptions());
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(absl::IsNotFound(m.status())) << m.status();
  EXPECT_NE(m.status().message().find("not a reclaimfs store"), std::string::npos);
}

TEST(MetaStoreOpenTest, WrongVersionIsRefused) {
  TempDir tmp;
  ASSERT_TRUE(MakeStore(tmp.path(), MkfsOptions{.size_bytes = 2 << 20}).ok());
  const std::string dir = tmp.Sub(kMetaDirName);
  {
    auto m = MetaStore::Open(dir, SmallOptions());
    ASSERT_TRUE(m.ok());
    Superblock sb = *(*m)->ReadSuperblock();
    sb.version = 7;
    MetaStore::Batch b;
    b.PutSuperblock(sb);
    ASSERT_TRUE((*m)->Commit(b, true).ok());
  }
  auto m = MetaStore::Open(dir, SmallOptions());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("unsupported format version 7 (this build reads 1)"),
            std::string::npos)
      << m.status();
}

}  // namespace
}  // namespace reclaimfs::storage

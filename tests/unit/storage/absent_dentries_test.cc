// The absent-entry memo on its own, then behind MetaStore::GetDentry.
#include "storage/absent_dentries.h"

#include <sys/stat.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "storage/meta_store.h"
#include "temp_dir.h"

namespace reclaimfs::storage {
namespace {

TEST(AbsentDentriesTest, RemembersAnAbsenceUntilInvalidated) {
  AbsentDentries memo;
  EXPECT_FALSE(memo.KnownAbsent(1, "a"));
  memo.Remember(1, "a", memo.epoch());
  EXPECT_TRUE(memo.KnownAbsent(1, "a"));
  EXPECT_FALSE(memo.KnownAbsent(1, "b"));
  EXPECT_FALSE(memo.KnownAbsent(2, "a"));
  EXPECT_EQ(memo.hits(), 1u);
  memo.Invalidate();
  EXPECT_FALSE(memo.KnownAbsent(1, "a"));
}

TEST(AbsentDentriesTest, AnAbsenceReadBeforeACommitIsNotRemembered) {
  AbsentDentries memo;
  const uint64_t before = memo.epoch();  // the read begins
  memo.Invalidate();                     // a commit becomes visible meanwhile
  memo.Remember(1, "a", before);         // the read saw the old state
  EXPECT_FALSE(memo.KnownAbsent(1, "a"));
}

TEST(AbsentDentriesTest, KeepsOnlyTheNewestFew) {
  AbsentDentries memo;
  for (int i = 0; i < 100; ++i) memo.Remember(1, "n" + std::to_string(i), memo.epoch());
  EXPECT_TRUE(memo.KnownAbsent(1, "n99"));
  EXPECT_FALSE(memo.KnownAbsent(1, "n0"));
}

class AbsentDentryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MkfsOptions mk;
    mk.size_bytes = 8 << 20;
    ASSERT_TRUE(MakeStore(tmp_.path(), mk).ok());
    MetaOptions o;
    o.block_cache_bytes = o.memtable_bytes = 1 << 20;
    auto m = MetaStore::Open(tmp_.Sub(kMetaDirName), o);
    ASSERT_TRUE(m.ok()) << m.status();
    meta_ = std::move(*m);
  }

  absl::Status Add(std::string_view name, uint64_t ino) {
    MetaStore::Batch b;
    b.PutDentry(kRootIno, name, DirEntry{ino, S_IFREG, ino});
    return meta_->Commit(b, false);
  }

  testing::TempDir tmp_;
  std::unique_ptr<MetaStore> meta_;
};

// The lookup-then-create pattern: the second read of a new name is answered
// by the memo, and a name committed after it is found at once.
TEST_F(AbsentDentryStoreTest, ASecondReadOfAnAbsentNameIsAnsweredAndACommitEndsIt) {
  EXPECT_TRUE(absl::IsNotFound(meta_->GetDentry(kRootIno, "new").status()));
  const uint64_t hits = meta_->absent_dentry_hits();
  EXPECT_TRUE(absl::IsNotFound(meta_->GetDentry(kRootIno, "new").status()));
  EXPECT_EQ(meta_->absent_dentry_hits(), hits + 1);
  ASSERT_TRUE(Add("new", 10).ok());
  auto d = meta_->GetDentry(kRootIno, "new");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->ino, 10u);
}

// Any entry commit ends every absence: a rename into the name, or another name.
TEST_F(AbsentDentryStoreTest, ACommitOfAnotherEntryEndsTheAbsenceToo) {
  EXPECT_TRUE(absl::IsNotFound(meta_->GetDentry(kRootIno, "x").status()));
  ASSERT_TRUE(Add("y", 11).ok());
  const uint64_t hits = meta_->absent_dentry_hits();
  EXPECT_TRUE(absl::IsNotFound(meta_->GetDentry(kRootIno, "x").status()));
  EXPECT_EQ(meta_->absent_dentry_hits(), hits) << "answered from a stale absence";
}

// Readers racing with the commits that add the names they read: once a
// commit has returned, no reader may call its name absent.
TEST_F(AbsentDentryStoreTest, NoReaderSeesANameAbsentAfterItsCommitReturned) {
  constexpr int kNames = 2000;
  std::atomic<int> committed{-1};
  std::atomic<bool> stale{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      while (committed.load() < kNames - 1 && !stale.load()) {
        const int c = committed.load();
        const int probe = c + 1;  // usually absent: read it to fill the memo
        (void)meta_->GetDentry(kRootIno, "n" + std::to_string(probe));
        if (c >= 0 && !meta_->GetDentry(kRootIno, "n" + std::to_string(c)).ok()) stale = true;
      }
    });
  }
  for (int i = 0; i < kNames && !stale.load(); ++i) {
    ASSERT_TRUE(Add("n" + std::to_string(i), 100 + i).ok());
    committed.store(i);
  }
  for (auto& r : readers) r.join();
  EXPECT_FALSE(stale.load());
}

}  // namespace
}  // namespace reclaimfs::storage

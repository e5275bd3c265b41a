// The data path on a real store: page states through write and sync,
// holes, partial pages, durability across reopen, delayed allocation and
// contiguity, truncate / punch / preallocate and the blocks they free,
// SEEK_DATA/SEEK_HOLE, ENOSPC, eviction, deallocation and write errors.
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "data_env.h"
#include "fs/cache/errno_status.h"
#include "gtest/gtest.h"

namespace reclaimfs::fs::testing {
namespace {

constexpr uint64_t kPage = 4096;

TEST(DataFile, WriteDirtySyncCleanAndDurable) {
  DataEnv env;
  const std::string a = Pattern(1, 0, 3 * kPage + 100);
  ASSERT_TRUE(env.Write(7, 0, a).ok());
  EXPECT_EQ(env.Stat("pagecache_dirty"), 4);
  EXPECT_EQ(env.alloc().reserved_blocks(), 4u);  // delayed allocation
  EXPECT_EQ(env.data().AllocatedSectors(7), 4u * 8);
  EXPECT_EQ(env.Read(7, 0, a.size()), a);

  ASSERT_TRUE(env.data().Sync(7, false).ok());
  EXPECT_EQ(env.Stat("pagecache_dirty"), 0);
  EXPECT_EQ(env.Stat("pagecache_writeback"), 0);
  EXPECT_EQ(env.Stat("pagecache_pages"), 4);  // clean and uptodate, still cached
  EXPECT_EQ(env.alloc().reserved_blocks(), 0u);
  EXPECT_EQ(env.Stat("writeback_pages_written"), 4);
  const int64_t misses = env.Stat("pagecache_misses");
  EXPECT_EQ(env.Read(7, 0, a.size()), a);
  EXPECT_EQ(env.Stat("pagecache_misses"), misses);  // served from the cache

  auto ex = env.meta().GetExtents(7);
  ASSERT_TRUE(ex.ok());
  ASSERT_EQ(ex->size(), 1u);
  EXPECT_EQ((*ex)[0].length, 4u);
  auto rec = env.meta().GetInode(7);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->size, a.size());

  env.Reopen();
  EXPECT_EQ(env.Read(7, 0, a.size()), a);
  EXPECT_EQ(env.Stat("pagecache_misses"), 4);
}

TEST(DataFile, HolesReadZeros) {
  DataEnv env;
  const std::string tail = Pattern(2, 0, 100);
  ASSERT_TRUE(env.Write(3, 1 << 20, tail).ok());
  EXPECT_EQ(env.Read(3, 0, 1 << 20), std::string(1 << 20, '\0'));
  EXPECT_EQ(env.Read(3, 1 << 20, 100), tail);
  EXPECT_EQ(env.Stat("pagecache_read_ios"), 0);  // holes need no IO
  ASSERT_TRUE(env.data().Sync(3, false).ok());
  env.Reopen();
  EXPECT_EQ(env.Read(3, 12345, 5000), std::string(5000, '\0'));
  EXPECT_EQ(env.Read(3, (1 << 20) - 10, 110), std::string(10, '\0') + tail);
}

TEST(DataFile, PartialPageWritesAndReadModifyWrite) {
  DataEnv env;
  std::string model(3 * kPage, '\0');
  auto put = [&](uint64_t off, const std::string& s) {
    ASSERT_TRUE(env.Write(9, off, s).ok());
    if (model.size() < off + s.size()) model.resize(off + s.size(), '\0');
    model.replace(off, s.size(), s);
  };
  env.records().Set(9, 3 * kPage);
  put(10, "abc");
  put(kPage - 6, "crossing-pages");
  put(2 * kPage + 5, Pattern(3, 0, 700));
  EXPECT_EQ(env.Read(9, 0, model.size()), model);
  ASSERT_TRUE(env.data().Sync(9, false).ok());

  // Not cached any more: partial writes must read the block first.
  env.Reopen();
  put(kPage + 1, "X");
  put(3, "yy");
  EXPECT_GE(env.Stat("pagecache_read_ios"), 2);
  EXPECT_EQ(env.Read(9, 0, model.size()), model);
  ASSERT_TRUE(env.data().Sync(9, false).ok());
  env.Reopen();
  EXPECT_EQ(env.Read(9, 0, model.size()), model);
}

TEST(DataFile, ReadStopsAtEndOfFile) {
  DataEnv env;
  ASSERT_TRUE(env.Write(4, 0, Pattern(4, 0, 5000)).ok());
  EXPECT_EQ(env.Read(4, 0, 10000).size(), 5000u);
  EXPECT_EQ(env.Read(4, 5000, 10).size(), 0u);
  EXPECT_EQ(env.Read(4, 4990, 100), Pattern(4, 4990, 10));
}

TEST(DataFile, SequentialWriteGetsOneExtent) {
  DataEnv env;
  const uint64_t total = 8 << 20;
  for (uint64_t off = 0; off < total; off += 128 << 10) {
    ASSERT_TRUE(env.Write(11, off, Pattern(11, off, 128 << 10)).ok());
  }
  ASSERT_TRUE(env.data().Sync(11, false).ok());
  auto ex = env.meta().GetExtents(11);
  ASSERT_TRUE(ex.ok());
  ASSERT_EQ(ex->size(), 1u);
  EXPECT_EQ((*ex)[0].length, total / kPage);
  EXPECT_FALSE((*ex)[0].unwritten);
  env.Reopen();
  for (uint64_t off = 0; off < total; off += 1 << 20) {
    ASSERT_EQ(env.Read(11, off, 1 << 20), Pattern(11, off, 1 << 20)) << off;
  }
}

// Writeback batches are a sixteenth of the budget (here 4096 pages): a
// sequential 8 MiB is one IO batch and one commit; scattered pages end a
// batch at 1024 runs.
TEST(DataFile, WritebackBatchesFollowTheBudgetAndStopAtManyRuns) {
  EnvOptions o;
  o.budget_bytes = 256ull << 20;
  DataEnv env(o);
  for (uint64_t off = 0; off < (8 << 20); off += 1 << 20) {
    ASSERT_TRUE(env.Write(12, off, Pattern(12, off, 1 << 20)).ok());
  }
  int64_t commits = env.Stat("writeback_commits");
  ASSERT_TRUE(env.data().Sync(12, false).ok());
  EXPECT_EQ(env.Stat("writeback_commits") - commits, 1);

  constexpr uint64_t kScattered = 1500;  // every other page: 1500 runs
  for (uint64_t i = 0; i < kScattered; ++i) {
    ASSERT_TRUE(env.Write(13, 2 * i * kPage, Pattern(13, 2 * i * kPage, kPage)).ok());
  }
  commits = env.Stat("writeback_commits");
  ASSERT_TRUE(env.data().Sync(13, false).ok());
  EXPECT_EQ(env.Stat("writeback_commits") - commits, 2);
  EXPECT_EQ(env.Stat("pagecache_dirty"), 0);
  env.Reopen();
  for (uint64_t i = 0; i < kScattered; i += 97) {
    ASSERT_EQ(env.Read(13, 2 * i * kPage, kPage), Pattern(13, 2 * i * kPage, kPage)) << i;
  }
}

TEST(DataFile, TruncateFreesBlocksAndZeroesTail) {
  DataEnv env;
  ASSERT_TRUE(env.Write(5, 0, Pattern(5, 0, 1 << 20)).ok());
  ASSERT_TRUE(env.data().Sync(5, false).ok());
  const uint64_t free_before = env.alloc().free_blocks();
  ASSERT_TRUE(env.Truncate(5, 5000).ok());
  EXPECT_EQ(env.alloc().free_blocks(), free_before + 256 - 2);
  EXPECT_EQ(env.data().AllocatedSectors(5), 2u * 8);
  EXPECT_EQ(env.Read(5, 0, 8192), Pattern(5, 0, 5000));
  // Growing again exposes zeros, not the old bytes.
  env.records().Set(5, 3 * kPage);
  std::string want = Pattern(5, 0, 5000) + std::string(3 * kPage - 5000, '\0');
  EXPECT_EQ(env.Read(5, 0, 3 * kPage), want);
  ASSERT_TRUE(env.data().Sync(5, false).ok());
  env.Reopen();
  EXPECT_EQ(env.Read(5, 0, 3 * kPage), want);
  auto ex = env.meta().GetExtents(5);
  ASSERT_TRUE(ex.ok());
  ASSERT_EQ(ex->size(), 1u);
  EXPECT_EQ((*ex)[0].length, 2u);
}

TEST(DataFile, TruncateOfDirtyPagesReturnsReservations) {
  DataEnv env;
  ASSERT_TRUE(env.Write(6, 0, Pattern(6, 0, 1 << 20)).ok());
  EXPECT_EQ(env.alloc().reserved_blocks(), 256u);
  ASSERT_TRUE(env.Truncate(6, 0).ok());
  EXPECT_EQ(env.alloc().reserved_blocks(), 0u);
  EXPECT_EQ(env.Stat("pagecache_dirty"), 0);
  EXPECT_EQ(env.Stat("pagecache_pages"), 0);
  EXPECT_EQ(env.mm().budget().used(), 0u);
  ASSERT_TRUE(env.data().Sync(6, false).ok());
  EXPECT_TRUE(env.meta().GetExtents(6)->empty());
}

TEST(DataFile, PunchHoleFreesWholePagesAndZeroesEdges) {
  DataEnv env;
  const std::string a = Pattern(8, 0, 16 * kPage);
  ASSERT_TRUE(env.Write(8, 0, a).ok());
  ASSERT_TRUE(env.data().Sync(8, false).ok());
  const uint64_t free_before = env.alloc().free_blocks();
  const uint64_t off = kPage + 100, end = 8 * kPage + 50;
  ASSERT_TRUE(env.data().PunchHole(8, a.size(), off, end - off).ok());
  EXPECT_EQ(env.alloc().free_blocks(), free_before + 6);  // pages 2..7
  std::string want = a;
  want.replace(off, end - off, std::string(end - off, '\0'));
  EXPECT_EQ(env.Read(8, 0, a.size()), want);
  EXPECT_EQ(*env.data().SeekHole(8, a.size(), 0), 2 * kPage);
  EXPECT_EQ(*env.data().SeekData(8, a.size(), 2 * kPage), 8 * kPage);
  ASSERT_TRUE(env.data().Sync(8, false).ok());
  env.Reopen();
  EXPECT_EQ(env.Read(8, 0, a.size()), want);
  EXPECT_EQ(*env.data().SeekHole(8, a.size(), kPage), 2 * kPage);
  // Punch inside one page only zeroes bytes.
  ASSERT_TRUE(env.data().PunchHole(8, a.size(), 12 * kPage + 10, 20).ok());
  want.replace(12 * kPage + 10, 20, std::string(20, '\0'));
  EXPECT_EQ(env.Read(8, 0, a.size()), want);
}

// Collapse and insert: dirty data moves with its offset, the collapsed blocks
// are freed as pending frees, and the shifted extents and the new size reach
// the store in the one commit inside which the size was set.
TEST(DataFile, CollapseAndInsertShiftInOneCommit) {
  DataEnv env;
  const std::string a = Pattern(9, 0, 16 * kPage);
  ASSERT_TRUE(env.Write(9, 0, a).ok());
  ASSERT_TRUE(env.data().Sync(9, false).ok());
  std::string want = a;
  const std::string dirty = Pattern(9, 1, 2 * kPage);  // blocks 10-11, not written back
  ASSERT_TRUE(env.Write(9, 10 * kPage, dirty).ok());
  want.replace(10 * kPage, dirty.size(), dirty);
  const uint64_t pending_before = env.alloc().pending_free_blocks();

  uint64_t seq_at_set = 0;
  auto set_size = [&](uint64_t size) {
    return [&env, &seq_at_set, size] {
      seq_at_set = env.meta().last_sequence();
      env.records().Set(9, size);
    };
  };
  ASSERT_TRUE(env.data().CollapseRange(9, 2 * kPage, 3 * kPage, set_size(13 * kPage)).ok());
  want.erase(2 * kPage, 3 * kPage);
  EXPECT_EQ(env.meta().last_sequence(), seq_at_set + 1) << "size and shift in more than one commit";
  EXPECT_EQ(env.meta().GetInode(9)->size, 13 * kPage);
  uint64_t stored = 0;
  const auto extents = env.meta().GetExtents(9);  // kept: the loop must not outlive it
  ASSERT_TRUE(extents.ok());
  for (const auto& e : *extents) stored += e.length;
  EXPECT_EQ(stored, 13u);
  EXPECT_EQ(env.alloc().pending_free_blocks(), pending_before + 3) << "collapsed blocks not pending";
  EXPECT_EQ(env.Read(9, 0, 16 * kPage), want);

  ASSERT_TRUE(env.data().InsertRange(9, 4 * kPage, 2 * kPage, set_size(15 * kPage)).ok());
  want.insert(4 * kPage, 2 * kPage, '\0');
  EXPECT_EQ(env.meta().last_sequence(), seq_at_set + 1);
  EXPECT_EQ(env.meta().GetInode(9)->size, 15 * kPage);
  EXPECT_EQ(env.Read(9, 0, 16 * kPage), want);
  EXPECT_EQ(*env.data().SeekHole(9, want.size(), 0), 4 * kPage);
  EXPECT_EQ(*env.data().SeekData(9, want.size(), 4 * kPage), 6 * kPage);
  env.Reopen();
  EXPECT_EQ(env.Read(9, 0, 16 * kPage), want);
  EXPECT_EQ(env.alloc().reserved_blocks(), 0u);
}

TEST(DataFile, PreallocateReadsZerosAndConvertsOnWrite) {
  DataEnv env;
  const uint64_t len = 16 * kPage;
  const uint64_t free_before = env.alloc().free_blocks();
  ASSERT_TRUE(env.data().Preallocate(12, 0, len).ok());
  EXPECT_EQ(env.alloc().free_blocks(), free_before - 16);
  EXPECT_EQ(env.data().AllocatedSectors(12), 16u * 8);
  auto ex = env.meta().GetExtents(12);
  ASSERT_EQ(ex->size(), 1u);
  EXPECT_TRUE((*ex)[0].unwritten);
  env.records().Set(12, len);
  EXPECT_EQ(env.Read(12, 0, len), std::string(len, '\0'));
  EXPECT_EQ(*env.data().SeekData(12, len, 0), 0u);  // unwritten counts as data

  const std::string b = Pattern(12, 0, 100);
  ASSERT_TRUE(env.Write(12, kPage + 7, b).ok());
  EXPECT_EQ(env.alloc().reserved_blocks(), 0u);  // the block exists already
  ASSERT_TRUE(env.data().Sync(12, false).ok());
  ex = env.meta().GetExtents(12);
  ASSERT_EQ(ex->size(), 3u);
  EXPECT_TRUE((*ex)[0].unwritten);
  EXPECT_FALSE((*ex)[1].unwritten);
  EXPECT_EQ((*ex)[1].file_block, 1u);
  EXPECT_TRUE((*ex)[2].unwritten);
  EXPECT_EQ(env.alloc().free_blocks(), free_before - 16);
  env.Reopen();
  std::string want(len, '\0');
  want.replace(kPage + 7, b.size(), b);
  EXPECT_EQ(env.Read(12, 0, len), want);
  // Preallocating again over mapped blocks allocates nothing.
  ASSERT_TRUE(env.data().Preallocate(12, 0, len).ok());
  EXPECT_EQ(env.alloc().free_blocks(), free_before - 16);
}

TEST(DataFile, SeekDataAndHoleCountDirtyPages) {
  DataEnv env;
  ASSERT_TRUE(env.Write(13, 0, std::string(kPage, 'a')).ok());
  ASSERT_TRUE(env.Write(13, 10 * kPage, std::string(kPage, 'b')).ok());
  const uint64_t size = 11 * kPage;
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(*env.data().SeekData(13, size, 0), 0u);
    EXPECT_EQ(*env.data().SeekHole(13, size, 0), kPage);
    EXPECT_EQ(*env.data().SeekData(13, size, kPage + 5), 10 * kPage);
    EXPECT_EQ(*env.data().SeekHole(13, size, 10 * kPage), size);
    EXPECT_EQ(ToErrno(env.data().SeekData(13, size, size).status()), ENXIO);
    ASSERT_TRUE(env.data().Sync(13, false).ok());
  }
}

TEST(DataFile, EnospcLeavesEarlierDataIntact) {
  EnvOptions o;
  o.store_bytes = 2 << 20;  // 512 blocks
  DataEnv env(o);
  const uint64_t chunk = 64 << 10;
  uint64_t written = 0;
  absl::Status s;
  for (int i = 0; i < 64 && s.ok(); ++i) {
    s = env.Write(14, written, Pattern(14, written, chunk));
    if (s.ok()) written += chunk;
  }
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_EQ(ToErrno(s), ENOSPC);
  EXPECT_GT(written, 1u << 20);
  ASSERT_TRUE(env.data().Sync(14, false).ok());
  env.Reopen();
  EXPECT_EQ(env.Read(14, 0, written), Pattern(14, 0, written));
  // Freeing makes room again.
  ASSERT_TRUE(env.Truncate(14, 0).ok());
  EXPECT_TRUE(env.Write(14, 0, Pattern(14, 0, chunk)).ok());
}

TEST(DataFile, EvictIsNonBlockingOnDirtyData) {
  DataEnv env;
  ASSERT_TRUE(env.Write(15, 0, Pattern(15, 0, 3 * kPage)).ok());
  absl::Status s = env.data().Evict(15, true);
  EXPECT_EQ(ToErrno(s), EAGAIN);
  ASSERT_TRUE(env.data().Sync(15, false).ok());
  ASSERT_TRUE(env.data().Evict(15, true).ok());
  EXPECT_EQ(env.Stat("pagecache_pages"), 0);
  EXPECT_EQ(env.mm().budget().used(), 0u);
  EXPECT_EQ(env.Read(15, 0, 3 * kPage), Pattern(15, 0, 3 * kPage));
  // Blocking eviction writes back first.
  ASSERT_TRUE(env.Write(15, kPage, "zz").ok());
  ASSERT_TRUE(env.data().Evict(15, false).ok());
  EXPECT_EQ(env.Stat("pagecache_pages"), 0);
  env.Reopen();
  std::string want = Pattern(15, 0, 3 * kPage);
  want.replace(kPage, 2, "zz");
  EXPECT_EQ(env.Read(15, 0, 3 * kPage), want);
}

TEST(DataFile, DeallocateFreesAllBlocks) {
  DataEnv env;
  const uint64_t free_before = env.alloc().free_blocks();
  ASSERT_TRUE(env.Write(16, 0, Pattern(16, 0, 1 << 20)).ok());
  ASSERT_TRUE(env.data().Sync(16, false).ok());
  ASSERT_TRUE(env.Write(16, 1 << 20, Pattern(16, 1 << 20, 64 << 10)).ok());  // dirty, reserved
  storage::MetaStore::Batch batch;
  batch.DeleteInode(16);
  ASSERT_TRUE(env.data().Deallocate(16, &batch).ok());
  EXPECT_EQ(env.alloc().free_blocks(), free_before);
  EXPECT_EQ(env.alloc().reserved_blocks(), 0u);
  EXPECT_EQ(env.Stat("pagecache_pages"), 0);
  EXPECT_TRUE(env.meta().GetExtents(16)->empty());
  EXPECT_TRUE(absl::IsNotFound(env.meta().GetInode(16).status()));
  env.Reopen();
  EXPECT_EQ(env.alloc().free_blocks(), free_before);
}

TEST(DataFile, WriteErrorIsReportedBySyncAndRetried) {
  EnvOptions o;
  o.data.dirty_expire_ms = 3'600'000;
  DataEnv env(o);
  const uint64_t free_before = env.alloc().free_blocks();
  const std::string a = Pattern(17, 0, 4 * kPage);
  ASSERT_TRUE(env.Write(17, 0, a).ok());
  env.dev().set_fail_writes(true);
  absl::Status s = env.data().Sync(17, false);
  EXPECT_EQ(ToErrno(s), EIO) << s;
  EXPECT_EQ(env.Stat("pagecache_dirty"), 4);  // kept for a retry
  EXPECT_EQ(env.alloc().free_blocks(), free_before);  // allocation cancelled
  env.dev().set_fail_writes(false);
  ASSERT_TRUE(env.data().Sync(17, false).ok());
  EXPECT_EQ(env.Stat("pagecache_dirty"), 0);
  env.Reopen();
  EXPECT_EQ(env.Read(17, 0, a.size()), a);
}


// Periodic writeback visits the dirty-file list: every file dirtied is
// written once its pages expire, a file dirtied again after it was cleaned
// (and so left the list) is written again, and a file many clean files
// share the cache with is not missed.
TEST(DataFile, PeriodicWritebackWritesEveryDirtiedFileAgainAndAgain) {
  EnvOptions o;
  o.data.dirty_expire_ms = 20;
  o.data.writeback_interval_ms = 10;
  o.data.dirty_background_ratio = 0.9;  // only expiry starts writeback
  DataEnv env(o);
  // Clean without a sync: only the periodic flusher writes these pages.
  auto wait_clean = [&] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    auto clean = [&] { return env.Stat("pagecache_dirty") == 0 && env.Stat("pagecache_writeback") == 0; };
    while (!clean() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return clean();
  };
  for (uint64_t ino = 10; ino < 60; ++ino) ASSERT_TRUE(env.Write(ino, 0, Pattern(ino, 0, kPage)).ok());
  ASSERT_TRUE(wait_clean());
  // Pages are counted before their writeback ends, so the counts are exact.
  const int64_t written = env.Stat("writeback_pages_written");
  EXPECT_EQ(written, 50);
  EXPECT_GE(env.Stat("writeback_periodic_jobs"), 50);
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(env.Write(33, 0, Pattern(100 + round, 0, 2 * kPage)).ok());
    EXPECT_EQ(env.Stat("pagecache_dirty"), 2);
    ASSERT_TRUE(wait_clean()) << "round " << round;
    EXPECT_EQ(env.Stat("writeback_pages_written"), written + 2 * (round + 1));
  }
  env.Reopen();
  EXPECT_EQ(env.Read(33, 0, 2 * kPage), Pattern(102, 0, 2 * kPage));
  EXPECT_EQ(env.Read(59, 0, kPage), Pattern(59, 0, kPage));
}

}  // namespace
}  // namespace reclaimfs::fs::testing

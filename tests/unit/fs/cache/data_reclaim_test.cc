// The data path under memory pressure: pageout work racing with truncate
// and sync (made deterministic with sync points), a shrinker that never
// blocks on slow IO, scan resistance of the two-list LRU, many writers in a
// tiny budget (both shrinker modes), fsync under pressure, dirty throttling.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "data_env.h"
#include "fs/cache/extent_map.h"
#include "gtest/gtest.h"
#include "reclaim/sync_point.h"

namespace reclaimfs::fs::testing {
namespace {

using std::chrono::milliseconds;
using reclaim::SyncPoint;

constexpr uint64_t kPage = 4096;

// No background or periodic writeback: only what a test asks for happens.
EnvOptions Quiet() {
  EnvOptions o;
  o.kswapd = false;
  o.data.dirty_background_ratio = 0.9;
  o.data.dirty_ratio = 0.95;
  o.data.dirty_expire_ms = 3'600'000;
  return o;
}

template <typename Pred>
bool WaitUntil(Pred pred, milliseconds timeout = milliseconds(10'000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

// Scans until the shrinker has queued pageout work for `n` pages.
void ShrinkUntilPageoutQueued(DataEnv& env, int64_t n) {
  ASSERT_TRUE(WaitUntil([&] {
    env.mm().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
    return env.Stat("writeback_pageout_queued") >= n;
  }));
}

class SyncPointTest : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(SyncPoint::Get().timeouts(), 0u);
    SyncPoint::Get().Disable();
    SyncPoint::Get().Reset();
  }
};

TEST_F(SyncPointTest, PageoutOfTruncatedPageIsDropped) {
  DataEnv env(Quiet());
  ASSERT_TRUE(env.Write(20, 0, Pattern(20, 0, kPage)).ok());
  // shrinker queues pageout -> truncate removes the page -> pageout runs.
  SyncPoint::Get().LoadDependencies({{"PageCache::Truncate:AfterDrop", "PageCache::Pageout:BeforeLock"}});
  SyncPoint::Get().Enable();
  ShrinkUntilPageoutQueued(env, 1);
  ASSERT_TRUE(env.Truncate(20, 0).ok());
  ASSERT_TRUE(WaitUntil([&] { return env.Stat("writeback_pageout_dropped") == 1; }));
  EXPECT_EQ(env.Stat("writeback_pageout_done"), 0);
  EXPECT_EQ(env.Stat("writeback_pages_written"), 0);
  EXPECT_EQ(env.dev().write_requests(), 0u);
  // The work's reference was the last one: the page is gone and uncharged.
  EXPECT_EQ(env.Stat("pagecache_pages"), 0);
  EXPECT_EQ(env.mm().budget().used(), 0u);
  EXPECT_EQ(env.alloc().reserved_blocks(), 0u);
}

// st_blocks never dips while new data is written: between the allocation of
// blocks for holes and the commit that maps them, the blocks are counted.
TEST_F(SyncPointTest, AllocatedSectorsCountBlocksBeingWritten) {
  DataEnv env(Quiet());
  constexpr uint64_t kPages = 16;
  ASSERT_TRUE(env.Write(23, 0, Pattern(23, 0, kPages * kPage)).ok());
  const uint64_t want = kPages * (kPage / 512);
  EXPECT_EQ(env.data().AllocatedSectors(23), want);  // reserved, not yet allocated
  std::atomic<uint64_t> seen_before_commit{0};
  std::atomic<int> calls{0};
  SyncPoint::Get().SetCallback("PageCache::Writeback:BeforeCommit", [&] {
    seen_before_commit.store(env.data().AllocatedSectors(23));
    calls.fetch_add(1);
  });
  SyncPoint::Get().Enable();
  ASSERT_TRUE(env.data().Sync(23, false).ok());
  SyncPoint::Get().Disable();
  ASSERT_GE(calls.load(), 1);
  EXPECT_EQ(seen_before_commit.load(), want);
  EXPECT_EQ(env.data().AllocatedSectors(23), want);  // mapped now
  EXPECT_EQ(env.Read(23, 0, kPages * kPage), Pattern(23, 0, kPages * kPage));
}

TEST_F(SyncPointTest, PageoutOfCleanedPageIsDropped) {
  DataEnv env(Quiet());
  ASSERT_TRUE(env.Write(21, 0, Pattern(21, 0, kPage)).ok());
  SyncPoint::Get().LoadDependencies({{"Test:SyncDone", "PageCache::Pageout:BeforeLock"}});
  SyncPoint::Get().Enable();
  ShrinkUntilPageoutQueued(env, 1);
  ASSERT_TRUE(env.data().Sync(21, false).ok());
  EXPECT_EQ(env.Stat("writeback_pages_written"), 1);
  SyncPoint::Get().Process("Test:SyncDone");
  ASSERT_TRUE(WaitUntil([&] { return env.Stat("writeback_pageout_dropped") == 1; }));
  EXPECT_EQ(env.Stat("writeback_pages_written"), 1);  // not written twice
  EXPECT_EQ(env.dev().write_requests(), 1u);
  EXPECT_EQ(env.Read(21, 0, kPage), Pattern(21, 0, kPage));
}

TEST_F(SyncPointTest, PageoutClustersAheadOnly) {
  DataEnv env(Quiet());
  ASSERT_TRUE(env.Write(22, 0, Pattern(22, 0, 64 * kPage)).ok());
  // Make the pageout page the middle one: pages below it are written by
  // sync later, pages from it on by the pageout cluster.
  SyncPoint::Get().LoadDependencies({{"Test:Go", "PageCache::Pageout:BeforeLock"}});
  SyncPoint::Get().Enable();
  ShrinkUntilPageoutQueued(env, 1);
  SyncPoint::Get().Process("Test:Go");
  ASSERT_TRUE(WaitUntil([&] {
    return env.Stat("writeback_pageout_done") + env.Stat("writeback_pageout_dropped") >=
           env.Stat("writeback_pageout_queued");
  }));
  EXPECT_GE(env.Stat("writeback_pageout_done"), 1);
  ASSERT_TRUE(env.data().Sync(22, false).ok());
  env.Reopen();
  EXPECT_EQ(env.Read(22, 0, 64 * kPage), Pattern(22, 0, 64 * kPage));
}

TEST(DataReclaim, ShrinkerNeverBlocksOnSlowIo) {
  DataEnv env(Quiet());
  ASSERT_TRUE(env.Write(23, 0, Pattern(23, 0, 256 * kPage)).ok());
  env.dev().set_delay(milliseconds(200));
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto pass = env.mm().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_LT(took, milliseconds(50)) << "pass " << i;
    EXPECT_TRUE(pass.backoff_requested) << "pass " << i;
    EXPECT_EQ(pass.freed, 0u);
  }
  EXPECT_GE(env.Stat("writeback_pageout_queued"), 1);
  // Pageout makes the pages clean; then the shrinker frees them.
  ASSERT_TRUE(env.data().Sync(23, false).ok());
  env.dev().set_delay(milliseconds(0));
  ASSERT_TRUE(WaitUntil([&] {
    env.mm().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
    return env.Stat("pagecache_pages") == 0;
  }));
  // What stays charged is the file's extent map: one contiguous extent.
  EXPECT_EQ(env.mm().budget().used(), ExtentMap::kRecordBytes);
  EXPECT_EQ(env.Read(23, 0, 256 * kPage), Pattern(23, 0, 256 * kPage));
}

TEST(DataReclaim, PageReadOnceIsReclaimedAtTheFirstLook) {
  DataEnv env(Quiet());
  ASSERT_TRUE(env.Write(24, 0, Pattern(24, 0, 8 * kPage)).ok());
  ASSERT_TRUE(env.data().SyncAll().ok());
  env.Reopen();
  ASSERT_EQ(env.Read(24, 0, 8 * kPage), Pattern(24, 0, 8 * kPage));
  ASSERT_EQ(env.Stat("pagecache_pages"), 8);
  // Read once: referenced but inactive. One look at each (priority 12
  // asks for 8 of 8) frees them all, as Linux does with unmapped file
  // pages; the referenced bit alone is no reprieve.
  const auto pass = env.mm().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 12, 0);
  EXPECT_EQ(pass.freed, 8u);
  EXPECT_EQ(env.Stat("pagecache_pages"), 0);
  EXPECT_EQ(env.mm().budget().used(), ExtentMap::kRecordBytes);  // its extent map
}

TEST(DataReclaim, PageoutIsQueuedWhenADirtyPageIsMetTwice) {
  DataEnv env(Quiet());
  ASSERT_TRUE(env.Write(25, 0, Pattern(25, 0, kPage)).ok());
  // Just written: referenced. The first look clears that and keeps the
  // page; the second marks it for reclaim and leaves it to the flushers;
  // only the third, still dirty, queues pageout work. (Priority 12 looks
  // at one page of a one-page cache per pass.)
  auto look = [&] { env.mm().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 12, 0); };
  look();
  look();
  EXPECT_EQ(env.Stat("writeback_pageout_queued"), 0);
  EXPECT_EQ(env.Stat("pagecache_shrink_rotated"), 1);
  look();
  EXPECT_EQ(env.Stat("writeback_pageout_queued"), 1);
  ASSERT_TRUE(WaitUntil([&] { return env.Stat("writeback_pages_written") == 1; }));
  ASSERT_TRUE(WaitUntil([&] {
    env.mm().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
    return env.Stat("pagecache_pages") == 0;
  }));
  EXPECT_EQ(env.Read(25, 0, kPage), Pattern(25, 0, kPage));
}

TEST(DataReclaim, BlockingModeWritesWhatItMeets) {
  EnvOptions o = Quiet();
  o.data.shrinker_mode = ShrinkerMode::kBlocking;
  DataEnv env(o);
  ASSERT_TRUE(env.Write(26, 0, Pattern(26, 0, kPage)).ok());
  auto look = [&] { env.mm().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 12, 0); };
  look();  // clears referenced
  EXPECT_EQ(env.Stat("writeback_pages_written"), 0);
  // The old design: the shrinker writes the page itself and waits.
  look();
  EXPECT_EQ(env.Stat("writeback_pages_written"), 1);
}

TEST(DataReclaim, ScanResistance) {
  EnvOptions o;
  o.budget_bytes = 4 << 20;
  DataEnv env(o);
  const uint64_t hot = 512 << 10, stream = 100 * hot;
  const uint64_t chunk = 128 << 10;
  for (uint64_t off = 0; off < hot; off += chunk) ASSERT_TRUE(env.Write(30, off, Pattern(30, off, chunk)).ok());
  for (uint64_t off = 0; off < stream; off += chunk) ASSERT_TRUE(env.Write(31, off, Pattern(31, off, chunk)).ok());
  ASSERT_TRUE(env.data().SyncAll().ok());
  env.Reopen();

  auto read_hot = [&] {
    for (uint64_t off = 0; off < hot; off += chunk) ASSERT_EQ(env.Read(30, off, chunk), Pattern(30, off, chunk));
  };
  read_hot();
  read_hot();  // second touch: the hot set is active now
  int64_t hot_hits = 0, hot_misses = 0;
  for (uint64_t off = 0; off < stream; off += chunk) {
    std::string got = env.Read(31, off, chunk);
    ASSERT_EQ(got.size(), chunk);
    if (off % (1 << 20) == 0) {
      ASSERT_EQ(got, Pattern(31, off, chunk));
      const int64_t h = env.Stat("pagecache_hits"), m = env.Stat("pagecache_misses");
      read_hot();
      hot_hits += env.Stat("pagecache_hits") - h;
      hot_misses += env.Stat("pagecache_misses") - m;
    }
  }
  const double ratio = double(hot_hits) / double(hot_hits + hot_misses);
  EXPECT_GE(ratio, 0.9) << "hot hits " << hot_hits << " misses " << hot_misses;
  EXPECT_LE(env.mm().budget().peak_used(), env.mm().budget().limit());
  EXPECT_GT(env.Stat("pagecache_readahead_pages"), 0);
}

class DataPressure : public ::testing::TestWithParam<ShrinkerMode> {};

TEST_P(DataPressure, ManyWritersInATinyBudget) {
  EnvOptions o;
  o.budget_bytes = 2 << 20;
  o.data.shrinker_mode = GetParam();
  // Let dirty pages reach the LRU tail so reclaim meets them (pageout, or
  // the blocking shrinker's own writes), not only background writeback.
  o.data.dirty_background_ratio = 0.4;
  o.data.dirty_ratio = 0.5;
  DataEnv env(o);
  constexpr int kThreads = 4;
  constexpr uint64_t kPerFile = 16 << 20, kChunk = 64 << 10;
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      const uint64_t ino = 40 + t;
      for (uint64_t off = 0; off < kPerFile; off += kChunk) {
        absl::Status s = env.Write(ino, off, Pattern(ino, off, kChunk));
        if (!s.ok()) {
          ADD_FAILURE() << "ino " << ino << " off " << off << ": " << s;
          failures++;
          return;
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(env.data().SyncAll().ok());
  EXPECT_LE(env.mm().budget().peak_used(), env.mm().budget().limit());
  EXPECT_GT(env.mm().stats().kswapd_freed.load() + env.mm().stats().direct_freed.load(), 0u);
  const std::string stats = env.data().StatsText();
  env.Reopen();
  for (int t = 0; t < kThreads; ++t) {
    const uint64_t ino = 40 + t;
    for (uint64_t off = 0; off < kPerFile; off += 128 << 10) {
      ASSERT_EQ(env.Read(ino, off, 128 << 10), Pattern(ino, off, 128 << 10)) << ino << "@" << off;
    }
  }
  EXPECT_LE(env.mm().budget().peak_used(), env.mm().budget().limit());
}

INSTANTIATE_TEST_SUITE_P(Modes, DataPressure,
                         ::testing::Values(ShrinkerMode::kNonBlocking, ShrinkerMode::kBlocking),
                         [](const auto& info) {
                           return info.param == ShrinkerMode::kBlocking ? "Blocking" : "NonBlocking";
                         });

TEST(DataReclaim, FsyncUnderMemoryPressure) {
  EnvOptions o;
  o.budget_bytes = 2 << 20;
  DataEnv env(o);
  std::atomic<bool> stop{false};
  std::thread streamer([&] {
    uint64_t off = 0;
    while (!stop.load()) {
      ASSERT_TRUE(env.Write(50, off % (32 << 20), Pattern(50, off, 64 << 10)).ok());
      off += 64 << 10;
    }
  });
  for (int i = 0; i < 20; ++i) {
    const uint64_t off = uint64_t(i) * 3 * kPage;
    ASSERT_TRUE(env.Write(51, off, Pattern(51, off, 3 * kPage)).ok());
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(env.data().Sync(51, false).ok());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(10'000));
  }
  stop = true;
  streamer.join();
  env.Reopen();
  EXPECT_EQ(env.Read(51, 0, 60 * kPage), Pattern(51, 0, 60 * kPage));
}

TEST(DataReclaim, WritersAreThrottledNotMadeToWrite) {
  EnvOptions o;
  o.budget_bytes = 4 << 20;
  DataEnv env(o);
  env.dev().set_delay(milliseconds(20));
  for (uint64_t off = 0; off < (16 << 20); off += 64 << 10) {
    ASSERT_TRUE(env.Write(60, off, Pattern(60, off, 64 << 10)).ok());
    // Dirty + writeback memory stays well inside the budget.
    EXPECT_LE((env.Stat("pagecache_dirty") + env.Stat("pagecache_writeback")) * kPage,
              env.mm().budget().limit() / 2 + (64 << 10));
  }
  EXPECT_GT(env.Stat("writeback_throttle_pauses"), 0);
  EXPECT_GT(env.mm().stats().dirty_throttle_pauses.load(), 0u);
  EXPECT_GT(env.mm().stats().dirty_throttle_us.Count(), 0u);
  env.dev().set_delay(milliseconds(0));
  ASSERT_TRUE(env.data().Sync(60, false).ok());
}

}  // namespace
}  // namespace reclaimfs::fs::testing

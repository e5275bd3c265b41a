// Allocator: placement policy, space accounting, and a free map that
// persists through MetaStore batches.
#include "storage/allocator.h"

#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "temp_dir.h"

namespace reclaimfs::storage {
namespace {

using testing::TempDir;

constexpr uint64_t kBlocks = 1024;  // 4 MiB store

class AllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(MakeStore(tmp_.path(), MkfsOptions{.size_bytes = kBlocks * 4096}).ok());
    OpenMeta();
    ASSERT_TRUE(alloc_.Load(*meta_).ok());
  }

  void OpenMeta() {
    meta_.reset();
    MetaOptions o;
    o.lock_wait_ms = 0;
    auto m = MetaStore::Open(tmp_.Sub(kMetaDirName), o);
    ASSERT_TRUE(m.ok()) << m.status();
    meta_ = std::move(*m);
  }

  // Allocates and commits, as writeback does.
  std::vector<BlockRun> AllocCommit(uint64_t n, uint64_t goal) {
    auto runs = alloc_.Allocate(n, goal, false);
    EXPECT_TRUE(runs.ok()) << runs.status();
    if (!runs.ok()) return {};
    MetaStore::Batch b;
    EXPECT_TRUE(meta_->Commit(b, false, [&](MetaStore::Batch& batch) {
      alloc_.CommitAllocation(*runs, &batch);
      return absl::OkStatus();
    }).ok());
    return *runs;
  }

  // Frees and commits, as truncate does; `durable` then syncs the log so the
  // run is allocatable again.
  void FreeCommit(BlockRun run, bool durable = true) {
    MetaStore::Batch b;
    ASSERT_TRUE(meta_->Commit(b, false, [&](MetaStore::Batch& batch) {
      alloc_.Free(run, &batch);
      return absl::OkStatus();
    }).ok());
    if (durable) ASSERT_TRUE(alloc_.SyncPendingFrees().ok());
  }

  std::vector<BlockRun> PersistedRuns() {
    std::vector<BlockRun> runs;
    EXPECT_TRUE(meta_->ForEachFreeExtent([&](uint64_t s, uint64_t l) {
      runs.push_back({s, l});
      return true;
    }).ok());
    return runs;
  }

  TempDir tmp_;
  std::unique_ptr<MetaStore> meta_;
  Allocator alloc_{kBlocks};
};

uint64_t Sum(const std::vector<BlockRun>& runs) {
  uint64_t n = 0;
  for (const auto& r : runs) n += r.length;
  return n;
}

TEST_F(AllocatorTest, LoadsTheWholeFileAsFree) {
  EXPECT_EQ(alloc_.total_blocks(), kBlocks);
  EXPECT_EQ(alloc_.free_blocks(), kBlocks);
  EXPECT_EQ(alloc_.FreeRuns(), (std::vector<BlockRun>{{0, kBlocks}}));
  EXPECT_EQ(alloc_.DiskFreeRuns(), alloc_.FreeRuns());
}

TEST_F(AllocatorTest, ContiguousAtGoal) {
  EXPECT_EQ(AllocCommit(10, 100), (std::vector<BlockRun>{{100, 10}}));
  // The file's next extent continues right after its previous one.
  EXPECT_EQ(AllocCommit(5, 110), (std::vector<BlockRun>{{110, 5}}));
  // Goal in a hole too small: the first fit after the goal.
  EXPECT_EQ(AllocCommit(80, 20), (std::vector<BlockRun>{{20, 80}}));
  // [0, 20) is too small for 30: the first run after it that fits.
  EXPECT_EQ(AllocCommit(30, 0), (std::vector<BlockRun>{{115, 30}}));
  EXPECT_EQ(AllocCommit(20, 0), (std::vector<BlockRun>{{0, 20}}));
  EXPECT_EQ(alloc_.free_blocks(), kBlocks - 145);
  EXPECT_EQ(alloc_.FreeRuns(), (std::vector<BlockRun>{{145, kBlocks - 145}}));
}

TEST_F(AllocatorTest, GoalPastEverythingWrapsToFirstFit) {
  AllocCommit(kBlocks - 100, 100);  // [100, 1024) used
  EXPECT_EQ(AllocCommit(50, 1000), (std::vector<BlockRun>{{0, 50}}));
}

TEST_F(AllocatorTest, FragmentedSpaceGathersSeveralRuns) {
  AllocCommit(kBlocks, 0);
  // Free every other run of 16 blocks: 32 holes of 16.
  for (uint64_t s = 0; s < kBlocks; s += 32) FreeCommit({s, 16});
  EXPECT_EQ(alloc_.free_blocks(), kBlocks / 2);

  auto runs = alloc_.Allocate(40, 0, false);
  ASSERT_TRUE(runs.ok()) << runs.status();
  EXPECT_EQ(Sum(*runs), 40u);
  EXPECT_EQ(runs->size(), 3u);  // 16 + 16 + 8
  std::set<uint64_t> blocks;
  for (const auto& r : *runs) {
    EXPECT_EQ(r.start % 32, 0u) << "each piece comes from a hole";
    EXPECT_LE(r.length, 16u);
    for (uint64_t b = r.start; b < r.start + r.length; ++b) blocks.insert(b);
  }
  EXPECT_EQ(blocks.size(), 40u);
  EXPECT_EQ(alloc_.free_blocks(), kBlocks / 2 - 40);
}

TEST_F(AllocatorTest, NoSpaceLeavesStateUnchanged) {
  auto r = alloc_.Allocate(kBlocks + 1, 0, false);
  EXPECT_TRUE(absl::IsResourceExhausted(r.status())) << r.status();
  EXPECT_EQ(alloc_.free_blocks(), kBlocks);
  AllocCommit(kBlocks - 3, 0);
  EXPECT_TRUE(absl::IsResourceExhausted(alloc_.Allocate(4, 0, false).status()));
  EXPECT_TRUE(alloc_.Allocate(3, 0, false).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(alloc_.Allocate(1, 0, false).status()));
}

TEST_F(AllocatorTest, ReservationsLimitAvailable) {
  ASSERT_TRUE(alloc_.Reserve(900).ok());
  EXPECT_EQ(alloc_.reserved_blocks(), 900u);
  EXPECT_EQ(alloc_.available_blocks(), kBlocks - 900);
  EXPECT_TRUE(absl::IsResourceExhausted(alloc_.Reserve(kBlocks - 899)));
  // Plain allocation may not eat into what is promised to dirty data.
  EXPECT_TRUE(absl::IsResourceExhausted(alloc_.Allocate(200, 0, false).status()));
  auto r = alloc_.Allocate(200, 0, /*from_reservation=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(alloc_.reserved_blocks(), 700u);
  EXPECT_EQ(alloc_.free_blocks(), kBlocks - 200);
  EXPECT_EQ(alloc_.available_blocks(), kBlocks - 900);
  alloc_.Unreserve(700);
  EXPECT_EQ(alloc_.reserved_blocks(), 0u);
  alloc_.Unreserve(5);  // more than reserved: clamps, no wrap
  EXPECT_EQ(alloc_.reserved_blocks(), 0u);
  EXPECT_EQ(alloc_.available_blocks(), kBlocks - 200);
}

TEST_F(AllocatorTest, FreeMergesNeighbours) {
  AllocCommit(10, 0);
  AllocCommit(10, 10);
  AllocCommit(10, 20);
  EXPECT_EQ(alloc_.FreeRuns(), (std::vector<BlockRun>{{30, kBlocks - 30}}));
  FreeCommit({10, 10});
  EXPECT_EQ(alloc_.FreeRuns(), (std::vector<BlockRun>{{10, 10}, {30, kBlocks - 30}}));
  FreeCommit({20, 10});  // joins both sides
  EXPECT_EQ(alloc_.FreeRuns(), (std::vector<BlockRun>{{10, kBlocks - 10}}));
  FreeCommit({0, 10});
  EXPECT_EQ(alloc_.FreeRuns(), (std::vector<BlockRun>{{0, kBlocks}}));
  EXPECT_EQ(alloc_.DiskFreeRuns(), alloc_.FreeRuns());
  EXPECT_EQ(PersistedRuns(), alloc_.FreeRuns()) << "merged keys were deleted on disk too";
}

// Blocks freed by a commit that is not durable yet must not be handed out:
// a crash could undo the free and give the old owner back its blocks, now
// holding someone else's data.
TEST_F(AllocatorTest, FreedBlocksWaitForTheirCommitToBeDurable) {
  AllocCommit(kBlocks, 0);  // full
  FreeCommit({100, 50}, /*durable=*/false);
  EXPECT_EQ(alloc_.pending_free_blocks(), 50u);
  EXPECT_TRUE(alloc_.FreeRuns().empty()) << "allocatable before the free is durable";
  EXPECT_EQ(alloc_.DiskFreeRuns(), (std::vector<BlockRun>{{100, 50}}));
  // ... yet they count as free space: statfs and reservations see them.
  EXPECT_EQ(alloc_.free_blocks(), 50u);
  EXPECT_EQ(alloc_.available_blocks(), 50u);
  ASSERT_TRUE(alloc_.Reserve(50).ok());
  alloc_.Unreserve(50);

  // A sync commit of anything makes the earlier free durable.
  const uint64_t freed_at = meta_->last_sequence();
  MetaStore::Batch other;
  other.AddOrphan(99);
  ASSERT_TRUE(meta_->Commit(other, true).ok());
  EXPECT_GE(meta_->durable_sequence(), freed_at);
  ASSERT_TRUE(alloc_.SyncPendingFrees().ok());
  EXPECT_EQ(alloc_.pending_free_blocks(), 0u);
  EXPECT_EQ(alloc_.FreeRuns(), (std::vector<BlockRun>{{100, 50}}));
}

TEST_F(AllocatorTest, AllocateSyncsTheLogWhenItNeedsPendingFrees) {
  AllocCommit(kBlocks, 0);
  FreeCommit({0, 8}, /*durable=*/false);
  const uint64_t durable_before = meta_->durable_sequence();
  auto runs = alloc_.Allocate(8, 0, false);
  ASSERT_TRUE(runs.ok()) << runs.status();
  EXPECT_EQ(*runs, (std::vector<BlockRun>{{0, 8}}));
  EXPECT_GT(meta_->durable_sequence(), durable_before) << "allocated without making the free durable";
  EXPECT_EQ(alloc_.pending_free_blocks(), 0u);
  EXPECT_FALSE(alloc_.Allocate(1, 0, false).ok()) << "the store is full again";
}

TEST_F(AllocatorTest, DoubleFreeIsIgnored) {
  AllocCommit(100, 0);
  FreeCommit({10, 10});
  const auto before = alloc_.FreeRuns();
  const uint64_t free_before = alloc_.free_blocks();
  FreeCommit({15, 10});                // overlaps the free [10, 20)
  FreeCommit({500, 10});               // never allocated
  FreeCommit({kBlocks - 5, 10});       // runs off the end
  FreeCommit({UINT64_MAX - 2, 10});    // wraps
  EXPECT_EQ(alloc_.FreeRuns(), before);
  EXPECT_EQ(alloc_.free_blocks(), free_before);
  EXPECT_EQ(PersistedRuns(), alloc_.DiskFreeRuns());
}

TEST_F(AllocatorTest, UncommittedAllocationStaysFreeOnDisk) {
  auto runs = alloc_.Allocate(64, 0, false);
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(alloc_.free_blocks(), kBlocks - 64);
  EXPECT_EQ(alloc_.DiskFreeRuns(), (std::vector<BlockRun>{{0, kBlocks}}));
  // A crash now leaks nothing: the store still says all is free.
  Allocator fresh(kBlocks);
  ASSERT_TRUE(fresh.Load(*meta_).ok());
  EXPECT_EQ(fresh.free_blocks(), kBlocks);
  // The write failed: the blocks become allocatable again.
  alloc_.CancelAllocation(*runs);
  EXPECT_EQ(alloc_.free_blocks(), kBlocks);
  EXPECT_EQ(alloc_.FreeRuns(), (std::vector<BlockRun>{{0, kBlocks}}));
  alloc_.CancelAllocation(*runs);  // twice: ignored
  EXPECT_EQ(alloc_.free_blocks(), kBlocks);
}

TEST_F(AllocatorTest, PersistedMapReloadsToTheSameRuns) {
  std::mt19937_64 rng(7);
  std::vector<BlockRun> used;
  for (int i = 0; i < 60; ++i) {
    if (!used.empty() && rng() % 3 == 0) {
      const size_t k = rng() % used.size();
      FreeCommit(used[k]);
      used.erase(used.begin() + static_cast<long>(k));
    } else {
      auto runs = AllocCommit(1 + rng() % 30, rng() % kBlocks);
      used.insert(used.end(), runs.begin(), runs.end());
    }
  }
  const auto runs = alloc_.FreeRuns();
  EXPECT_EQ(alloc_.DiskFreeRuns(), runs);
  EXPECT_EQ(Sum(runs) + Sum(used), kBlocks);
  OpenMeta();
  Allocator reloaded(kBlocks);
  ASSERT_TRUE(reloaded.Load(*meta_).ok());
  EXPECT_EQ(reloaded.FreeRuns(), runs);
  EXPECT_EQ(reloaded.free_blocks(), alloc_.free_blocks());
}

TEST_F(AllocatorTest, LoadRejectsBadMaps) {
  MetaStore::Batch b;
  b.PutFreeExtent(kBlocks - 2, 10);  // runs past the end
  ASSERT_TRUE(meta_->Commit(b, false).ok());
  Allocator a(kBlocks);
  absl::Status s = a.Load(*meta_);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;

  MetaStore::Batch fix;
  fix.DeleteFreeExtent(kBlocks - 2);
  fix.PutFreeExtent(5, 3);  // inside [0, kBlocks)
  ASSERT_TRUE(meta_->Commit(fix, false).ok());
  s = a.Load(*meta_);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("overlaps"), std::string::npos) << s;
}

TEST_F(AllocatorTest, ConcurrentAllocateAndFreeKeepsCounts) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<BlockRun> mine;
      for (int i = 0; i < 200; ++i) {
        auto runs = alloc_.Allocate(1 + rng() % 8, rng() % kBlocks, false);
        if (!runs.ok()) continue;
        MetaStore::Batch b;
        if (!meta_->Commit(b, false, [&](MetaStore::Batch& batch) {
              alloc_.CommitAllocation(*runs, &batch);
              return absl::OkStatus();
            }).ok()) {
          ++failures;
        }
        mine.insert(mine.end(), runs->begin(), runs->end());
        if (mine.size() > 20) {
          for (const auto& r : mine) {
            MetaStore::Batch fb;
            if (!meta_->Commit(fb, false, [&](MetaStore::Batch& batch) {
                  alloc_.Free(r, &batch);
                  return absl::OkStatus();
                }).ok()) {
              ++failures;
            }
          }
          mine.clear();
        }
      }
      for (const auto& r : mine) {
        MetaStore::Batch fb;
        (void)meta_->Commit(fb, false, [&](MetaStore::Batch& batch) {
          alloc_.Free(r, &batch);
          return absl::OkStatus();
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(alloc_.free_blocks(), kBlocks);
  ASSERT_TRUE(alloc_.SyncPendingFrees().ok());
  EXPECT_EQ(alloc_.FreeRuns(), (std::vector<BlockRun>{{0, kBlocks}}));
  EXPECT_EQ(PersistedRuns(), (std::vector<BlockRun>{{0, kBlocks}}));
}

}  // namespace
}  // namespace reclaimfs::storage

namespace reclaimfs::storage {
namespace {

class DiscardTest : public AllocatorTest {};

TEST_F(DiscardTest, TakesFreeRunsInRangeLongEnoughAndGivesThemBack) {
  AllocCommit(kBlocks, 0);
  FreeCommit({10, 5});    // too short for min 8
  FreeCommit({100, 50});
  FreeCommit({300, 200});
  uint64_t cursor = 0;
  std::vector<BlockRun> taken = alloc_.TakeForDiscard(&cursor, 400, 8, 1000);
  // Clipped to the range, short runs skipped.
  EXPECT_EQ(taken, (std::vector<BlockRun>{{100, 50}, {300, 100}}));
  EXPECT_EQ(cursor, 400u);
  // Still free for statfs and reservations, but not allocatable meanwhile.
  EXPECT_EQ(alloc_.free_blocks(), 255u);
  EXPECT_EQ(alloc_.FreeRuns(), (std::vector<BlockRun>{{10, 5}, {400, 100}}));
  alloc_.ReturnDiscarded(taken);
  EXPECT_EQ(alloc_.FreeRuns(), (std::vector<BlockRun>{{10, 5}, {100, 50}, {300, 200}}));
  EXPECT_EQ(alloc_.free_blocks(), 255u);
  // The on-disk map never changed.
  EXPECT_EQ(alloc_.DiskFreeRuns(), alloc_.FreeRuns());
}

TEST_F(DiscardTest, ChunksAndLeavesReservedBlocksAlone) {
  AllocCommit(kBlocks, 0);
  FreeCommit({0, 100});
  uint64_t cursor = 0;
  // At most 30 at a time; the cursor continues where the chunk ended.
  std::vector<BlockRun> first = alloc_.TakeForDiscard(&cursor, kBlocks, 1, 30);
  EXPECT_EQ(first, (std::vector<BlockRun>{{0, 30}}));
  EXPECT_EQ(cursor, 30u);
  alloc_.ReturnDiscarded(first);
  // 80 of the 100 free blocks are promised to dirty data: only 20 may go.
  ASSERT_TRUE(alloc_.Reserve(80).ok());
  cursor = 0;
  std::vector<BlockRun> limited = alloc_.TakeForDiscard(&cursor, kBlocks, 1, 1000);
  EXPECT_EQ(Sum(limited), 20u);
  // The reservation's writeback still finds its blocks.
  auto runs = alloc_.Allocate(80, 0, true);
  ASSERT_TRUE(runs.ok()) << runs.status();
  EXPECT_EQ(Sum(*runs), 80u);
  alloc_.ReturnDiscarded(limited);
  EXPECT_EQ(alloc_.free_blocks(), 20u);
}

TEST_F(DiscardTest, AllocateWaitsForBlocksBeingDiscarded) {
  AllocCommit(kBlocks, 0);
  FreeCommit({0, 64});
  uint64_t cursor = 0;
  std::vector<BlockRun> taken = alloc_.TakeForDiscard(&cursor, kBlocks, 1, 1000);
  ASSERT_EQ(Sum(taken), 64u);
  std::thread giver([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    alloc_.ReturnDiscarded(taken);
  });
  // Without the wait this would be ENOSPC: every free block is being discarded.
  auto runs = alloc_.Allocate(16, 0, false);
  giver.join();
  ASSERT_TRUE(runs.ok()) << runs.status();
  EXPECT_EQ(Sum(*runs), 16u);
}

}  // namespace
}  // namespace reclaimfs::storage

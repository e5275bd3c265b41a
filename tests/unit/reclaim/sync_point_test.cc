// Tests of SyncPoint: declared happens-before order between threads, the
// bounded wait and its counter, and a race in the reclaim core made
// deterministic with it.
#include "reclaim/sync_point.h"

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "reclaim/reclaim_core.h"
#include "tests/unit/reclaim/fake_shrinker.h"

namespace reclaimfs::reclaim {
namespace {

using std::chrono::milliseconds;

class SyncPointTest : public ::testing::Test {
 protected:
  void SetUp() override { SyncPoint::Get().Reset(); }
  void TearDown() override {
    SyncPoint::Get().Disable();
    SyncPoint::Get().Reset();
    SyncPoint::Get().set_timeout(milliseconds(5000));
  }

  // Records a point when a thread crosses it: callbacks run after the
  // point's predecessors were passed and before it counts as passed itself.
  void Record(const std::string& point) {
    SyncPoint::Get().SetCallback(point, [this, point] {
      std::lock_guard<std::mutex> l(mu_);
      sequence_.push_back(point);
    });
  }

  std::mutex mu_;
  std::vector<std::string> sequence_;
};

TEST_F(SyncPointTest, DependenciesOrderTwoThreads) {
  SyncPoint& sp = SyncPoint::Get();
  // A (thread 1) -> B (thread 2) -> C (thread 1) -> D (thread 2).
  sp.LoadDependencies({{"T1:A", "T2:B"}, {"T2:B", "T1:C"}, {"T1:C", "T2:D"}});
  for (const char* p : {"T1:A", "T2:B", "T1:C", "T2:D"}) Record(p);
  sp.Enable();

  for (int round = 0; round < 20; ++round) {
    sp.LoadDependencies({{"T1:A", "T2:B"}, {"T2:B", "T1:C"}, {"T1:C", "T2:D"}});
    {
      std::lock_guard<std::mutex> l(mu_);
      sequence_.clear();
    }
    // Thread 2 starts first and still has to wait for thread 1.
    std::thread t2([] {
      RECLAIMFS_SYNC_POINT("T2:B");
      RECLAIMFS_SYNC_POINT("T2:D");
    });
    std::thread t1([] {
      RECLAIMFS_SYNC_POINT("T1:A");
      RECLAIMFS_SYNC_POINT("T1:C");
    });
    t1.join();
    t2.join();
    std::lock_guard<std::mutex> l(mu_);
    EXPECT_EQ(sequence_, (std::vector<std::string>{"T1:A", "T2:B", "T1:C", "T2:D"}));
  }
  EXPECT_EQ(sp.timeouts(), 0u);
}

TEST_F(SyncPointTest, WaitIsBoundedAndCounted) {
  SyncPoint& sp = SyncPoint::Get();
  sp.set_timeout(milliseconds(30));
  sp.LoadDependencies({{"Never", "X"}});
  sp.Enable();
  const auto start = std::chrono::steady_clock::now();
  RECLAIMFS_SYNC_POINT("X");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, milliseconds(30));
  EXPECT_LT(elapsed, milliseconds(5000));
  EXPECT_EQ(sp.timeouts(), 1u);
  RECLAIMFS_SYNC_POINT("Y");  // no predecessors: no wait
  EXPECT_EQ(sp.timeouts(), 1u);
}

TEST_F(SyncPointTest, DisabledPointsDoNothing) {
  SyncPoint& sp = SyncPoint::Get();
  sp.set_timeout(milliseconds(5000));
  sp.LoadDependencies({{"Never", "X"}});
  bool called = false;
  sp.SetCallback("X", [&] { called = true; });
  EXPECT_FALSE(sp.enabled());
  RECLAIMFS_SYNC_POINT("X");  // would wait 5 s if enabled
  EXPECT_FALSE(called);
  EXPECT_EQ(sp.timeouts(), 0u);
}

TEST_F(SyncPointTest, UnregisterOrderedBeforeScan) {
  // The race "a shrinker is unregistered while kswapd starts a pass" made
  // deterministic: the pass may not start until Unregister has returned.
  MemoryBudget budget(1 << 20, {});
  ProgressEvent progress;
  ReclaimStats stats;
  ReclaimCore core(&budget, &progress, &stats);
  testing::FakeShrinker s(&budget, "s", 100, 1);
  core.Register(&s);

  SyncPoint& sp = SyncPoint::Get();
  sp.LoadDependencies({{"Test:Unregistered", "ReclaimCore::ShrinkAll:Next"}});
  sp.Enable();
  std::thread kswapd([&] { core.ShrinkAll(Reclaimer::kKswapd, 12, 0); });
  core.Unregister(&s);
  RECLAIMFS_SYNC_POINT("Test:Unregistered");
  kswapd.join();
  EXPECT_EQ(s.scan_calls(), 0u);
  EXPECT_EQ(sp.timeouts(), 0u);
}

}  // namespace
}  // namespace reclaimfs::reclaim

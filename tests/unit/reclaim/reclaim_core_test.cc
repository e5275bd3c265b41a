// Tests of ReclaimCore: proportional scanning, the minimum scan, aggregated
// backoff waits, deferral, no recursion, bounded failure, the direct reclaim
// throttle and Unregister against a running scan.
#include "reclaim/reclaim_core.h"

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "gtest/gtest.h"
#include "reclaim/scope.h"
#include "tests/unit/reclaim/fake_shrinker.h"

namespace reclaimfs::reclaim {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::FakeShrinker;

constexpr uint64_t kLimit = 1 << 20;  // watermarks: min 10%, low 20%, high 30%

class ReclaimCoreTest : public ::testing::Test {
 protected:
  ReclaimCoreTest() : budget_(kLimit, {0.1, 0.2, 0.3}) {}

  // Built on demand so each test can tune the options first.
  ReclaimCore& core() {
    if (!core_) {
      core_ = std::make_unique<ReclaimCore>(&budget_, &progress_, &stats_, options_);
      core_->SetKswapdWaker([this] { kswapd_wakes_++; });
    }
    return *core_;
  }

  MemoryBudget budget_;
  ProgressEvent progress_;
  ReclaimStats stats_;
  ReclaimOptions options_;
  std::unique_ptr<ReclaimCore> core_;
  std::atomic<int> kswapd_wakes_{0};
};

TEST_F(ReclaimCoreTest, ScansInProportionToSize) {
  FakeShrinker big(&budget_, "big", 1000, 1);
  FakeShrinker small(&budget_, "small", 100, 1);
  big.set_free_on_scan(false);
  small.set_free_on_scan(false);
  core().Register(&big);
  core().Register(&small);
  // Priority 1: (1000 >> 1) * 4 / 2 = 1000 and (100 >> 1) * 4 / 2 = 100.
  const ReclaimPassResult r = core().ShrinkAll(Reclaimer::kKswapd, 1, 0);
  EXPECT_EQ(big.requested(), 1000u);
  EXPECT_EQ(small.requested(), 100u);
  EXPECT_EQ(r.scanned, 1100u);
  EXPECT_EQ(r.freed, 0u);
  EXPECT_EQ(stats_.kswapd_scanned.load(), 1100u);
  // Batches of 128: 1000 = 7 * 128 + 104.
  EXPECT_EQ(big.scan_calls(), 8u);
}

TEST_F(ReclaimCoreTest, ScansInverselyToSeeks) {
  FakeShrinker cheap(&budget_, "cheap", 1000, 1, /*seeks=*/2);
  FakeShrinker costly(&budget_, "costly", 1000, 1, /*seeks=*/8);
  cheap.set_free_on_scan(false);
  costly.set_free_on_scan(false);
  core().Register(&cheap);
  core().Register(&costly);
  core().ShrinkAll(Reclaimer::kKswapd, 1, 0);
  EXPECT_EQ(cheap.requested(), 1000u);
  EXPECT_EQ(costly.requested(), 250u);
  EXPECT_EQ(cheap.requested(), 4 * costly.requested());
}

TEST_F(ReclaimCoreTest, SmallCachesGetTheMinimumScan) {
  FakeShrinker tiny(&budget_, "tiny", 10, 1);
  FakeShrinker small(&budget_, "small", 100, 1);
  FakeShrinker empty(&budget_, "empty", 0, 1);
  tiny.set_free_on_scan(false);
  small.set_free_on_scan(false);
  core().Register(&tiny);
  core().Register(&small);
  core().Register(&empty);
  // At priority 12 both compute zero; the floor is min(min_scan, freeable).
  core().ShrinkAll(Reclaimer::kKswapd, 12, 0);
  EXPECT_EQ(tiny.requested(), 10u);
  EXPECT_EQ(small.requested(), options_.min_scan);
  EXPECT_EQ(empty.scan_calls(), 0u);
}

TEST_F(ReclaimCoreTest, ScanRunsInReclaimScopeWithCallerFlags) {
  FakeShrinker s(&budget_, "s", 10, 1, 2, /*needs_fs=*/false);
  core().Register(&s);
  core().ShrinkAll(Reclaimer::kDirect, 12, kScopeNoIo);
  ASSERT_EQ(s.scopes().size(), 1u);
  EXPECT_EQ(s.scopes()[0], kScopeNoIo | kScopeInReclaim);
}

TEST_F(ReclaimCoreTest, StopHintEndsThatShrinkerForThePass) {
  FakeShrinker s(&budget_, "s", 1000, 1);
  s.set_free_on_scan(false);
  s.set_hint(ShrinkHint::kStop);
  core().Register(&s);
  const ReclaimPassResult r = core().ShrinkAll(Reclaimer::kKswapd, 0, 0);
  EXPECT_EQ(s.scan_calls(), 1u);
  EXPECT_FALSE(r.backoff_requested);
}

TEST_F(ReclaimCoreTest, OneAggregatedWaitPerPassNotPerShrinker) {
  options_.backoff_timeout = std::chrono::microseconds(2000);
  FakeShrinker a(&budget_, "a", 1000, 100);
  FakeShrinker b(&budget_, "b", 1000, 100);
  FakeShrinker c(&budget_, "c", 1000, 100);
  FakeShrinker clean(&budget_, "clean", 5, 1);  // frees a little each pass
  a.set_dirty(true);
  b.set_dirty(true);
  c.set_dirty(true);
  for (FakeShrinker* s : {&a, &b, &c, &clean}) core().Register(s);

  const auto start = steady_clock::now();
  const ReclaimPassResult r = core().Reclaim(Reclaimer::kKswapd, kLimit);
  const auto elapsed = steady_clock::now() - start;

  // Thirteen passes (priority 12..0), each asking for backoff three times:
  // thirteen waits, not thirty-nine.
  EXPECT_TRUE(r.backoff_requested);
  EXPECT_TRUE(r.waited);
  EXPECT_EQ(a.scan_calls(), 13u);  // kBackoff ends a shrinker's pass
  EXPECT_EQ(b.scan_calls(), 13u);
  EXPECT_EQ(c.scan_calls(), 13u);
  EXPECT_EQ(stats_.backoff_waits.load(), 13u);
  EXPECT_EQ(stats_.backoff_timeouts.load(), 13u);
  EXPECT_EQ(clean.objects(), 0u);
  EXPECT_LT(elapsed, std::chrono::seconds(2));
}

TEST_F(ReclaimCoreTest, NoWaitWhenThePassFreedEnough) {
  options_.backoff_timeout = std::chrono::seconds(10);
  FakeShrinker dirty(&budget_, "dirty", 10, 1);
  FakeShrinker clean(&budget_, "clean", 1000, 1000);  // ~1 MB
  dirty.set_dirty(true);
  core().Register(&dirty);
  core().Register(&clean);
  const uint64_t target = budget_.free() + 10 * 1000;  // one minimum scan
  const ReclaimPassResult r = core().Reclaim(Reclaimer::kKswapd, target);
  EXPECT_TRUE(r.backoff_requested);
  EXPECT_FALSE(r.waited);
  EXPECT_EQ(stats_.backoff_waits.load(), 0u);
  EXPECT_GE(budget_.free(), target);
}

TEST_F(ReclaimCoreTest, BackoffWaitEndsEarlyOnProgress) {
  options_.backoff_timeout = std::chrono::seconds(20);
  FakeShrinker dirty(&budget_, "dirty", 1000, 1000);
  dirty.set_dirty(true);
  core().Register(&dirty);
  // "Writeback" completes on another thread once reclaim is waiting: the
  // objects become clean and IO progress is signalled.
  std::thread io([&] {
    while (stats_.backoff_waits.load() == 0) std::this_thread::sleep_for(milliseconds(1));
    std::this_thread::sleep_for(milliseconds(20));
    dirty.set_dirty(false);
    progress_.Signal();
  });
  const auto start = steady_clock::now();
  const ReclaimPassResult r = core().Reclaim(Reclaimer::kKswapd, budget_.watermarks().high);
  const auto elapsed = steady_clock::now() - start;
  io.join();
  EXPECT_TRUE(r.waited);
  EXPECT_EQ(stats_.backoff_waits.load(), 1u);
  EXPECT_EQ(stats_.backoff_timeouts.load(), 0u);
  EXPECT_GE(budget_.free(), budget_.watermarks().high);
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST(ProgressEventTest, WaitReturnsAtOnceIfGenerationMoved) {
  ProgressEvent p;
  const uint64_t seen = p.Generation();
  p.Signal();
  EXPECT_EQ(p.Generation(), seen + 1);
  EXPECT_TRUE(p.WaitFor(seen, std::chrono::seconds(30)));
}

TEST(ProgressEventTest, WaitWokenBySignalFromAnotherThread) {
  ProgressEvent p;
  const uint64_t seen = p.Generation();
  auto waiter = std::async(std::launch::async, [&] {
    const auto start = steady_clock::now();
    const bool signalled = p.WaitFor(seen, std::chrono::seconds(30));
    return std::make_pair(signalled, steady_clock::now() - start);
  });
  std::this_thread::sleep_for(milliseconds(30));
  p.Signal();
  const auto [signalled, elapsed] = waiter.get();
  EXPECT_TRUE(signalled);
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST(ProgressEventTest, WaitTimesOut) {
  ProgressEvent p;
  const auto start = steady_clock::now();
  EXPECT_FALSE(p.WaitFor(p.Generation(), milliseconds(20)));
  const auto elapsed = steady_clock::now() - start;
  EXPECT_GE(elapsed, milliseconds(20));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST_F(ReclaimCoreTest, NoFsDirectReclaimDefersToKswapd) {
  FakeShrinker fs(&budget_, "fs", 1000, 1, 2, /*needs_fs=*/true);
  FakeShrinker plain(&budget_, "plain", 1000, 1, 2, /*needs_fs=*/false);
  fs.set_free_on_scan(false);
  plain.set_free_on_scan(false);
  core().Register(&fs);
  core().Register(&plain);

  core().ShrinkAll(Reclaimer::kDirect, 12, kScopeNoFs);
  EXPECT_EQ(fs.scan_calls(), 0u);
  EXPECT_EQ(plain.requested(), 32u);
  EXPECT_EQ(core().Deferred(&fs), 32u);  // what it would have scanned
  EXPECT_EQ(core().Deferred(&plain), 0u);
  EXPECT_EQ(stats_.deferred_added.load(), 32u);

  // kswapd scans its own share plus the deferred work, and takes it.
  core().ShrinkAll(Reclaimer::kKswapd, 12, 0);
  EXPECT_EQ(fs.requested(), 64u);
  EXPECT_EQ(core().Deferred(&fs), 0u);
  EXPECT_EQ(stats_.deferred_done.load(), 32u);
}

TEST_F(ReclaimCoreTest, DeferredWorkIsCappedAtTwiceFreeable) {
  FakeShrinker fs(&budget_, "fs", 1000, 1, 2, /*needs_fs=*/true);
  fs.set_free_on_scan(false);
  core().Register(&fs);
  for (int i = 0; i < 10; ++i) core().ShrinkAll(Reclaimer::kDirect, 0, kScopeNoFs);
  EXPECT_EQ(core().Deferred(&fs), 2000u);
  EXPECT_EQ(stats_.deferred_added.load(), 2000u);
  // Even with the deferred work, one shrinker pass asks for at most 2x.
  core().ShrinkAll(Reclaimer::kKswapd, 0, 0);
  EXPECT_EQ(fs.requested(), 2000u);
}

TEST_F(ReclaimCoreTest, KswapdStopsAtItsTargetAndKeepsTheRestDeferred) {
  // 1000 objects of 1000 bytes: free ~48 KB, high is 30% (~315 KB).
  FakeShrinker fs(&budget_, "fs", 1000, 1000, 2, /*needs_fs=*/true);
  core().Register(&fs);
  // A NoFs direct reclaimer owes the whole cache twice over.
  for (int i = 0; i < 3; ++i) core().ShrinkAll(Reclaimer::kDirect, 0, kScopeNoFs);
  ASSERT_EQ(core().Deferred(&fs), 2000u);

  core().Reclaim(Reclaimer::kKswapd, budget_.watermarks().high);
  EXPECT_GE(budget_.free(), budget_.watermarks().high);
  // Batches of 128 objects: three reach the target; without the stop the
  // deferred work would have emptied the cache.
  EXPECT_EQ(fs.objects(), 1000u - 3 * 128);
  // What was owed and not needed stays owed.
  EXPECT_EQ(core().Deferred(&fs), 2000u - 3 * 128);
}

TEST_F(ReclaimCoreTest, DirectReclaimStopsOnceTheChargeFits) {
  // Objects of 100 bytes fill the budget. The sweep's scan targets grow
  // as priority falls (the pass at priority 5 alone asks for ~600
  // objects); stopping at the target frees at most one batch beyond need.
  const uint64_t objects = kLimit / 100;
  FakeShrinker cache(&budget_, "cache", objects, 100);
  budget_.SetPressureHandler(&core());
  core().Register(&cache);
  const uint64_t need_bytes = budget_.watermarks().min + 1000 - budget_.free();
  const uint64_t need = (need_bytes + 99) / 100;
  EXPECT_TRUE(budget_.Charge(1000).ok());
  const uint64_t freed = objects - cache.objects();
  EXPECT_GE(freed, need);
  EXPECT_LT(freed, need + 128);
  EXPECT_EQ(stats_.direct_reclaims.load(), 1u);
  budget_.SetPressureHandler(nullptr);
}

TEST_F(ReclaimCoreTest, NoFsChargeEndToEnd) {
  options_.direct_throttle_timeout = std::chrono::microseconds(100);
  FakeShrinker fs(&budget_, "fs", 900, 1000, 2, /*needs_fs=*/true);  // ~86% used
  budget_.SetPressureHandler(&core());
  budget_.set_max_direct_attempts(2);
  core().Register(&fs);
  {
    // A charge made while holding filesystem locks cannot use this cache.
    ScopedReclaimFlags nofs(kScopeNoFs);
    EXPECT_TRUE(absl::IsResourceExhausted(budget_.Charge(100'000)));
  }
  EXPECT_EQ(fs.scan_calls(), 0u);
  EXPECT_GT(core().Deferred(&fs), 0u);
  EXPECT_EQ(stats_.direct_reclaims.load(), 2u);
  EXPECT_EQ(kswapd_wakes_.load() > 0, true);

  // kswapd's pass picks it up and brings free above high.
  const uint64_t deferred = core().Deferred(&fs);
  core().Reclaim(Reclaimer::kKswapd, budget_.watermarks().high);
  EXPECT_EQ(stats_.deferred_done.load(), deferred);
  EXPECT_GE(budget_.free(), budget_.watermarks().high);
  budget_.SetPressureHandler(nullptr);
}

TEST_F(ReclaimCoreTest, ShrinkerChargingInsideReclaimDoesNotRecurse) {
  options_.direct_throttle_timeout = std::chrono::microseconds(100);
  FakeShrinker s(&budget_, "s", 1000, 1000);  // ~95% used, can free nothing
  s.set_dirty(true);
  std::atomic<int> inner_failures{0};
  s.set_on_scan([&](const ShrinkControl& sc) {
    // e.g. allocating a pageout work item from inside the shrinker.
    EXPECT_TRUE(CurrentScope() & kScopeInReclaim);
    if (!budget_.Charge(200'000).ok()) inner_failures++;
  });
  budget_.SetPressureHandler(&core());
  budget_.set_max_direct_attempts(3);
  core().Register(&s);

  // As kswapd: the inner charges fail at once, no direct reclaim at all.
  core().Reclaim(Reclaimer::kKswapd, budget_.watermarks().high);
  EXPECT_EQ(stats_.direct_reclaims.load(), 0u);
  EXPECT_EQ(s.max_depth(), 1);
  EXPECT_EQ(inner_failures.load(), 13);

  // As a direct reclaimer: only the outer charge's attempts count.
  EXPECT_FALSE(budget_.Charge(200'000).ok());
  EXPECT_EQ(stats_.direct_reclaims.load(), 3u);
  EXPECT_EQ(s.max_depth(), 1);
  budget_.SetPressureHandler(nullptr);
}

TEST_F(ReclaimCoreTest, ChargeFailsAfterBoundedAttempts) {
  FakeShrinker dirty(&budget_, "dirty", 1000, 1000);  // ~95% used
  dirty.set_dirty(true);
  int kicks = 0;
  core().SetWritebackKicker([&] { kicks++; });
  budget_.SetPressureHandler(&core());
  core().Register(&dirty);

  const auto start = steady_clock::now();
  const absl::Status s = budget_.Charge(200'000);
  const auto elapsed = steady_clock::now() - start;
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_EQ(s.message(), "memory budget exhausted");
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  EXPECT_EQ(stats_.direct_reclaims.load(), 16u);  // the default bound
  EXPECT_EQ(stats_.allocation_failures.load(), 0u);  // budget not wired to stats here
  EXPECT_EQ(budget_.failed_charges(), 1u);
  EXPECT_EQ(kicks, 16);
  EXPECT_EQ(stats_.direct_stall_us.Count(), 16u);
  budget_.SetPressureHandler(nullptr);
}

TEST_F(ReclaimCoreTest, DirectReclaimKicksWritebackAndThrottlesOnce) {
  options_.direct_throttle_timeout = std::chrono::microseconds(5000);
  FakeShrinker dirty(&budget_, "dirty", 1000, 1000);
  dirty.set_dirty(true);
  int kicks = 0;
  core().SetWritebackKicker([&] { kicks++; });
  core().Register(&dirty);

  EXPECT_FALSE(core().DirectReclaim(200'000, 0));  // nothing freed, no progress signalled
  EXPECT_EQ(kicks, 1);
  EXPECT_EQ(stats_.writeback_kicks.load(), 1u);
  EXPECT_EQ(kswapd_wakes_.load(), 1);
  EXPECT_EQ(stats_.direct_throttles.load(), 1u);
  EXPECT_EQ(stats_.direct_throttle_timeouts.load(), 1u);
  EXPECT_EQ(stats_.backoff_waits.load(), 0u);  // passes themselves never wait
  EXPECT_EQ(dirty.scan_calls(), static_cast<uint64_t>(options_.direct_max_passes));
  EXPECT_EQ(stats_.direct_reclaims.load(), 1u);
  EXPECT_EQ(stats_.allocation_stalls.load(), 1u);
  EXPECT_EQ(stats_.direct_stall_us.Count(), 1u);
  EXPECT_GE(stats_.direct_stall_us.Max(), 5000u);
}

TEST_F(ReclaimCoreTest, WritebackProgressEndsThrottleAndChargeSucceeds) {
  options_.direct_throttle_timeout = std::chrono::seconds(20);
  FakeShrinker dirty(&budget_, "dirty", 100, 10'000);  // a minimum scan frees 320 KB
  dirty.set_dirty(true);
  // The "flusher" finishes at once: pages become clean, progress signalled.
  core().SetWritebackKicker([&] {
    dirty.set_dirty(false);
    progress_.Signal();
  });
  budget_.SetPressureHandler(&core());
  core().Register(&dirty);

  const auto start = steady_clock::now();
  EXPECT_TRUE(budget_.Charge(200'000).ok());
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(stats_.writeback_kicks.load(), 1u);
  EXPECT_EQ(stats_.direct_throttles.load(), 1u);
  EXPECT_EQ(stats_.direct_throttle_timeouts.load(), 0u);
  EXPECT_EQ(stats_.direct_reclaims.load(), 2u);  // attempt 0 kicked, 1 freed
  EXPECT_GT(stats_.direct_freed.load(), 0u);
  budget_.SetPressureHandler(nullptr);
}

// An attempt reports progress when writeback signals it during the throttle
// wait, even though the attempt itself freed nothing: the charge retries.
TEST_F(ReclaimCoreTest, DirectReclaimReportsSignalledProgress) {
  options_.direct_throttle_timeout = std::chrono::seconds(20);
  FakeShrinker dirty(&budget_, "dirty", 1000, 1000);
  dirty.set_dirty(true);
  core().SetWritebackKicker([&] { progress_.Signal(); });
  core().Register(&dirty);
  EXPECT_TRUE(core().DirectReclaim(200'000, 0));
  EXPECT_EQ(stats_.direct_throttle_timeouts.load(), 0u);
  EXPECT_EQ(stats_.direct_freed.load(), 0u);
}

TEST_F(ReclaimCoreTest, NoIoDirectReclaimDoesNotWait) {
  options_.direct_throttle_timeout = std::chrono::seconds(20);
  FakeShrinker dirty(&budget_, "dirty", 1000, 1000);
  dirty.set_dirty(true);
  core().Register(&dirty);
  ScopedReclaimFlags noio(kScopeNoIo);
  const auto start = steady_clock::now();
  core().DirectReclaim(200'000, 0);
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(stats_.direct_throttles.load(), 0u);
}

TEST_F(ReclaimCoreTest, UnregisterWaitsForRunningScan) {
  FakeShrinker s(&budget_, "s", 1000, 1);
  s.set_free_on_scan(false);
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> first{true};
  s.set_on_scan([&](const ShrinkControl&) {
    if (first.exchange(false)) {
      entered.set_value();
      // Bounded so a broken Unregister fails the test instead of hanging it.
      released.wait_for(std::chrono::seconds(10));
    }
  });
  core().Register(&s);

  std::thread scanner([&] { core().ShrinkAll(Reclaimer::kKswapd, 12, 0); });
  entered.get_future().wait();
  std::atomic<bool> unregistered{false};
  std::thread remover([&] {
    core().Unregister(&s);
    unregistered = true;
  });
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(unregistered.load());  // still blocked behind the scan
  release.set_value();
  remover.join();
  scanner.join();
  EXPECT_TRUE(unregistered.load());

  const uint64_t calls = s.scan_calls();
  core().ShrinkAll(Reclaimer::kKswapd, 0, 0);
  core().Reclaim(Reclaimer::kKswapd, kLimit);
  EXPECT_EQ(s.scan_calls(), calls);
  EXPECT_EQ(core().Deferred(&s), 0u);
}

}  // namespace
}  // namespace reclaimfs::reclaim

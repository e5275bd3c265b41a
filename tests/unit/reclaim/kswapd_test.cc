// Tests of kswapd and of the MemoryManager that wires it to the budget.
#include "reclaim/kswapd.h"

#include <chrono>
#include <functional>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "reclaim/memory_manager.h"
#include "reclaim/scope.h"
#include "tests/unit/reclaim/fake_shrinker.h"

namespace reclaimfs::reclaim {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using ::testing::HasSubstr;
using testing::FakeShrinker;
using testing::ScopedRegistration;

// Polls `cond` every millisecond for at most `limit`; never hangs a test.
bool PollUntil(const std::function<bool()>& cond,
               std::chrono::milliseconds limit = milliseconds(10'000)) {
  const auto deadline = steady_clock::now() + limit;
  while (!cond()) {
    if (steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

MemoryOptions SmallOptions() {
  MemoryOptions o;
  o.budget_bytes = 1 << 20;  // min 2%, low 6%, high 10%
  return o;
}

TEST(KswapdTest, WakesBelowLowAndReclaimsToHigh) {
  MemoryManager mm(SmallOptions());
  MemoryBudget& b = mm.budget();
  FakeShrinker cache(&b, "cache", 960, 1024);  // free 64 KB: just above low
  ScopedRegistration reg(&mm.core(), &cache);
  ASSERT_FALSE(b.BelowLow());

  ASSERT_TRUE(cache.Add(10).ok());  // free 54 KB < low: wakes kswapd
  EXPECT_TRUE(PollUntil([&] { return !b.BelowHigh(); })) << mm.StatsText();
  EXPECT_GE(b.free(), b.watermarks().high);
  EXPECT_GE(mm.stats().kswapd_wakeups.load(), 1u);
  EXPECT_GE(mm.stats().kswapd_freed.load(), 49u);
  EXPECT_GT(mm.stats().kswapd_freed_bytes.load(), 0u);
  EXPECT_EQ(mm.stats().direct_reclaims.load(), 0u);
}

TEST(KswapdTest, WakeAboveHighDoesNoWork) {
  MemoryManager mm(SmallOptions());
  FakeShrinker cache(&mm.budget(), "cache", 10, 1024);
  ScopedRegistration reg(&mm.core(), &cache);
  mm.kswapd().Wake();
  EXPECT_TRUE(PollUntil([&] { return mm.stats().kswapd_wakeups.load() >= 1; }));
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(cache.scan_calls(), 0u);
}

TEST(KswapdTest, StopIsPromptAndRestartWorks) {
  MemoryManager mm(SmallOptions());
  std::this_thread::sleep_for(milliseconds(10));  // let it go to sleep
  auto start = steady_clock::now();
  mm.kswapd().Stop();
  EXPECT_LT(steady_clock::now() - start, milliseconds(900));  // under the 1 s period
  mm.kswapd().Stop();  // idempotent

  mm.kswapd().Start();
  FakeShrinker cache(&mm.budget(), "cache", 1000, 1024);  // over the limit-ish
  ScopedRegistration reg(&mm.core(), &cache);
  mm.kswapd().Wake();
  EXPECT_TRUE(PollUntil([&] { return !mm.budget().BelowHigh(); }));
}

TEST(KswapdTest, DirtyCacheDoesNotHangKswapdOrStop) {
  MemoryOptions o = SmallOptions();
  o.reclaim.backoff_timeout = std::chrono::microseconds(1000);
  MemoryManager mm(o);
  FakeShrinker cache(&mm.budget(), "cache", 1000, 1024);
  cache.set_dirty(true);
  ScopedRegistration reg(&mm.core(), &cache);
  for (int i = 0; i < 20; ++i) {
    mm.kswapd().Wake();
    std::this_thread::sleep_for(milliseconds(2));
  }
  EXPECT_TRUE(PollUntil([&] { return mm.stats().backoff_waits.load() > 0; }));
  cache.set_dirty(false);
  mm.progress().Signal();
  mm.kswapd().Wake();
  EXPECT_TRUE(PollUntil([&] { return !mm.budget().BelowHigh(); })) << mm.StatsText();
  const auto start = steady_clock::now();
  mm.kswapd().Stop();
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(MemoryManagerTest, WiresBudgetStatsAndText) {
  MemoryOptions o = SmallOptions();
  o.start_kswapd = false;
  o.reclaim.direct_throttle_timeout = std::chrono::microseconds(100);
  MemoryManager mm(o);
  MemoryBudget& b = mm.budget();
  b.set_max_direct_attempts(2);
  ASSERT_TRUE(b.Charge(1000 * 1024).ok());  // free 48 KB: above min, below low
  {
    ScopedReclaimFlags reserve(kScopeMayUseReserve);
    ASSERT_TRUE(b.Charge(4 * 1024).ok());  // free 20 KB < min: the reserve
  }
  EXPECT_FALSE(b.Charge(4 * 1024).ok());    // nothing to reclaim: fails
  EXPECT_EQ(mm.stats().reserve_charges.load(), 1u);
  EXPECT_EQ(mm.stats().allocation_failures.load(), 1u);
  EXPECT_EQ(mm.stats().direct_reclaims.load(), 2u);

  const std::string text = mm.StatsText();
  EXPECT_THAT(text, HasSubstr("budget_limit 1048576\n"));
  EXPECT_THAT(text, HasSubstr("budget_used 1028096\n"));
  EXPECT_THAT(text, HasSubstr("watermark_min 20972\n"));
  EXPECT_THAT(text, HasSubstr("allocation_failures 1\n"));
  EXPECT_THAT(text, HasSubstr("direct_stall_us_count 2\n"));
}

}  // namespace
}  // namespace reclaimfs::reclaim

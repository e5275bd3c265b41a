// Tests of MemoryBudget: watermarks, the reserve, the charge slow path and
// live tuning. A scripted PressureHandler stands in for the reclaim core.
#include "reclaim/memory_budget.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "gtest/gtest.h"
#include "reclaim/scope.h"

namespace reclaimfs::reclaim {
namespace {

class ScriptedHandler : public PressureHandler {
 public:
  void WakeKswapd() override { wakes++; }
  bool DirectReclaim(uint64_t bytes, int attempt) override {
    calls++;
    last_attempt = attempt;
    if (on_direct) on_direct(bytes, attempt);
    return progress && progress(attempt);
  }
  std::atomic<int> wakes{0};
  std::atomic<int> calls{0};
  int last_attempt = -1;
  std::function<void(uint64_t, int)> on_direct;
  std::function<bool(int)> progress;  // what an attempt reports; none: no progress
};

// limit 1000: min 100, low 200, high 300.
MemoryBudget MakeBudget() { return MemoryBudget(1000, {0.1, 0.2, 0.3}); }

TEST(BudgetTest, Watermarks) {
  MemoryBudget b = MakeBudget();
  const Watermarks w = b.watermarks();
  EXPECT_EQ(w.min, 100u);
  EXPECT_EQ(w.low, 200u);
  EXPECT_EQ(w.high, 300u);
  EXPECT_EQ(b.free(), 1000u);
  EXPECT_FALSE(b.BelowLow());
}

TEST(BudgetTest, BadFractionsAreMadeUsable) {
  MemoryBudget b(1000, {0.5, 0.2, 2.0});  // min > low, high >= 1
  const Watermarks w = b.watermarks();
  EXPECT_LT(w.min, w.low);
  EXPECT_LT(w.low, w.high);
  EXPECT_LT(w.high, 1000u);
  MemoryBudget nan(1000, {-1.0, std::nan(""), 0.3});
  const Watermarks n = nan.watermarks();
  EXPECT_LT(n.min, n.low);
  EXPECT_LT(n.low, n.high);
}

TEST(BudgetTest, ChargeUnchargeAndPeak) {
  MemoryBudget b = MakeBudget();
  ASSERT_TRUE(b.Charge(400).ok());
  ASSERT_TRUE(b.Charge(100).ok());
  EXPECT_EQ(b.used(), 500u);
  b.Uncharge(300);
  EXPECT_EQ(b.used(), 200u);
  EXPECT_EQ(b.peak_used(), 500u);
  EXPECT_TRUE(b.Charge(0).ok());
}

TEST(BudgetTest, UnchargeNeverUnderflows) {
  MemoryBudget b = MakeBudget();
  ASSERT_TRUE(b.Charge(10).ok());
  b.Uncharge(50);
  EXPECT_EQ(b.used(), 0u);
  EXPECT_EQ(b.uncharge_underflows(), 1u);
}

TEST(BudgetTest, NoHandlerFailsAtOnceBelowMin) {
  MemoryBudget b = MakeBudget();
  ASSERT_TRUE(b.Charge(900).ok());  // free 100 == min: allowed
  const absl::Status s = b.Charge(1);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_EQ(b.failed_charges(), 1u);
  EXPECT_EQ(b.used(), 900u);
}

TEST(BudgetTest, ReserveOnlyInsideScope) {
  MemoryBudget b = MakeBudget();
  ScriptedHandler h;
  b.SetPressureHandler(&h);
  b.set_max_direct_attempts(3);
  ASSERT_TRUE(b.Charge(850).ok());

  // Without the scope a charge into the reserve goes to direct reclaim and,
  // since nothing is freed, fails after the bounded attempts.
  EXPECT_TRUE(absl::IsResourceExhausted(b.Charge(100)));
  EXPECT_EQ(h.calls.load(), 3);
  EXPECT_EQ(h.last_attempt, 2);
  EXPECT_EQ(b.reserve_charges(), 0u);

  {
    ScopedReclaimFlags reserve(kScopeMayUseReserve);
    EXPECT_TRUE(b.Charge(100).ok());
    EXPECT_EQ(b.reserve_charges(), 1u);
    // Not even the reserve goes beyond the limit.
    EXPECT_FALSE(b.TryCharge(51));
    EXPECT_TRUE(b.TryCharge(50));
    EXPECT_EQ(b.reserve_charges(), 2u);
  }
  EXPECT_EQ(h.calls.load(), 3);  // the reserve needed no reclaim
  EXPECT_EQ(b.used(), 1000u);
  EXPECT_EQ(b.free(), 0u);
}

TEST(BudgetTest, InReclaimNeverRecurses) {
  MemoryBudget b = MakeBudget();
  ScriptedHandler h;
  b.SetPressureHandler(&h);
  ASSERT_TRUE(b.Charge(900).ok());
  ScopedReclaimFlags in(kScopeInReclaim);
  EXPECT_TRUE(absl::IsResourceExhausted(b.Charge(50)));
  EXPECT_EQ(h.calls.load(), 0);
  ScopedReclaimFlags reserve(kScopeMayUseReserve);
  EXPECT_TRUE(b.Charge(50).ok());
  EXPECT_EQ(h.calls.load(), 0);
}

TEST(BudgetTest, DirectReclaimThatFreesLetsChargeSucceed) {
  MemoryBudget b = MakeBudget();
  ScriptedHandler h;
  h.on_direct = [&](uint64_t, int attempt) {
    if (attempt == 1) b.Uncharge(400);  // the second attempt finds memory
  };
  b.SetPressureHandler(&h);
  ASSERT_TRUE(b.Charge(900).ok());
  EXPECT_TRUE(b.Charge(200).ok());
  EXPECT_EQ(h.calls.load(), 2);
  EXPECT_EQ(b.used(), 700u);
}

// Writeback is cleaning pages, so attempts see progress and the charge is
// throttled instead of failed, well past the attempts in a row it allows
// without progress.
TEST(BudgetTest, ProgressKeepsAChargeRetrying) {
  MemoryBudget b = MakeBudget();
  ScriptedHandler h;
  b.set_max_direct_attempts(3);
  h.progress = [](int attempt) { return attempt % 3 == 2; };  // two without, then one with
  h.on_direct = [&](uint64_t, int attempt) {
    if (attempt == 40) b.Uncharge(400);
  };
  b.SetPressureHandler(&h);
  ASSERT_TRUE(b.Charge(900).ok());
  EXPECT_TRUE(b.Charge(200).ok());
  EXPECT_EQ(h.calls.load(), 41);
  EXPECT_EQ(b.failed_charges(), 0u);
}

TEST(BudgetTest, AttemptsInARowWithoutProgressFail) {
  MemoryBudget b = MakeBudget();
  ScriptedHandler h;
  b.set_max_direct_attempts(3);
  h.progress = [](int attempt) { return attempt < 5; };
  b.SetPressureHandler(&h);
  ASSERT_TRUE(b.Charge(900).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(b.Charge(200)));
  EXPECT_EQ(h.calls.load(), 8);  // five with progress, then three without
  EXPECT_EQ(b.failed_charges(), 1u);
}

// Progress that never frees enough for this charge still ends: the stall
// has a bound in time.
TEST(BudgetTest, EndlessProgressEndsAtTheStallBound) {
  MemoryBudget b = MakeBudget();
  ScriptedHandler h;
  h.progress = [](int) { return true; };
  h.on_direct = [](uint64_t, int) { std::this_thread::sleep_for(std::chrono::milliseconds(1)); };
  b.set_max_charge_stall(std::chrono::milliseconds(50));
  b.SetPressureHandler(&h);
  ASSERT_TRUE(b.Charge(900).ok());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(absl::IsResourceExhausted(b.Charge(200)));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(50));
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  EXPECT_GT(h.calls.load(), 16);
  EXPECT_EQ(b.used(), 900u);
}

TEST(BudgetTest, WakesKswapdBelowLow) {
  MemoryBudget b = MakeBudget();
  ScriptedHandler h;
  b.SetPressureHandler(&h);
  ASSERT_TRUE(b.Charge(700).ok());  // free 300: above low
  EXPECT_EQ(h.wakes.load(), 0);
  ASSERT_TRUE(b.Charge(150).ok());  // free 150 < low 200
  EXPECT_GE(h.wakes.load(), 1);
  EXPECT_EQ(h.calls.load(), 0);
}

TEST(BudgetTest, ForceChargeCountsReserve) {
  MemoryBudget b = MakeBudget();
  b.ForceCharge(950);
  EXPECT_EQ(b.reserve_charges(), 1u);
  b.ForceCharge(100);  // over the limit: bookkeeping only
  EXPECT_EQ(b.used(), 1050u);
  EXPECT_EQ(b.free(), 0u);
  EXPECT_EQ(b.peak_used(), 1050u);
}

TEST(BudgetTest, LiveTuning) {
  MemoryBudget b = MakeBudget();
  ScriptedHandler h;
  b.SetPressureHandler(&h);
  ASSERT_TRUE(b.Charge(600).ok());
  EXPECT_EQ(h.wakes.load(), 0);
  b.SetLimit(700);  // free 100 < low 140: wake at once
  EXPECT_EQ(h.wakes.load(), 1);
  EXPECT_EQ(b.watermarks().min, 70u);
  EXPECT_FALSE(b.TryCharge(50));  // would leave 50 < min 70
  b.SetLimit(2000);
  const int wakes = h.wakes.load();
  b.SetFractions({0.5, 0.6, 0.7});  // free 1400 >= low 1200: no wake
  EXPECT_EQ(h.wakes.load(), wakes);
  b.SetFractions({0.5, 0.75, 0.8});  // low 1500 > free 1400
  EXPECT_EQ(h.wakes.load(), wakes + 1);
  EXPECT_EQ(b.watermarks().high, 1600u);
}

}  // namespace
}  // namespace reclaimfs::reclaim

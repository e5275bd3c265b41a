// HostPressure with an injected source: pressure caps the budget a quarter
// at a time down to the floor, holds between half the threshold and the
// threshold, grows back by 1/32 a step and lifts the cap at the configured
// size; a raised configured budget is not held down by an old cap; the PSI
// parser reads the kernel's format.
#include "reclaim/host_pressure.h"

#include <memory>
#include <thread>

#include "gtest/gtest.h"

namespace reclaimfs::reclaim {
namespace {

constexpr uint64_t kMiB = 1 << 20;

class FakeSource : public PressureSource {
 public:
  explicit FakeSource(double* value) : value_(value) {}
  absl::StatusOr<double> SomeAvg10() override {
    if (*value_ < 0) return absl::UnavailableError("gone");
    return *value_;
  }
  std::string Describe() const override { return "fake"; }

 private:
  double* value_;
};

TEST(HostPressureTest, ShrinksTowardTheFloorAndGrowsBackSlowly) {
  MemoryBudget budget(256 * kMiB, {});
  double avg10 = 0;
  HostPressureOptions o;
  o.floor_bytes = 64 * kMiB;
  o.threshold = 10;
  HostPressure hp(&budget, std::make_unique<FakeSource>(&avg10), o);

  hp.Step();
  EXPECT_EQ(budget.limit(), 256 * kMiB);
  avg10 = 25;
  hp.Step();
  EXPECT_EQ(budget.limit(), 192 * kMiB);
  EXPECT_TRUE(hp.under_pressure());
  hp.Step();
  hp.Step();
  EXPECT_EQ(budget.limit(), 64 * kMiB);
  hp.Step();
  EXPECT_EQ(budget.limit(), 64 * kMiB);  // the floor
  EXPECT_EQ(budget.configured_limit(), 256 * kMiB);

  avg10 = 7;  // between half the threshold and the threshold: hold
  hp.Step();
  EXPECT_EQ(budget.limit(), 64 * kMiB);
  avg10 = -1;  // no reading: hold
  hp.Step();
  EXPECT_EQ(budget.limit(), 64 * kMiB);
  EXPECT_EQ(hp.read_errors(), 1u);

  avg10 = 1;
  hp.Step();
  EXPECT_EQ(budget.limit(), 72 * kMiB);  // + 256M / 32
  EXPECT_FALSE(hp.under_pressure());
  for (int i = 0; i < 40; ++i) hp.Step();
  EXPECT_EQ(budget.limit(), 256 * kMiB);
  EXPECT_EQ(hp.cap(), UINT64_MAX);  // lifted
  budget.SetLimit(512 * kMiB);
  EXPECT_EQ(budget.limit(), 512 * kMiB);
}

TEST(HostPressureTest, ConfiguredChangesUnderACapAndStopLiftsIt) {
  MemoryBudget budget(256 * kMiB, {});
  double avg10 = 50;
  HostPressureOptions o;
  o.floor_bytes = 32 * kMiB;
  HostPressure hp(&budget, std::make_unique<FakeSource>(&avg10), o);
  hp.Step();
  EXPECT_EQ(budget.limit(), 192 * kMiB);
  budget.SetLimit(128 * kMiB);  // below the cap: the configured value wins
  EXPECT_EQ(budget.limit(), 128 * kMiB);
  budget.SetLimit(1024 * kMiB);  // above it: the cap holds
  EXPECT_EQ(budget.limit(), 192 * kMiB);
  hp.SetOptions(512 * kMiB, 10);  // a floor above the cap lifts it to the floor
  hp.Step();
  EXPECT_EQ(budget.limit(), 512 * kMiB);
  hp.Stop();
  EXPECT_EQ(budget.limit(), 1024 * kMiB);
}

TEST(HostPressureTest, ThreadRunsSteps) {
  MemoryBudget budget(256 * kMiB, {});
  double avg10 = 90;
  HostPressureOptions o;
  o.floor_bytes = 32 * kMiB;
  o.period = std::chrono::milliseconds(5);
  HostPressure hp(&budget, std::make_unique<FakeSource>(&avg10), o);
  hp.Start();
  for (int i = 0; i < 400 && budget.limit() > 32 * kMiB; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(budget.limit(), 32 * kMiB);
  hp.Stop();
  EXPECT_EQ(budget.limit(), 256 * kMiB);
}

TEST(HostPressureTest, StopAndSetOptionsWakeTheThreadAtOnce) {
  MemoryBudget budget(256 * kMiB, {});
  double avg10 = 0;
  HostPressureOptions o;
  o.period = std::chrono::seconds(30);
  HostPressure hp(&budget, std::make_unique<FakeSource>(&avg10), o);
  hp.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // asleep for its period
  avg10 = 50;
  hp.SetOptions(64 * kMiB, 10);  // applies now, not in 30 s
  for (int i = 0; i < 200 && budget.limit() == 256 * kMiB; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(budget.limit(), 192 * kMiB);
  const auto start = std::chrono::steady_clock::now();
  hp.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(HostPressureTest, TriggersOnTheKernelsFile) {
  PsiFileSource source({"/proc/pressure/memory"});
  if (!source.SomeAvg10().ok()) GTEST_SKIP() << "no PSI on this kernel";
  if (source.ArmTriggers(10) == 0) GTEST_SKIP() << "this kernel refuses PSI triggers";
  EXPECT_EQ(source.EventFds().size(), 1u);
  EXPECT_TRUE(source.SomeAvg10().ok());  // reading still works with a trigger armed
}

TEST(PsiParseTest, ReadsSomeAvg10) {
  EXPECT_DOUBLE_EQ(*ParsePsiSomeAvg10("some avg10=1.25 avg60=0.50 avg300=0.10 total=1234\n"
                                      "full avg10=0.75 avg60=0.00 avg300=0.00 total=99\n"),
                   1.25);
  EXPECT_FALSE(ParsePsiSomeAvg10("full avg10=0.75\n").ok());
  EXPECT_FALSE(ParsePsiSomeAvg10("").ok());
}

}  // namespace
}  // namespace reclaimfs::reclaim

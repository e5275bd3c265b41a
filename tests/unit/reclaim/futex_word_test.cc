// Tests of FutexWord, the lock-free wait/wake under ProgressEvent and kswapd.
#include "reclaim/futex_word.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace reclaimfs::reclaim {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

TEST(FutexWordTest, ChangedWordDoesNotSleep) {
  FutexWord w;
  const uint32_t seen = w.Load();
  w.Bump();
  const auto start = steady_clock::now();
  EXPECT_TRUE(w.WaitWhileEquals(seen, std::chrono::seconds(30)));
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(w.sleepers(), 0u);
}

TEST(FutexWordTest, TimesOutWhenNothingChanges) {
  FutexWord w;
  const auto start = steady_clock::now();
  EXPECT_FALSE(w.WaitWhileEquals(w.Load(), milliseconds(20)));
  EXPECT_GE(steady_clock::now() - start, milliseconds(20));
  EXPECT_EQ(w.sleepers(), 0u);
}

TEST(FutexWordTest, OneBumpWakesEverySleeper) {
  FutexWord w;
  const uint32_t seen = w.Load();
  constexpr int kSleepers = 4;
  std::atomic<int> woken{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < kSleepers; ++i) {
    ts.emplace_back([&] {
      if (w.WaitWhileEquals(seen, std::chrono::seconds(30))) woken++;
    });
  }
  // Bump only once all are asleep (or about to be: the kernel re-checks).
  const auto deadline = steady_clock::now() + std::chrono::seconds(10);
  while (w.sleepers() < kSleepers && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_EQ(w.sleepers(), static_cast<uint32_t>(kSleepers));
  const auto start = steady_clock::now();
  w.Bump();
  for (auto& t : ts) t.join();
  EXPECT_EQ(woken.load(), kSleepers);
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(FutexWordTest, BumpRacingTheSleepIsNotLost) {
  FutexWord w;
  for (int i = 0; i < 3; ++i) w.Bump();
  const uint32_t seen = w.Load();
  EXPECT_EQ(seen, 3u);
  // The bump may land before, during or after the sleeper's checks.
  std::thread t([&] { w.Bump(); });
  EXPECT_TRUE(w.WaitWhileEquals(seen, std::chrono::seconds(30)));
  t.join();
}

}  // namespace
}  // namespace reclaimfs::reclaim

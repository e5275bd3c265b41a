// Page lock, bounded waits and writeback waits.
#include "fs/cache/page.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"

namespace reclaimfs::fs {
namespace {

using std::chrono::milliseconds;

TEST(DataPage, TryLockAndBoundedLock) {
  Page p(nullptr, 1, 0, nullptr);
  EXPECT_TRUE(p.TryLock());
  EXPECT_FALSE(p.TryLock());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.Lock(milliseconds(50)));  // bounded: gives up
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(45));
  p.Unlock();
  EXPECT_TRUE(p.Lock(milliseconds(50)));
  p.Unlock();
}

TEST(DataPage, UnlockWakesWaiter) {
  Page p(nullptr, 1, 0, nullptr);
  ASSERT_TRUE(p.TryLock());
  std::atomic<bool> got{false};
  std::thread t([&] {
    got = p.Lock(milliseconds(5000));
    if (got) p.Unlock();
  });
  std::this_thread::sleep_for(milliseconds(20));
  p.Unlock();
  t.join();
  EXPECT_TRUE(got);
  EXPECT_FALSE(p.Test(kPageLocked));
}

TEST(DataPage, ContendedLockIsExclusive) {
  Page p(nullptr, 1, 0, nullptr);
  int counter = 0;
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i) {
    ts.emplace_back([&] {
      for (int j = 0; j < 2000; ++j) {
        ASSERT_TRUE(p.Lock(milliseconds(5000)));
        ++counter;
        p.Unlock();
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, 8000);
}

TEST(DataPage, WritebackWait) {
  Page p(nullptr, 1, 0, nullptr);
  EXPECT_TRUE(p.WaitWriteback(milliseconds(1)));
  p.Set(kPageWriteback);
  EXPECT_FALSE(p.WaitWriteback(milliseconds(20)));
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(20));
    p.EndWriteback();
  });
  EXPECT_TRUE(p.WaitWriteback(milliseconds(5000)));
  t.join();
}

}  // namespace
}  // namespace reclaimfs::fs

// The dirty throttle's delay curve: nothing below the dirty limit, rising
// in proportion between the limit and the hard limit, capped at the maximum
// pause from there on.
#include "fs/cache/dirty_throttle.h"

#include "gtest/gtest.h"

namespace reclaimfs::fs {
namespace {

TEST(DataThrottle, DelayCurve) {
  reclaim::MemoryOptions mo;
  mo.budget_bytes = 100ull << 20;
  mo.start_kswapd = false;
  reclaim::MemoryManager mm(mo);
  PageCache cache(&mm, nullptr, 4096);
  FileDataOptions o;
  o.dirty_ratio = 0.2;
  o.max_dirty_pause_ms = 200;
  DirtyThrottle t(&cache, nullptr, o);
  const uint64_t b = mo.budget_bytes;
  EXPECT_EQ(t.DelayMicros(b / 10, b), 0u);
  EXPECT_EQ(t.DelayMicros(b / 5, b), 0u);
  const uint64_t low = t.DelayMicros(b / 4, b);
  const uint64_t mid = t.DelayMicros(b * 3 / 10, b);  // halfway to the hard limit
  const uint64_t high = t.DelayMicros(b * 39 / 100, b);
  EXPECT_GT(low, 0u);
  EXPECT_NEAR(double(mid), 1000.0, 10.0);
  EXPECT_LT(low, mid);
  EXPECT_LT(mid, high);
  EXPECT_EQ(t.DelayMicros(b * 2 / 5, b), 200'000u);
  EXPECT_EQ(t.DelayMicros(b, b), 200'000u);
}

}  // namespace
}  // namespace reclaimfs::fs

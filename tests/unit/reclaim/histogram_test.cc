// Tests of LatencyHistogram percentiles and of the stats text.
#include "reclaim/histogram.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "reclaim/stats.h"

namespace reclaimfs::reclaim {
namespace {

using ::testing::HasSubstr;

TEST(HistogramTest, EmptyIsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.Count(), 0u);
  EXPECT_EQ(h.Max(), 0u);
  EXPECT_EQ(h.Percentile(0.5), 0u);
  EXPECT_EQ(h.Percentile(0.99), 0u);
}

TEST(HistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int i = 0; i < 10; ++i) h.Record(3);
  EXPECT_EQ(h.Percentile(0.5), 3u);
  EXPECT_EQ(h.Percentile(1.0), 3u);
  h.Record(0);
  EXPECT_EQ(h.Count(), 11u);
  EXPECT_EQ(h.Percentile(0.01), 0u);
}

TEST(HistogramTest, PercentilesWithinAQuarter) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 1000; ++v) h.Record(v);
  EXPECT_EQ(h.Count(), 1000u);
  EXPECT_EQ(h.Max(), 1000u);
  EXPECT_EQ(h.Percentile(1.0), 1000u);
  const double p50 = static_cast<double>(h.Percentile(0.50));
  const double p90 = static_cast<double>(h.Percentile(0.90));
  const double p99 = static_cast<double>(h.Percentile(0.99));
  // Upper bucket bounds: never below the true value, at most 25% above.
  EXPECT_GE(p50, 500);
  EXPECT_LE(p50, 500 * 1.25);
  EXPECT_GE(p90, 900);
  EXPECT_LE(p90, 900 * 1.25);
  EXPECT_GE(p99, 990);
  EXPECT_LE(p99, 1000);  // clamped to the exact max
}

TEST(HistogramTest, SkewedDistribution) {
  LatencyHistogram h;
  for (int i = 0; i < 990; ++i) h.Record(10);
  for (int i = 0; i < 10; ++i) h.Record(700);
  h.Record(123456789);
  EXPECT_LE(h.Percentile(0.5), 12u);
  EXPECT_GE(h.Percentile(0.5), 10u);
  const uint64_t p99 = h.Percentile(0.99);
  EXPECT_GE(p99, 10u);
  EXPECT_LE(p99, 875u);
  EXPECT_EQ(h.Max(), 123456789u);
  EXPECT_EQ(h.Percentile(1.0), 123456789u);
}

TEST(HistogramTest, HugeValuesAndReset) {
  LatencyHistogram h;
  h.Record(~uint64_t{0});
  EXPECT_EQ(h.Max(), ~uint64_t{0});
  EXPECT_EQ(h.Percentile(0.5), ~uint64_t{0});
  h.Reset();
  EXPECT_EQ(h.Count(), 0u);
  EXPECT_EQ(h.Percentile(0.5), 0u);
}

TEST(HistogramTest, Summary) {
  LatencyHistogram h;
  h.Record(5);
  EXPECT_EQ(h.Summary(), "count=1 p50=5us p99=5us max=5us");
}

TEST(StatsTest, FormatListsCountersAndHistograms) {
  ReclaimStats s;
  s.kswapd_wakeups = 3;
  s.backoff_waits = 7;
  s.direct_stall_us.Record(100);
  const std::string text = s.Format();
  EXPECT_THAT(text, HasSubstr("kswapd_wakeups 3\n"));
  EXPECT_THAT(text, HasSubstr("backoff_waits 7\n"));
  EXPECT_THAT(text, HasSubstr("reserve_charges 0\n"));
  EXPECT_THAT(text, HasSubstr("direct_stall_us_count 1\n"));
  EXPECT_THAT(text, HasSubstr("direct_stall_us_max 100\n"));
  EXPECT_THAT(text, HasSubstr("dirty_throttle_us_p99 0\n"));
}

}  // namespace
}  // namespace reclaimfs::reclaim

// PrometheusText: stat lines become counters (_total, *_us in seconds) and
// gauges (sizes in _bytes), summary lines are replaced by real cumulative
// histograms, every sample carries the escaped mountpoint label.
#include "fs/daemon/prometheus_text.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace reclaimfs::fs {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(PrometheusTextTest, CountersGaugesAndHistograms) {
  reclaim::ReclaimStats stats;
  for (uint64_t us : {1, 5, 100, 1'000'000}) stats.direct_stall_us.Record(us);
  const std::string text = PrometheusText(
      "budget_limit 1048576\npagecache_hits 7\nwriteback_throttle_us 2500000\nhost_pressure_some_avg10 42.50\n"
      "direct_stall_us_count 4\ndirect_stall_us_p99 1000\nnot a stat line\n",
      stats, "/mnt/r");
  EXPECT_THAT(text, HasSubstr("# TYPE reclaimfs_budget_limit_bytes gauge\n"
                              "reclaimfs_budget_limit_bytes{mountpoint=\"/mnt/r\"} 1048576\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE reclaimfs_pagecache_hits_total counter\n"
                              "reclaimfs_pagecache_hits_total{mountpoint=\"/mnt/r\"} 7\n"));
  EXPECT_THAT(text, HasSubstr("reclaimfs_writeback_throttle_seconds_total{mountpoint=\"/mnt/r\"} 2.500000\n"));
  EXPECT_THAT(text, HasSubstr("reclaimfs_host_pressure_some_avg10{mountpoint=\"/mnt/r\"} 42.50\n"));
  EXPECT_THAT(text, Not(HasSubstr("direct_stall_us_p99")));
  EXPECT_THAT(text, Not(HasSubstr("reclaimfs_direct_stall_us_count")));
  EXPECT_THAT(text, HasSubstr("# TYPE reclaimfs_direct_stall_seconds histogram\n"));
  const std::string b = "reclaimfs_direct_stall_seconds_bucket{mountpoint=\"/mnt/r\",le=";
  EXPECT_THAT(text, HasSubstr(b + "\"0.000001\"} 1\n"));  // 1 us
  EXPECT_THAT(text, HasSubstr(b + "\"0.000007\"} 2\n"));  // + 5 us
  EXPECT_THAT(text, HasSubstr(b + "\"0.000127\"} 3\n"));  // + 100 us
  EXPECT_THAT(text, HasSubstr(b + "\"0.524287\"} 3\n"));
  EXPECT_THAT(text, HasSubstr(b + "\"2.097151\"} 4\n"));  // + 1 s
  EXPECT_THAT(text, HasSubstr(b + "\"+Inf\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("reclaimfs_direct_stall_seconds_sum{mountpoint=\"/mnt/r\"} 1.000106\n"));
  EXPECT_THAT(text, HasSubstr("reclaimfs_direct_stall_seconds_count{mountpoint=\"/mnt/r\"} 4\n"));
  // Empty histograms are still complete.
  EXPECT_THAT(text, HasSubstr("reclaimfs_dirty_throttle_seconds_bucket{mountpoint=\"/mnt/r\",le=\"+Inf\"} 0\n"));
}

TEST(PrometheusTextTest, EscapesTheLabelAndPrintsEachNameOnce) {
  reclaim::ReclaimStats stats;
  const std::string text = PrometheusText("inodes 3\ninodes 4\n", stats, "/mnt/a \"b\"\\c");
  EXPECT_THAT(text, HasSubstr("reclaimfs_inodes{mountpoint=\"/mnt/a \\\"b\\\"\\\\c\"} 3\n"));
  EXPECT_THAT(text, Not(HasSubstr("} 4\n")));
}

}  // namespace
}  // namespace reclaimfs::fs

// Lock-free latency histogram with log-spaced buckets (microseconds): four
// buckets per power of two, so percentiles are within 25%; Max is exact.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace reclaimfs::reclaim {

class LatencyHistogram {
 public:
  void Record(uint64_t micros);
  uint64_t Count() const;
  uint64_t Max() const;
  // Upper bound of the bucket holding quantile q (0 < q <= 1), in micros;
  // exact for Max. Returns 0 when empty.
  uint64_t Percentile(double q) const;
  void Reset();
  // "count=N p50=Xus p99=Yus max=Zus"
  std::string Summary() const;

  // For exporters (Prometheus histograms): the number of values <= each
  // upper bound, cumulative, at the ends of powers of two (1, 3, 7, ...
  // 2^k - 1 us: bucket edges fall there, so counts are exact), the last one
  // open-ended;
  // count is the sum of the buckets and sum_us the sum of the values.
  struct Cumulative {
    std::vector<uint64_t> upper_us;  // the last bound is UINT64_MAX (+Inf)
    std::vector<uint64_t> counts;
    uint64_t count = 0;
    uint64_t sum_us = 0;
  };
  // `stride`: every stride-th power of two (2: 1, 7, 31, 127 ... us).
  Cumulative Snapshot(int stride = 2) const;

 private:
  // 4 exact buckets for 0..3, then 4 per power of two up to ~2^33 us.
  static constexpr int kBuckets = 128;
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> max_{0};
  std::atomic<uint64_t> sum_{0};
};

}  // namespace reclaimfs::reclaim

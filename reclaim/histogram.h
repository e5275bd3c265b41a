// Lock-free latency histogram with log-spaced buckets (microseconds): four
// buckets per power of two, so percentiles are within 25%; Max is exact.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

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

 private:
  // 4 exact buckets for 0..3, then 4 per power of two up to ~2^33 us.
  static constexpr int kBuckets = 128;
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> max_{0};
};

}  // namespace reclaimfs::reclaim

// Lock-free latency histogram with log-spaced buckets (microseconds).
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
  static constexpr int kBuckets = 64;
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> max_{0};
};

}  // namespace reclaimfs::reclaim

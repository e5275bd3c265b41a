// LatencyHistogram: log-linear buckets, four per power of two.
//
// Values 0..3 get a bucket each; above that every power of two [2^e, 2^(e+1))
// is split into four equal sub-buckets, so a bucket's upper bound is within
// 25% of any value in it. Recording is a few relaxed atomic adds.
#include "reclaim/histogram.h"

#include <bit>

#include "absl/strings/str_format.h"

namespace reclaimfs::reclaim {

namespace {

constexpr int kSubBits = 2;  // 4 sub-buckets per power of two
constexpr int kSub = 1 << kSubBits;

int BucketFor(uint64_t v) {
  if (v < kSub) return static_cast<int>(v);
  const int e = std::bit_width(v) - 1;  // v in [2^e, 2^(e+1)), e >= kSubBits
  const int sub = static_cast<int>((v >> (e - kSubBits)) & (kSub - 1));
  return kSub + (e - kSubBits) * kSub + sub;
}

// Largest value that falls into bucket b.
uint64_t UpperBound(int b) {
  if (b < kSub) return static_cast<uint64_t>(b);
  const int e = (b - kSub) / kSub + kSubBits;
  const uint64_t sub = static_cast<uint64_t>((b - kSub) % kSub);
  const uint64_t width = uint64_t{1} << (e - kSubBits);
  const uint64_t lower = (uint64_t{1} << e) + sub * width;
  return lower + width - 1;
}

}  // namespace

void LatencyHistogram::Record(uint64_t micros) {
  int b = BucketFor(micros);
  if (b >= kBuckets) b = kBuckets - 1;  // overflow bucket; Max stays exact
  buckets_[b].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(micros, std::memory_order_relaxed);
  uint64_t m = max_.load(std::memory_order_relaxed);
  while (micros > m &&
         !max_.compare_exchange_weak(m, micros, std::memory_order_relaxed)) {
  }
}

uint64_t LatencyHistogram::Count() const {
  return count_.load(std::memory_order_relaxed);
}

uint64_t LatencyHistogram::Max() const {
  return max_.load(std::memory_order_relaxed);
}

uint64_t LatencyHistogram::Percentile(double q) const {
  // Sum the buckets rather than trusting count_: concurrent Record() calls
  // may have bumped one and not yet the other.
  std::array<uint64_t, kBuckets> snap;
  uint64_t total = 0;
  for (int i = 0; i < kBuckets; ++i) {
    snap[i] = buckets_[i].load(std::memory_order_relaxed);
    total += snap[i];
  }
  if (total == 0) return 0;
  const uint64_t max = Max();
  if (!(q < 1.0)) return max;
  if (!(q > 0.0)) q = 0.0;
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total));
  if (static_cast<double>(rank) < q * static_cast<double>(total)) ++rank;  // ceil
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += snap[i];
    if (seen >= rank) {
      // The last bucket is open-ended, and no bucket bound may exceed Max.
      if (i == kBuckets - 1) return max;
      const uint64_t ub = UpperBound(i);
      return ub < max ? ub : max;
    }
  }
  return max;
}

void LatencyHistogram::Reset() {
  for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
  count_.store(0, std::memory_order_relaxed);
  max_.store(0, std::memory_order_relaxed);
  sum_.store(0, std::memory_order_relaxed);
}

LatencyHistogram::Cumulative LatencyHistogram::Snapshot(int stride) const {
  if (stride < 1) stride = 1;
  Cumulative c;
  c.sum_us = sum_.load(std::memory_order_relaxed);
  uint64_t seen = 0;
  // Bucket b < kSub holds the value b; above, the last sub-bucket of the
  // power 2^e ends at 2^(e+1) - 1: bounds 2^1 - 1, then every stride-th.
  int next_power = 1;
  for (int b = 0; b < kBuckets; ++b) {
    seen += buckets_[b].load(std::memory_order_relaxed);
    if (b == kBuckets - 1) break;
    const uint64_t ub = UpperBound(b);
    if (ub == (uint64_t{1} << next_power) - 1) {
      c.upper_us.push_back(ub);
      c.counts.push_back(seen);
      next_power += stride;
    }
  }
  c.upper_us.push_back(UINT64_MAX);
  c.counts.push_back(seen);
  c.count = seen;
  return c;
}

std::string LatencyHistogram::Summary() const {
  return absl::StrFormat("count=%d p50=%dus p99=%dus max=%dus", Count(),
                         Percentile(0.50), Percentile(0.99), Max());
}

}  // namespace reclaimfs::reclaim

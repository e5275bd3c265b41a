// ReclaimStats::Format: the text form of the counters, one "name value" a line.
#include "reclaim/stats.h"

#include "absl/strings/str_format.h"

namespace reclaimfs::reclaim {

namespace {

void AppendCounter(std::string* out, const char* name,
                   const std::atomic<uint64_t>& v) {
  absl::StrAppendFormat(out, "%s %d\n", name, v.load(std::memory_order_relaxed));
}

void AppendHistogram(std::string* out, const char* name,
                     const LatencyHistogram& h) {
  absl::StrAppendFormat(out, "%s_count %d\n", name, h.Count());
  absl::StrAppendFormat(out, "%s_p50 %d\n", name, h.Percentile(0.50));
  absl::StrAppendFormat(out, "%s_p99 %d\n", name, h.Percentile(0.99));
  absl::StrAppendFormat(out, "%s_max %d\n", name, h.Max());
}

}  // namespace

std::string ReclaimStats::Format() const {
  std::string out;
#define RECLAIMFS_COUNTER(field) AppendCounter(&out, #field, field)
  RECLAIMFS_COUNTER(kswapd_wakeups);
  RECLAIMFS_COUNTER(kswapd_scanned);
  RECLAIMFS_COUNTER(kswapd_freed);
  RECLAIMFS_COUNTER(kswapd_freed_bytes);
  RECLAIMFS_COUNTER(direct_reclaims);
  RECLAIMFS_COUNTER(direct_scanned);
  RECLAIMFS_COUNTER(direct_freed);
  RECLAIMFS_COUNTER(direct_freed_bytes);
  RECLAIMFS_COUNTER(allocation_stalls);
  RECLAIMFS_COUNTER(allocation_failures);
  RECLAIMFS_COUNTER(backoff_waits);
  RECLAIMFS_COUNTER(backoff_timeouts);
  RECLAIMFS_COUNTER(deferred_added);
  RECLAIMFS_COUNTER(deferred_done);
  RECLAIMFS_COUNTER(reserve_charges);
  RECLAIMFS_COUNTER(writeback_kicks);
  RECLAIMFS_COUNTER(direct_throttles);
  RECLAIMFS_COUNTER(direct_throttle_timeouts);
  RECLAIMFS_COUNTER(dirty_throttle_pauses);
#undef RECLAIMFS_COUNTER
  AppendHistogram(&out, "direct_stall_us", direct_stall_us);
  AppendHistogram(&out, "direct_stall_cpu_us", direct_stall_cpu_us);
  AppendHistogram(&out, "charge_stall_us", charge_stall_us);
  AppendHistogram(&out, "dirty_throttle_us", dirty_throttle_us);
  return out;
}

}  // namespace reclaimfs::reclaim

// vmstat-style counters and latency histograms of the memory subsystem,
// readable while running (the control socket prints Format()).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "reclaim/histogram.h"

namespace reclaimfs::reclaim {

struct ReclaimStats {
  std::atomic<uint64_t> kswapd_wakeups{0};
  std::atomic<uint64_t> kswapd_scanned{0};
  std::atomic<uint64_t> kswapd_freed{0};        // objects
  std::atomic<uint64_t> kswapd_freed_bytes{0};
  std::atomic<uint64_t> direct_reclaims{0};     // entries into direct reclaim
  std::atomic<uint64_t> direct_scanned{0};
  std::atomic<uint64_t> direct_freed{0};
  std::atomic<uint64_t> direct_freed_bytes{0};
  std::atomic<uint64_t> allocation_stalls{0};   // charges that had to wait
  std::atomic<uint64_t> allocation_failures{0}; // charges refused after bounded retries
  std::atomic<uint64_t> backoff_waits{0};       // aggregated waits on the progress event
  std::atomic<uint64_t> backoff_timeouts{0};    // ... that ended by timeout
  std::atomic<uint64_t> deferred_added{0};      // work direct reclaim left to kswapd
  std::atomic<uint64_t> deferred_done{0};
  std::atomic<uint64_t> reserve_charges{0};     // charges that dipped below min
  std::atomic<uint64_t> writeback_kicks{0};
  std::atomic<uint64_t> direct_throttles{0};         // bounded waits after a short direct pass
  std::atomic<uint64_t> direct_throttle_timeouts{0}; // ... that ended by timeout
  std::atomic<uint64_t> dirty_throttle_pauses{0};

  LatencyHistogram direct_stall_us;     // time of one direct-reclaim call
  LatencyHistogram direct_stall_cpu_us; // CPU time the thread used in that call (the rest is waiting)
  LatencyHistogram charge_stall_us;     // whole slow path of a charge (all its direct-reclaim attempts)
  LatencyHistogram dirty_throttle_us;   // time writers were paused

  // One "name value" per line; histograms as name_{count,p50,p99,max}.
  std::string Format() const;
};

}  // namespace reclaimfs::reclaim

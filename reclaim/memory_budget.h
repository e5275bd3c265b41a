// The hard memory budget every cache allocation is charged to, in bytes.
//
// Watermarks are on *free* budget: min < low < high. Free below low wakes
// kswapd; a charge that would leave free below min enters direct reclaim
// (through the PressureHandler) unless the thread's scope allows the reserve
// (the bytes below min), which only reclaim/writeback contexts may use.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "absl/status/status.h"
#include "reclaim/stats.h"

namespace reclaimfs::reclaim {

struct WatermarkFractions {
  double min = 0.02;   // fraction of the limit; also the reserve size
  double low = 0.06;
  double high = 0.10;
};

struct Watermarks {
  uint64_t min = 0, low = 0, high = 0;  // bytes of free budget
};

// Implemented by the reclaim core; the budget calls it, never the reverse
// path, so the budget has no dependency on shrinkers.
class PressureHandler {
 public:
  virtual ~PressureHandler() = default;
  // Free fell below low: wake the background reclaimer. Must not block.
  virtual void WakeKswapd() = 0;
  // A charge of `bytes` cannot be made without going below min. Performs a
  // bounded direct-reclaim attempt on the calling thread. Returns when the
  // caller should retry the charge; `attempt` counts from 0. True if the
  // attempt saw progress: it freed memory, or reclaim or writeback elsewhere
  // signalled some while it waited (Linux's did_some_progress).
  virtual bool DirectReclaim(uint64_t bytes, int attempt) = 0;
};

class MemoryBudget {
 public:
  MemoryBudget(uint64_t limit_bytes, WatermarkFractions fractions);

  void SetPressureHandler(PressureHandler* handler);
  // Optional: mirror reserve_charges and allocation_failures into `stats`.
  void SetStats(ReclaimStats* stats);

  // Charges `bytes`, entering bounded direct reclaim when needed. Returns
  // ResourceExhausted once max_direct_attempts attempts in a row made no
  // progress, or after max_charge_stall in all: while writeback is cleaning
  // pages, a writer is throttled rather than failed (Linux's
  // should_reclaim_retry), but never without a bound. Inside kScopeInReclaim it never recurses into
  // reclaim; with kScopeMayUseReserve it may use the reserve.
  absl::Status Charge(uint64_t bytes);
  // Charges only if it fits above min (or in the reserve, for scopes that may
  // use it); never reclaims. For opportunistic allocations (readahead).
  bool TryCharge(uint64_t bytes);
  // Charges unconditionally (bookkeeping for memory already held, e.g. a
  // completion that must not fail). Counts as reserve use when below min.
  void ForceCharge(uint64_t bytes);
  void Uncharge(uint64_t bytes);

  uint64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  uint64_t free() const;  // limit - used, 0 if over
  uint64_t peak_used() const { return peak_.load(std::memory_order_relaxed); }
  Watermarks watermarks() const;

  bool BelowLow() const { return free() < watermarks().low; }
  bool BelowHigh() const { return free() < watermarks().high; }

  // Live tuning. The limit in effect is the configured one (SetLimit), or
  // the cap when that is lower (SetCap; host pressure). Either setter wakes
  // kswapd if free budget falls below low.
  void SetLimit(uint64_t limit_bytes);
  void SetCap(uint64_t cap_bytes);  // UINT64_MAX: no cap
  uint64_t configured_limit() const { return configured_.load(std::memory_order_relaxed); }
  void SetFractions(WatermarkFractions fractions);
  void set_max_direct_attempts(int n) { max_direct_attempts_ = n; }
  void set_max_charge_stall(std::chrono::milliseconds d) { max_charge_stall_ms_ = d.count(); }

  // Counters the budget owns (the reclaim core owns the rest of ReclaimStats).
  uint64_t reserve_charges() const { return reserve_charges_.load(); }
  uint64_t failed_charges() const { return failed_charges_.load(); }
  // Uncharges of more than was charged (a caller bug; clamped at zero).
  uint64_t uncharge_underflows() const { return uncharge_underflows_.load(); }

 private:
  bool TryChargeAbove(uint64_t bytes, uint64_t floor_free);
  // Fast path for the calling thread's scope: above min, else the reserve
  // when the scope allows it. No reclaim.
  bool TryChargeFast(uint64_t bytes, uint32_t scope);
  void NotePeak(uint64_t used);
  void CountReserveCharge();
  void CountFailure();
  void WakeIfBelowLow();

  std::atomic<uint64_t> limit_;       // min(configured_, cap_): what charges see
  std::atomic<uint64_t> configured_;
  std::atomic<uint64_t> cap_{UINT64_MAX};
  std::mutex limit_mu_;  // serialises the two setters (never taken by charges)
  std::atomic<uint64_t> used_{0};
  std::atomic<uint64_t> peak_{0};
  std::atomic<double> frac_min_, frac_low_, frac_high_;
  std::atomic<PressureHandler*> handler_{nullptr};
  std::atomic<uint64_t> reserve_charges_{0};
  std::atomic<uint64_t> failed_charges_{0};
  std::atomic<uint64_t> uncharge_underflows_{0};
  std::atomic<ReclaimStats*> stats_{nullptr};
  std::atomic<int> max_direct_attempts_{16};  // in a row without progress; live-tunable
  std::atomic<int64_t> max_charge_stall_ms_{10'000};
};

}  // namespace reclaimfs::reclaim

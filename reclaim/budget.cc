// MemoryBudget: the global byte budget, its watermarks, the reserve below min
// and the charge slow path that enters direct reclaim.
#include "reclaim/memory_budget.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "reclaim/scope.h"

namespace reclaimfs::reclaim {

namespace {

// Configuration is validated elsewhere; here we only make sure the three
// fractions are usable: 0 <= min < low < high < 1.
WatermarkFractions Sanitize(WatermarkFractions f) {
  const WatermarkFractions d;
  auto usable = [](double x) { return std::isfinite(x) && x >= 0.0 && x < 1.0; };
  if (!usable(f.min)) f.min = d.min;
  if (!usable(f.low)) f.low = d.low;
  if (!usable(f.high)) f.high = d.high;
  constexpr double kGap = 0.001;
  f.min = std::min(f.min, 0.9);
  f.low = std::clamp(f.low, f.min + kGap, 0.95);
  f.high = std::clamp(f.high, f.low + kGap, 0.99);
  return f;
}

uint64_t Fraction(uint64_t limit, double f) {
  // Rounded, so 0.3 of 1000 is 300 and not 299.
  const double bytes = std::round(static_cast<double>(limit) * f);
  if (bytes >= static_cast<double>(limit)) return limit;  // f < 1, but rounding
  return static_cast<uint64_t>(bytes);
}

}  // namespace

MemoryBudget::MemoryBudget(uint64_t limit_bytes, WatermarkFractions fractions)
    : limit_(limit_bytes), configured_(limit_bytes) {
  const WatermarkFractions f = Sanitize(fractions);
  frac_min_.store(f.min);
  frac_low_.store(f.low);
  frac_high_.store(f.high);
}

void MemoryBudget::SetPressureHandler(PressureHandler* handler) {
  handler_.store(handler, std::memory_order_release);
}

void MemoryBudget::SetStats(ReclaimStats* stats) {
  stats_.store(stats, std::memory_order_release);
}

uint64_t MemoryBudget::free() const {
  const uint64_t limit = limit_.load(std::memory_order_relaxed);
  const uint64_t used = used_.load(std::memory_order_relaxed);
  return used < limit ? limit - used : 0;
}

Watermarks MemoryBudget::watermarks() const {
  const uint64_t limit = limit_.load(std::memory_order_relaxed);
  Watermarks w;
  w.min = Fraction(limit, frac_min_.load(std::memory_order_relaxed));
  w.low = Fraction(limit, frac_low_.load(std::memory_order_relaxed));
  w.high = Fraction(limit, frac_high_.load(std::memory_order_relaxed));
  // SetFractions stores three atomics; a reader racing with it must still
  // see ordered watermarks.
  w.low = std::max(w.low, w.min);
  w.high = std::max(w.high, w.low);
  return w;
}

void MemoryBudget::NotePeak(uint64_t used) {
  uint64_t peak = peak_.load(std::memory_order_relaxed);
  while (used > peak &&
         !peak_.compare_exchange_weak(peak, used, std::memory_order_relaxed)) {
  }
}

void MemoryBudget::CountReserveCharge() {
  reserve_charges_.fetch_add(1, std::memory_order_relaxed);
  if (ReclaimStats* s = stats_.load(std::memory_order_acquire)) {
    s->reserve_charges.fetch_add(1, std::memory_order_relaxed);
  }
}

void MemoryBudget::CountFailure() {
  failed_charges_.fetch_add(1, std::memory_order_relaxed);
  if (ReclaimStats* s = stats_.load(std::memory_order_acquire)) {
    s->allocation_failures.fetch_add(1, std::memory_order_relaxed);
  }
}

void MemoryBudget::WakeIfBelowLow() {
  if (!BelowLow()) return;
  if (PressureHandler* h = handler_.load(std::memory_order_acquire)) {
    h->WakeKswapd();
  }
}

bool MemoryBudget::TryChargeAbove(uint64_t bytes, uint64_t floor_free) {
  uint64_t used = used_.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t limit = limit_.load(std::memory_order_relaxed);
    if (used > limit || bytes > limit - used) return false;
    if (limit - used - bytes < floor_free) return false;
    if (used_.compare_exchange_weak(used, used + bytes,
                                    std::memory_order_relaxed)) {
      NotePeak(used + bytes);
      return true;
    }
  }
}

bool MemoryBudget::TryChargeFast(uint64_t bytes, uint32_t scope) {
  if (TryChargeAbove(bytes, watermarks().min)) return true;
  if ((scope & kScopeMayUseReserve) && TryChargeAbove(bytes, 0)) {
    CountReserveCharge();
    return true;
  }
  return false;
}

absl::Status MemoryBudget::Charge(uint64_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  const uint32_t scope = CurrentScope();
  if (TryChargeFast(bytes, scope)) {
    WakeIfBelowLow();
    return absl::OkStatus();
  }

  PressureHandler* handler = handler_.load(std::memory_order_acquire);
  // Reclaim contexts must not recurse into reclaim: they either fit (in the
  // reserve, if their scope allows) or fail at once.
  if (handler == nullptr || (scope & kScopeInReclaim)) {
    if (handler != nullptr) handler->WakeKswapd();
    CountFailure();
    return absl::ResourceExhaustedError("memory budget exhausted");
  }

  handler->WakeKswapd();
  const auto start = std::chrono::steady_clock::now();
  auto record_stall = [&] {
    if (ReclaimStats* s = stats_.load(std::memory_order_acquire)) {
      s->charge_stall_us.Record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start)
              .count()));
    }
  };
  const auto deadline = start + std::chrono::milliseconds(max_charge_stall_ms_.load(std::memory_order_relaxed));
  int without_progress = 0;
  for (int attempt = 0; without_progress < max_direct_attempts_; ++attempt) {
    if (!handler->DirectReclaim(bytes, attempt)) {
      ++without_progress;
    } else {
      without_progress = 0;
    }
    if (TryChargeFast(bytes, scope)) {
      record_stall();
      WakeIfBelowLow();
      return absl::OkStatus();
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
  }
  record_stall();
  CountFailure();
  return absl::ResourceExhaustedError("memory budget exhausted");
}

bool MemoryBudget::TryCharge(uint64_t bytes) {
  if (bytes == 0) return true;
  const bool ok = TryChargeFast(bytes, CurrentScope());
  // Either way free is short if we are below low; let kswapd catch up so the
  // next opportunistic charge succeeds.
  WakeIfBelowLow();
  return ok;
}

void MemoryBudget::ForceCharge(uint64_t bytes) {
  if (bytes == 0) return;
  const uint64_t used = used_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  NotePeak(used);
  const uint64_t limit = limit_.load(std::memory_order_relaxed);
  const uint64_t free = used < limit ? limit - used : 0;
  if (free < watermarks().min) CountReserveCharge();
  WakeIfBelowLow();
}

void MemoryBudget::Uncharge(uint64_t bytes) {
  uint64_t used = used_.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t next = bytes > used ? 0 : used - bytes;
    if (used_.compare_exchange_weak(used, next, std::memory_order_relaxed)) {
      if (bytes > used) uncharge_underflows_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
}

void MemoryBudget::SetLimit(uint64_t limit_bytes) {
  {
    std::lock_guard<std::mutex> l(limit_mu_);
    configured_.store(limit_bytes, std::memory_order_relaxed);
    limit_.store(std::min(limit_bytes, cap_.load(std::memory_order_relaxed)), std::memory_order_relaxed);
  }
  WakeIfBelowLow();
}

void MemoryBudget::SetCap(uint64_t cap_bytes) {
  {
    std::lock_guard<std::mutex> l(limit_mu_);
    cap_.store(cap_bytes, std::memory_order_relaxed);
    limit_.store(std::min(configured_.load(std::memory_order_relaxed), cap_bytes), std::memory_order_relaxed);
  }
  WakeIfBelowLow();
}

void MemoryBudget::SetFractions(WatermarkFractions fractions) {
  const WatermarkFractions f = Sanitize(fractions);
  // Store high first and min last so a racing reader errs towards reclaiming.
  frac_high_.store(f.high, std::memory_order_relaxed);
  frac_low_.store(f.low, std::memory_order_relaxed);
  frac_min_.store(f.min, std::memory_order_relaxed);
  WakeIfBelowLow();
}

}  // namespace reclaimfs::reclaim

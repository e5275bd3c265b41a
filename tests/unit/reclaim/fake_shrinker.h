// A cache stand-in for reclaim tests: N objects of S bytes charged to a
// budget, a shrinker over them, and counters of what reclaim asked for.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "reclaim/memory_budget.h"
#include "reclaim/reclaim_core.h"
#include "reclaim/shrinker.h"

namespace reclaimfs::reclaim::testing {

class FakeShrinker : public Shrinker {
 public:
  // Objects are force-charged so setting up a test never triggers reclaim.
  FakeShrinker(MemoryBudget* budget, std::string name, uint64_t objects,
               uint64_t object_bytes, int seeks = 2, bool needs_fs = false)
      : budget_(budget), name_(std::move(name)), object_bytes_(object_bytes),
        seeks_(seeks), needs_fs_(needs_fs) {
    AddForced(objects);
  }

  // Adds objects through the normal charge path (may enter reclaim).
  absl::Status Add(uint64_t n) {
    absl::Status s = budget_->Charge(n * object_bytes_);
    if (s.ok()) objects_.fetch_add(n);
    return s;
  }
  void AddForced(uint64_t n) {
    budget_->ForceCharge(n * object_bytes_);
    objects_.fetch_add(n);
  }

  // Dirty objects cannot be freed until writeback: Scan answers kBackoff.
  void set_dirty(bool d) { dirty_.store(d); }
  // Count-only mode: Scan looks at objects but frees none (hint kNone).
  void set_free_on_scan(bool f) { free_on_scan_.store(f); }
  void set_hint(ShrinkHint h) { forced_hint_.store(h); }
  // Runs at the start of every Scan (re-entrancy probes, blocking tests).
  void set_on_scan(std::function<void(const ShrinkControl&)> fn) {
    std::lock_guard<std::mutex> l(mu_);
    on_scan_ = std::move(fn);
  }

  std::string Name() const override { return name_; }
  uint64_t Count() override { return objects_.load(); }
  int Seeks() const override { return seeks_; }
  bool NeedsFs() const override { return needs_fs_; }

  ShrinkResult Scan(const ShrinkControl& sc) override {
    const int depth = depth_.fetch_add(1) + 1;
    int seen = max_depth_.load();
    while (depth > seen && !max_depth_.compare_exchange_weak(seen, depth)) {
    }
    std::function<void(const ShrinkControl&)> hook;
    {
      std::lock_guard<std::mutex> l(mu_);
      hook = on_scan_;
      requests_.push_back(sc.nr_to_scan);
      scopes_.push_back(sc.scope);
    }
    scan_calls_.fetch_add(1);
    requested_.fetch_add(sc.nr_to_scan);
    if (hook) hook(sc);

    ShrinkResult r;
    if (dirty_.load()) {
      r.scanned = std::min(sc.nr_to_scan, objects_.load());
      r.hint = ShrinkHint::kBackoff;
    } else if (!free_on_scan_.load()) {
      r.scanned = sc.nr_to_scan;
    } else {
      uint64_t have = objects_.load();
      uint64_t take = 0;
      do {
        take = std::min(sc.nr_to_scan, have);
      } while (!objects_.compare_exchange_weak(have, have - take));
      budget_->Uncharge(take * object_bytes_);
      r.scanned = take;
      r.freed = take;
    }
    if (forced_hint_.load() != ShrinkHint::kNone) r.hint = forced_hint_.load();
    depth_.fetch_sub(1);
    return r;
  }

  uint64_t objects() const { return objects_.load(); }
  uint64_t scan_calls() const { return scan_calls_.load(); }
  uint64_t requested() const { return requested_.load(); }
  int max_depth() const { return max_depth_.load(); }
  std::vector<uint32_t> scopes() const {
    std::lock_guard<std::mutex> l(mu_);
    return scopes_;
  }

 private:
  MemoryBudget* const budget_;
  const std::string name_;
  const uint64_t object_bytes_;
  const int seeks_;
  const bool needs_fs_;
  std::atomic<uint64_t> objects_{0};
  std::atomic<bool> dirty_{false};
  std::atomic<bool> free_on_scan_{true};
  std::atomic<ShrinkHint> forced_hint_{ShrinkHint::kNone};
  std::atomic<uint64_t> scan_calls_{0};
  std::atomic<uint64_t> requested_{0};
  std::atomic<int> depth_{0};
  std::atomic<int> max_depth_{0};
  mutable std::mutex mu_;
  std::function<void(const ShrinkControl&)> on_scan_;
  std::vector<uint64_t> requests_;
  std::vector<uint32_t> scopes_;
};

// Registers for the lifetime of the object, so a shrinker on the stack is
// unregistered (and any scan of it finished) before it is destroyed.
class ScopedRegistration {
 public:
  ScopedRegistration(ReclaimCore* core, Shrinker* s) : core_(core), s_(s) {
    core_->Register(s_);
  }
  ~ScopedRegistration() { core_->Unregister(s_); }
  ScopedRegistration(const ScopedRegistration&) = delete;
  ScopedRegistration& operator=(const ScopedRegistration&) = delete;

 private:
  ReclaimCore* const core_;
  Shrinker* const s_;
};

}  // namespace reclaimfs::reclaim::testing

// Concurrency stress of the whole memory subsystem (meant for ThreadSanitizer):
// threads charge and uncharge while kswapd, direct reclaim, a shrinker over a
// shared pool and a "flusher" signalling progress all run at once.
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "reclaim/memory_manager.h"
#include "reclaim/scope.h"
#include "tests/unit/reclaim/fake_shrinker.h"

namespace reclaimfs::reclaim {
namespace {

// A cache of variable-sized objects that any thread may add to.
class PoolShrinker : public Shrinker {
 public:
  explicit PoolShrinker(MemoryBudget* budget) : budget_(budget) {}

  void Add(uint64_t bytes) {
    std::lock_guard<std::mutex> l(mu_);
    objects_.push_back(bytes);
  }
  void set_dirty(bool d) { dirty_.store(d); }
  uint64_t Drain() {
    std::lock_guard<std::mutex> l(mu_);
    uint64_t total = 0;
    for (uint64_t b : objects_) total += b;
    objects_.clear();
    budget_->Uncharge(total);
    return total;
  }

  std::string Name() const override { return "pool"; }
  uint64_t Count() override {
    std::lock_guard<std::mutex> l(mu_);
    return objects_.size();
  }
  ShrinkResult Scan(const ShrinkControl& sc) override {
    ShrinkResult r;
    if (dirty_.load()) {
      r.hint = ShrinkHint::kBackoff;
      return r;
    }
    std::lock_guard<std::mutex> l(mu_);
    while (r.scanned < sc.nr_to_scan && !objects_.empty()) {
      budget_->Uncharge(objects_.front());
      objects_.pop_front();
      r.scanned++;
      r.freed++;
    }
    return r;
  }
  bool NeedsFs() const override { return false; }

 private:
  MemoryBudget* const budget_;
  std::mutex mu_;
  std::deque<uint64_t> objects_;
  std::atomic<bool> dirty_{false};
};

TEST(StressTest, ConcurrentChargesWithKswapd) {
  MemoryOptions o;
  o.budget_bytes = 4 << 20;
  o.reclaim.backoff_timeout = std::chrono::microseconds(500);
  o.reclaim.direct_throttle_timeout = std::chrono::microseconds(200);
  MemoryManager mm(o);
  MemoryBudget& b = mm.budget();
  b.set_max_direct_attempts(4);
  PoolShrinker pool(&b);
  testing::ScopedRegistration reg(&mm.core(), &pool);
  mm.core().SetWritebackKicker([&] { mm.progress().Signal(); });

  std::atomic<bool> done{false};
  std::atomic<uint64_t> over_limit{0};
  std::thread monitor([&] {
    while (!done.load()) {
      if (b.used() > b.limit()) over_limit++;
      std::this_thread::yield();
    }
  });
  // Dirties and cleans the pool, signalling progress like IO completions.
  std::thread flusher([&] {
    int i = 0;
    while (!done.load()) {
      pool.set_dirty(++i % 2 == 0);
      mm.progress().Signal();
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
    pool.set_dirty(false);
  });

  constexpr int kThreads = 4;
  constexpr int kIterations = 20000;
  std::atomic<uint64_t> ok{0}, failed{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::uniform_int_distribution<uint64_t> size(1, 16 << 10);
      std::vector<uint64_t> mine;  // held by this thread, not reclaimable
      for (int i = 0; i < kIterations; ++i) {
        const uint64_t bytes = size(rng);
        absl::Status s;
        if (i % 7 == 0) {
          ScopedReclaimFlags reserve(kScopeMayUseReserve | kScopeNoFs);
          s = b.Charge(bytes);
        } else if (i % 11 == 0) {
          s = b.TryCharge(bytes) ? absl::OkStatus() : absl::ResourceExhaustedError("");
        } else {
          s = b.Charge(bytes);
        }
        if (!s.ok()) {
          failed++;
          continue;
        }
        ok++;
        if (i % 3 == 0) {
          mine.push_back(bytes);
        } else {
          pool.Add(bytes);
        }
        if (mine.size() > 8) {
          b.Uncharge(mine.front());
          mine.erase(mine.begin());
        }
      }
      for (uint64_t bytes : mine) b.Uncharge(bytes);
    });
  }
  for (auto& w : workers) w.join();
  done = true;
  flusher.join();
  monitor.join();

  EXPECT_EQ(over_limit.load(), 0u);
  EXPECT_LE(b.peak_used(), b.limit());
  EXPECT_EQ(ok.load() + failed.load(), uint64_t{kThreads} * kIterations);
  EXPECT_GT(ok.load(), 0u);
  EXPECT_EQ(b.reserve_charges(), mm.stats().reserve_charges.load());
  EXPECT_EQ(b.failed_charges(), mm.stats().allocation_failures.load());
  EXPECT_GT(mm.stats().kswapd_wakeups.load() + mm.stats().direct_reclaims.load(), 0u);

  mm.kswapd().Stop();
  pool.Drain();
  EXPECT_EQ(b.used(), 0u) << mm.StatsText();
  EXPECT_EQ(b.uncharge_underflows(), 0u);
}

}  // namespace
}  // namespace reclaimfs::reclaim

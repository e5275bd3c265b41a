// ReclaimCore: proportional shrinker scanning at falling priority, deferred
// work, the one-wait-per-pass backoff, and the direct reclaim path.
#include "reclaim/reclaim_core.h"

#include <algorithm>

#include "reclaim/scope.h"
#include "reclaim/sync_point.h"

namespace reclaimfs::reclaim {

namespace {
constexpr int kMaxPriority = 12;  // DEF_PRIORITY in mm/vmscan.c
}  // namespace

struct ReclaimCore::Entry {
  explicit Entry(Shrinker* s) : shrinker(s) {}
  Shrinker* const shrinker;
  // Work a direct reclaimer could not do, picked up by kswapd.
  std::atomic<uint64_t> nr_deferred{0};
};

ReclaimCore::ReclaimCore(MemoryBudget* budget, ProgressEvent* progress,
                         ReclaimStats* stats, ReclaimOptions options)
    : budget_(budget), progress_(progress), stats_(stats), options_(options) {
  if (options_.batch == 0) options_.batch = 128;
  if (options_.direct_max_passes < 1) options_.direct_max_passes = 1;
}

ReclaimCore::~ReclaimCore() = default;

void ReclaimCore::Register(Shrinker* shrinker) {
  std::unique_lock<std::shared_mutex> l(mu_);
  for (const auto& e : entries_) {
    if (e->shrinker == shrinker) return;
  }
  entries_.push_back(std::make_unique<Entry>(shrinker));
}

void ReclaimCore::Unregister(Shrinker* shrinker) {
  // Scans hold mu_ shared while they call into a shrinker, so taking it
  // exclusively waits for any scan of this shrinker to finish.
  std::unique_lock<std::shared_mutex> l(mu_);
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const std::unique_ptr<Entry>& e) {
                                  return e->shrinker == shrinker;
                                }),
                 entries_.end());
}

void ReclaimCore::SetWritebackKicker(std::function<void()> kick) {
  std::unique_lock<std::shared_mutex> l(hooks_mu_);
  writeback_kicker_ = std::move(kick);
}

void ReclaimCore::SetKswapdWaker(std::function<void()> wake) {
  std::unique_lock<std::shared_mutex> l(hooks_mu_);
  kswapd_waker_ = std::move(wake);
}

uint64_t ReclaimCore::Deferred(const Shrinker* shrinker) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  for (const auto& e : entries_) {
    if (e->shrinker == shrinker) return e->nr_deferred.load();
  }
  return 0;
}

uint64_t ReclaimCore::ScanTarget(uint64_t freeable, int seeks,
                                 int priority) const {
  if (freeable == 0) return 0;
  priority = std::clamp(priority, 0, kMaxPriority);
  // seeks == 0 means "trivially recreated": offer half of it, as Linux does.
  uint64_t delta = seeks > 0 ? (freeable >> priority) * 4 / seeks : freeable / 2;
  // Without a floor a small cache computes zero at high priority and never
  // feels pressure until reclaim is desperate.
  delta = std::max(delta, std::min(options_.min_scan, freeable));
  return delta;
}

void ReclaimCore::Defer(Entry& e, uint64_t work, uint64_t freeable) {
  if (work == 0) return;
  const uint64_t cap = 2 * freeable;
  uint64_t old = e.nr_deferred.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t next = std::min(old + work, cap);
    if (next <= old) return;  // already at (or above) the cap
    if (e.nr_deferred.compare_exchange_weak(old, next,
                                            std::memory_order_relaxed)) {
      stats_->deferred_added.fetch_add(next - old, std::memory_order_relaxed);
      return;
    }
  }
}

uint64_t ReclaimCore::ScanOne(Entry& e, Reclaimer who, int priority,
                              uint32_t scope, uint64_t target_free,
                              ReclaimPassResult* pass) {
  Shrinker* s = e.shrinker;
  const uint64_t freeable = s->Count();
  if (freeable == 0) return 0;

  uint64_t total = ScanTarget(freeable, s->Seeks(), priority);
  uint64_t deferred = 0;
  if (who == Reclaimer::kKswapd) {
    deferred = e.nr_deferred.exchange(0, std::memory_order_relaxed);
    stats_->deferred_done.fetch_add(deferred, std::memory_order_relaxed);
    total += deferred;
  }
  // Never ask for more than twice what exists, however much was deferred.
  total = std::min(total, 2 * freeable);

  const uint64_t used_before = budget_->used();
  uint64_t scanned = 0, freed = 0;
  bool reached_target = false;
  while (total > 0) {
    const uint64_t nr = std::min(options_.batch, total);
    ShrinkControl sc;
    sc.who = who;
    sc.scope = scope | kScopeInReclaim;
    sc.nr_to_scan = nr;
    sc.priority = priority;
    const ShrinkResult r = s->Scan(sc);
    scanned += r.scanned;
    freed += r.freed;
    // Count what we asked for, not what it looked at: a shrinker reporting
    // zero scanned must not keep us here forever.
    total -= nr;
    // Enough for whoever is reclaiming: scanning on would only evict what
    // the cache will soon read back (kswapd overshooting to an empty cache).
    if (budget_->free() >= target_free) {
      reached_target = true;
      break;
    }
    if (r.hint == ShrinkHint::kStop) break;
    if (r.hint == ShrinkHint::kBackoff) {
      // Never wait here; the caller waits once after the whole pass.
      pass->backoff_requested = true;
      break;
    }
  }
  if (reached_target) {
    // Not needed now; the part that was deferred stays owed to kswapd.
    if (who == Reclaimer::kKswapd) Defer(e, std::min(total, deferred), freeable);
  } else if (who == Reclaimer::kDirect) {
    Defer(e, total, freeable);
  }

  const uint64_t used_after = budget_->used();
  const uint64_t freed_bytes = used_before > used_after ? used_before - used_after : 0;
  pass->scanned += scanned;
  pass->freed += freed;
  pass->freed_bytes += freed_bytes;
  if (who == Reclaimer::kKswapd) {
    stats_->kswapd_scanned.fetch_add(scanned, std::memory_order_relaxed);
    stats_->kswapd_freed.fetch_add(freed, std::memory_order_relaxed);
    stats_->kswapd_freed_bytes.fetch_add(freed_bytes, std::memory_order_relaxed);
  } else {
    stats_->direct_scanned.fetch_add(scanned, std::memory_order_relaxed);
    stats_->direct_freed.fetch_add(freed, std::memory_order_relaxed);
    stats_->direct_freed_bytes.fetch_add(freed_bytes, std::memory_order_relaxed);
  }
  return freed;
}

ReclaimPassResult ReclaimCore::ShrinkAll(Reclaimer who, int priority,
                                         uint32_t scope, uint64_t target_free) {
  ReclaimPassResult pass;
  // The lock is taken per shrinker, not per pass, so Unregister waits only
  // for the scan it races with.
  for (size_t i = 0;; ++i) {
    // Outside the lock, so a test may order an Unregister against a scan.
    RECLAIMFS_SYNC_POINT("ReclaimCore::ShrinkAll:Next");
    std::shared_lock<std::shared_mutex> l(mu_);
    if (i >= entries_.size()) break;
    Entry& e = *entries_[i];
    if ((scope & kScopeNoFs) && e.shrinker->NeedsFs()) {
      if (who == Reclaimer::kDirect) {
        const uint64_t freeable = e.shrinker->Count();
        Defer(e, ScanTarget(freeable, e.shrinker->Seeks(), priority), freeable);
      }
      continue;
    }
    // Every shrinker gets at least one batch per pass, even once the
    // target is met, so small caches keep feeling pressure.
    ScanOne(e, who, priority, scope, target_free, &pass);
  }
  if (who == Reclaimer::kKswapd && (pass.freed > 0 || pass.freed_bytes > 0)) {
    // Freed memory is progress too: throttled direct reclaimers may retry.
    // Only kswapd says so. An allocating thread that wakes others is
    // usually preempted by them on the spot, and its own stall grows.
    progress_->Signal();
    pass.signalled = true;
  }
  return pass;
}

ReclaimPassResult ReclaimCore::Reclaim(Reclaimer who, uint64_t target_free) {
  ScopedReclaimFlags in_reclaim(kScopeInReclaim);
  const uint32_t scope = CurrentScope();
  ReclaimPassResult total;
  for (int priority = kMaxPriority; priority >= 0; --priority) {
    if (budget_->free() >= target_free) break;
    const uint64_t gen = progress_->Generation();
    const ReclaimPassResult pass = ShrinkAll(who, priority, scope, target_free);
    total.scanned += pass.scanned;
    total.freed += pass.freed;
    total.freed_bytes += pass.freed_bytes;
    total.backoff_requested |= pass.backoff_requested;
    total.signalled |= pass.signalled;
    if (budget_->free() >= target_free) break;
    if (pass.backoff_requested) {
      // One wait for the whole pass, however many shrinkers asked. Our own
      // Signal() must not count as progress made by someone else.
      const uint64_t seen = gen + (pass.signalled ? 1 : 0);
      stats_->backoff_waits.fetch_add(1, std::memory_order_relaxed);
      RECLAIMFS_SYNC_POINT("ReclaimCore::Reclaim:BeforeBackoffWait");
      if (!progress_->WaitFor(seen, options_.backoff_timeout)) {
        stats_->backoff_timeouts.fetch_add(1, std::memory_order_relaxed);
      }
      total.waited = true;
    }
  }
  return total;
}

void ReclaimCore::WakeKswapd() {
  std::shared_lock<std::shared_mutex> l(hooks_mu_);
  if (kswapd_waker_) kswapd_waker_();
}

bool ReclaimCore::KickWriteback() {
  std::shared_lock<std::shared_mutex> l(hooks_mu_);
  if (!writeback_kicker_) return false;
  stats_->writeback_kicks.fetch_add(1, std::memory_order_relaxed);
  writeback_kicker_();
  return true;
}

namespace {
// CPU time of the calling thread, to tell work from waiting for a core.
uint64_t ThreadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}
}  // namespace

bool ReclaimCore::DirectReclaim(uint64_t bytes, int attempt) {
  const auto start = std::chrono::steady_clock::now();
  const uint64_t cpu_start = ThreadCpuMicros();
  stats_->direct_reclaims.fetch_add(1, std::memory_order_relaxed);
  stats_->allocation_stalls.fetch_add(1, std::memory_order_relaxed);
  bool progress = false;
  {
    ScopedReclaimFlags in_reclaim(kScopeInReclaim);
    const uint32_t scope = CurrentScope();
    const uint64_t target = budget_->watermarks().min + bytes;
    const uint64_t gen = progress_->Generation();
    // Each retry of the same charge starts where the previous one stopped:
    // attempt k scans at priorities 12 - k*passes downwards, so a charge
    // that keeps failing becomes more aggressive, like Linux's falling
    // priority, while a single call stays short.
    const int passes = options_.direct_max_passes;
    const int first = std::max(0, kMaxPriority - attempt * passes);
    for (int i = 0; i < passes; ++i) {
      if (budget_->free() >= target) break;
      const ReclaimPassResult pass = ShrinkAll(Reclaimer::kDirect, std::max(0, first - i), scope, target);
      if (pass.freed > 0 || pass.freed_bytes > 0) progress = true;
    }
    if (budget_->free() < target) {
      // Direct reclaim never writes pages: the flushers do, and kswapd keeps
      // working in the background while we throttle.
      KickWriteback();
      WakeKswapd();
      // A kScopeNoIo caller must not wait for IO, not even bounded.
      if (!(scope & kScopeNoIo)) {
        stats_->direct_throttles.fetch_add(1, std::memory_order_relaxed);
        RECLAIMFS_SYNC_POINT("ReclaimCore::DirectReclaim:BeforeThrottle");
        if (progress_->WaitFor(gen, options_.direct_throttle_timeout)) {
          progress = true;
        } else {
          stats_->direct_throttle_timeouts.fetch_add(1, std::memory_order_relaxed);
        }
      }
    }
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  stats_->direct_stall_us.Record(static_cast<uint64_t>(us.count()));
  stats_->direct_stall_cpu_us.Record(ThreadCpuMicros() - cpu_start);
  return progress;
}

}  // namespace reclaimfs::reclaim

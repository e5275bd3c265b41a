// Kswapd: the background reclaimer thread, woken below low, working to high.
#include "reclaim/kswapd.h"

#include <chrono>

#include "reclaim/sync_point.h"

namespace reclaimfs::reclaim {

namespace {
// Periodic check even without a wake-up, so a missed wake costs at most this.
constexpr std::chrono::milliseconds kPeriod{1000};
// After a run that freed nothing, ignore wake-ups this long: every charge
// below low wakes us, and rescanning caches that just had nothing to give
// would only burn CPU (Linux's kswapd_failures has the same purpose).
constexpr std::chrono::milliseconds kFailureBackoff{10};
}  // namespace

Kswapd::Kswapd(ReclaimCore* core) : core_(core) {}

Kswapd::~Kswapd() { Stop(); }

void Kswapd::Start() {
  std::lock_guard<std::mutex> l(thread_mu_);
  if (thread_.joinable()) return;
  stop_.store(false);
  thread_ = std::thread([this] { Run(); });
}

void Kswapd::Stop() {
  std::thread t;
  {
    std::lock_guard<std::mutex> l(thread_mu_);
    stop_.store(true);
    t = std::move(thread_);
  }
  wake_word_.Bump();
  if (t.joinable()) t.join();
}

void Kswapd::Wake() {
  // Every charge below low calls this; all but the first are one atomic op.
  if (woken_.exchange(true, std::memory_order_acq_rel)) return;
  wake_word_.Bump();
}

void Kswapd::SleepUnlessStopped(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!stop_.load()) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    wake_word_.WaitWhileEquals(wake_word_.Load(), left);
  }
}

void Kswapd::Run() {
  // kswapd runs at the default priority. A raised one (nice -10) was
  // measured to hurt: woken by an allocating thread, it preempted that
  // thread, often inside its direct reclaim, and the worst direct-reclaim
  // stalls grew from about 1 ms to 4-8 ms with no gain in throughput.
  MemoryBudget* budget = core_->budget();
  for (;;) {
    // Read the word before looking at the flag: a Wake() after the look
    // bumps the word, so the sleep below returns at once.
    const uint32_t seen = wake_word_.Load();
    if (stop_.load()) return;
    if (!woken_.load(std::memory_order_acquire)) {
      wake_word_.WaitWhileEquals(seen, kPeriod);
      if (stop_.load()) return;
    }
    const bool woken = woken_.exchange(false, std::memory_order_acq_rel);

    if (woken) core_->stats()->kswapd_wakeups.fetch_add(1, std::memory_order_relaxed);
    RECLAIMFS_SYNC_POINT("Kswapd::Run:Woken");
    // A wake means someone saw free < low; by now it may be between low and
    // high, and finishing the job to high is what kswapd is for.
    bool failed = false;
    if (budget->BelowLow() || (woken && budget->BelowHigh())) {
      for (;;) {
        const ReclaimPassResult r =
            core_->Reclaim(Reclaimer::kKswapd, budget->watermarks().high);
        if (!budget->BelowHigh()) break;
        if (r.freed == 0 && r.freed_bytes == 0) {
          failed = true;
          break;
        }
        if (stop_.load()) return;
      }
    }
    RECLAIMFS_SYNC_POINT("Kswapd::Run:Sleep");
    if (failed) SleepUnlessStopped(kFailureBackoff);
  }
}

}  // namespace reclaimfs::reclaim

// Kswapd: the background reclaimer thread, woken below low, working to high.
#include "reclaim/kswapd.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>

#include "reclaim/sync_point.h"

namespace reclaimfs::reclaim {

namespace {
// Periodic check even without a wake-up, so a missed wake costs at most this.
constexpr std::chrono::milliseconds kPeriod{1000};
constexpr int kNice = -10;  // as a nice value
// After a run that freed nothing, ignore wake-ups this long: every charge
// below low wakes us, and rescanning caches that just had nothing to give
// would only burn CPU (Linux's kswapd_failures has the same purpose).
constexpr std::chrono::milliseconds kFailureBackoff{10};
}  // namespace

Kswapd::Kswapd(ReclaimCore* core) : core_(core) {}

Kswapd::~Kswapd() { Stop(); }

void Kswapd::Start() {
  std::lock_guard<std::mutex> l(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Kswapd::Stop() {
  std::thread t;
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    t = std::move(thread_);
  }
  cv_.notify_all();
  if (t.joinable()) t.join();
}

void Kswapd::Wake() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (woken_) return;
    woken_ = true;
  }
  cv_.notify_one();
}

void Kswapd::Run() {
  // Reclaim should win the CPU over the allocators it serves: every moment
  // kswapd waits for a core brings the allocating threads closer to min and
  // into direct reclaim. Raising our priority needs privilege; without it
  // kswapd simply runs at the default.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kNice);
  MemoryBudget* budget = core_->budget();
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait_for(l, kPeriod, [this] { return woken_ || stop_; });
    if (stop_) return;
    const bool woken = woken_;
    woken_ = false;
    l.unlock();

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
        std::lock_guard<std::mutex> g(mu_);
        if (stop_) return;
      }
    }
    RECLAIMFS_SYNC_POINT("Kswapd::Run:Sleep");

    l.lock();
    if (failed) {
      cv_.wait_for(l, kFailureBackoff, [this] { return stop_; });
      if (stop_) return;
    }
  }
}

}  // namespace reclaimfs::reclaim

// The background reclaimer: one thread, woken when free budget drops below
// low, reclaims until free >= high, then sleeps.
#pragma once

#include <atomic>
#include <mutex>
#include <thread>

#include "reclaim/futex_word.h"
#include "reclaim/reclaim_core.h"

namespace reclaimfs::reclaim {

class Kswapd {
 public:
  explicit Kswapd(ReclaimCore* core);
  ~Kswapd();  // stops the thread

  void Start();
  void Stop();
  // Never blocks; safe from any thread, including allocation paths. Only
  // the first wake after kswapd has looked issues a futex wake.
  void Wake();

 private:
  void Run();
  // Sleeps until `timeout` passes or Stop(); wakes in between are ignored.
  void SleepUnlessStopped(std::chrono::milliseconds timeout);

  ReclaimCore* core_;
  std::mutex thread_mu_;  // Start/Stop only, never the wake path
  std::thread thread_;
  std::atomic<bool> woken_{false};
  std::atomic<bool> stop_{false};
  FutexWord wake_word_;
};

}  // namespace reclaimfs::reclaim

// The background reclaimer: one thread, woken when free budget drops below
// low, reclaims until free >= high, then sleeps.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "reclaim/reclaim_core.h"

namespace reclaimfs::reclaim {

class Kswapd {
 public:
  explicit Kswapd(ReclaimCore* core);
  ~Kswapd();  // stops the thread

  void Start();
  void Stop();
  // Non-blocking; safe from any thread, including allocation paths.
  void Wake();

 private:
  void Run();

  ReclaimCore* core_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace reclaimfs::reclaim

// "IO made progress or memory was freed": the single event reclaim waits on.
// Waiters remember a generation and wait, bounded, until it moves on; IO
// completions and frees bump it (the shape of Linux reclaim_throttle()).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace reclaimfs::reclaim {

class ProgressEvent {
 public:
  uint64_t Generation() const;
  // Wakes all waiters. Cheap when nobody waits.
  void Signal();
  // Waits until the generation differs from `seen` or `timeout` passes.
  // Returns true if progress was signalled, false on timeout.
  bool WaitFor(uint64_t seen, std::chrono::microseconds timeout);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;
  int waiters_ = 0;
};

}  // namespace reclaimfs::reclaim

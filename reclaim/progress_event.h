// "IO made progress or memory was freed": the single event reclaim waits on.
// Waiters remember a generation and wait, bounded, until it moves on; IO
// completions and frees bump it (the shape of Linux reclaim_throttle()).
//
// Signal() is called from IO completions, reclaim passes and allocation
// paths, so it must never block: it is an atomic add and, only when somebody
// waits, one futex wake (see FutexWord).
#pragma once

#include <chrono>
#include <cstdint>

#include "reclaim/futex_word.h"

namespace reclaimfs::reclaim {

class ProgressEvent {
 public:
  // Generations compare for equality only; they wrap at 2^32, and a caller
  // may add the signals it made itself (seen = Generation() + own).
  uint64_t Generation() const { return word_.Load(); }
  // Wakes all waiters. Never blocks; cheap when nobody waits.
  void Signal() { word_.Bump(); }
  // Waits until the generation differs from `seen` or `timeout` passes.
  // Returns true if progress was signalled, false on timeout.
  bool WaitFor(uint64_t seen, std::chrono::microseconds timeout) {
    return word_.WaitWhileEquals(static_cast<uint32_t>(seen), timeout);
  }

 private:
  FutexWord word_;
};

}  // namespace reclaimfs::reclaim

// A 32-bit word a thread can sleep on, bounded, until it changes: a thin
// wrapper over futex(2).
//
// Why not a condition variable: waking through one takes its internal lock,
// and glibc's pthread_cond_broadcast may wait for earlier waiters to be
// scheduled before it returns. On a loaded machine that turned a wake-up
// from the allocation path into a sleep of milliseconds. Bump() here is an
// atomic add plus, only when someone sleeps, one FUTEX_WAKE: it never blocks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace reclaimfs::reclaim {

class FutexWord {
 public:
  uint32_t Load() const { return word_.load(std::memory_order_seq_cst); }
  // Changes the word and wakes every sleeper. Never blocks.
  void Bump();
  // Sleeps while the word still equals `seen`, at most `timeout`.
  // Returns true if it changed, false on timeout.
  bool WaitWhileEquals(uint32_t seen, std::chrono::microseconds timeout);
  // Threads inside WaitWhileEquals (for tests and cheap wake decisions).
  uint32_t sleepers() const { return sleepers_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint32_t> word_{0};
  std::atomic<uint32_t> sleepers_{0};
};

}  // namespace reclaimfs::reclaim

// FutexWord: sleep on a word with a timeout; wake without a lock.
#include "reclaim/futex_word.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <ctime>

namespace reclaimfs::reclaim {

namespace {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "futex(2) needs a plain 32-bit word");

uint32_t* Address(std::atomic<uint32_t>* word) { return reinterpret_cast<uint32_t*>(word); }

}  // namespace

void FutexWord::Bump() {
  // seq_cst on both sides: either the sleeper sees the new value before it
  // sleeps, or we see it counted in sleepers_ and wake it (and the kernel
  // re-checks the value under its own lock besides).
  word_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) == 0) return;
  ::syscall(SYS_futex, Address(&word_), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

bool FutexWord::WaitWhileEquals(uint32_t seen, std::chrono::microseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + timeout;
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  bool changed = false;
  for (;;) {
    if (word_.load(std::memory_order_seq_cst) != seen) {
      changed = true;
      break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
    // EAGAIN (already changed), EINTR and spurious returns all loop back to
    // the check; ETIMEDOUT ends at the deadline test.
    ::syscall(SYS_futex, Address(&word_), FUTEX_WAIT_PRIVATE, seen, &ts, nullptr, 0);
  }
  sleepers_.fetch_sub(1, std::memory_order_seq_cst);
  return changed;
}

}  // namespace reclaimfs::reclaim

// Writeback errors as Linux's errseq_t reports them: a failed writeback of a
// file records a new error event; each open file handle remembers the last
// event it has seen (sampled at open) and its next fsync or close reports a
// newer one once. So an error is never swallowed by whichever caller asked
// first, and a handle opened after the failure is not blamed for it.
// Lock-free; any thread.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>

namespace reclaimfs::fs {

class ErrorSequence {
 public:
  // A writeback of the file failed with `err` (an errno).
  void Record(int err) {
    err_.store(err, std::memory_order_relaxed);
    seq_.fetch_add(1, std::memory_order_release);
  }
  // What an opener remembers as seen.
  uint64_t Sample() const { return seq_.load(std::memory_order_acquire); }
  // The errno of an event newer than *seen (0 if none); *seen catches up.
  int Check(uint64_t* seen) const {
    const uint64_t now = seq_.load(std::memory_order_acquire);
    if (now == *seen) return 0;
    *seen = now;
    const int err = err_.load(std::memory_order_relaxed);
    return err != 0 ? err : EIO;
  }

 private:
  std::atomic<uint64_t> seq_{0};
  std::atomic<int> err_{0};
};

}  // namespace reclaimfs::fs

// A memo of the last few directory entries a read found absent, so that the
// store is not asked twice in a row: the kernel looks a new name up before
// it creates it, and the create checks again under the namespace lock.
//
// Correct without any lock shared with the writers: a reader takes the
// epoch before its store read and records the absence with it; every commit
// that touches an entry bumps the epoch once its write is visible, which
// makes every absence recorded before it stale. An absence is answered only
// while its epoch is the current one. Fixed size; a leaf lock.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace reclaimfs::storage {

class AbsentDentries {
 public:
  // Read before the store read whose absence may be recorded.
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  // parent/name was absent from a store read begun at `epoch`.
  void Remember(uint64_t parent, std::string_view name, uint64_t epoch);
  // Is parent/name known absent with no entry committed since?
  bool KnownAbsent(uint64_t parent, std::string_view name);
  // After a commit that added, replaced or removed entries became visible.
  void Invalidate() { epoch_.fetch_add(1, std::memory_order_acq_rel); }

  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }

 private:
  struct Slot {
    uint64_t epoch = 0;  // 0: empty (epochs start at 1)
    uint64_t parent = 0;
    std::string name;
  };
  static constexpr size_t kSlots = 8;

  std::atomic<uint64_t> epoch_{1};
  std::atomic<uint64_t> hits_{0};
  std::mutex mu_;
  std::array<Slot, kSlots> slots_;
  size_t next_ = 0;  // the slot the next absence replaces
};

}  // namespace reclaimfs::storage

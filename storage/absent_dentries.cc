#include "storage/absent_dentries.h"

namespace reclaimfs::storage {

void AbsentDentries::Remember(uint64_t parent, std::string_view name, uint64_t epoch) {
  std::lock_guard l(mu_);
  // Stale already: a commit became visible after the read began.
  if (epoch != epoch_.load(std::memory_order_acquire)) return;
  Slot& slot = slots_[next_];
  next_ = (next_ + 1) % kSlots;
  slot.epoch = epoch;
  slot.parent = parent;
  slot.name.assign(name);
}

bool AbsentDentries::KnownAbsent(uint64_t parent, std::string_view name) {
  const uint64_t now = epoch_.load(std::memory_order_acquire);
  std::lock_guard l(mu_);
  for (const Slot& slot : slots_) {
    if (slot.epoch == now && slot.parent == parent && slot.name == name) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

}  // namespace reclaimfs::storage

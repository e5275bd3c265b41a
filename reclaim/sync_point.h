// Deterministic race reproduction in tests, after RocksDB's TEST_SYNC_POINT.
// Production code marks points with RECLAIMFS_SYNC_POINT("Name"). A test
// declares happens-before pairs {"A", "B"}: a thread reaching B waits
// (bounded) until some thread has passed A. Callbacks can run code at a point.
// Disabled (one relaxed atomic load) unless a test enables it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace reclaimfs::reclaim {

class SyncPoint {
 public:
  static SyncPoint& Get();

  // Replaces the dependencies and forgets which points were passed.
  void LoadDependencies(const std::vector<std::pair<std::string, std::string>>& deps);
  void SetCallback(const std::string& point, std::function<void()> fn);
  void Enable();
  void Disable();
  // Clears dependencies, callbacks, the passed set and the timeout count.
  void Reset();
  // Waiting for a predecessor is bounded by this timeout (default 5 s).
  void set_timeout(std::chrono::milliseconds t);
  // Number of waits that ended by timeout (tests assert it stays 0).
  uint64_t timeouts() const;

  void Process(const char* point);
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }

 private:
  SyncPoint();
  struct Impl;
  Impl* impl_;
  std::atomic<bool> enabled_{false};
};

}  // namespace reclaimfs::reclaim

#define RECLAIMFS_SYNC_POINT(name)                                      \
  do {                                                                  \
    auto& sp_ = ::reclaimfs::reclaim::SyncPoint::Get();                 \
    if (sp_.enabled()) sp_.Process(name);                               \
  } while (0)

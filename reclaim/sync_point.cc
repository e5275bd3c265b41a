// SyncPoint: happens-before dependencies and callbacks at named points, for
// reproducing races deterministically in tests.
#include "reclaim/sync_point.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

namespace reclaimfs::reclaim {

struct SyncPoint::Impl {
  std::mutex mu;
  std::condition_variable cv;
  // successor -> the points that must have been passed before it may proceed
  std::map<std::string, std::vector<std::string>> predecessors;
  std::map<std::string, std::function<void()>> callbacks;
  std::set<std::string> passed;
  std::chrono::milliseconds timeout{5000};
  uint64_t timeouts = 0;
};

SyncPoint& SyncPoint::Get() {
  // Never destroyed: threads may still pass points during static teardown.
  static SyncPoint* instance = new SyncPoint();
  return *instance;
}

SyncPoint::SyncPoint() : impl_(new Impl) {}

void SyncPoint::LoadDependencies(
    const std::vector<std::pair<std::string, std::string>>& deps) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->predecessors.clear();
  for (const auto& [before, after] : deps) {
    impl_->predecessors[after].push_back(before);
  }
  impl_->passed.clear();
  impl_->cv.notify_all();
}

void SyncPoint::SetCallback(const std::string& point, std::function<void()> fn) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->callbacks[point] = std::move(fn);
}

void SyncPoint::Enable() { enabled_.store(true, std::memory_order_relaxed); }

void SyncPoint::Disable() { enabled_.store(false, std::memory_order_relaxed); }

void SyncPoint::Reset() {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->predecessors.clear();
  impl_->callbacks.clear();
  impl_->passed.clear();
  impl_->timeouts = 0;
  impl_->cv.notify_all();
}

void SyncPoint::set_timeout(std::chrono::milliseconds t) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->timeout = t;
}

uint64_t SyncPoint::timeouts() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->timeouts;
}

void SyncPoint::Process(const char* point_name) {
  if (!enabled()) return;
  const std::string point(point_name);
  std::unique_lock<std::mutex> l(impl_->mu);

  auto pred = impl_->predecessors.find(point);
  if (pred != impl_->predecessors.end()) {
    const std::vector<std::string> needed = pred->second;
    auto all_passed = [&] {
      for (const auto& p : needed) {
        if (impl_->passed.count(p) == 0) return false;
      }
      return true;
    };
    // Bounded: a mis-declared dependency shows up as a counted timeout, not
    // as a hung test.
    if (!impl_->cv.wait_for(l, impl_->timeout, all_passed)) ++impl_->timeouts;
  }

  auto cb = impl_->callbacks.find(point);
  if (cb != impl_->callbacks.end()) {
    // Run a copy, unlocked: the callback may itself pass sync points, and a
    // concurrent Reset or SetCallback must not destroy it mid-call.
    std::function<void()> fn = cb->second;
    l.unlock();
    fn();
    l.lock();
  }

  impl_->passed.insert(point);
  impl_->cv.notify_all();
}

}  // namespace reclaimfs::reclaim

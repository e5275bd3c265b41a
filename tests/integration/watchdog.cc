// Watchdog thread; see watchdog.h.
#include "tests/integration/watchdog.h"

#include <cstdio>
#include <vector>

namespace reclaimfs::itest {

Watchdog::Watchdog(ExpiryHandler on_expiry)
    : on_expiry_(std::move(on_expiry)), thread_([this] { Loop(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::Guard::Release() {
  if (w_ != nullptr) w_->Disarm(id_);
  w_ = nullptr;
}

Watchdog::Guard Watchdog::Arm(std::string what, std::chrono::milliseconds limit) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> l(mu_);
    id = next_id_++;
    deadlines_.emplace(id, Deadline{std::move(what), limit, Clock::now() + limit});
  }
  cv_.notify_all();
  return Guard(this, id);
}

void Watchdog::Disarm(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  deadlines_.erase(id);
}

bool Watchdog::fired() const {
  std::lock_guard<std::mutex> l(mu_);
  return fired_;
}

void Watchdog::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    auto next = Clock::time_point::max();
    for (const auto& [id, d] : deadlines_) next = std::min(next, d.at);
    if (next == Clock::time_point::max()) {
      cv_.wait(l);
      continue;
    }
    if (cv_.wait_until(l, next) != std::cv_status::timeout) continue;
    std::vector<std::string> expired;
    const auto now = Clock::now();
    for (auto it = deadlines_.begin(); it != deadlines_.end();) {
      if (it->second.at <= now) {
        char limit[32];
        std::snprintf(limit, sizeof limit, "%.1f", it->second.limit.count() / 1000.0);
        expired.push_back(it->second.what + " exceeded its " + limit + " s budget");
        it = deadlines_.erase(it);
      } else {
        ++it;
      }
    }
    if (expired.empty()) continue;
    fired_ = true;
    l.unlock();
    for (const auto& what : expired) on_expiry_(what);
    l.lock();
  }
}

}  // namespace reclaimfs::itest

// The eviction retry queue's worker and its backoff schedule.
#include "fs/cache/evict_queue.h"

#include <algorithm>

namespace reclaimfs::fs {

EvictQueue::EvictQueue(Work work, Options options) : work_(std::move(work)), options_(options) {}

EvictQueue::~EvictQueue() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
    draining_ = false;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EvictQueue::Start() {
  std::lock_guard l(mu_);
  if (started_ || stop_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void EvictQueue::ScheduleLocked(uint64_t ino, Item item) {
  auto it = items_.find(ino);
  if (it != items_.end()) by_due_.erase({it->second.due, ino});
  items_[ino] = item;
  by_due_.insert({item.due, ino});
}

void EvictQueue::Add(uint64_t ino) {
  {
    std::lock_guard l(mu_);
    if (stop_) return;
    added_.fetch_add(1, std::memory_order_relaxed);
    if (running_ == ino) {
      rerun_ = true;
      return;
    }
    // Queued already (perhaps backing off): something changed, try now.
    Item item;
    auto it = items_.find(ino);
    if (it != items_.end()) item = it->second;
    item.due = Clock::now();
    ScheduleLocked(ino, item);
  }
  cv_.notify_one();
}

void EvictQueue::Drain() {
  std::unique_lock l(mu_);
  if (stop_) return;
  if (!started_) {
    started_ = true;
    thread_ = std::thread([this] { Run(); });
  }
  draining_ = true;
  // Everything that was backing off runs now, with a fresh attempt budget.
  const auto now = Clock::now();
  by_due_.clear();
  for (auto& [ino, item] : items_) {
    item.due = now;
    item.attempts = 0;
    by_due_.insert({now, ino});
  }
  cv_.notify_all();
  idle_cv_.wait(l, [this] { return by_due_.empty() && running_ == 0; });
  stop_ = true;
  cv_.notify_all();
  l.unlock();
  thread_.join();
}

bool EvictQueue::Flush(std::chrono::milliseconds bound) {
  std::unique_lock l(mu_);
  if (stop_ || !started_) return true;
  const auto start = Clock::now();
  for (auto& [ino, item] : items_) {
    if (item.due <= start) continue;
    by_due_.erase({item.due, ino});
    item.due = start;
    by_due_.insert({start, ino});
  }
  cv_.notify_all();
  // Done when nothing due by `start` is waiting or running; what was added
  // or retried since is due later.
  return idle_cv_.wait_until(l, start + bound, [&] {
    const bool waiting = !by_due_.empty() && by_due_.begin()->first <= start;
    const bool running = running_ != 0 && running_due_ <= start;
    return stop_ || (!waiting && !running);
  });
}

size_t EvictQueue::pending() const {
  std::lock_guard l(mu_);
  return items_.size() + (running_ != 0 ? 1 : 0);
}

void EvictQueue::Run() {
  std::unique_lock l(mu_);
  while (true) {
    if (by_due_.empty()) {
      if (draining_) idle_cv_.notify_all();
      if (stop_) break;
      cv_.wait(l);
      continue;
    }
    if (stop_ && !draining_) break;
    const auto [due, ino] = *by_due_.begin();
    if (due > Clock::now()) {
      cv_.wait_until(l, due);
      continue;
    }
    by_due_.erase(by_due_.begin());
    Item item = items_[ino];
    items_.erase(ino);
    running_ = ino;
    running_due_ = due;
    rerun_ = false;
    const bool final_pass = draining_;
    l.unlock();
    const Outcome outcome = work_(ino, final_pass);
    l.lock();
    running_ = 0;
    const auto now = Clock::now();
    if (outcome == Outcome::kRetry) {
      ++item.attempts;
      if (draining_ && item.attempts >= options_.final_attempts) {
        abandoned_.fetch_add(1, std::memory_order_relaxed);
      } else {
        retried_.fetch_add(1, std::memory_order_relaxed);
        if (draining_) {
          item.backoff = options_.drain_retry_delay;
        } else if (item.backoff.count() == 0) {
          item.backoff = options_.initial_backoff;
        } else {
          item.backoff = std::min(item.backoff * 2, options_.max_backoff);
        }
        item.due = now + item.backoff;
        ScheduleLocked(ino, item);
      }
    } else {
      done_.fetch_add(1, std::memory_order_relaxed);
    }
    if (rerun_) {
      rerun_ = false;
      Item again = items_.count(ino) ? items_[ino] : Item();
      again.due = now;
      ScheduleLocked(ino, again);
    }
    idle_cv_.notify_all();
  }
}

}  // namespace reclaimfs::fs

// The dentry-invalidation worker.
#include "fs/cache/dentry_invalidator.h"

namespace reclaimfs::fs {

DentryInvalidator::~DentryInvalidator() { Stop(); }

void DentryInvalidator::SetCallback(Callback cb) {
  std::lock_guard l(mu_);
  callback_ = cb ? std::make_shared<const Callback>(std::move(cb)) : nullptr;
}

void DentryInvalidator::Start() {
  std::lock_guard l(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Run(); });
}

void DentryInvalidator::Stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
    dropped_.fetch_add(queue_.size(), std::memory_order_relaxed);
    queue_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DentryInvalidator::Push(uint64_t parent, std::string name) {
  {
    std::lock_guard l(mu_);
    if (stop_ || !callback_ || queue_.size() >= max_queued_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.emplace_back(parent, std::move(name));
  }
  queued_.fetch_add(1, std::memory_order_relaxed);
  cv_.notify_one();
}

void DentryInvalidator::Run() {
  std::unique_lock l(mu_);
  while (true) {
    cv_.wait(l, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    auto request = std::move(queue_.front());
    queue_.pop_front();
    std::shared_ptr<const Callback> cb = callback_;
    l.unlock();
    if (cb) {
      (*cb)(request.first, request.second);
      sent_.fetch_add(1, std::memory_order_relaxed);
    } else {
      dropped_.fetch_add(1, std::memory_order_relaxed);
    }
    l.lock();
  }
}

}  // namespace reclaimfs::fs

// The invalidation worker: a queue and one thread.
#include "fs/fuse_invalidator.h"

#include <cerrno>

#include "fs/fuse_api.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::fs {

FuseInvalidator::~FuseInvalidator() { Stop(); }

void FuseInvalidator::Start(fuse_session* session) {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_) return;
  session_ = session;
  stop_ = false;
  running_ = true;
  thread_ = std::thread([this] { Run(); });
}

void FuseInvalidator::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_) return;
    stop_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  running_ = false;
}

void FuseInvalidator::Enqueue(uint64_t parent, std::string name) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_ || stop_ || queue_.size() >= max_queued_) {
      ++dropped_;
      return;
    }
    queue_.push_back({parent, std::move(name)});
  }
  cv_.notify_one();
}

void FuseInvalidator::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Request r = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    const int err = fuse_lowlevel_notify_inval_entry(session_, r.parent, r.name.data(), r.name.size());
    // -ENOENT: the kernel had no such dentry any more, which is fine.
    if (err != 0 && err != -ENOENT) {
      spdlog::debug("inval_entry({}, {}) failed: {}", r.parent, r.name, -err);
    }
    lock.lock();
    ++sent_;
  }
}

}  // namespace reclaimfs::fs

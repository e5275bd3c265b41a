// The invalidation worker: a queue and one thread.
#include "fs/fuse/fuse_invalidator.h"

#include <cerrno>

#include "fs/fuse/fuse_api.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::fs {

FuseInvalidator::~FuseInvalidator() { Stop(); }

void FuseInvalidator::Start(fuse_session* session, std::function<void()> abort_connection) {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_) return;
  session_ = session;
  abort_connection_ = std::move(abort_connection);
  stop_ = false;
  exited_ = false;
  running_ = true;
  thread_ = std::thread([this] { Run(); });
}

void FuseInvalidator::Stop(std::chrono::milliseconds grace) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!running_) return;
  stop_ = true;
  queue_.clear();
  cv_.notify_all();
  if (!cv_.wait_for(lock, grace, [this] { return exited_; })) {
    spdlog::warn("dentry invalidation stuck in the kernel; aborting the FUSE connection");
    lock.unlock();
    if (abort_connection_) abort_connection_();
    lock.lock();
  }
  lock.unlock();
  thread_.join();
  lock.lock();
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
    if (stop_) break;
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
  exited_ = true;
  cv_.notify_all();
}

}  // namespace reclaimfs::fs

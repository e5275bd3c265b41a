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
  // Writes waiting for their store are still answered, after the join.
  std::vector<Request> unanswered;
  for (Request& r : queue_) {
    if (r.write_req == nullptr) continue;
    store_bytes_ -= r.data.size();
    unanswered.push_back(std::move(r));
  }
  queue_.clear();
  cv_.notify_all();
  if (!cv_.wait_for(lock, grace, [this] { return exited_; })) {
    spdlog::warn("a notification to the kernel is stuck; aborting the FUSE connection");
    lock.unlock();
    if (abort_connection_) abort_connection_();
    lock.lock();
  }
  lock.unlock();
  thread_.join();
  for (const Request& r : unanswered) {
    ++stores_skipped_;
    ReplyWrite(r);
  }
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
    Request r;
    r.parent = parent;
    r.name = std::move(name);
    queue_.push_back(std::move(r));
  }
  cv_.notify_one();
}

void FuseInvalidator::StoreThenReplyWrite(fuse_req* req, uint64_t ino, uint64_t offset, const char* data,
                                          size_t size) {
  Request r;
  r.write_req = req;
  r.ino = ino;
  r.offset = offset;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_ && !stop_ && queue_.size() < max_queued_ && store_bytes_ + size <= kMaxStoreBytes) {
      store_bytes_ += size;
      r.data.assign(data, data + size);
      queue_.push_back(std::move(r));
      cv_.notify_one();
      return;
    }
  }
  ++stores_skipped_;
  r.data.resize(size);  // only its size is used
  ReplyWrite(r);
}

void FuseInvalidator::ReplyWrite(const Request& r) { fuse_reply_write(r.write_req, r.data.size()); }

void FuseInvalidator::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) break;
    Request r = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    if (r.write_req != nullptr) {
      fuse_bufvec buf = FUSE_BUFVEC_INIT(r.data.size());
      buf.buf[0].mem = r.data.data();
      const int err = fuse_lowlevel_notify_store(session_, r.ino, static_cast<off_t>(r.offset), &buf,
                                                 static_cast<fuse_buf_copy_flags>(0));
      // -ENOENT: the kernel no longer has the inode, so it caches no pages.
      if (err != 0 && err != -ENOENT) spdlog::debug("notify_store({}) failed: {}", r.ino, -err);
      ReplyWrite(r);
      lock.lock();
      store_bytes_ -= r.data.size();
      ++stores_;
      continue;
    }
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

#include "fs/fuse/blocking_workers.h"

#include <utility>

namespace reclaimfs::fs {

BlockingWorkers::BlockingWorkers(unsigned threads, size_t max_queued) : max_queued_(max_queued) {
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

BlockingWorkers::~BlockingWorkers() { Stop(); }

void BlockingWorkers::Submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!stopping_ && !threads_.empty()) {
      if (queue_.size() < max_queued_) {
        queue_.push_back(std::move(task));
        ++submitted_;
        cv_.notify_one();
        return;
      }
      ++ran_inline_;
    }
  }
  task();
}

void BlockingWorkers::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

uint64_t BlockingWorkers::submitted() const {
  std::lock_guard<std::mutex> l(mu_);
  return submitted_;
}

uint64_t BlockingWorkers::ran_inline() const {
  std::lock_guard<std::mutex> l(mu_);
  return ran_inline_;
}

void BlockingWorkers::Run() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything queued has run
    std::function<void()> task = std::move(queue_.front());
    queue_.pop_front();
    l.unlock();
    task();
    l.lock();
  }
}

}  // namespace reclaimfs::fs

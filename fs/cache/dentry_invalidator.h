// Asks the kernel to drop dentries (so it forgets node ids and the inode
// cache can drop their stubs). Requests are queued by the inode-cache
// shrinker and delivered by one worker thread through the callback the FUSE
// adapter installs: never from a thread serving a request and never with a
// filesystem lock held (a notification may wait for the kernel, which may be
// waiting for a request of ours).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace reclaimfs::fs {

class DentryInvalidator {
 public:
  using Callback = std::function<void(uint64_t parent, const std::string& name)>;

  explicit DentryInvalidator(size_t max_queued = 4096) : max_queued_(max_queued) {}
  ~DentryInvalidator();  // Stop()

  void SetCallback(Callback cb);
  void Start();
  // Stops the worker; queued requests are dropped.
  void Stop();
  // Non-blocking; drops the request when the queue is full or nobody listens.
  void Push(uint64_t parent, std::string name);

  uint64_t queued() const { return queued_.load(std::memory_order_relaxed); }
  uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  void Run();

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<uint64_t, std::string>> queue_;
  std::shared_ptr<const Callback> callback_;  // copied out, called unlocked
  bool stop_ = false;
  std::thread thread_;
  std::atomic<uint64_t> queued_{0}, sent_{0}, dropped_{0};
};

}  // namespace reclaimfs::fs

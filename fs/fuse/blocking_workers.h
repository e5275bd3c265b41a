// Threads for the requests that wait: a read whose pages are not all in the
// cache (it waits for its IO), fsync, fallocate. The request threads hand
// such a request over and go back to /dev/fuse, so their number follows the
// cores while the number of requests waiting for IO follows this pool.
//
// Any thread may Submit; tasks run in submission order on `threads` workers
// and reply to the kernel themselves (libfuse allows replying from any
// thread). The queue holds at most `max_queued` tasks: past that, Submit
// runs the task on the caller's thread, so a flood of requests that wait
// slows the request threads down instead of growing the queue without
// bound. Stop runs what is queued, then joins: call it after the session
// loop has ended and before the filesystem shuts down.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace reclaimfs::fs {

class BlockingWorkers {
 public:
  explicit BlockingWorkers(unsigned threads, size_t max_queued = kDefaultMaxQueued);
  static constexpr size_t kDefaultMaxQueued = 1024;
  ~BlockingWorkers();  // Stop()
  BlockingWorkers(const BlockingWorkers&) = delete;
  BlockingWorkers& operator=(const BlockingWorkers&) = delete;

  // Runs task on a worker; when the queue is full or after Stop, on the
  // caller's thread.
  void Submit(std::function<void()> task);
  void Stop();

  uint64_t submitted() const;  // tasks handed to the workers
  uint64_t ran_inline() const;  // tasks run by Submit's caller, queue full

 private:
  void Run();

  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  uint64_t submitted_ = 0;
  uint64_t ran_inline_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace reclaimfs::fs

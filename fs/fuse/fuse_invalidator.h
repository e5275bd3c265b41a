// Sends the kernel the dentry invalidations the inode-cache shrinker asks
// for, and the page-cache stores that keep mapped files coherent with direct
// writes (Store below). fuse_lowlevel_notify_inval_entry takes the parent directory's inode
// lock in the kernel, which a request in flight on that directory may hold
// while it waits for us; so it is sent from this dedicated worker, which
// holds no filesystem locks, never from a request thread or the shrinker
// (DESIGN 6.6). The queue is bounded: invalidations are hints, and dropping
// one only delays reclaim of that inode.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct fuse_session;
struct fuse_req;

namespace reclaimfs::fs {

class FuseInvalidator {
 public:
  explicit FuseInvalidator(size_t max_queued = 4096) : max_queued_(max_queued) {}
  static constexpr size_t kMaxStoreBytes = size_t{64} << 20;
  ~FuseInvalidator();  // Stop()

  FuseInvalidator(const FuseInvalidator&) = delete;
  FuseInvalidator& operator=(const FuseInvalidator&) = delete;

  // `abort_connection` is the way out if Stop() finds the worker stuck (see
  // Stop); it must make the kernel fail all pending requests.
  void Start(fuse_session* session, std::function<void()> abort_connection);
  // Drops pending requests and joins the worker. Must run before the session
  // is destroyed. A notification can be stuck on a directory lock held by a
  // request the stopped session loop will never answer; after a grace
  // period the connection is aborted, which fails that request and frees
  // the lock.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds(2));

  // Never blocks beyond a short queue lock; callable under filesystem locks.
  void Enqueue(uint64_t parent, std::string name);

  // Copies `size` bytes just written at `offset` of `ino` into the pages the
  // kernel caches of it (fuse_lowlevel_notify_store), then answers the WRITE
  // request `req` with `size`. The kernel's store waits on the lock of a
  // page whose READ may still be in flight, so it is sent from this worker
  // and the request thread goes back to the loop. If the queue is full,
  // holds kMaxStoreBytes of copies already, or is stopping, the write is
  // answered at once without the store (counted in stores_skipped).
  void StoreThenReplyWrite(fuse_req* req, uint64_t ino, uint64_t offset, const char* data, size_t size);

  uint64_t sent() const { return sent_.load(); }
  uint64_t dropped() const { return dropped_.load(); }
  uint64_t stores() const { return stores_.load(); }
  uint64_t stores_skipped() const { return stores_skipped_.load(); }

 private:
  struct Request {
    uint64_t parent = 0;  // an entry invalidation: parent and name
    std::string name;
    fuse_req* write_req = nullptr;  // a store: the WRITE to answer afterwards
    uint64_t ino = 0;
    uint64_t offset = 0;
    std::vector<char> data;
  };
  static void ReplyWrite(const Request& r);
  void Run();

  const size_t max_queued_;
  fuse_session* session_ = nullptr;
  std::function<void()> abort_connection_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> queue_;
  size_t store_bytes_ = 0;  // of the copies queued
  bool running_ = false;
  bool stop_ = false;
  bool exited_ = false;  // the worker has left Run()
  std::atomic<uint64_t> sent_{0}, dropped_{0}, stores_{0}, stores_skipped_{0};
  std::thread thread_;
};

}  // namespace reclaimfs::fs

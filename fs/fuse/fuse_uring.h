// FUSE over io_uring (Linux 6.14+): the kernel hands requests to the server
// through io_uring queues instead of read(2) on /dev/fuse.
//
// The kernel keeps one queue per possible CPU and puts each request on the
// queue of the CPU that issued it. We register `depth` ring entries per
// queue, each a header buffer and a payload buffer the kernel copies the
// request into; one thread per queue (pinned to that CPU) owns an io_uring
// with those entries. A request arrives as the completion of the entry's
// last command; the thread lays it out as read(2) would return it and hands
// it to `dispatch` (libfuse's decoding, the same filesystem code as the
// /dev/fuse path). The reply, written by whatever thread answers (the queue
// thread for cache hits, a blocking worker after IO), is found by its
// `unique` in TakeReply, copied into the entry's buffers, and committed by
// the queue's thread with one COMMIT_AND_FETCH command, which also fetches
// the entry's next request. FORGET, INTERRUPT and notifications stay on
// /dev/fuse, as the kernel requires.
//
// Threads: only a queue's thread touches its io_uring. Replies from other
// threads are queued to it under the queue's mutex and an eventfd (polled
// through the ring) wakes it. Every wait is bounded: the queue thread waits
// for completions at most kPollInterval at a time and checks for Stop.
// Buffers stay allocated until the destructor, so a late reply (after Stop)
// still lands in valid memory and is dropped.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace reclaimfs::fs {

class FuseUring {
 public:
  struct Options {
    int fuse_fd = -1;          // the session's /dev/fuse descriptor
    unsigned queues = 1;       // the kernel's: one per possible CPU
    unsigned depth = 8;        // ring entries per queue
    size_t payload_size = 0;   // >= the connection's max payload (max_write, max_pages)
  };
  // Serves one request laid out as read(2) on /dev/fuse returns it. Called
  // on a queue thread; the buffer stays valid until the request's reply.
  using Dispatch = std::function<void(char* request, size_t len)>;

  FuseUring(Options options, Dispatch dispatch);
  ~FuseUring();  // Stop(), then frees the buffers

  FuseUring(const FuseUring&) = delete;
  FuseUring& operator=(const FuseUring&) = delete;

  // Sets up each queue's io_uring and buffers. Must succeed before INIT's
  // reply grants FUSE_OVER_IO_URING: from that grant on the kernel holds
  // every request until all queues have registered entries.
  absl::Status Prepare();
  // After the INIT reply: starts each queue's thread, which registers the
  // queue's entries. `fatal` runs (once, on a queue thread) if a queue can
  // no longer serve while the connection lives (the kernel refused its
  // entries, or its thread failed): the connection must then be aborted, or
  // requests would wait for the ring forever.
  void Start(std::function<void(const std::string& why)> fatal);
  // Stops the queue threads (each notices within kPollInterval) and joins
  // them. Entries still in the kernel are cancelled when the rings close.
  void Stop();

  // If `iov` (fuse_out_header, then the body) answers a request that came
  // through a ring entry, takes it and returns true with *written set to
  // the reply's length (or -1 and errno). False: not ours (a /dev/fuse
  // request, a notification).
  bool TakeReply(const struct iovec* iov, int count, ssize_t* written);

  // Whether the kernel's FUSE serves io_uring queues: the fuse module's
  // enable_uring parameter (absent before Linux 6.14). Only root may turn
  // it on; the daemon never does.
  static bool KernelEnabled();
  static constexpr const char* kEnableHint =
      "enable it as root with `echo Y > /sys/module/fuse/parameters/enable_uring` (Linux 6.14+)";

  // The kernel's number of queues: one per possible CPU.
  static unsigned PossibleCpus();

  // Memory of the ring buffers (headers and payloads), outside the cache budget.
  uint64_t buffer_bytes() const;
  uint64_t requests() const;  // requests served through the rings
  // "name value" lines: totals and per-queue counts.
  std::string StatsText() const;

 private:
  struct Entry;
  struct Queue;

  void Run(Queue* q);
  void RegisterEntries(Queue* q);
  void Serve(Queue* q, Entry* e);
  void QueueCommit(Queue* q, Entry* e);
  void ArmWakeup(Queue* q);
  void DrainForeignReplies(Queue* q);
  void SubmitCommit(Queue* q, Entry* e);
  void ReportFatal(const std::string& why);

  const Options options_;
  const Dispatch dispatch_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::function<void(const std::string& why)> fatal_;
  std::atomic<bool> fatal_reported_{false};
  std::atomic<bool> stop_{false};
  bool started_ = false;
};

}  // namespace reclaimfs::fs

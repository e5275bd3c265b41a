// The eviction retry queue: inodes whose eviction could not finish without
// blocking (dirty record, dirty or in-flight pages) and unlinked inodes whose
// last reference went away. One background thread runs the eviction work for
// each, with per-inode exponential backoff when it must be retried. It is
// not reclaim: the work may block on IO. Unmount drains it: every queued
// eviction runs (in final mode) before the store closes.
//
// Owns the queue and its thread. Add is called from any thread (the inode
// shrinker included) and only takes the queue mutex. Drain waits until every
// item is done or given up (at most final_attempts retries each); Flush
// waits at most `bound`.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

namespace reclaimfs::fs {

class EvictQueue {
 public:
  enum class Outcome { kDone, kRetry };
  // final_pass: the filesystem is shutting down; do what can be done now.
  using Work = std::function<Outcome(uint64_t ino, bool final_pass)>;

  struct Options {
    std::chrono::milliseconds initial_backoff{10};
    std::chrono::milliseconds max_backoff{1000};
    // While draining, a retried item is run again after this delay, at most
    // final_attempts times, so unmount is bounded.
    std::chrono::milliseconds drain_retry_delay{10};
    int final_attempts = 300;
  };

  explicit EvictQueue(Work work) : EvictQueue(std::move(work), Options()) {}
  EvictQueue(Work work, Options options);
  ~EvictQueue();  // stops without draining

  void Start();
  // Queues an eviction of ino (deduplicated; if it is running now it runs
  // again afterwards). Never blocks on anything but the queue's own mutex.
  void Add(uint64_t ino);
  // Runs every queued eviction, including those added meanwhile, until none
  // is left, then stops the thread. Adds after this are dropped.
  void Drain();
  // Gives every eviction queued before this call (backing-off ones too) one
  // attempt now, on the worker, and waits for those attempts, at most
  // `bound`; false if it timed out. Space held by unlinked files comes back
  // this way before the filesystem answers ENOSPC or statfs.
  bool Flush(std::chrono::milliseconds bound);

  size_t pending() const;
  uint64_t added() const { return added_.load(std::memory_order_relaxed); }
  uint64_t retried() const { return retried_.load(std::memory_order_relaxed); }
  uint64_t done() const { return done_.load(std::memory_order_relaxed); }
  uint64_t abandoned() const { return abandoned_.load(std::memory_order_relaxed); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Item {
    Clock::time_point due;
    std::chrono::milliseconds backoff{0};
    int attempts = 0;
  };

  void Run();
  void ScheduleLocked(uint64_t ino, Item item);

  const Work work_;
  const Options options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // wakes the worker
  std::condition_variable idle_cv_;  // wakes Drain and Flush after each item
  std::map<uint64_t, Item> items_;   // ino -> schedule
  std::set<std::pair<Clock::time_point, uint64_t>> by_due_;
  uint64_t running_ = 0;             // ino being worked on, 0 if none
  Clock::time_point running_due_;    // ... and when it was due
  bool rerun_ = false;               // running_ was added again meanwhile
  bool draining_ = false;
  bool stop_ = false;
  bool started_ = false;
  std::thread thread_;

  std::atomic<uint64_t> added_{0}, retried_{0}, done_{0}, abandoned_{0};
};

}  // namespace reclaimfs::fs

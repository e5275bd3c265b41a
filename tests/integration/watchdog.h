// Watchdog for the integration tests: a thread holding deadlines (the whole
// test's budget, and individually armed calls such as one write(2) under
// memory pressure). When a deadline passes it calls the owner's expiry
// handler once per deadline, which fails the test and unblocks the hung
// syscall by killing the daemon; a test that hangs on a FUSE request then
// fails with a message instead of hanging the suite.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace reclaimfs::itest {

class Watchdog {
 public:
  using Clock = std::chrono::steady_clock;
  // Called on the watchdog thread with a description of what overran.
  using ExpiryHandler = std::function<void(const std::string& what)>;

  explicit Watchdog(ExpiryHandler on_expiry);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // A deadline, removed when the Guard is destroyed.
  class Guard {
   public:
    Guard(Watchdog* w, uint64_t id) : w_(w), id_(id) {}
    Guard(Guard&& o) noexcept : w_(o.w_), id_(o.id_) { o.w_ = nullptr; }
    Guard& operator=(Guard&&) = delete;
    ~Guard() { Release(); }
    void Release();

   private:
    Watchdog* w_;
    uint64_t id_;
  };

  [[nodiscard]] Guard Arm(std::string what, std::chrono::milliseconds limit);

  // Runs fn() under a deadline; also fails the test if fn returned but took
  // longer than `limit`. Returns fn's result.
  template <class F>
  auto Timed(const std::string& what, std::chrono::milliseconds limit, F&& fn) {
    const auto start = Clock::now();
    struct Check {
      const std::string& what;
      std::chrono::milliseconds limit;
      Clock::time_point start;
      ~Check() {
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        if (took > limit) {
          ADD_FAILURE() << what << " took " << took.count() << " ms (limit " << limit.count() << " ms)";
        }
      }
    } check{what, limit, start};
    Guard g = Arm(what, limit);
    return fn();
  }

  bool fired() const;

 private:
  struct Deadline {
    std::string what;
    std::chrono::milliseconds limit;
    Clock::time_point at;
  };
  void Loop();
  void Disarm(uint64_t id);

  ExpiryHandler on_expiry_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Deadline> deadlines_;
  uint64_t next_id_ = 1;
  bool stop_ = false;
  bool fired_ = false;
  std::thread thread_;
};

}  // namespace reclaimfs::itest

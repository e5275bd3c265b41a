// BlockingWorkers: tasks run off the submitting thread, a task that blocks
// does not hold up the others (up to the pool's size), and Stop runs
// everything queued before it returns; after Stop, Submit runs inline.
#include "fs/fuse/blocking_workers.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"

namespace reclaimfs::fs {
namespace {

TEST(BlockingWorkers, TasksRunOnWorkersAndABlockedOneDoesNotHoldUpOthers) {
  BlockingWorkers pool(2);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false, second_ran = false;
  std::thread::id first_thread;
  pool.Submit([&] {
    std::unique_lock l(mu);
    first_thread = std::this_thread::get_id();
    cv.wait(l, [&] { return release; });  // blocked until the second has run
  });
  pool.Submit([&] {
    std::lock_guard l(mu);
    second_ran = true;
    release = true;
    cv.notify_all();
  });
  {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return second_ran; });
  }
  pool.Stop();
  EXPECT_NE(first_thread, std::this_thread::get_id());
  EXPECT_EQ(pool.submitted(), 2u);
}

TEST(BlockingWorkers, StopRunsEverythingQueuedAndLaterSubmitsRunInline) {
  std::atomic<int> ran{0};
  BlockingWorkers pool(1);
  for (int i = 0; i < 100; ++i) pool.Submit([&] { ran.fetch_add(1); });
  pool.Stop();
  EXPECT_EQ(ran.load(), 100);
  std::thread::id where;
  pool.Submit([&] { where = std::this_thread::get_id(); });
  EXPECT_EQ(where, std::this_thread::get_id());
}

}  // namespace
}  // namespace reclaimfs::fs

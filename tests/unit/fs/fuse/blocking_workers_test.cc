// BlockingWorkers: tasks run off the submitting thread, a task that blocks
// does not hold up the others (up to the pool's size), and Stop runs
// everything queued before it returns; after Stop, and when the queue is
// full, Submit runs inline.
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

TEST(BlockingWorkers, AFullQueueRunsTheTaskOnTheCaller) {
  BlockingWorkers pool(1, /*max_queued=*/2);
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, release = false;
  pool.Submit([&] {  // occupies the only worker
    std::unique_lock l(mu);
    started = true;
    cv.notify_all();
    cv.wait(l, [&] { return release; });
  });
  {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return started; });
  }
  std::atomic<int> queued_ran{0};
  pool.Submit([&] { queued_ran.fetch_add(1); });
  pool.Submit([&] { queued_ran.fetch_add(1); });  // the queue is now full
  std::thread::id where;
  pool.Submit([&] { where = std::this_thread::get_id(); });
  EXPECT_EQ(where, std::this_thread::get_id()) << "the third waiting task ran on the caller";
  EXPECT_EQ(queued_ran.load(), 0);
  EXPECT_EQ(pool.ran_inline(), 1u);
  {
    std::lock_guard l(mu);
    release = true;
    cv.notify_all();
  }
  pool.Stop();
  EXPECT_EQ(queued_ran.load(), 2);
  EXPECT_EQ(pool.submitted(), 3u);
}

}  // namespace
}  // namespace reclaimfs::fs

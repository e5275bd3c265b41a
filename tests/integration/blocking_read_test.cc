// A read that waits for IO does not hold a request thread: with a single
// request thread and the device holding a cache-missing read back, other
// requests are still answered, and the read completes with the right bytes.
// The check is an order of events (the lookup returns while the read is
// still held), not a duration.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

using namespace std::chrono_literals;

class BlockingReadTest : public ReclaimfsTest {
 protected:
  BlockingReadTest()
      : ReclaimfsTest(FixtureConfig().Options("fault_injection=true,request_threads=1").Budget(120s)) {}

  void Fault(const std::string& rules) {
    ASSERT_FALSE(Tools().ctl.empty()) << "CTL_BIN is not set";
    RunResult r = Run({Tools().ctl, "fault", mnt(), rules}, 30s);
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }
  int64_t Misses() {
    RunResult r = Run({Tools().ctl, "stat", mnt()}, 30s);
    const std::string key = "pagecache_misses ";
    const size_t pos = r.output.find(key);
    return pos == std::string::npos ? -1 : std::stoll(r.output.substr(pos + key.size()));
  }
};

TEST_F(BlockingReadTest, AMissWaitingForIoLeavesTheRequestThreadFree) {
  const std::string f = Path("file");
  const std::string data = MakeBlock(3, 0, 64 << 10);
  {
    UniqueFd fd = Open(f, O_CREAT | O_RDWR);
    PwriteAll(fd.get(), data.data(), data.size(), 0);
    ASSERT_EQ(fsync(fd.get()), 0);
  }
  Remount("fault_injection=true,request_threads=1");  // nothing cached
  UniqueFd fd = Open(f, O_RDONLY);

  // The control socket is not a FUSE request: the rule is in place before the read.
  Fault("read:delay_ms=4000:count=1");
  const int64_t misses_before = Misses();
  std::atomic<bool> read_done{false};
  std::string got;
  std::thread reader([&] {
    got = ReadAt(fd.get(), 4096, 8192);
    read_done.store(true);
  });
  // Until the read has missed, i.e. its IO is held in the device.
  watchdog().Timed("the read misses", 30s, [&] {
    while (Misses() == misses_before && !read_done.load()) std::this_thread::sleep_for(10ms);
  });
  bool answered_while_held = false;
  watchdog().Timed("lookup during a held read", 60s, [&] {
    struct stat st;
    EXPECT_EQ(stat(Path("no-such-name").c_str(), &st), -1);
    EXPECT_EQ(errno, ENOENT);
    answered_while_held = !read_done.load();
  });
  reader.join();
  EXPECT_TRUE(answered_while_held) << "the lookup waited for the read's IO";
  EXPECT_EQ(got, data.substr(8192, 4096));
  Fault("clear");
}

}  // namespace
}  // namespace reclaimfs::itest

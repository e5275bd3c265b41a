// FUSE over io_uring: a mount with fuse_transport=uring serves requests
// through one ring queue per CPU (cache hits answered on the queue thread,
// misses from the blocking workers, O_TMPFILE and statx too), reports it in
// `reclaimfs-ctl stat`, unmounts and survives an aborted connection without
// a hung entry; without the kernel's support `uring` refuses to mount with
// the way to enable it, and `auto` falls back to /dev/fuse.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

constexpr const char* kEnableUring = "/sys/module/fuse/parameters/enable_uring";

// Sets the kernel's enable_uring for one test and restores it after.
class KernelUringSwitch {
 public:
  bool Set(bool on) {
    if (saved_.empty()) {
      std::ifstream in(kEnableUring);
      if (!(in >> saved_)) return false;
    }
    std::ofstream out(kEnableUring);
    out << (on ? "Y" : "N");
    return static_cast<bool>(out.flush());
  }
  ~KernelUringSwitch() {
    if (!saved_.empty()) std::ofstream(kEnableUring) << saved_;
  }

 private:
  std::string saved_;
};

unsigned PossibleCpus() {
  std::ifstream in("/sys/devices/system/cpu/possible");
  std::string text;
  std::getline(in, text);
  const size_t dash = text.rfind('-');
  const size_t comma = text.rfind(',');
  size_t from = 0;
  if (dash != std::string::npos) from = dash + 1;
  if (comma != std::string::npos && comma + 1 > from) from = comma + 1;
  return static_cast<unsigned>(std::stoul(text.substr(from))) + 1;
}

class FuseUringTest : public ReclaimfsTest {
 protected:
  FuseUringTest() : ReclaimfsTest(FixtureConfig().NoMount()) {}

  void SetUp() override {
    ReclaimfsTest::SetUp();
    if (IsSkipped()) return;
    if (!kernel_.Set(true)) GTEST_SKIP() << "this kernel has no " << kEnableUring << " (Linux 6.14+)";
  }

  CtlStats Stats() {
    RunResult r = Run({Tools().ctl, "stat", mnt()}, 30s);
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    return ParseCtlStats(r.output);
  }
  static double Get(const CtlStats& st, const std::string& key) {
    auto it = st.values.find(key);
    return it == st.values.end() ? -1 : it->second;
  }
  static bool SaysTransport(const std::string& out, const std::string& name) {
    return out.find(std::string("fuse_transport_uring ") + (name == "uring" ? "1" : "0") + "\n") != std::string::npos;
  }

  KernelUringSwitch kernel_;
};

TEST_F(FuseUringTest, ServesEveryKindOfRequestThroughTheRings) {
  Mount("fuse_transport=uring,fuse_uring_depth=4,cache_budget=64M");
  const std::string data = MakeBlock(7, 0, 8 << 20);
  WriteFile(Path("f"), data);
  ASSERT_SYS_OK(mkdir(Path("d").c_str(), 0755));
  WriteFile(Path("d/small"), "small");
  EXPECT_EQ(ReadFile(Path("f")), data);  // cache hits

  // Misses: answered from the blocking workers, committed by the queue thread.
  RunResult dropped = Run({Tools().ctl, "drop-caches", mnt(), "all"}, 30s);
  ASSERT_EQ(dropped.exit_code, 0) << dropped.Describe();
  EXPECT_TRUE(ReadFile(Path("f")) == data) << "file content differs";

  // Requests the channel serves itself: O_TMPFILE and statx.
  int fd = open(mnt().c_str(), O_TMPFILE | O_RDWR, 0600);
  ASSERT_GE(fd, 0) << "O_TMPFILE: " << strerror(errno);
  PwriteAll(fd, "tmp", 3, 0);
  close(fd);
  struct statx sx {};
  ASSERT_SYS_OK(statx(AT_FDCWD, Path("d/small").c_str(), 0, STATX_BTIME | STATX_SIZE, &sx));
  EXPECT_TRUE(sx.stx_mask & STATX_BTIME);
  EXPECT_EQ(sx.stx_size, 5u);
  // fsync goes to a blocking worker as well.
  Fsync(Path("f"));

  RunResult r = Run({Tools().ctl, "stat", mnt()}, 30s);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(SaysTransport(r.output, "uring")) << r.output;
  const CtlStats st = ParseCtlStats(r.output);
  const unsigned queues = PossibleCpus();
  EXPECT_EQ(Get(st, "fuse_uring_queues"), queues);
  EXPECT_EQ(Get(st, "fuse_uring_depth"), 4);
  EXPECT_EQ(Get(st, "fuse_uring_entries"), queues * 4.0) << "ring entries were lost";
  EXPECT_EQ(Get(st, "fuse_uring_entry_errors"), 0);
  EXPECT_GT(Get(st, "fuse_uring_requests"), 100);
  EXPECT_GT(Get(st, "fuse_uring_foreign_replies"), 0) << "no reply came from a blocking worker";
  EXPECT_GE(Get(st, "fuse_uring_buffer_bytes"), queues * 4.0 * (1 << 20));
  double per_queue = 0;
  for (unsigned q = 0; q < queues; ++q) per_queue += Get(st, "fuse_uring_queue" + std::to_string(q) + "_requests");
  EXPECT_EQ(per_queue, Get(st, "fuse_uring_requests")) << "per-queue counts do not add up";

  Remount("fuse_transport=uring");
  EXPECT_TRUE(ReadFile(Path("f")) == data) << "file content differs";
  EXPECT_EQ(ReadFile(Path("d/small")), "small");
}

TEST_F(FuseUringTest, ConcurrentReadersAndWritersAcrossCpus) {
  Mount("fuse_transport=uring,cache_budget=32M");
  constexpr int kThreads = 6;
  constexpr size_t kFile = 4 << 20;
  std::vector<std::string> contents(kThreads);
  for (int t = 0; t < kThreads; ++t) contents[t] = MakeBlock(100 + t, 0, kFile);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string path = Path("t" + std::to_string(t));
      for (int round = 0; round < 3; ++round) {
        WriteFile(path, contents[t]);
        if (ReadFile(path) != contents[t]) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  Remount("fuse_transport=uring");
  for (int t = 0; t < kThreads; ++t) EXPECT_TRUE(ReadFile(Path("t" + std::to_string(t))) == contents[t]) << t;
}

TEST_F(FuseUringTest, AbortWithRequestsInFlightEndsEveryRequest) {
  Mount("fuse_transport=uring,cache_budget=32M");
  WriteFile(Path("f"), MakeBlock(3, 0, 16 << 20));
  std::atomic<bool> stop{false};
  std::atomic<int> ended{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      const int fd = open(Path("f").c_str(), O_RDONLY);
      if (fd < 0) {
        ended.fetch_add(1);
        return;
      }
      std::vector<char> buf(64 << 10);
      for (uint64_t i = t; !stop.load(); i += 7) {
        if (pread(fd, buf.data(), buf.size(), static_cast<off_t>((i * 65536) % (16 << 20))) < 0) break;
      }
      close(fd);
      ended.fetch_add(1);
    });
  }
  std::this_thread::sleep_for(300ms);
  auto m = FindMount(mnt());
  bool aborted = false;
  if (m.has_value()) {
    const std::string conn = "/sys/fs/fuse/connections/" + std::to_string(m->dev_minor);
    if (!Exists(conn)) Run({Tools().mount, "-t", "fusectl", "fusectl", "/sys/fs/fuse/connections"}, 30s);
    std::ofstream abort(conn + "/abort");
    abort << "1";
    aborted = static_cast<bool>(abort.flush());
  }
  if (!aborted) {
    stop = true;
    for (auto& th : readers) th.join();
    FAIL() << "cannot abort the connection (fusectl)";
  }
  // Every reader's request ends (ENOTCONN) instead of hanging in a ring entry.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (ended.load() < 4 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  stop = true;
  EXPECT_EQ(ended.load(), 4) << "requests hung after the abort";
  for (auto& th : readers) th.join();
  // The daemon notices and exits on its own.
  const int st = WaitDaemonExit("the aborted connection");
  EXPECT_TRUE(WIFEXITED(st) || WIFSIGNALED(st));
  EXPECT_FALSE(WIFSIGNALED(st) && WTERMSIG(st) != SIGTERM) << DescribeWaitStatus(st);
}

TEST_F(FuseUringTest, UringRefusesToMountWithoutKernelSupport) {
  ASSERT_TRUE(kernel_.Set(false));
  try {
    Mount("fuse_transport=uring");
    ADD_FAILURE() << "fuse_transport=uring mounted without the kernel's support";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("enable_uring"), std::string::npos) << "the error does not say how to enable it: " << msg;
  }
  EXPECT_FALSE(IsMounted(mnt()));
}

TEST_F(FuseUringTest, AutoFallsBackToDevFuse) {
  ASSERT_TRUE(kernel_.Set(false));
  Mount("fuse_transport=auto");
  WriteFile(Path("f"), "data");
  EXPECT_EQ(ReadFile(Path("f")), "data");
  RunResult r = Run({Tools().ctl, "stat", mnt()}, 30s);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(SaysTransport(r.output, "dev")) << r.output;
  EXPECT_EQ(r.output.find("fuse_uring_requests"), std::string::npos);
  Unmount();
  EXPECT_NE(DaemonLog().find("serving through /dev/fuse"), std::string::npos) << DaemonLog();
}

TEST_F(FuseUringTest, DevTransportIgnoresTheKernelOffer) {
  Mount("fuse_transport=dev");
  WriteFile(Path("f"), "data");
  RunResult r = Run({Tools().ctl, "stat", mnt()}, 30s);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(SaysTransport(r.output, "dev")) << r.output;
}

}  // namespace
}  // namespace reclaimfs::itest

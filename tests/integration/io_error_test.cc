// IO errors on a real mount, injected under the block store
// (fault_injection=true, rules set with `reclaimfs-ctl fault`): a failed
// writeback reaches every file handle open at the time once (errseq), fsync
// never claims durable what was not written, a read error on a cache miss
// is EIO, and errors during syncs under memory pressure leave a daemon that
// keeps serving, stays in its memory budget and unmounts to a clean fsck.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

using namespace std::chrono_literals;

class IoErrorTest : public ReclaimfsTest {
 protected:
  IoErrorTest()
      : ReclaimfsTest(FixtureConfig()
                          .Options("fault_injection=true,cache_budget=32M,meta_budget=16M,"
                                   "dirty_expire_ms=100,writeback_interval_ms=50")
                          .Budget(300s)) {}

  // Sets the daemon's fault rules ("clear" removes them).
  void Fault(const std::string& rules) {
    ASSERT_FALSE(Tools().ctl.empty()) << "CTL_BIN is not set";
    RunResult r = Run({Tools().ctl, "fault", mnt(), rules}, 30s);
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    ASSERT_EQ(r.output, "ok\n") << r.Describe();
  }

  // fsync's errno (0 on success), bounded by the watchdog.
  int FsyncErrno(int fd) {
    int err = 0;
    watchdog().Timed("fsync", 60s, [&] { err = fsync(fd) == 0 ? 0 : errno; });
    return err;
  }
};

TEST_F(IoErrorTest, FailedSyncIsReportedOnceToEveryOpenHandle) {
  const std::string f = Path("file");
  const std::string data = MakeBlock(50, 0, 1 << 20);
  UniqueFd a = Open(f, O_CREAT | O_RDWR);
  UniqueFd b = Open(f, O_RDWR);
  PwriteAll(a.get(), data.data(), data.size(), 0);

  Fault("write:errno=EIO");
  EXPECT_EQ(FsyncErrno(a.get()), EIO) << "fsync claimed durable what could not be written";
  Fault("clear");
  UniqueFd later = Open(f, O_RDWR);  // opened after the failure: not blamed for it

  EXPECT_EQ(FsyncErrno(a.get()), 0) << "the error was reported to this handle already";
  EXPECT_EQ(FsyncErrno(b.get()), EIO) << "a handle open at the time must hear of the failure";
  EXPECT_EQ(FsyncErrno(b.get()), 0) << "... once";
  EXPECT_EQ(FsyncErrno(later.get()), 0);
  EXPECT_EQ(later.Close(), 0);
  // The retried writeback succeeded: the data is there after a remount.
  a.Close();
  b.Close();
  Remount("fault_injection=true");
  EXPECT_EQ(FirstDifference(ReadFile(f), data), -1);
}

TEST_F(IoErrorTest, BackgroundWritebackErrorReachesFsyncAndClose) {
  const std::string f = Path("background");
  const std::string data = MakeBlock(51, 0, 256 << 10);
  UniqueFd a = Open(f, O_CREAT | O_RDWR);
  UniqueFd b = Open(f, O_RDWR);
  Fault("write:errno=EIO");
  PwriteAll(a.get(), data.data(), data.size(), 0);
  // Periodic writeback (100 ms expiry) fails, retries, and gives up.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    RunResult r = Run({Tools().ctl, "stat", mnt()}, 30s);
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    const CtlStats st = ParseCtlStats(r.output);
    if (st.values.at("writeback_errors") >= 3 && st.values.at("pagecache_dirty") == 0) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "writeback did not fail as injected:\n" << r.output;
    std::this_thread::sleep_for(100ms);
  }
  Fault("clear");
  EXPECT_EQ(FsyncErrno(a.get()), EIO) << "a background writeback failure was swallowed";
  EXPECT_EQ(FsyncErrno(a.get()), 0);
  EXPECT_NE(b.Close(), 0) << "close of a handle open at the failure must report it";
  EXPECT_EQ(errno, EIO);
  // The daemon keeps serving.
  WriteFile(Path("after"), "still here");
  EXPECT_EQ(ReadFile(Path("after")), "still here");
}

TEST_F(IoErrorTest, ReadErrorOnACacheMissIsEio) {
  const std::string f = Path("cold");
  const std::string data = MakeBlock(52, 0, 1 << 20);
  WriteFile(f, data);
  Fsync(f);
  Remount("fault_injection=true");  // nothing cached
  Fault("read:errno=EIO");
  {
    UniqueFd fd = Open(f, O_RDONLY);
    std::string got(4096, '\0');
    ssize_t n = 0;
    watchdog().Timed("pread", 60s, [&] { n = pread(fd.get(), got.data(), got.size(), 8192); });
    EXPECT_EQ(n, -1);
    EXPECT_EQ(errno, EIO);
  }
  Fault("clear");
  EXPECT_EQ(FirstDifference(ReadFile(f), data), -1) << "a failed read left wrong data in the cache";
}

TEST_F(IoErrorTest, ErrorsDuringSyncsUnderMemoryPressure) {
  constexpr int kWriters = 4;
  constexpr size_t kFileSize = 24 << 20;  // 96 MiB in all, three times the cache budget
  constexpr size_t kChunk = 256 << 10;
  Fault("write:range=0+64M:errno=EIO");  // every write to the first 64 MiB of the store fails
  std::atomic<int> eio{0}, ok{0};
  std::vector<std::string> unexpected;
  std::mutex mu;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      try {
        UniqueFd fd = Open(Path("p" + std::to_string(w)), O_CREAT | O_RDWR);
        std::string chunk(kChunk, '\0');
        for (size_t off = 0; off < kFileSize; off += kChunk) {
          FillBlock(60 + w, off / kChunk, chunk);
          PwriteAll(fd.get(), chunk.data(), chunk.size(), static_cast<off_t>(off));
          if (off % (4 << 20) == 0) {
            const int err = FsyncErrno(fd.get());
            (err == 0 ? ok : eio)++;
            if (err != 0 && err != EIO) {
              std::lock_guard l(mu);
              unexpected.push_back("fsync: " + std::string(strerror(err)));
            }
          }
        }
      } catch (const std::exception& e) {
        std::lock_guard l(mu);
        unexpected.push_back(e.what());
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  EXPECT_GT(eio.load(), 0) << "no fsync met the injected errors";
  const std::optional<uint64_t> hwm = ProcStatusBytes(daemon_pid(), "VmHWM");
  ASSERT_TRUE(hwm.has_value());
  EXPECT_LE(*hwm, uint64_t{(32 + 16 + 32)} << 20) << "daemon memory outside its budget under IO errors";

  Fault("clear");
  // Everything written now is durable, and the daemon still serves.
  for (int w = 0; w < kWriters; ++w) {
    UniqueFd fd = Open(Path("p" + std::to_string(w)), O_RDWR);
    std::string chunk(kChunk, '\0');
    FillBlock(70 + w, 0, chunk);
    PwriteAll(fd.get(), chunk.data(), chunk.size(), 0);
    int err = FsyncErrno(fd.get());
    if (err == EIO) err = FsyncErrno(fd.get());  // an error of before, reported once
    EXPECT_EQ(err, 0);
  }
  Remount("fault_injection=true");  // TearDown checks fsck too
  for (int w = 0; w < kWriters; ++w) {
    std::string chunk(kChunk, '\0');
    FillBlock(70 + w, 0, chunk);
    UniqueFd fd = Open(Path("p" + std::to_string(w)), O_RDONLY);
    std::string got(kChunk, '\0');
    PreadExact(fd.get(), got.data(), got.size(), 0);
    EXPECT_EQ(FirstDifference(got, chunk), -1) << "file " << w;
  }
}

}  // namespace
}  // namespace reclaimfs::itest

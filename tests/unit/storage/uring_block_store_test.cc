// UringBlockStore against a real file and a real io_uring.
#include "storage/uring_block_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "temp_dir.h"

namespace reclaimfs::storage {
namespace {

using testing::TempDir;

constexpr uint32_t kBs = 4096;

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<char, AlignedFree>;

Buffer Aligned(size_t n) {
  return Buffer(static_cast<char*>(std::aligned_alloc(kIoAlignment, (n + kIoAlignment - 1) / kIoAlignment * kIoAlignment)));
}

void Fill(char* p, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(p + i, &v, std::min<size_t>(8, n - i));
  }
}

uint64_t Checksum(const char* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 1099511628211ull;
  return h;
}

// Counts completions; Wait() returns when `expected` have arrived.
class Latch {
 public:
  explicit Latch(int expected) : left_(expected) {}
  void CountDown() {
    std::lock_guard<std::mutex> l(mu_);
    if (--left_ == 0) cv_.notify_all();
  }
  bool Wait(std::chrono::seconds limit = std::chrono::seconds(60)) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, limit, [&] { return left_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int left_;
};

class UringTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { ASSERT_TRUE(MakeFile(path_, kBlocks * kBs)); }

  static bool MakeFile(const std::string& path, uint64_t size) {
    int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd < 0) return false;
    const bool ok = ::ftruncate(fd, static_cast<off_t>(size)) == 0;
    ::close(fd);
    return ok;
  }

  std::unique_ptr<UringBlockStore> Open(unsigned depth = 32) {
    UringOptions o;
    o.queue_depth = depth;
    o.try_direct = GetParam();
    auto s = UringBlockStore::Open(path_, kBs, o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  static constexpr uint64_t kBlocks = 1024;
  TempDir tmp_;
  std::string path_ = tmp_.Sub("data");
};

TEST_P(UringTest, OpensWithSizeAndMode) {
  auto dev = Open();
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->size_bytes(), kBlocks * kBs);
  EXPECT_EQ(dev->block_size(), kBs);
  EXPECT_EQ(dev->inflight(), 0u);
  if (!GetParam()) {
    EXPECT_FALSE(dev->direct_io());
  }
}

TEST_P(UringTest, SyncWriteReadRoundTrip) {
  auto dev = Open();
  ASSERT_TRUE(dev);
  auto out = Aligned(8 * kBs), in = Aligned(8 * kBs);
  Fill(out.get(), 8 * kBs, 1);
  ASSERT_TRUE(dev->Write(16 * kBs, out.get(), 8 * kBs).ok());
  ASSERT_TRUE(dev->Flush().ok());
  ASSERT_TRUE(dev->Read(16 * kBs, in.get(), 8 * kBs).ok());
  EXPECT_EQ(std::memcmp(out.get(), in.get(), 8 * kBs), 0);
  // Another offset was not touched.
  ASSERT_TRUE(dev->Read(0, in.get(), kBs).ok());
  EXPECT_EQ(Checksum(in.get(), kBs), Checksum(std::string(kBs, '\0').data(), kBs));
}

// Several threads each keep many requests in flight over their own slice of
// the file; every block is then read back asynchronously and checksummed.
TEST_P(UringTest, ManyConcurrentRequestsFromSeveralThreads) {
  constexpr unsigned kDepth = 16;
  auto dev = Open(kDepth);
  ASSERT_TRUE(dev);
  constexpr int kThreads = 4;
  constexpr uint64_t kPer = kBlocks / kThreads;
  auto data = Aligned(kBlocks * kBs);
  Fill(data.get(), kBlocks * kBs, 42);
  std::atomic<uint64_t> max_inflight{0};
  std::atomic<int> errors{0};

  auto run = [&](IoRequest::Op op, char* base) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        Latch latch(static_cast<int>(kPer));
        // Submit in batches of 8 so several batches are queued at once.
        for (uint64_t b = 0; b < kPer; b += 8) {
          std::vector<IoRequest> batch;
          for (uint64_t i = b; i < b + 8; ++i) {
            const uint64_t block = t * kPer + i;
            IoRequest r;
            r.op = op;
            r.offset = block * kBs;
            r.iov.push_back(iovec{base + block * kBs, kBs});
            r.done = [&](int64_t res) {
              uint64_t cur = dev->inflight();
              uint64_t seen = max_inflight.load();
              while (cur > seen && !max_inflight.compare_exchange_weak(seen, cur)) {}
              if (res != kBs) ++errors;
              latch.CountDown();
            };
            batch.push_back(std::move(r));
          }
          dev->Submit(std::move(batch));
        }
        EXPECT_TRUE(latch.Wait());
      });
    }
    for (auto& th : threads) th.join();
  };

  run(IoRequest::Op::kWrite, data.get());
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(dev->inflight(), 0u);
  auto back = Aligned(kBlocks * kBs);
  std::memset(back.get(), 0xAA, kBlocks * kBs);
  run(IoRequest::Op::kRead, back.get());
  EXPECT_EQ(errors.load(), 0);
  for (uint64_t b = 0; b < kBlocks; ++b) {
    ASSERT_EQ(Checksum(back.get() + b * kBs, kBs), Checksum(data.get() + b * kBs, kBs)) << "block " << b;
  }
  EXPECT_LE(max_inflight.load(), kDepth) << "never more than queue_depth in flight";
  EXPECT_GT(max_inflight.load(), 1u) << "requests did overlap";
}

TEST_P(UringTest, VectoredRequests) {
  auto dev = Open();
  ASSERT_TRUE(dev);
  auto a = Aligned(kBs), b = Aligned(3 * kBs), c = Aligned(2 * kBs);
  Fill(a.get(), kBs, 1);
  Fill(b.get(), 3 * kBs, 2);
  Fill(c.get(), 2 * kBs, 3);
  Latch wrote(1);
  int64_t wres = 0;
  IoRequest w;
  w.op = IoRequest::Op::kWrite;
  w.offset = 100 * kBs;
  w.iov = {iovec{a.get(), kBs}, iovec{b.get(), 3 * kBs}, iovec{c.get(), 2 * kBs}};
  w.done = [&](int64_t r) { wres = r; wrote.CountDown(); };
  std::vector<IoRequest> wv;
  wv.push_back(std::move(w));
  dev->Submit(std::move(wv));
  ASSERT_TRUE(wrote.Wait());
  EXPECT_EQ(wres, 6 * kBs);

  // Read back with a different split of buffers.
  auto x = Aligned(2 * kBs), y = Aligned(4 * kBs);
  Latch read(1);
  int64_t rres = 0;
  IoRequest r;
  r.op = IoRequest::Op::kRead;
  r.offset = 100 * kBs;
  r.iov = {iovec{x.get(), 2 * kBs}, iovec{y.get(), 4 * kBs}};
  r.done = [&](int64_t res) { rres = res; read.CountDown(); };
  std::vector<IoRequest> rv;
  rv.push_back(std::move(r));
  dev->Submit(std::move(rv));
  ASSERT_TRUE(read.Wait());
  EXPECT_EQ(rres, 6 * kBs);
  std::string expect = std::string(a.get(), kBs) + std::string(b.get(), 3 * kBs) + std::string(c.get(), 2 * kBs);
  std::string got = std::string(x.get(), 2 * kBs) + std::string(y.get(), 4 * kBs);
  EXPECT_TRUE(expect == got);
}

TEST_P(UringTest, ReadPastEndIsShort) {
  auto dev = Open();
  ASSERT_TRUE(dev);
  auto buf = Aligned(2 * kBs);
  // Entirely past the end: the device reports 0 bytes, the helper an error.
  absl::Status s = dev->Read(kBlocks * kBs, buf.get(), kBs);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("short read"), std::string::npos) << s;
  // Straddling the end: half of it.
  Latch l(1);
  int64_t res = -1;
  IoRequest r;
  r.op = IoRequest::Op::kRead;
  r.offset = (kBlocks - 1) * kBs;
  r.iov = {iovec{buf.get(), 2 * kBs}};
  r.done = [&](int64_t v) { res = v; l.CountDown(); };
  std::vector<IoRequest> v;
  v.push_back(std::move(r));
  dev->Submit(std::move(v));
  ASSERT_TRUE(l.Wait());
  EXPECT_EQ(res, kBs);
  EXPECT_FALSE(dev->Read((kBlocks - 1) * kBs, buf.get(), 2 * kBs).ok());
}

TEST_P(UringTest, WritePastEndAndBadRequestsAreErrors) {
  auto dev = Open();
  ASSERT_TRUE(dev);
  auto buf = Aligned(kBs);
  absl::Status s = dev->Write(kBlocks * kBs, buf.get(), kBs);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(dev->size_bytes(), kBlocks * kBs);
  std::ifstream f(path_, std::ios::ate | std::ios::binary);
  EXPECT_EQ(static_cast<uint64_t>(f.tellg()), kBlocks * kBs) << "the file did not grow";

  Latch l(1);
  int64_t res = 0;
  IoRequest empty;  // no buffers
  empty.done = [&](int64_t v) { res = v; l.CountDown(); };
  std::vector<IoRequest> v;
  v.push_back(std::move(empty));
  dev->Submit(std::move(v));
  ASSERT_TRUE(l.Wait());
  EXPECT_EQ(res, -EINVAL);
}

// A completion callback that submits more IO (as a write chain does) works
// even with a queue of one, where the callback's thread cannot wait.
TEST_P(UringTest, CallbacksMaySubmit) {
  auto dev = Open(/*depth=*/1);
  ASSERT_TRUE(dev);
  auto buf = Aligned(kBs);
  Fill(buf.get(), kBs, 9);
  constexpr int kChain = 50;
  Latch l(1);
  std::atomic<int> count{0};
  std::function<void(int64_t)> next = [&](int64_t res) {
    EXPECT_EQ(res, kBs);
    const int n = ++count;
    if (n == kChain) {
      l.CountDown();
      return;
    }
    std::vector<IoRequest> v(2);
    for (auto& r : v) {
      r.op = IoRequest::Op::kWrite;
      r.offset = static_cast<uint64_t>(n) * kBs;
      r.iov = {iovec{buf.get(), kBs}};
    }
    v[0].done = next;
    v[1].done = [](int64_t) {};  // a second request that must queue behind
    dev->Submit(std::move(v));
  };
  std::vector<IoRequest> first(1);
  first[0].op = IoRequest::Op::kWrite;
  first[0].iov = {iovec{buf.get(), kBs}};
  first[0].done = next;
  dev->Submit(std::move(first));
  ASSERT_TRUE(l.Wait());
  EXPECT_EQ(count.load(), kChain);
}

TEST_P(UringTest, DestructorWaitsForInFlightIo) {
  auto buf = Aligned(64 * kBs);
  Fill(buf.get(), 64 * kBs, 5);
  std::atomic<int> completed{0};
  {
    auto dev = Open(8);
    ASSERT_TRUE(dev);
    std::vector<IoRequest> v(64);
    for (int i = 0; i < 64; ++i) {
      v[i].op = IoRequest::Op::kWrite;
      v[i].offset = static_cast<uint64_t>(i) * kBs;
      v[i].iov = {iovec{buf.get() + i * kBs, kBs}};
      v[i].done = [&](int64_t) { ++completed; };
    }
    std::thread submitter([&] { dev->Submit(std::move(v)); });
    submitter.join();
  }
  EXPECT_EQ(completed.load(), 64);
}

INSTANTIATE_TEST_SUITE_P(DirectAndBuffered, UringTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Direct" : "Buffered"; });

TEST(UringOpenTest, RefusesBadFiles) {
  TempDir tmp;
  UringOptions o;
  auto missing = UringBlockStore::Open(tmp.Sub("nope"), kBs, o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot open data file"), std::string::npos);

  std::ofstream(tmp.Sub("odd")) << std::string(kBs + 1, 'x');
  auto odd = UringBlockStore::Open(tmp.Sub("odd"), kBs, o);
  ASSERT_FALSE(odd.ok());
  EXPECT_NE(odd.status().message().find("not a multiple of the block size"), std::string::npos)
      << odd.status();

  std::ofstream(tmp.Sub("ok")) << std::string(kBs, 'x');
  EXPECT_FALSE(UringBlockStore::Open(tmp.Sub("ok"), 1000, o).ok());
  o.queue_depth = 0;
  EXPECT_FALSE(UringBlockStore::Open(tmp.Sub("ok"), kBs, o).ok());
}

// The data file stays locked while any reference to the store's open file
// lives. A forked child inherits one, as an IO request in flight holds one.
TEST(UringLockTest, SecondOpenWaitsForEveryReferenceToTheFile) {
  TempDir tmp;
  const std::string path = tmp.Sub("data");
  std::ofstream(path) << std::string(16 * kBs, 'x');
  UringOptions o;
  o.lock_wait_ms = 0;
  auto first = UringBlockStore::Open(path, kBs, o);
  ASSERT_TRUE(first.ok()) << first.status();

  auto busy = UringBlockStore::Open(path, kBs, o);
  ASSERT_FALSE(busy.ok());
  EXPECT_TRUE(absl::IsUnavailable(busy.status())) << busy.status();
  EXPECT_NE(busy.status().message().find("store is in use"), std::string::npos) << busy.status();

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::usleep(400'000);  // holds the inherited reference, then drops it
    ::_exit(0);
  }
  first->reset();  // the parent's reference is gone, the child's is not
  EXPECT_FALSE(UringBlockStore::Open(path, kBs, o).ok()) << "lock dropped while a reference lives";

  o.lock_wait_ms = 10'000;
  const auto t0 = std::chrono::steady_clock::now();
  auto second = UringBlockStore::Open(path, kBs, o);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_GE(waited, std::chrono::milliseconds(200));
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
}

// A process killed with IO in flight: its O_DIRECT writes may complete after
// it is reaped. The next owner of the file, once it has the lock, must never
// see one of them land over its own writes.
TEST(UringLockTest, NoWriteOfAKilledOwnerLandsAfterTheNextOpen) {
  constexpr size_t kChunk = 1 << 20;
  constexpr int kChunks = 64;
  TempDir tmp;
  const std::string path = tmp.Sub("data");
  {
    int fd = ::open(path.c_str(), O_CREAT | O_RDWR, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, kChunk * kChunks), 0);
    ::close(fd);
  }
  Buffer buf = Aligned(kChunk);
  for (int trial = 0; trial < 10; ++trial) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto dev = UringBlockStore::Open(path, kBs, UringOptions{.queue_depth = kChunks});
      if (!dev.ok()) ::_exit(2);
      std::memset(buf.get(), 'C', kChunk);
      std::vector<IoRequest> reqs(kChunks);
      for (int i = 0; i < kChunks; ++i) {
        reqs[i].op = IoRequest::Op::kWrite;
        reqs[i].offset = uint64_t{kChunk} * i;
        reqs[i].iov = {{buf.get(), kChunk}};
        reqs[i].done = [](int64_t) {};
      }
      (*dev)->Submit(std::move(reqs));
      (void)!::write(ready[1], "x", 1);
      ::raise(SIGKILL);
    }
    ::close(ready[1]);
    char c;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ::close(ready[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);

    auto dev = UringBlockStore::Open(path, kBs, UringOptions{});
    ASSERT_TRUE(dev.ok()) << dev.status();
    std::memset(buf.get(), 'P', kChunk);
    for (int i = kChunks - 1; i >= 0; --i) ASSERT_TRUE((*dev)->Write(uint64_t{kChunk} * i, buf.get(), kChunk).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    for (int i = 0; i < kChunks; ++i) {
      ASSERT_TRUE((*dev)->Read(uint64_t{kChunk} * i, buf.get(), kChunk).ok());
      for (size_t k = 0; k < kChunk; k += kBs) {
        ASSERT_EQ(buf.get()[k], 'P') << "trial " << trial << ": chunk " << i
                                     << " was overwritten by the killed owner";
      }
    }
  }
}

}  // namespace
}  // namespace reclaimfs::storage

// FaultInjectingDevice over a real UringBlockStore on a scratch file, and the
// text form of its rules. What reached the disk is checked through the real
// device, past the rules.
#include "storage/fault_injection.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "storage/uring_block_store.h"
#include "temp_dir.h"

namespace reclaimfs::storage {
namespace {

using testing::TempDir;
using Op = FaultRule::Op;
using Kind = FaultRule::Kind;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kBs = 4096;
constexpr uint64_t kBlocks = 256;
constexpr auto kWaitLimit = std::chrono::seconds(20);

// Whole blocks of aligned memory, filled with one byte.
class Buf {
 public:
  explicit Buf(size_t blocks, char fill = 0)
      : size_(blocks * kBs), p_(static_cast<char*>(std::aligned_alloc(kIoAlignment, size_))) {
    std::memset(p_, fill, size_);
  }
  ~Buf() { std::free(p_); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;

  char* data() { return p_; }
  size_t size() const { return size_; }
  std::string str() const { return std::string(p_, size_); }

 private:
  size_t size_;
  char* p_;
};

std::string Bytes(size_t blocks, char fill) { return std::string(blocks * kBs, fill); }

// Polls until `pred` holds, within kWaitLimit. A request leaves inflight()
// just after its callback returns, so a test that saw the callback waits.
bool Eventually(const std::function<bool()>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// One request's completion: its result and the thread it ran on.
class Completion {
 public:
  std::function<void(int64_t)> Callback() {
    return [this](int64_t result) {
      std::lock_guard<std::mutex> l(mu_);
      result_ = result;
      thread_ = std::this_thread::get_id();
      done_ = true;
      cv_.notify_all();
    };
  }
  bool Wait() {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, kWaitLimit, [&] { return done_; });
  }
  bool done() {
    std::lock_guard<std::mutex> l(mu_);
    return done_;
  }
  int64_t result() {
    std::lock_guard<std::mutex> l(mu_);
    return result_;
  }
  std::thread::id thread() {
    std::lock_guard<std::mutex> l(mu_);
    return thread_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  int64_t result_ = 0;
  std::thread::id thread_;
};

IoRequest Request(IoRequest::Op op, uint64_t block, std::vector<iovec> iov,
                  std::function<void(int64_t)> done) {
  IoRequest r;
  r.op = op;
  r.offset = block * kBs;
  r.iov = std::move(iov);
  r.done = std::move(done);
  return r;
}

std::vector<IoRequest> One(IoRequest r) {
  std::vector<IoRequest> v;
  v.push_back(std::move(r));
  return v;
}

class FaultInjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const int fd = ::open(path_.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(kBlocks * kBs)), 0);
    ::close(fd);
    auto real = UringBlockStore::Open(path_, kBs, UringOptions{});
    ASSERT_TRUE(real.ok()) << real.status();
    real_ = std::move(*real);
    dev_ = std::make_unique<FaultInjectingDevice>(real_.get());
  }

  void Rules(std::string_view text) {
    auto rules = ParseFaultRules(text);
    ASSERT_TRUE(rules.ok()) << rules.status();
    for (const FaultRule& r : *rules) ASSERT_TRUE(dev_->AddRule(r).ok());
  }

  // One request through the decorator, waited for: its result. Its callback
  // must not have run on this thread.
  int64_t Do(IoRequest::Op op, uint64_t block, std::vector<iovec> iov) {
    Completion c;
    dev_->Submit(One(Request(op, block, std::move(iov), c.Callback())));
    EXPECT_TRUE(c.Wait());
    EXPECT_NE(c.thread(), std::this_thread::get_id());
    return c.result();
  }
  int64_t Write(uint64_t block, Buf& b) {
    return Do(IoRequest::Op::kWrite, block, {{b.data(), b.size()}});
  }
  int64_t Read(uint64_t block, Buf& b) { return Do(IoRequest::Op::kRead, block, {{b.data(), b.size()}}); }
  int64_t Write(uint64_t block, size_t blocks, char fill) {
    Buf b(blocks, fill);
    return Write(block, b);
  }
  int64_t Read(uint64_t block, size_t blocks) {
    Buf b(blocks);
    return Read(block, b);
  }

  // What the file holds, read past the rules.
  std::string OnDisk(uint64_t block, size_t blocks) {
    Buf b(blocks);
    EXPECT_TRUE(real_->Read(block * kBs, b.data(), b.size()).ok());
    return b.str();
  }

  TempDir tmp_;
  std::string path_ = tmp_.Sub("data");
  std::unique_ptr<UringBlockStore> real_;
  std::unique_ptr<FaultInjectingDevice> dev_;  // destroyed before real_
};

TEST_F(FaultInjectionTest, NthWriteFailsAndNothingElse) {
  Rules("write:nth=3:errno=ENOSPC");
  EXPECT_EQ(Write(0, 1, 'a'), kBs);
  EXPECT_EQ(Read(0, 1), kBs) << "reads do not count towards a write rule";
  EXPECT_EQ(Write(1, 1, 'b'), kBs);
  EXPECT_EQ(Write(2, 1, 'c'), -ENOSPC);
  EXPECT_EQ(Write(3, 1, 'd'), kBs) << "nth alone applies once";
  EXPECT_EQ(dev_->rule_count(), 0u);
  EXPECT_EQ(OnDisk(0, 4), Bytes(1, 'a') + Bytes(1, 'b') + Bytes(1, 0) + Bytes(1, 'd'));
  const FaultStats st = dev_->stats();
  EXPECT_EQ(st.writes, 4u);
  EXPECT_EQ(st.reads, 1u);
  EXPECT_EQ(st.failed, 1u);
  EXPECT_EQ(st.torn + st.shortened + st.delayed, 0u);
}

TEST_F(FaultInjectionTest, NthReadCountsOnlyReads) {
  ASSERT_TRUE(dev_->AddRule(FaultRule{.op = Op::kRead, .nth = 2}).ok());
  EXPECT_EQ(Read(0, 1), kBs);
  EXPECT_EQ(Write(0, 1, 'x'), kBs);
  EXPECT_EQ(Write(1, 1, 'y'), kBs);
  EXPECT_EQ(Read(0, 1), -EIO) << "EIO by default";
  EXPECT_EQ(Read(0, 1), kBs);
  EXPECT_EQ(dev_->stats().failed, 1u);
}

TEST_F(FaultInjectionTest, EveryReadFailsUntilCleared) {
  Rules("read");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Read(i, 1), -EIO);
  EXPECT_EQ(Write(0, 1, 'w'), kBs);
  EXPECT_EQ(dev_->rule_count(), 1u) << "a rule without nth or count never expires";
  dev_->ClearRules();
  Buf b(1);
  EXPECT_EQ(Read(0, b), kBs);
  EXPECT_EQ(b.str(), Bytes(1, 'w'));
  EXPECT_EQ(dev_->stats().failed, 3u);
}

TEST_F(FaultInjectionTest, RangeRuleHitsOnlyRequestsTouchingTheRange) {
  Rules("any:range=8K+8K");  // blocks 2 and 3
  EXPECT_EQ(Write(0, 2, 'a'), 2 * kBs) << "ends where the range starts";
  EXPECT_EQ(Write(4, 1, 'a'), kBs) << "starts where the range ends";
  EXPECT_EQ(Write(3, 2, 'a'), -EIO) << "straddles the end of the range";
  EXPECT_EQ(Write(1, 2, 'a'), -EIO) << "straddles its start";
  EXPECT_EQ(Read(2, 1), -EIO);
  EXPECT_EQ(Read(0, 8), -EIO) << "covers it";
  EXPECT_EQ(OnDisk(2, 2), Bytes(2, 0));

  dev_->ClearRules();
  Rules("write:range=8K+4K:errno=EROFS");
  EXPECT_EQ(Read(2, 1), kBs) << "a write rule lets reads pass";
  EXPECT_EQ(Write(2, 1, 'b'), -EROFS);
  EXPECT_EQ(Write(3, 1, 'b'), kBs);
}

TEST_F(FaultInjectionTest, FailedWriteLeavesTheDiskUnchanged) {
  EXPECT_EQ(Write(10, 4, 'A'), 4 * kBs);
  Rules("write");
  Buf b1(1, 'B'), b2(3, 'B');
  EXPECT_EQ(Do(IoRequest::Op::kWrite, 10, {{b1.data(), b1.size()}, {b2.data(), b2.size()}}), -EIO);
  EXPECT_EQ(Write(12, 1, 'B'), -EIO);
  EXPECT_EQ(OnDisk(10, 4), Bytes(4, 'A'));
  EXPECT_TRUE(Eventually([&] { return dev_->inflight() == 0; }));
}

TEST_F(FaultInjectionTest, TornWriteLandsButReportsTheError) {
  EXPECT_EQ(Write(10, 2, 'A'), 2 * kBs);
  Rules("write:torn:errno=EROFS:count=1");
  EXPECT_EQ(Write(10, 2, 'B'), -EROFS);
  EXPECT_EQ(OnDisk(10, 2), Bytes(2, 'B'));

  Rules("read:torn");
  Buf b(2, 'z');
  EXPECT_EQ(Read(10, b), -EIO);
  EXPECT_EQ(b.str(), Bytes(2, 'B')) << "a torn read fills the buffer too";
  EXPECT_EQ(dev_->stats().torn, 2u);
  EXPECT_EQ(dev_->stats().failed, 0u);
}

TEST_F(FaultInjectionTest, ShortTransfersDoHalfAndNoMore) {
  EXPECT_EQ(Write(20, 4, 'A'), 4 * kBs);
  Rules("write:short:count=2");
  // Vectored, so the cut falls inside the second buffer.
  Buf b1(1, 'B'), b2(3, 'B');
  EXPECT_EQ(Do(IoRequest::Op::kWrite, 20, {{b1.data(), b1.size()}, {b2.data(), b2.size()}}), 2 * kBs);
  EXPECT_EQ(OnDisk(20, 4), Bytes(2, 'B') + Bytes(2, 'A'));
  // Half a block rounds down to nothing: no IO at all.
  EXPECT_EQ(Write(30, 1, 'C'), 0);
  EXPECT_EQ(OnDisk(30, 1), Bytes(1, 0));

  Rules("read:short");
  Buf r(4, 'z');
  EXPECT_EQ(Read(20, r), 2 * kBs);
  EXPECT_EQ(r.str(), Bytes(2, 'B') + Bytes(2, 'z')) << "the second half is not read";
  EXPECT_EQ(dev_->stats().shortened, 3u);

  // The synchronous helpers see it as an error.
  dev_->ClearRules();
  Rules("write:short:count=1");
  Buf w(2, 'D');
  EXPECT_FALSE(dev_->Write(40 * kBs, w.data(), w.size()).ok());
}

TEST_F(FaultInjectionTest, DelayedRequestReachesTheDeviceLateAndSubmitDoesNotWait) {
  constexpr auto kDelay = milliseconds(400);
  Rules("write:range=0+4K:delay_ms=400");
  Buf slow(1, 'S'), fast(1, 'F');
  Completion cs, cf;
  std::vector<IoRequest> batch;
  batch.push_back(Request(IoRequest::Op::kWrite, 0, {{slow.data(), kBs}}, cs.Callback()));
  batch.push_back(Request(IoRequest::Op::kWrite, 1, {{fast.data(), kBs}}, cf.Callback()));
  const auto start = Clock::now();
  dev_->Submit(std::move(batch));
  EXPECT_LT(Clock::now() - start, kDelay / 2) << "Submit returned without serving the delay";

  ASSERT_TRUE(cf.Wait());
  EXPECT_EQ(cf.result(), kBs);
  EXPECT_FALSE(cs.done()) << "the delayed request completes after the one behind it";
  EXPECT_EQ(OnDisk(0, 1), Bytes(1, 0)) << "it has not reached the device yet";
  EXPECT_TRUE(Eventually([&] { return dev_->inflight() == 1; })) << "the held request counts";

  ASSERT_TRUE(cs.Wait());
  EXPECT_GE(Clock::now() - start, kDelay);
  EXPECT_EQ(cs.result(), kBs);
  EXPECT_NE(cs.thread(), std::this_thread::get_id());
  EXPECT_EQ(OnDisk(0, 1), Bytes(1, 'S'));
  EXPECT_EQ(dev_->stats().delayed, 1u);
}

TEST_F(FaultInjectionTest, DelayedRequestsCompleteInDueOrder) {
  Rules("read:range=0+4K:delay_ms=300; read:range=4K+4K:delay_ms=50");
  std::mutex mu;
  std::vector<int> order;
  Completion c0, c1, c2;
  auto record = [&](int id, Completion& c) {
    return [&, id, cb = c.Callback()](int64_t r) {
      {
        std::lock_guard<std::mutex> l(mu);
        order.push_back(id);
      }
      cb(r);
    };
  };
  Buf b0(1), b1(1), b2(1);
  std::vector<IoRequest> batch;
  batch.push_back(Request(IoRequest::Op::kRead, 0, {{b0.data(), kBs}}, record(0, c0)));
  batch.push_back(Request(IoRequest::Op::kRead, 1, {{b1.data(), kBs}}, record(1, c1)));
  batch.push_back(Request(IoRequest::Op::kRead, 2, {{b2.data(), kBs}}, record(2, c2)));
  dev_->Submit(std::move(batch));
  ASSERT_TRUE(c0.Wait() && c1.Wait() && c2.Wait());
  EXPECT_EQ(order, (std::vector<int>{2, 1, 0}));
  EXPECT_EQ(dev_->stats().delayed, 2u);
}

TEST_F(FaultInjectionTest, RulesExpireAfterCount) {
  Rules("write:count=2");
  EXPECT_EQ(dev_->rule_count(), 1u);
  EXPECT_EQ(Write(0, 1, 'a'), -EIO);
  EXPECT_EQ(dev_->rule_count(), 1u);
  EXPECT_EQ(Write(0, 1, 'a'), -EIO);
  EXPECT_EQ(dev_->rule_count(), 0u);
  EXPECT_EQ(Write(0, 1, 'a'), kBs);

  Rules("write:nth=2:count=2");
  EXPECT_EQ(Write(0, 1, 'a'), kBs);
  EXPECT_EQ(Write(0, 1, 'a'), -EIO);
  EXPECT_EQ(Write(0, 1, 'a'), -EIO);
  EXPECT_EQ(Write(0, 1, 'a'), kBs);
  EXPECT_EQ(dev_->stats().failed, 4u);
}

// Each rule counts the requests it matches; the first whose turn it is applies.
TEST_F(FaultInjectionTest, FirstRuleInOrderApplies) {
  Rules("write:nth=1:errno=EROFS; write:nth=1:errno=ENOSPC");
  EXPECT_EQ(Write(0, 1, 'a'), -EROFS);
  EXPECT_EQ(Write(0, 1, 'a'), -ENOSPC) << "the second rule's turn came while the first took it";
  EXPECT_EQ(Write(0, 1, 'a'), kBs);
}

TEST_F(FaultInjectionTest, FlushCanFail) {
  Rules("flush:errno=EROFS:count=2");
  const absl::Status s = dev_->Flush();
  EXPECT_EQ(s.code(), absl::ErrnoToStatus(EROFS, "").code());
  EXPECT_NE(s.message().find("injected"), std::string::npos) << s;
  EXPECT_FALSE(dev_->Flush().ok());
  EXPECT_TRUE(dev_->Flush().ok());
  Rules("write");
  EXPECT_TRUE(dev_->Flush().ok()) << "IO rules do not touch Flush";
  const FaultStats st = dev_->stats();
  EXPECT_EQ(st.flushes, 4u);
  EXPECT_EQ(st.failed, 2u);
}

TEST_F(FaultInjectionTest, CallbacksOfInjectedFaultsMaySubmit) {
  Rules("write:count=1");
  Buf w(1, 'q'), r(1);
  Completion second;
  FaultInjectingDevice* dev = dev_.get();
  std::function<void(int64_t)> first = [&](int64_t res) {
    EXPECT_EQ(res, -EIO);
    dev->Submit(One(Request(IoRequest::Op::kWrite, 5, {{w.data(), kBs}}, second.Callback())));
  };
  dev_->Submit(One(Request(IoRequest::Op::kWrite, 5, {{w.data(), kBs}}, first)));
  ASSERT_TRUE(second.Wait());
  EXPECT_EQ(second.result(), kBs);
  EXPECT_EQ(OnDisk(5, 1), Bytes(1, 'q'));
}

TEST_F(FaultInjectionTest, RejectsInvalidRulesAndKeepsTheOldOnes) {
  Rules("read");
  EXPECT_TRUE(absl::IsInvalidArgument(dev_->AddRule(FaultRule{.op = Op::kFlush, .kind = Kind::kShort})));
  EXPECT_TRUE(absl::IsInvalidArgument(dev_->AddRule(FaultRule{.kind = Kind::kDelay})));
  EXPECT_TRUE(absl::IsInvalidArgument(dev_->AddRule(FaultRule{.error = 0})));
  EXPECT_TRUE(absl::IsInvalidArgument(
      dev_->SetRules({FaultRule{.op = Op::kWrite}, FaultRule{.count = uint64_t{0}}})));
  EXPECT_EQ(dev_->rule_count(), 1u);
  EXPECT_EQ(Read(0, 1), -EIO);
  EXPECT_EQ(Write(0, 1, 'a'), kBs) << "the rejected write rule was not installed";
}

// Four threads keep IO flowing while another replaces the rules; every
// request completes once with a result some rule explains, and the counters
// agree with the results.
TEST_F(FaultInjectionTest, RulesChangeSafelyWhileIoFlows) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 150;
  constexpr uint64_t kSlice = kBlocks / kThreads;
  std::vector<std::vector<FaultRule>> sets;
  for (const char* text : {"any", "write:torn", "read:short", "any:delay_ms=2", "write:nth=2;read:nth=3",
                           "any:range=0+64K:errno=ENOSPC", "", "any:short:count=5;write:delay_ms=1"}) {
    auto parsed = ParseFaultRules(text);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    sets.push_back(*parsed);
  }
  std::atomic<bool> io_done{false};
  std::atomic<uint64_t> errors{0}, halves{0}, fulls{0}, unexplained{0}, submitted{0};
  std::thread changer([&] {
    std::mt19937 rng(7);
    while (!io_done.load()) {
      const auto& set = sets[rng() % sets.size()];
      if (rng() % 2) {
        EXPECT_TRUE(dev_->SetRules(set).ok());
      } else if (!set.empty()) {
        EXPECT_TRUE(dev_->AddRule(set.front()).ok());
      } else {
        dev_->ClearRules();
      }
      (void)dev_->stats();
      (void)dev_->rule_count();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      Buf buf(kSlice, static_cast<char>('a' + t));
      std::mt19937 rng(t);
      for (int round = 0; round < kRounds; ++round) {
        constexpr int kBatch = 4;
        Completion c[kBatch];
        std::vector<IoRequest> batch;
        for (int i = 0; i < kBatch; ++i) {
          const uint64_t block = rng() % (kSlice - 2);
          batch.push_back(Request(rng() % 2 ? IoRequest::Op::kRead : IoRequest::Op::kWrite,
                                  t * kSlice + block, {{buf.data() + block * kBs, 2 * kBs}},
                                  c[i].Callback()));
        }
        submitted += kBatch;
        dev_->Submit(std::move(batch));
        for (Completion& one : c) {
          ASSERT_TRUE(one.Wait());
          const int64_t r = one.result();
          if (r == 2 * kBs) {
            ++fulls;
          } else if (r == kBs) {
            ++halves;
          } else if (r == -EIO || r == -ENOSPC) {
            ++errors;
          } else {
            ++unexplained;
          }
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  io_done = true;
  changer.join();

  EXPECT_EQ(unexplained.load(), 0u);
  EXPECT_TRUE(Eventually([&] { return dev_->inflight() == 0; }));
  const FaultStats st = dev_->stats();
  EXPECT_EQ(st.reads + st.writes, submitted.load());
  EXPECT_EQ(st.failed + st.torn, errors.load());
  EXPECT_EQ(st.shortened, halves.load());
  EXPECT_GT(errors.load(), 0u);
  EXPECT_GT(fulls.load(), 0u);
  EXPECT_GT(st.delayed, 0u);

  dev_->ClearRules();
  EXPECT_EQ(Write(0, 2, 'Z'), 2 * kBs);
  EXPECT_EQ(OnDisk(0, 2), Bytes(2, 'Z'));
}

// The destructor cancels what is still delayed, waits for what the device
// has, and returns only when every callback has run.
TEST_F(FaultInjectionTest, DestructionCompletesPendingDelayedIo) {
  constexpr int kDelayed = 8;
  Rules("write:range=0+32K:delay_ms=60000");
  Buf slow(kDelayed, 'S'), fast(16, 'F');
  std::atomic<int> cancelled{0}, other{0}, written{0};
  std::vector<IoRequest> batch;
  for (int i = 0; i < kDelayed; ++i) {
    batch.push_back(Request(IoRequest::Op::kWrite, i, {{slow.data() + i * kBs, kBs}},
                            [&](int64_t r) { ++(r == -ECANCELED ? cancelled : other); }));
  }
  for (int i = 0; i < 16; ++i) {
    batch.push_back(Request(IoRequest::Op::kWrite, 100 + i, {{fast.data() + i * kBs, kBs}},
                            [&](int64_t r) { ++(r == kBs ? written : other); }));
  }
  dev_->Submit(std::move(batch));
  EXPECT_EQ(dev_->stats().delayed, static_cast<uint64_t>(kDelayed));
  const auto start = Clock::now();
  dev_.reset();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5)) << "the delays were not waited out";
  EXPECT_EQ(cancelled.load(), kDelayed);
  EXPECT_EQ(written.load(), 16);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(OnDisk(0, kDelayed), Bytes(kDelayed, 0)) << "cancelled writes never reached the device";
  EXPECT_EQ(OnDisk(100, 16), Bytes(16, 'F'));
}

TEST(ParseFaultRulesTest, AcceptsEachForm) {
  auto r = ParseFaultRules("write:nth=3:errno=EIO");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].op, Op::kWrite);
  EXPECT_EQ((*r)[0].kind, Kind::kFail);
  EXPECT_EQ((*r)[0].nth, 3u);
  EXPECT_EQ((*r)[0].error, EIO);
  EXPECT_FALSE((*r)[0].count.has_value());

  r = ParseFaultRules("read:range=0+1M");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].op, Op::kRead);
  EXPECT_EQ((*r)[0].range_offset, 0u);
  EXPECT_EQ((*r)[0].range_length, 1u << 20);
  EXPECT_EQ((*r)[0].nth, 0u);

  r = ParseFaultRules("write:short");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].kind, Kind::kShort);

  r = ParseFaultRules("any:delay_ms=200:count=10");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].op, Op::kAny);
  EXPECT_EQ((*r)[0].kind, Kind::kDelay);
  EXPECT_EQ((*r)[0].delay, milliseconds(200));
  EXPECT_EQ((*r)[0].count, 10u);

  r = ParseFaultRules("flush:errno=erofs");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].op, Op::kFlush);
  EXPECT_EQ((*r)[0].error, EROFS);

  r = ParseFaultRules(" write:torn:errno=28 ; read:range=4k+2G ");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].kind, Kind::kTorn);
  EXPECT_EQ((*r)[0].error, 28);
  EXPECT_EQ((*r)[1].range_offset, 4096u);
  EXPECT_EQ((*r)[1].range_length, 2ull << 30);

  for (const char* blank : {"", "  "}) {
    r = ParseFaultRules(blank);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->empty());
  }
}

TEST(ParseFaultRulesTest, NamesTheBadPart) {
  const std::pair<const char*, const char*> cases[] = {
      {"erase", "unknown operation 'erase'"},
      {"write:nth=0", "'nth=0' needs a positive integer"},
      {"write:nth=x", "'nth=x' needs a positive integer"},
      {"write:count=-1", "'count=-1'"},
      {"write:nth", "'nth' needs a value"},
      {"write:", "'' is empty"},
      {"write:short=2", "'short=2' takes no value"},
      {"write:range=1M", "'range=1M'"},
      {"write:range=0+0", "'range=0+0'"},
      {"write:range=0+1X", "'range=0+1X'"},
      {"write:range=18446744073709551615+2", "range ends past"},
      {"write:errno=EBOGUS", "'errno=EBOGUS' is not an errno"},
      {"write:errno=0", "'errno=0'"},
      {"write:color=red", "'color=red' is not a parameter"},
      {"write:nth=1:nth=2", "'nth=2' repeats"},
      {"write:short:torn", "exclude each other"},
      {"write:delay_ms=5:errno=EIO", "errno applies only"},
      {"write:delay_ms=99999999999", "'delay_ms=99999999999' is longer than an hour"},
      {"flush:delay_ms=5", "flush rules can only fail"},
      {"flush:range=0+4K", "flush rules take no range"},
      {"write;;read", "'': empty rule"},
      {"write:nth=2;bogus:nth=1", "fault rule 'bogus:nth=1': unknown operation"},
  };
  for (const auto& [text, expected] : cases) {
    auto r = ParseFaultRules(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << text;
    EXPECT_NE(r.status().message().find(expected), std::string::npos)
        << text << " gave: " << r.status().message();
  }
}

}  // namespace
}  // namespace reclaimfs::storage

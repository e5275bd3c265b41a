// Test environment of the data path: a real store (MetaStore, Allocator,
// UringBlockStore) in a scratch directory, a real MemoryManager, a FileData,
// and a stand-in for the POSIX layer that keeps file sizes. A BlockDevice
// decorator can delay IO, count writes per block and fail writes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <sys/stat.h>

#include "fs/cache/file_data.h"
#include "gtest/gtest.h"
#include "reclaim/memory_manager.h"
#include "storage/allocator.h"
#include "storage/meta_store.h"
#include "storage/uring_block_store.h"

namespace reclaimfs::fs::testing {

// Keeps sizes like the POSIX layer does and writes them with every commit.
class SizeRecords : public InodeRecordSource {
 public:
  void Set(uint64_t ino, uint64_t size) {
    std::lock_guard<std::mutex> l(mu_);
    sizes_[ino] = size;
  }
  void Grow(uint64_t ino, uint64_t end) {
    std::lock_guard<std::mutex> l(mu_);
    sizes_[ino] = std::max(sizes_[ino], end);
  }
  uint64_t Get(uint64_t ino) {
    std::lock_guard<std::mutex> l(mu_);
    return sizes_[ino];
  }
  void AddInodeRecord(uint64_t ino, storage::MetaStore::Batch* batch) override {
    storage::InodeRecord r;
    r.ino = ino;
    r.mode = S_IFREG | 0644;
    r.nlink = 1;
    r.size = Get(ino);
    batch->PutInode(r);
  }

 private:
  std::mutex mu_;
  std::map<uint64_t, uint64_t> sizes_;
};

// Decorates the real device: optional delay of every request (on its own
// thread, so Submit never blocks), per-block write counts, injected errors.
class TestDevice : public storage::BlockDevice {
 public:
  explicit TestDevice(storage::BlockDevice* real) : real_(real), thread_([this] { Run(); }) {}
  ~TestDevice() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void set_delay(std::chrono::milliseconds d) { delay_ms_.store(d.count()); }
  void set_fail_writes(bool f) { fail_writes_.store(f); }
  uint64_t writes_of(uint64_t block) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = block_writes_.find(block);
    return it == block_writes_.end() ? 0 : it->second;
  }
  uint64_t write_requests() const { return write_requests_.load(); }

  void Submit(std::vector<storage::IoRequest> requests) override {
    for (auto& r : requests) {
      if (r.op != storage::IoRequest::Op::kWrite) continue;
      write_requests_.fetch_add(1);
      uint64_t bytes = 0;
      for (auto& v : r.iov) bytes += v.iov_len;
      std::lock_guard<std::mutex> l(mu_);
      for (uint64_t b = r.offset / 4096; b < (r.offset + bytes) / 4096; ++b) ++block_writes_[b];
    }
    if (fail_writes_.load()) {
      std::vector<storage::IoRequest> pass;
      for (auto& r : requests) {
        if (r.op == storage::IoRequest::Op::kWrite) {
          r.done(-EIO);
        } else {
          pass.push_back(std::move(r));
        }
      }
      requests.swap(pass);
      if (requests.empty()) return;
    }
    // io_uring hands requests to the completion thread through the kernel,
    // where a thread sanitizer cannot see the ordering: hand them over
    // through a mutex too, so the callbacks' view of the submitter's writes
    // is checked like any other.
    for (auto& r : requests) {
      r.done = [this, done = std::move(r.done)](int64_t res) {
        { std::lock_guard<std::mutex> l(handoff_mu_); }
        done(res);
      };
    }
    { std::lock_guard<std::mutex> l(handoff_mu_); }
    const int64_t d = delay_ms_.load();
    if (d == 0) return real_->Submit(std::move(requests));
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back({std::chrono::steady_clock::now() + std::chrono::milliseconds(d), std::move(requests)});
    cv_.notify_all();
  }
  absl::Status Flush() override { return real_->Flush(); }
  uint64_t size_bytes() const override { return real_->size_bytes(); }
  uint32_t block_size() const override { return real_->block_size(); }
  uint64_t inflight() const override { return real_->inflight(); }

 private:
  struct Delayed {
    std::chrono::steady_clock::time_point due;
    std::vector<storage::IoRequest> reqs;
  };
  void Run() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty() && stop_) return;
      Delayed d = std::move(queue_.front());
      queue_.pop_front();
      l.unlock();
      std::this_thread::sleep_until(d.due);
      real_->Submit(std::move(d.reqs));
      l.lock();
    }
  }

  storage::BlockDevice* real_;
  std::mutex handoff_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Delayed> queue_;
  bool stop_ = false;
  std::map<uint64_t, uint64_t> block_writes_;
  std::atomic<int64_t> delay_ms_{0};
  std::atomic<bool> fail_writes_{false};
  std::atomic<uint64_t> write_requests_{0};
  std::thread thread_;
};

struct EnvOptions {
  uint64_t store_bytes = 256ull << 20;
  uint64_t budget_bytes = 64ull << 20;
  bool kswapd = true;
  FileDataOptions data;
};

class DataEnv {
 public:
  explicit DataEnv(EnvOptions o = {}) : opts_(o) {
    char tmpl[] = "/tmp/reclaimfs-data-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    dir_ = p ? p : "";
    storage::MkfsOptions mk;
    mk.size_bytes = o.store_bytes;
    mk.force = true;
    absl::Status s = storage::MakeStore(dir_, mk);
    EXPECT_TRUE(s.ok()) << s;
    Open();
  }
  ~DataEnv() {
    Close();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void Open() {
    auto meta = storage::MetaStore::Open(dir_ + "/meta", storage::MetaOptions{});
    ASSERT_TRUE(meta.ok()) << meta.status();
    meta_ = std::move(*meta);
    auto sb = meta_->ReadSuperblock();
    ASSERT_TRUE(sb.ok()) << sb.status();
    alloc_ = std::make_unique<storage::Allocator>(sb->total_blocks());
    ASSERT_TRUE(alloc_->Load(*meta_).ok());
    auto dev = storage::UringBlockStore::Open(dir_ + "/data", sb->block_size, storage::UringOptions{});
    ASSERT_TRUE(dev.ok()) << dev.status();
    real_dev_ = std::move(*dev);
    dev_ = std::make_unique<TestDevice>(real_dev_.get());
    reclaim::MemoryOptions mo;
    mo.budget_bytes = opts_.budget_bytes;
    mo.start_kswapd = opts_.kswapd;
    mm_ = std::make_unique<reclaim::MemoryManager>(mo);
    data_ = std::make_unique<FileData>(meta_.get(), alloc_.get(), dev_.get(), mm_.get(), &records_,
                                       opts_.data);
    ASSERT_TRUE(data_->Start().ok());
  }
  void Close() {
    if (data_) {
      EXPECT_TRUE(data_->Shutdown().ok());
    }
    data_.reset();
    mm_.reset();
    dev_.reset();
    real_dev_.reset();
    alloc_.reset();
    meta_.reset();
  }
  void Reopen() {
    Close();
    Open();
  }

  absl::Status Write(uint64_t ino, uint64_t off, const std::string& bytes) {
    absl::Status s = data_->Write(ino, records_.Get(ino), off, bytes.data(), bytes.size());
    if (s.ok()) records_.Grow(ino, off + bytes.size());
    return s;
  }
  std::string Read(uint64_t ino, uint64_t off, size_t len) {
    std::string out(len, '\0');
    auto n = data_->Read(ino, records_.Get(ino), off, len, out.data());
    EXPECT_TRUE(n.ok()) << n.status();
    out.resize(n.ok() ? *n : 0);
    return out;
  }
  absl::Status Truncate(uint64_t ino, uint64_t size) {
    const uint64_t old = records_.Get(ino);
    records_.Set(ino, size);
    return data_->Truncate(ino, old, size);
  }

  // A counter of StatsText ("name value" lines); -1 if absent.
  int64_t Stat(const std::string& name) {
    const std::string text = data_->StatsText();
    const std::string key = name + " ";
    for (size_t pos = 0; pos < text.size();) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string::npos) eol = text.size();
      if (text.compare(pos, key.size(), key) == 0) {
        return std::stoll(text.substr(pos + key.size(), eol - pos - key.size()));
      }
      pos = eol + 1;
    }
    return -1;
  }

  FileData& data() { return *data_; }
  storage::MetaStore& meta() { return *meta_; }
  storage::Allocator& alloc() { return *alloc_; }
  reclaim::MemoryManager& mm() { return *mm_; }
  TestDevice& dev() { return *dev_; }
  SizeRecords& records() { return records_; }
  EnvOptions& options() { return opts_; }

 private:
  EnvOptions opts_;
  std::string dir_;
  SizeRecords records_;
  std::unique_ptr<storage::MetaStore> meta_;
  std::unique_ptr<storage::Allocator> alloc_;
  std::unique_ptr<storage::UringBlockStore> real_dev_;
  std::unique_ptr<TestDevice> dev_;
  std::unique_ptr<reclaim::MemoryManager> mm_;
  std::unique_ptr<FileData> data_;
};

// Deterministic pseudo-random bytes: a file's content is a function of
// (seed, offset), so readers can check without keeping a copy.
inline std::string Pattern(uint64_t seed, uint64_t off, size_t len) {
  std::string s(len, '\0');
  for (size_t i = 0; i < len; ++i) {
    uint64_t x = (off + i) * 0x9E3779B97F4A7C15ull ^ seed * 0xC2B2AE3D27D4EB4Full;
    x ^= x >> 29;
    s[i] = static_cast<char>(x * 0xBF58476D1CE4E5B9ull >> 56);
  }
  return s;
}

}  // namespace reclaimfs::fs::testing

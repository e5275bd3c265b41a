// UringBlockStore: the data file read and written through io_uring; see
// uring_block_store.h.
//
// Every request becomes one heap Op whose address is the SQE's user_data; it
// lives until its completion has run. At most queue_depth Ops are in flight,
// each with at most one SQE outstanding, so the submission queue always has
// room for an Op's resubmission and the completion queue (twice the depth)
// never overflows.
#include "storage/uring_block_store.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::storage {

namespace {

constexpr unsigned kMaxQueueDepth = 4096;
constexpr auto kDrainTimeout = std::chrono::seconds(30);
// user_data of the NOP that wakes the completion thread to stop; no Op can
// live at this address.
constexpr uintptr_t kWakeTag = 1;

absl::Status ErrnoError(int err, const std::string& what) { return absl::ErrnoToStatus(err, what); }

// Reads one block with pread to learn whether O_DIRECT really works here:
// some filesystems accept the flag at open and reject the IO.
bool DirectIoWorks(int fd, uint32_t block_size, uint64_t size) {
  if (size < block_size) return true;
  void* buf = nullptr;
  if (::posix_memalign(&buf, std::max<size_t>(block_size, kIoAlignment), block_size) != 0) {
    return false;
  }
  const ssize_t n = ::pread(fd, buf, block_size, 0);
  const int err = errno;
  std::free(buf);
  return !(n < 0 && err == EINVAL);
}

// Takes the data file's exclusive lock, retrying until the deadline: the
// holder may be a daemon shutting down or the IO of one that was killed.
absl::Status LockDataFile(int fd, const std::string& path, int wait_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(0, wait_ms));
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return absl::OkStatus();
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return ErrnoError(errno, absl::StrCat("cannot lock data file ", path));
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::UnavailableError(absl::StrCat(
          "store is in use: data file ", path,
          " is locked by another process (a running daemon, or IO of one that was killed still in flight)"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

struct UringBlockStore::Impl {
  struct Op {
    IoRequest req;
    std::vector<iovec> rest;  // what is still to transfer, after short transfers
    uint64_t total = 0;
    uint64_t transferred = 0;
    int64_t error = 0;  // set: completes with this, through a NOP
  };

  int fd = -1;
  bool direct = false;
  uint64_t size = 0;
  uint32_t block_size = 0;
  unsigned depth = 0;
  io_uring ring{};
  bool ring_ready = false;

  std::mutex mu;                // the submission queue, backlog, stopping
  std::condition_variable cv;   // an Op finished
  std::atomic<uint64_t> inflight{0};
  std::deque<Op*> backlog;      // submitted by the completion thread while full
  bool stopping = false;
  std::thread completer;
  std::atomic<std::thread::id> completer_id{};

  ~Impl() {
    if (ring_ready) io_uring_queue_exit(&ring);
    if (fd >= 0) ::close(fd);
  }

  void Prep(io_uring_sqe* sqe, Op* op) {
    if (op->error != 0) {
      io_uring_prep_nop(sqe);
    } else if (op->req.op == IoRequest::Op::kRead) {
      io_uring_prep_readv(sqe, fd, op->rest.data(), static_cast<unsigned>(op->rest.size()),
                          op->req.offset + op->transferred);
    } else {
      io_uring_prep_writev(sqe, fd, op->rest.data(), static_cast<unsigned>(op->rest.size()),
                           op->req.offset + op->transferred);
    }
    io_uring_sqe_set_data(sqe, op);
  }

  // Gets an SQE; the queue is only full if a submit failed earlier, so
  // flush it then. Called with mu held.
  io_uring_sqe* GetSqe(std::unique_lock<std::mutex>& lock) {
    for (int attempt = 0;; ++attempt) {
      if (io_uring_sqe* sqe = io_uring_get_sqe(&ring)) return sqe;
      SubmitPrepared(lock);
      if (attempt > 0) {
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        lock.lock();
      }
    }
  }

  // Hands prepared SQEs to the kernel. Transient failures (the kernel is short
  // of memory or the completion queue is busy) are retried with a short
  // pause; others are logged and the SQEs go with the next submit.
  void SubmitPrepared(std::unique_lock<std::mutex>& lock) {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const int ret = io_uring_submit(&ring);
      if (ret >= 0) return;
      if (ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
        spdlog::error("io_uring submit failed: {}", std::strerror(-ret));
        return;
      }
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      lock.lock();
    }
    spdlog::error("io_uring submit kept failing; retrying with the next submission");
  }

  Op* MakeOp(IoRequest&& req) {
    auto* op = new Op;
    op->req = std::move(req);
    op->rest = op->req.iov;
    for (const iovec& v : op->rest) op->total += v.iov_len;
    if (op->rest.empty() || op->rest.size() > IOV_MAX) {
      op->error = -EINVAL;
    } else if (op->req.op == IoRequest::Op::kWrite &&
               (op->req.offset > size || op->total > size - op->req.offset)) {
      // The data file has a fixed size; a write past it is a caller's bug,
      // not a reason to grow the file.
      op->error = -ENOSPC;
    }
    return op;
  }

  void Submit(std::vector<IoRequest>&& requests) {
    std::vector<Op*> ops;
    ops.reserve(requests.size());
    for (auto& r : requests) ops.push_back(MakeOp(std::move(r)));

    const bool on_completer = std::this_thread::get_id() == completer_id.load();
    std::unique_lock<std::mutex> lock(mu);
    bool prepared = false;
    for (Op* op : ops) {
      if (on_completer) {
        // The completion thread cannot wait for itself: queue what does not
        // fit and submit it as completions free slots.
        if (inflight.load() >= depth || !backlog.empty()) {
          backlog.push_back(op);
          continue;
        }
      } else {
        // Bounded by IO completing: each completion frees a slot.
        while (inflight.load() >= depth) {
          if (prepared) {
            SubmitPrepared(lock);
            prepared = false;
          }
          cv.wait(lock);
        }
      }
      Prep(GetSqe(lock), op);
      inflight.fetch_add(1);
      prepared = true;
    }
    if (prepared) SubmitPrepared(lock);
  }

  // Runs on the completion thread.
  void Finish(Op* op, int64_t result) {
    if (op->req.done) op->req.done(result);
    delete op;
    std::unique_lock<std::mutex> lock(mu);
    inflight.fetch_sub(1);
    bool prepared = false;
    while (!backlog.empty() && inflight.load() < depth) {
      Op* next = backlog.front();
      backlog.pop_front();
      Prep(GetSqe(lock), next);
      inflight.fetch_add(1);
      prepared = true;
    }
    if (prepared) SubmitPrepared(lock);
    cv.notify_all();
  }

  void Resubmit(Op* op) {
    std::unique_lock<std::mutex> lock(mu);
    Prep(GetSqe(lock), op);
    SubmitPrepared(lock);
  }

  // Drops the first n transferred bytes from op->rest.
  static void Advance(Op* op, uint64_t n) {
    size_t i = 0;
    while (i < op->rest.size() && n >= op->rest[i].iov_len) n -= op->rest[i++].iov_len;
    op->rest.erase(op->rest.begin(), op->rest.begin() + static_cast<long>(i));
    if (n > 0 && !op->rest.empty()) {
      op->rest[0].iov_base = static_cast<char*>(op->rest[0].iov_base) + n;
      op->rest[0].iov_len -= n;
    }
  }

  void CompletionLoop() {
    completer_id = std::this_thread::get_id();
    for (;;) {
      io_uring_cqe* cqe = nullptr;
      const int ret = io_uring_wait_cqe(&ring, &cqe);
      if (ret == -EINTR || ret == -EAGAIN) continue;
      if (ret < 0) {
        spdlog::error("io_uring wait failed: {}", std::strerror(-ret));
        {
          std::lock_guard<std::mutex> lock(mu);
          if (stopping) return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      const auto tag = reinterpret_cast<uintptr_t>(io_uring_cqe_get_data(cqe));
      const int res = cqe->res;
      io_uring_cqe_seen(&ring, cqe);
      if (tag == kWakeTag) {
        std::lock_guard<std::mutex> lock(mu);
        if (stopping) return;
        continue;
      }
      Op* op = reinterpret_cast<Op*>(tag);
      // The Op was filled in by the submitter before it released `mu` and
      // reached us through the kernel, which no thread checker can see;
      // taking `mu` once makes that ordering explicit.
      { std::lock_guard<std::mutex> sync(mu); }
      if (op->error != 0) {
        Finish(op, op->error);
      } else if (res == -EAGAIN || res == -EINTR) {
        Resubmit(op);
      } else if (res < 0) {
        Finish(op, res);
      } else {
        // Regular files may transfer less than asked; continue from there
        // unless nothing moved (end of file).
        op->transferred += static_cast<uint64_t>(res);
        if (res > 0 && op->transferred < op->total) {
          Advance(op, static_cast<uint64_t>(res));
          Resubmit(op);
        } else {
          Finish(op, static_cast<int64_t>(op->transferred));
        }
      }
    }
  }

  void Shutdown() {
    std::unique_lock<std::mutex> lock(mu);
    const bool drained = cv.wait_for(lock, kDrainTimeout,
                                     [&] { return inflight.load() == 0 && backlog.empty(); });
    if (!drained) {
      // The kernel may still write into their buffers, so the Ops are left
      // alive rather than freed.
      spdlog::error("data file: {} requests still in flight after {} s at shutdown",
                    inflight.load(), kDrainTimeout.count());
    }
    stopping = true;
    io_uring_sqe* sqe = GetSqe(lock);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data(sqe, reinterpret_cast<void*>(kWakeTag));
    SubmitPrepared(lock);
    lock.unlock();
    completer.join();
  }
};

UringBlockStore::UringBlockStore() : impl_(std::make_unique<Impl>()) {}

UringBlockStore::~UringBlockStore() {
  if (impl_->completer.joinable()) impl_->Shutdown();
}

absl::StatusOr<std::unique_ptr<UringBlockStore>> UringBlockStore::Open(const std::string& path,
                                                                       uint32_t block_size,
                                                                       const UringOptions& options) {
  if (block_size < 512 || (block_size & (block_size - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("invalid block size %d", block_size));
  }
  if (options.queue_depth == 0 || options.queue_depth > kMaxQueueDepth) {
    return absl::InvalidArgumentError(
        absl::StrFormat("queue depth %d is out of range (1 to %d)", options.queue_depth, kMaxQueueDepth));
  }
  auto store = std::unique_ptr<UringBlockStore>(new UringBlockStore());
  Impl& im = *store->impl_;
  im.block_size = block_size;
  im.depth = options.queue_depth;

  const int base_flags = O_RDWR | O_CLOEXEC;
  if (options.try_direct) {
    im.fd = ::open(path.c_str(), base_flags | O_DIRECT);
    im.direct = im.fd >= 0;
    if (im.fd < 0 && errno != EINVAL) {
      return ErrnoError(errno, absl::StrCat("cannot open data file ", path));
    }
  }
  if (im.fd < 0) {
    im.fd = ::open(path.c_str(), base_flags);
    if (im.fd < 0) return ErrnoError(errno, absl::StrCat("cannot open data file ", path));
  }

  struct stat st;
  if (::fstat(im.fd, &st) != 0) return ErrnoError(errno, absl::StrCat("cannot stat ", path));
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (::ioctl(im.fd, BLKGETSIZE64, &bytes) != 0) {
      return ErrnoError(errno, absl::StrCat("cannot read the size of ", path));
    }
    im.size = bytes;
  } else if (S_ISREG(st.st_mode)) {
    im.size = static_cast<uint64_t>(st.st_size);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file or block device"));
  }
  if (im.size % block_size != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "data file %s has size %d, not a multiple of the block size %d", path, im.size, block_size));
  }
  if (im.direct && !DirectIoWorks(im.fd, block_size, im.size)) {
    ::close(im.fd);
    im.direct = false;
    im.fd = ::open(path.c_str(), base_flags);
    if (im.fd < 0) return ErrnoError(errno, absl::StrCat("cannot open data file ", path));
  }

  if (absl::Status s = LockDataFile(im.fd, path, options.lock_wait_ms); !s.ok()) return s;

  const int ret = io_uring_queue_init(im.depth, &im.ring, 0);
  if (ret < 0) {
    return ErrnoError(-ret, "cannot set up io_uring (is it disabled or is the locked-memory limit too low?)");
  }
  im.ring_ready = true;
  im.completer = std::thread([&im] { im.CompletionLoop(); });
  return store;
}

void UringBlockStore::Submit(std::vector<IoRequest> requests) {
  if (!requests.empty()) impl_->Submit(std::move(requests));
}

absl::Status UringBlockStore::Flush() {
  if (::fdatasync(impl_->fd) != 0) return ErrnoError(errno, "cannot sync the data file");
  return absl::OkStatus();
}

absl::Status UringBlockStore::Discard(uint64_t offset, uint64_t length) {
  if (length == 0) return absl::OkStatus();
  if (offset > impl_->size || length > impl_->size - offset) {
    return absl::OutOfRangeError("discard beyond the end of the data file");
  }
  struct stat st;
  if (::fstat(impl_->fd, &st) == 0 && S_ISBLK(st.st_mode)) {
    uint64_t range[2] = {offset, length};
    if (::ioctl(impl_->fd, BLKDISCARD, range) != 0) return ErrnoError(errno, "cannot discard blocks of the device");
    return absl::OkStatus();
  }
  // A file gives its space back to the filesystem under it with a hole
  // punch (size unchanged).
  if (::fallocate(impl_->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) != 0) {
    return ErrnoError(errno, "cannot discard blocks of the data file");
  }
  return absl::OkStatus();
}

uint64_t UringBlockStore::size_bytes() const { return impl_->size; }
uint32_t UringBlockStore::block_size() const { return impl_->block_size; }
uint64_t UringBlockStore::inflight() const { return impl_->inflight.load(); }
bool UringBlockStore::direct_io() const { return impl_->direct; }

}  // namespace reclaimfs::storage

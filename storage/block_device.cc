// The synchronous helpers of BlockDevice, built on its asynchronous Submit.
// They wait for the completion callback, so they must not be called from a
// completion callback itself (that thread is the one that would wake them).
#include "storage/block_device.h"

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>

#include "absl/strings/str_format.h"

namespace reclaimfs::storage {

namespace {

// One call's wait. Shared with the callback so it stays valid however late
// the completion runs.
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int64_t result = 0;
};

absl::Status Transfer(BlockDevice& dev, IoRequest::Op op, uint64_t offset, void* buf, size_t len) {
  if (len == 0) return absl::OkStatus();
  auto waiter = std::make_shared<Waiter>();
  IoRequest req;
  req.op = op;
  req.offset = offset;
  req.iov.push_back(iovec{buf, len});
  req.done = [waiter](int64_t result) {
    std::lock_guard<std::mutex> lock(waiter->mu);
    waiter->result = result;
    waiter->done = true;
    waiter->cv.notify_one();
  };
  std::vector<IoRequest> batch;
  batch.push_back(std::move(req));
  dev.Submit(std::move(batch));

  std::unique_lock<std::mutex> lock(waiter->mu);
  // Bounded by the device: every submitted request completes.
  waiter->cv.wait(lock, [&] { return waiter->done; });
  const char* what = op == IoRequest::Op::kRead ? "read" : "write";
  if (waiter->result < 0) {
    const int err = static_cast<int>(-waiter->result);
    return absl::ErrnoToStatus(
        err, absl::StrFormat("%s of %d bytes at offset %d failed", what, len, offset));
  }
  if (static_cast<uint64_t>(waiter->result) != len) {
    return absl::ErrnoToStatus(EIO, absl::StrFormat("short %s: %d of %d bytes at offset %d",
                                                    what, waiter->result, len, offset));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status BlockDevice::Read(uint64_t offset, void* buf, size_t len) {
  return Transfer(*this, IoRequest::Op::kRead, offset, buf, len);
}

absl::Status BlockDevice::Write(uint64_t offset, const void* buf, size_t len) {
  // The write only reads from buf; iovec just has no const member.
  return Transfer(*this, IoRequest::Op::kWrite, offset, const_cast<void*>(buf), len);
}

}  // namespace reclaimfs::storage

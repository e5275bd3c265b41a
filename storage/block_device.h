// The data file's IO interface. Requests are submitted asynchronously and
// complete on the device's completion thread, which runs the callback with
// the byte count or -errno. Callbacks must not block (they finish pages and
// signal progress). An interface so unit tests can inject failures and delays.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"

namespace reclaimfs::storage {

struct IoRequest {
  enum class Op { kRead, kWrite } op = Op::kRead;
  uint64_t offset = 0;                // bytes; block aligned
  std::vector<struct iovec> iov;      // buffers; block aligned for O_DIRECT
  std::function<void(int64_t result)> done;  // bytes transferred or -errno
};

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;
  // Submits all requests with one submission where possible. Waits for queue
  // space if the ring is full (bounded by IO completing).
  virtual void Submit(std::vector<IoRequest> requests) = 0;
  // Synchronous helpers built on Submit. Short transfers are errors (EIO).
  absl::Status Read(uint64_t offset, void* buf, size_t len);
  absl::Status Write(uint64_t offset, const void* buf, size_t len);
  // Makes completed writes durable (fdatasync of the data file).
  virtual absl::Status Flush() = 0;
  // Tells the backing store that [offset, offset+length) holds no data any
  // more (a hole punch of the data file), so it can give the space back.
  // Only for free blocks; synchronous. Unimplemented where not supported.
  virtual absl::Status Discard(uint64_t offset, uint64_t length) {
    return absl::UnimplementedError("discard is not supported by this device");
  }
  virtual uint64_t size_bytes() const = 0;
  virtual uint32_t block_size() const = 0;
  // Requests submitted but not completed.
  virtual uint64_t inflight() const = 0;
};

// Required alignment of buffers handed to a BlockDevice.
inline constexpr size_t kIoAlignment = 4096;

}  // namespace reclaimfs::storage

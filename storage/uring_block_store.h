// BlockDevice over a file, with io_uring: batched submission, up to
// queue_depth requests in flight, one completion thread. Opens with O_DIRECT
// when the backing filesystem allows it and falls back to buffered IO.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "storage/block_device.h"

namespace reclaimfs::storage {

struct UringOptions {
  unsigned queue_depth = 64;
  bool try_direct = true;
};

class UringBlockStore : public BlockDevice {
 public:
  static absl::StatusOr<std::unique_ptr<UringBlockStore>> Open(const std::string& path,
                                                               uint32_t block_size,
                                                               const UringOptions& options);
  ~UringBlockStore() override;  // waits for in-flight IO, stops the completion thread

  void Submit(std::vector<IoRequest> requests) override;
  absl::Status Flush() override;
  uint64_t size_bytes() const override;
  uint32_t block_size() const override;
  uint64_t inflight() const override;
  bool direct_io() const;

 private:
  UringBlockStore();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reclaimfs::storage

// BlockDevice over a file, with io_uring: batched submission, up to
// queue_depth requests in flight, one completion thread. Opens with O_DIRECT
// when the backing filesystem allows it and falls back to buffered IO.
//
// The open file is locked (flock, exclusive) for the life of the store. The
// kernel drops such a lock only when the last reference to the open file is
// gone, and every io_uring request in flight holds one: after a daemon is
// killed its O_DIRECT writes can still land for a while after its exit, so a
// new daemon must not touch the file before that. Open waits, bounded by
// lock_wait_ms, for the previous owner's last IO.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "storage/block_device.h"

namespace reclaimfs::storage {

struct UringOptions {
  unsigned queue_depth = 64;
  bool try_direct = true;
  // How long Open waits for the data file's lock (another daemon, or the IO
  // still in flight of one that died) before it fails with Unavailable.
  int lock_wait_ms = 10'000;
};

class UringBlockStore : public BlockDevice {
 public:
  static absl::StatusOr<std::unique_ptr<UringBlockStore>> Open(const std::string& path,
                                                               uint32_t block_size,
                                                               const UringOptions& options);
  ~UringBlockStore() override;  // waits for in-flight IO, stops the completion thread

  void Submit(std::vector<IoRequest> requests) override;
  absl::Status Flush() override;
  absl::Status Discard(uint64_t offset, uint64_t length) override;
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

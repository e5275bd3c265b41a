// Free-space allocator for the data file, in blocks. The free map lives in
// memory (loaded from the free-space column family at mount) and every change
// is recorded into the metadata Batch that also carries the extent change, so
// the two are persisted atomically. Call the mutating methods from inside a
// MetaStore::Commit prepare callback so persisted order matches memory order.
//
// Delayed allocation: writers Reserve() blocks when they dirty a hole (so
// ENOSPC is reported at write time), writeback later turns reservations into
// real extents with AllocateReserved(), or Unreserve() returns them.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/meta_store.h"

namespace reclaimfs::storage {

struct BlockRun {
  uint64_t start = 0;
  uint64_t length = 0;
  bool operator==(const BlockRun&) const = default;
};

class Allocator {
 public:
  explicit Allocator(uint64_t total_blocks);

  // Loads the free map; checks runs are inside the device and disjoint.
  absl::Status Load(MetaStore& meta);

  // Reserves n blocks for later allocation; ResourceExhausted (ENOSPC) if
  // free - reserved < n.
  absl::Status Reserve(uint64_t n);
  void Unreserve(uint64_t n);

  // Allocates n blocks, preferring one contiguous run at or after `goal`
  // (the disk block after the file's previous extent), else the first run
  // that fits, else several runs. `from_reservation` consumes reserved
  // blocks. Records the free-map changes into `batch`.
  absl::StatusOr<std::vector<BlockRun>> Allocate(uint64_t n, uint64_t goal, bool from_reservation,
                                                 MetaStore::Batch* batch);
  // Returns a run to the free map (merging neighbours), recorded into batch.
  void Free(BlockRun run, MetaStore::Batch* batch);

  uint64_t total_blocks() const { return total_; }
  uint64_t free_blocks() const;      // in the free map
  uint64_t reserved_blocks() const;  // promised to dirty data
  uint64_t available_blocks() const; // free - reserved (what statfs reports)
  std::vector<BlockRun> FreeRuns() const;  // for fsck and tests

 private:
  mutable std::mutex mu_;
  uint64_t total_;
  uint64_t free_ = 0;
  uint64_t reserved_ = 0;
  std::map<uint64_t, uint64_t> runs_;  // start -> length
};

}  // namespace reclaimfs::storage

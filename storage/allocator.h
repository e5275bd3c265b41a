// Free-space allocator for the data file, in blocks.
//
// It keeps two maps. The *allocatable* map is what Allocate hands out; the
// *on-disk* map mirrors the free-space column family. Allocate takes runs out
// of the allocatable map only, so blocks being written stay free on disk
// until the commit that adds their extents calls CommitAllocation (inside
// MetaStore::Commit's prepare callback, under the commit lock). Thus every
// persisted state has free space + extents == all blocks, whatever order
// concurrent writebacks commit in, and a crash never leaks blocks.
//
// Delayed allocation: writers Reserve() blocks when they dirty a hole (so
// ENOSPC is reported at write time); writeback turns reservations into runs
// with Allocate(from_reservation=true), or Unreserve() returns them.
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

  // Allocates n blocks from the allocatable map, preferring one contiguous
  // run at or after `goal` (the disk block after the file's previous extent),
  // else the first run that fits, else several runs. `from_reservation`
  // consumes reserved blocks. Nothing is recorded on disk yet.
  absl::StatusOr<std::vector<BlockRun>> Allocate(uint64_t n, uint64_t goal, bool from_reservation);
  // Call from the prepare callback of the commit that adds extents for these
  // runs: records them as used in the on-disk map (changes go into batch).
  void CommitAllocation(const std::vector<BlockRun>& runs, MetaStore::Batch* batch);
  // The write failed or was abandoned: the runs become allocatable again.
  void CancelAllocation(const std::vector<BlockRun>& runs);
  // Call from the prepare callback of the commit that removes the extents:
  // the run becomes free on disk (merged with neighbours, recorded into
  // batch) and allocatable again.
  void Free(BlockRun run, MetaStore::Batch* batch);

  uint64_t total_blocks() const { return total_; }
  uint64_t free_blocks() const;      // in the allocatable map
  uint64_t reserved_blocks() const;  // promised to dirty data
  uint64_t available_blocks() const; // free - reserved (what statfs reports)
  std::vector<BlockRun> FreeRuns() const;      // allocatable map, for tests
  std::vector<BlockRun> DiskFreeRuns() const;  // on-disk map, for tests

 private:
  mutable std::mutex mu_;
  uint64_t total_;
  uint64_t free_ = 0;      // blocks in the allocatable map
  uint64_t reserved_ = 0;
  std::map<uint64_t, uint64_t> runs_;       // allocatable: start -> length
  std::map<uint64_t, uint64_t> disk_runs_;  // mirrors the free-space column family
};

}  // namespace reclaimfs::storage

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
//
// Freed blocks are not reused until the commit that frees them is durable.
// Free records the run as free on disk at once but keeps it *pending*, tagged
// with its commit's sequence; it joins the allocatable map once the metadata
// log is synced past that commit. Otherwise a crash could bring back the file
// that owned the blocks (its unlink or truncate lost) over another file's
// data. Pending blocks count as free space (statfs, Reserve); Allocate syncs
// the log when it needs them, and SyncPendingFrees lets a periodic thread do
// the same so that freed space comes back without anyone asking.
//
// Thread safety: every method may be called from any thread. Allocate and
// SyncPendingFrees may sync the metadata log (one WAL fsync), so they must not
// be called under the metadata commit lock; Free and CommitAllocation are
// called under it and never block on IO.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
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
  // Keeps `meta` to learn which commits are durable and to sync its log.
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
  // batch), and allocatable once that commit is durable.
  void Free(BlockRun run, MetaStore::Batch* batch);
  // If freed blocks wait for durability, syncs the metadata log so they
  // become allocatable. Returns the sync's error, if any.
  absl::Status SyncPendingFrees();

  // Discard (FITRIM) support: takes allocatable runs of at least min_length
  // blocks out of [*cursor, end), up to max_blocks in all, so that the
  // caller can discard them while no writer can be handed them; *cursor
  // advances past what was looked at. Blocks that reservations may need are
  // left alone. Taken blocks still count as free; ReturnDiscarded gives them
  // back, and an Allocate that needs them waits (bounded) until then.
  std::vector<BlockRun> TakeForDiscard(uint64_t* cursor, uint64_t end, uint64_t min_length, uint64_t max_blocks);
  void ReturnDiscarded(const std::vector<BlockRun>& runs);

  uint64_t total_blocks() const { return total_; }
  uint64_t free_blocks() const;      // allocatable + pending frees + being discarded
  uint64_t pending_free_blocks() const;  // freed, waiting for their commit to be durable
  uint64_t reserved_blocks() const;  // promised to dirty data
  uint64_t available_blocks() const; // free - reserved (what statfs reports)
  std::vector<BlockRun> FreeRuns() const;      // allocatable map, for tests
  std::vector<BlockRun> DiskFreeRuns() const;  // on-disk map, for tests

 private:
  struct PendingFree {
    uint64_t sequence;  // of the commit that freed it
    BlockRun run;
  };
  // Moves pending frees whose commit is durable into the allocatable map.
  void ReleaseDurableLocked();

  MetaStore* meta_ = nullptr;  // set by Load
  mutable std::mutex mu_;
  uint64_t total_;
  uint64_t free_ = 0;     // blocks in the allocatable map
  uint64_t pending_ = 0;  // blocks in pending_frees_
  uint64_t reserved_ = 0;
  uint64_t discarding_ = 0;  // taken by TakeForDiscard, not yet returned
  std::condition_variable discards_returned_;
  std::deque<PendingFree> pending_frees_;  // in commit order
  std::map<uint64_t, uint64_t> runs_;       // allocatable: start -> length
  std::map<uint64_t, uint64_t> disk_runs_;  // mirrors the free-space column family
};

}  // namespace reclaimfs::storage

// A file's extent map (file block -> disk block runs), cached in memory and
// changed in step with the metadata store: every mutation records the extent
// records it put or deleted into an ExtentDelta, which the caller adds to the
// batch of the same commit. Not thread-safe: the owner's file mutex guards it.
//
// Its memory is charged to the budget it is given (force-charged: it changes
// under the file mutex, where reclaim may not run), so a fragmented file's
// map counts against the cache like its pages do. Never blocks and does no
// IO: the caller loads the records and commits the delta.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "reclaim/memory_budget.h"
#include "storage/allocator.h"
#include "storage/format.h"
#include "storage/meta_store.h"

namespace reclaimfs::fs {

// Extent records changed by a series of mutations: key file_block -> the
// final record, or nullopt for a deletion.
class ExtentDelta {
 public:
  void Put(const storage::Extent& e) { changes_[e.file_block] = e; }
  void Delete(uint64_t file_block) { changes_[file_block] = std::nullopt; }
  bool empty() const { return changes_.empty(); }
  void ApplyTo(uint64_t ino, storage::MetaStore::Batch* batch) const;
  const std::map<uint64_t, std::optional<storage::Extent>>& changes() const { return changes_; }

 private:
  std::map<uint64_t, std::optional<storage::Extent>> changes_;
};

class ExtentMap {
 public:
  struct Mapping {
    bool mapped = false;
    uint64_t disk_block = 0;
    bool unwritten = false;
  };

  explicit ExtentMap(reclaim::MemoryBudget* budget = nullptr) : budget_(budget) {}
  ~ExtentMap();
  ExtentMap(const ExtentMap&) = delete;
  ExtentMap& operator=(const ExtentMap&) = delete;

  void Assign(const std::vector<storage::Extent>& extents);

  Mapping Lookup(uint64_t file_block) const;
  // The disk block right after the extent that ends at or before file_block:
  // the allocation goal that keeps a file contiguous. 0 if none.
  uint64_t GoalFor(uint64_t file_block) const;
  // First mapped block >= file_block, or nullopt.
  std::optional<uint64_t> NextMapped(uint64_t file_block) const;
  // End of the extent containing file_block, or file_block if unmapped.
  uint64_t MappedEnd(uint64_t file_block) const;

  // [fb, fb+n) is now written at [db, db+n): replaces whatever mapped that
  // range (the caller frees `displaced` runs that differ from db) and merges
  // with neighbours.
  void MapWritten(uint64_t fb, uint64_t db, uint64_t n, ExtentDelta* delta,
                  std::vector<storage::BlockRun>* displaced);
  // Adds an unwritten extent over a hole (fallocate).
  void MapUnwritten(uint64_t fb, uint64_t db, uint64_t n, ExtentDelta* delta);
  // Unmaps [fb, end) (end may be UINT64_MAX); the runs to free go to `freed`.
  void Unmap(uint64_t fb, uint64_t end, ExtentDelta* delta, std::vector<storage::BlockRun>* freed);
  // Makes the mapped blocks of [fb, end) unwritten (they keep their disk
  // blocks and read as zeros): fallocate ZERO_RANGE.
  void MarkUnwritten(uint64_t fb, uint64_t end, ExtentDelta* delta);
  // Unmaps [fb, fb+n) and moves every extent past it down by n blocks,
  // merging across the seam (fallocate COLLAPSE_RANGE); the runs to free go
  // to `freed`. Records move in place: no copy of the map is made.
  void Collapse(uint64_t fb, uint64_t n, ExtentDelta* delta, std::vector<storage::BlockRun>* freed);
  // Splits the extent across fb and moves every extent at or past fb up by n
  // blocks, leaving a hole of n blocks at fb (fallocate INSERT_RANGE).
  void InsertHole(uint64_t fb, uint64_t n, ExtentDelta* delta);

  uint64_t BlockCount() const;
  size_t size() const { return map_.size(); }
  std::vector<storage::Extent> Extents() const;
  // Bytes charged to the budget for the map right now.
  uint64_t charged() const { return charged_; }

  // What one record costs: the value, a red-black tree node's colour and
  // three links, and the allocator's header.
  static constexpr uint64_t kRecordBytes =
      sizeof(std::pair<const uint64_t, storage::Extent>) + 4 * sizeof(void*) + 16;

 private:
  void Insert(storage::Extent e, ExtentDelta* delta);  // merges neighbours
  // Moves the record at `it` by `shift` blocks (either way); the caller
  // keeps keys unique. Returns the moved record's position.
  std::map<uint64_t, storage::Extent>::iterator Move(std::map<uint64_t, storage::Extent>::iterator it,
                                                     int64_t shift, ExtentDelta* delta);
  // Brings the charge in line with the number of records.
  void Recharge();

  std::map<uint64_t, storage::Extent> map_;  // file_block -> extent
  reclaim::MemoryBudget* const budget_;
  uint64_t charged_ = 0;
};

}  // namespace reclaimfs::fs

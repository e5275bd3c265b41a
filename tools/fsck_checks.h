// The consistency checks of fsck.reclaimfs, as a library so tests can run
// them: the superblock, the directory tree (entries, link counts,
// connectivity), the extent maps and the free map, and the orphan list.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "storage/meta_store.h"

namespace reclaimfs::tools {

struct FsckReport {
  // The first problems found, one line each; problem_count counts them all.
  std::vector<std::string> problems;
  uint64_t problem_count = 0;

  uint64_t inodes = 0;
  uint64_t dentries = 0;
  uint64_t extents = 0;
  uint64_t orphans = 0;
  uint64_t total_blocks = 0;
  uint64_t used_blocks = 0;
  uint64_t free_blocks = 0;

  bool clean() const { return problem_count == 0; }
  // One line: the counts and the verdict.
  std::string Summary() const;
};

// Checks the metadata of an open store. `data_file_bytes`, if known, is the
// data file's real size, checked against the superblock.
FsckReport CheckMetadata(storage::MetaStore& meta, std::optional<uint64_t> data_file_bytes);

// Opens STORE read-only and checks it. An error means the store could not be
// opened at all (not a store, unreadable, wrong version).
absl::StatusOr<FsckReport> CheckStore(const std::string& store_dir);

}  // namespace reclaimfs::tools

// RocksDB's informational log, sent to the process's log instead of LOG
// files in the metadata directory. RocksDB rotates and prunes its own LOG
// files on every DB::Open, before it takes the store's lock: a mount that
// retries while a daemon shuts down then races that daemon's pruning of the
// same files and fails with ENOENT ("while unlink() file LOG.old..."). With
// a logger of ours, no process writes or deletes LOG files at all.
#pragma once

#include <memory>

#include "rocksdb/env.h"

namespace reclaimfs::storage {

// Messages at `level` and above go to spdlog at debug level (errors reach
// callers as statuses, and a background error stops writes with one), fatal
// ones as errors.
std::shared_ptr<rocksdb::Logger> NewRocksDbLogger(rocksdb::InfoLogLevel level);

}  // namespace reclaimfs::storage

// Open file and directory handles: the fh numbers handed to the kernel, each
// remembering its inode, open flags and the opener's credentials (a write
// through the handle clears set-id bits unless the opener was root).
//
// Owns the handles. Request threads call it concurrently; one mutex, held
// only for a lookup or update of the map; nothing waits otherwise.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "fs/cache/error_sequence.h"

namespace reclaimfs::fs {

struct Handle {
  uint64_t ino = 0;
  int flags = 0;  // open(2) flags: access mode, O_APPEND, ...
  uint32_t uid = 0, gid = 0;
  bool dir = false;
  uint64_t wb_err_seen = 0;  // the file's writeback error events seen (ErrorSequence)
  // Directories: the directory's next cookie when the scan from offset 0
  // began; entries with cookies from here on (created or renamed since) are
  // not listed, so a scan returns each entry at most once and ends.
  // 0: no limit (the scan did not start at 0 through this handle).
  uint64_t scan_end = 0;

  bool readable() const;
  bool writable() const;
  bool append() const;
};

class HandleTable {
 public:
  uint64_t Add(const Handle& h);
  std::optional<Handle> Get(uint64_t fh) const;
  std::optional<Handle> Remove(uint64_t fh);
  // Sets a directory handle's scan_end (no-op for an unknown fh).
  void SetScanEnd(uint64_t fh, uint64_t cookie);
  // The errno of a writeback error of the file that this handle has not
  // reported yet (0 if none); it is reported once per handle.
  int TakeWritebackError(uint64_t fh, const ErrorSequence& errors);
  // The same, but the error stays unreported (close).
  int PeekWritebackError(uint64_t fh, const ErrorSequence& errors) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  uint64_t next_ = 1;
  std::unordered_map<uint64_t, Handle> handles_;
};

}  // namespace reclaimfs::fs

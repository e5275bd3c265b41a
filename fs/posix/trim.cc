// Filesystem::Trim (FITRIM): free blocks of the data file are handed back to
// the storage under it, a chunk at a time so that writers never wait long
// for the blocks being punched (storage/allocator.h, TakeForDiscard).
#include <algorithm>
#include <cerrno>
#include <limits>
#include <string>

#include "fs/cache/errno_status.h"
#include "fs/posix/filesystem.h"
#include "fs/posix/filesystem_impl.h"

namespace reclaimfs::fs {

namespace {
// Blocks taken out of the allocatable map at a time (64 MiB of 4 KiB blocks).
constexpr uint64_t kDiscardChunkBlocks = 16384;
}  // namespace

absl::StatusOr<uint64_t> Filesystem::Trim(const RequestContext& ctx, uint64_t start, uint64_t len,
                                          uint64_t minlen) {
  Impl& s = *impl_;
  if (ctx.uid != 0) return ErrnoStatus(EPERM, "FITRIM needs CAP_SYS_ADMIN");
  if (s.read_only.load()) return ErrnoStatus(EROFS);
  const uint64_t bs = s.sb.block_size;
  const uint64_t size = s.alloc->total_blocks() * bs;
  // The same argument rules as ext4's FITRIM.
  if (start >= size) return ErrnoStatus(EINVAL, "trim range starts past the end of the filesystem");
  if (len < bs) return ErrnoStatus(EINVAL, "trim length is under one block");
  if (minlen > size) return ErrnoStatus(EINVAL, "trim minimum length exceeds the filesystem");
  const uint64_t end_byte = len > std::numeric_limits<uint64_t>::max() - start ? size : std::min(size, start + len);
  // Space freed by deletions counts: queued evictions run, and freed blocks
  // become allocatable (so trimmable) once their commit is durable.
  s.ReclaimDeferredSpace();
  if (absl::Status synced = s.alloc->SyncPendingFrees(); !synced.ok()) return synced;
  uint64_t cursor = start / bs;
  const uint64_t end = end_byte / bs;
  const uint64_t min_blocks = std::max<uint64_t>(1, (minlen + bs - 1) / bs);

  storage::BlockDevice* const dev = s.faults ? static_cast<storage::BlockDevice*>(s.faults.get()) : s.dev.get();
  uint64_t discarded = 0;
  while (cursor < end) {
    const std::vector<storage::BlockRun> runs = s.alloc->TakeForDiscard(&cursor, end, min_blocks, kDiscardChunkBlocks);
    absl::Status st;
    for (const storage::BlockRun& r : runs) {
      st = dev->Discard(r.start * bs, r.length * bs);
      if (!st.ok()) break;
      discarded += r.length * bs;
    }
    s.alloc->ReturnDiscarded(runs);
    if (!st.ok()) {
      if (absl::IsUnimplemented(st) || ToErrno(st) == EOPNOTSUPP) return ErrnoStatus(EOPNOTSUPP, std::string(st.message()));
      return st;
    }
    // Nothing taken though space remains: what is free is reserved by dirty
    // data; the rest of the range cannot be trimmed now.
    if (runs.empty() && cursor < end) break;
  }
  return discarded;
}

}  // namespace reclaimfs::fs

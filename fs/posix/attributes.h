// Attributes as the POSIX layer reports them, built from an inode record.
// Stateless; any thread; never blocks.
#pragma once

#include <cstdint>

#include "fs/posix/filesystem.h"
#include "storage/format.h"

namespace reclaimfs::fs {

// sectors: st_blocks (512-byte units) of the inode's data.
Attributes AttributesOf(const storage::InodeRecord& rec, uint64_t sectors, uint32_t blksize);

}  // namespace reclaimfs::fs

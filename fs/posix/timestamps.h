// Inode timestamps: the clock, ordering, and the atime-update policy
// (strictatime, relatime, noatime). Stateless; any thread; never blocks.
#pragma once

#include <cstdint>

#include "storage/format.h"

namespace reclaimfs::fs {

storage::Timespec Now();
// <0, 0, >0 like strcmp.
int CompareTime(const storage::Timespec& a, const storage::Timespec& b);

struct AtimePolicy {
  bool enabled = true;   // false: noatime
  bool relatime = true;
};
// Whether a read at `now` should update rec's atime: relatime only when
// atime <= mtime, atime <= ctime, or atime is at least a day old.
bool AtimeNeedsUpdate(const AtimePolicy& policy, const storage::InodeRecord& rec,
                      const storage::Timespec& now);

}  // namespace reclaimfs::fs

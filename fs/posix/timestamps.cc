// Timestamps and the atime policy.
#include "fs/posix/timestamps.h"

#include <time.h>

namespace reclaimfs::fs {

storage::Timespec Now() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return storage::Timespec{static_cast<int64_t>(ts.tv_sec), static_cast<uint32_t>(ts.tv_nsec)};
}

int CompareTime(const storage::Timespec& a, const storage::Timespec& b) {
  if (a.sec != b.sec) return a.sec < b.sec ? -1 : 1;
  if (a.nsec != b.nsec) return a.nsec < b.nsec ? -1 : 1;
  return 0;
}

bool AtimeNeedsUpdate(const AtimePolicy& policy, const storage::InodeRecord& rec,
                      const storage::Timespec& now) {
  if (!policy.enabled) return false;
  if (!policy.relatime) return true;
  constexpr int64_t kDay = 24 * 60 * 60;
  return CompareTime(rec.atime, rec.mtime) <= 0 || CompareTime(rec.atime, rec.ctime) <= 0 ||
         now.sec - rec.atime.sec >= kDay;
}

}  // namespace reclaimfs::fs

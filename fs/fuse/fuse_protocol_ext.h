// Parts of the FUSE protocol newer than the kernel header Debian 12 ships
// (<linux/fuse.h>, protocol 7.38): defined here with the kernel's layout,
// their sizes checked against the ABI, for the requests and INIT flags the
// channel handles itself (fuse_channel.h).
#pragma once

#include <linux/fuse.h>

#include <cstdint>

namespace reclaimfs::fs::fuse_ext {

// INIT flags past bit 31 live in flags2 and count only with FUSE_INIT_EXT.
// FUSE_DIRECT_IO_ALLOW_MMAP (7.39): shared writable mmap of direct-IO files.
inline constexpr uint64_t kDirectIoAllowMmap = 1ull << 36;
// FUSE_ALLOW_IDMAP (7.40): the filesystem may be mounted idmapped. The kernel
// then sends the caller's ids mapped into the filesystem's view on requests
// that create nodes, and kInvalidUidGid on all others.
inline constexpr uint64_t kAllowIdmap = 1ull << 40;
inline constexpr uint32_t kInvalidUidGid = 0xffffffffu;

// FUSE_STATX (7.39): a getattr that can carry the birth time.
inline constexpr uint32_t kStatxOpcode = 52;

struct SxTime {
  int64_t tv_sec;
  uint32_t tv_nsec;
  int32_t reserved;
};

struct Statx {
  uint32_t mask;
  uint32_t blksize;
  uint64_t attributes;
  uint32_t nlink;
  uint32_t uid;
  uint32_t gid;
  uint16_t mode;
  uint16_t spare0[1];
  uint64_t ino;
  uint64_t size;
  uint64_t blocks;
  uint64_t attributes_mask;
  SxTime atime;
  SxTime btime;
  SxTime ctime;
  SxTime mtime;
  uint32_t rdev_major;
  uint32_t rdev_minor;
  uint32_t dev_major;
  uint32_t dev_minor;
  uint64_t spare2[14];
};

struct StatxIn {
  uint32_t getattr_flags;
  uint32_t reserved;
  uint64_t fh;
  uint32_t sx_flags;
  uint32_t sx_mask;
};

struct StatxOut {
  uint64_t attr_valid;
  uint32_t attr_valid_nsec;
  uint32_t flags;
  uint64_t spare[2];
  Statx stat;
};

static_assert(sizeof(SxTime) == 16);
static_assert(sizeof(Statx) == 256);
static_assert(sizeof(StatxIn) == 24);
static_assert(sizeof(StatxOut) == 288);

}  // namespace reclaimfs::fs::fuse_ext

// Parts of the FUSE protocol newer than the kernel header Debian 12 ships
// (<linux/fuse.h>, protocol 7.38): defined here with the kernel's layout,
// their sizes checked against the ABI, for the requests and INIT flags the
// channel handles itself (fuse_channel.h).
#pragma once

#include <linux/fuse.h>

#include <cstddef>
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
// FUSE_OVER_IO_URING (7.42): requests may be served through io_uring queues
// (fuse_uring.h). Offered only when the fuse module's enable_uring is on.
inline constexpr uint64_t kOverIoUring = 1ull << 41;

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

// FUSE over io_uring (7.42). Each ring entry registers two buffers: this
// header and a payload buffer of at least the connection's max payload.
// The kernel writes a request as its fuse_in_header (in_out), the opcode's
// first argument (op_in) and the rest in the payload; a reply is the
// fuse_out_header (in_out) and the whole reply body in the payload.
inline constexpr size_t kUringInOutHeaderSize = 128;
inline constexpr size_t kUringOpInOutSize = 128;

struct UringEntInOut {
  uint64_t flags;
  uint64_t commit_id;  // names the request in the commit of its reply
  uint32_t payload_sz;  // bytes of payload in this request / reply
  uint32_t padding;
  uint64_t reserved;
};

struct UringReqHeader {
  char in_out[kUringInOutHeaderSize];
  char op_in[kUringOpInOutSize];
  UringEntInOut ring_ent_in_out;
};

// IORING_OP_URING_CMD's cmd_op on /dev/fuse.
inline constexpr uint32_t kUringCmdRegister = 1;        // register the buffers, fetch a request
inline constexpr uint32_t kUringCmdCommitAndFetch = 2;  // reply, fetch the next request

// In the SQE's command area (SQE128).
struct UringCmdReq {
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
inline constexpr unsigned kUringIovSegments = 2;  // header, payload

static_assert(sizeof(UringEntInOut) == 32);
static_assert(sizeof(UringReqHeader) == 288);
static_assert(sizeof(UringCmdReq) == 24);
static_assert(sizeof(SxTime) == 16);
static_assert(sizeof(Statx) == 256);
static_assert(sizeof(StatxIn) == 24);
static_assert(sizeof(StatxOut) == 288);

}  // namespace reclaimfs::fs::fuse_ext

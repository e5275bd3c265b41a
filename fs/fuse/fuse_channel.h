// The /dev/fuse channel: the reads and writes libfuse makes on it, taken
// over through libfuse's custom-io hook so INIT can carry flags that
// libfuse 3.14 does not know.
//
// Why: a FOPEN_DIRECT_IO file (our default, so the daemon's budget bounds
// file data) may be mapped MAP_SHARED|PROT_WRITE only if the INIT reply
// carries FUSE_DIRECT_IO_ALLOW_MMAP, a flags2 bit (kernel 6.6+). libfuse
// 3.14 computes INIT's flags from `conn->want`, which has no bit for it, and
// offers no other way to edit the reply. Owning the channel's writev lets us
// patch exactly that one reply (matched by the INIT request's `unique`),
// leaving the rest of libfuse's protocol handling alone. Everything else
// passes through unchanged.
//
// It also remembers the write_flags of a WRITE request, which libfuse 3.14
// reads but does not pass on: the kernel sets FUSE_WRITE_KILL_SUIDGID there
// when the writer lacks CAP_FSETID, and on a direct-IO write nobody but the
// filesystem clears the set-id bits.
//
// Called by libfuse's session-loop threads at once; no locks (atomics only).
// Read blocks in read(2) until the kernel has a request or the session
// ends; Writev blocks as writev(2) on /dev/fuse does.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>

namespace reclaimfs::fs {

class FuseChannel {
 public:
  // request_allow_mmap: ask for FUSE_DIRECT_IO_ALLOW_MMAP when offered.
  explicit FuseChannel(bool request_allow_mmap) : request_allow_mmap_(request_allow_mmap) {}

  // read(2) on /dev/fuse; remembers the INIT request. errno as read(2).
  ssize_t Read(int fd, void* buf, size_t len);
  // writev(2) on /dev/fuse; patches the INIT reply. errno as writev(2).
  ssize_t Writev(int fd, const struct iovec* iov, int count);

  // The write_flags of the WRITE request this thread read last (none when
  // its last request was not a WRITE). A session-loop thread processes each
  // request it reads before it reads the next, on the same thread, so inside
  // the write handler these are that request's flags.
  struct WriteFlags {
    bool kill_suidgid = false;  // FUSE_WRITE_KILL_SUIDGID: the writer lacks CAP_FSETID
    bool from_cache = false;    // FUSE_WRITE_CACHE: writeback of the kernel's page cache
  };
  static WriteFlags CurrentWriteFlags();

  // Whether the kernel offered, and we granted, shared mmap of direct-IO files.
  bool allow_mmap_offered() const { return offered_.load(std::memory_order_acquire); }
  bool allow_mmap_granted() const { return granted_.load(std::memory_order_acquire); }

 private:
  void NoteInit(const void* buf, size_t len);
  static void NoteWriteFlags(const void* buf, size_t len);

  const bool request_allow_mmap_;
  std::atomic<bool> init_seen_{false};
  std::atomic<uint64_t> init_unique_{0};  // INIT request awaiting its reply; 0 = none
  std::atomic<bool> kernel_init_ext_{false};
  std::atomic<bool> offered_{false};
  std::atomic<bool> granted_{false};
};

}  // namespace reclaimfs::fs

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
// passes through unchanged. The same patch grants FUSE_ALLOW_IDMAP, so that
// the mount may be idmapped (mount_setattr with MOUNT_ATTR_IDMAP).
//
// It also remembers the write_flags of a WRITE request, which libfuse 3.14
// reads but does not pass on: the kernel sets FUSE_WRITE_KILL_SUIDGID there
// when the writer lacks CAP_FSETID, and on a direct-IO write nobody but the
// filesystem clears the set-id bits.
//
// It also serves the one request libfuse 3.14 cannot dispatch: FUSE_TMPFILE
// (open(dir, O_TMPFILE), protocol 7.37). libfuse answers an unknown opcode
// ENOSYS, after which the kernel fails every O_TMPFILE with EOPNOTSUPP for
// the life of the mount. Read() hands such a request to the handler the
// adapter registered, writes the reply itself (the same shape as a CREATE
// reply) and reads on; libfuse never sees it.
//
// And FUSE_STATX (stat with the birth time, protocol 7.39), which libfuse
// 3.14 also answers ENOSYS, after which the kernel stops asking: served the
// same way, from the attributes the adapter's handler returns.
//
// With the io_uring transport (fuse_uring.h) the INIT patch also grants
// FUSE_OVER_IO_URING once the adapter has the rings ready, requests from the
// rings pass through ServeRingRequest before libfuse, and every reply goes
// back the way its request came (Send).
//
// Called by libfuse's session-loop threads at once; no locks (atomics only;
// the handler is set before the session loop starts). Read blocks in read(2)
// until the kernel has a request or the session ends, and for as long as a
// tmpfile handler runs; Writev blocks as writev(2) on /dev/fuse does.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <functional>

struct fuse_out_header;

namespace reclaimfs::fs {

class FuseUring;

class FuseChannel {
 public:
  // A FUSE_TMPFILE request: the directory's node id, the caller, and the
  // fuse_create_in fields.
  struct TmpfileRequest {
    uint64_t dir = 0;
    uint32_t uid = 0, gid = 0, pid = 0;
    uint32_t flags = 0;  // open(2) flags
    uint32_t mode = 0;
    uint32_t umask = 0;
  };
  // The handler's answer: an errno, or the new node and its open file.
  struct TmpfileResult {
    int error = 0;
    uint64_t nodeid = 0;
    uint64_t generation = 0;
    double entry_timeout = 0, attr_timeout = 0;
    struct stat attr {};
    uint64_t fh = 0;
    bool direct_io = false;
    bool keep_cache = false;
  };
  using TmpfileHandler = std::function<TmpfileResult(const TmpfileRequest&)>;
  // Called when the kernel did not take a successful reply (the request was
  // interrupted): gives back the lookup reference and the open handle.
  using TmpfileAbandon = std::function<void(const TmpfileResult&)>;

  // The answer to a FUSE_STATX of a node: an errno, or its attributes.
  struct StatxResult {
    int error = 0;
    struct stat attr {};
    struct timespec btime {};
    double attr_timeout = 0;
  };
  using StatxHandler = std::function<StatxResult(uint64_t nodeid)>;

  // INIT flags libfuse 3.14 cannot ask for; each is granted when the kernel
  // offers it.
  struct InitWants {
    bool allow_mmap = false;   // FUSE_DIRECT_IO_ALLOW_MMAP
    bool allow_idmap = false;  // FUSE_ALLOW_IDMAP (needs default_permissions)
    bool over_io_uring = false;  // FUSE_OVER_IO_URING (fuse_uring.h)
  };
  explicit FuseChannel(InitWants wants) : wants_(wants) {}

  // read(2) on /dev/fuse; remembers the INIT request. errno as read(2).
  ssize_t Read(int fd, void* buf, size_t len);
  // writev(2) on /dev/fuse; patches the INIT reply. errno as writev(2).
  ssize_t Writev(int fd, const struct iovec* iov, int count);

  // Before the session loop starts. Without a handler FUSE_TMPFILE goes to
  // libfuse (ENOSYS).
  void SetTmpfileHandler(TmpfileHandler handler, TmpfileAbandon abandon) {
    tmpfile_handler_ = std::move(handler);
    tmpfile_abandon_ = std::move(abandon);
  }
  // What the INIT reply settled, for the transport that starts after it.
  struct InitReply {
    bool over_io_uring_offered = false;
    bool over_io_uring_granted = false;
    uint32_t max_write = 0;  // as sent (set when FUSE_OVER_IO_URING may be granted)
    uint32_t max_pages = 0;
  };
  // Before the session loop starts. `prepare` runs before a successful INIT
  // reply is written, when the kernel offers FUSE_OVER_IO_URING and we want
  // it: it sets up the transport and says whether to grant the flag. `done`
  // runs on the same thread once the kernel has taken the reply.
  void SetInitHooks(std::function<bool(const InitReply&)> prepare, std::function<void(const InitReply&)> done) {
    init_prepare_ = std::move(prepare);
    init_done_ = std::move(done);
  }
  // Replies whose request came through the io_uring transport go back
  // through it (nullptr: /dev/fuse only). The ring outlives the session.
  void SetRing(FuseUring* ring) { ring_.store(ring, std::memory_order_release); }
  // A request from the io_uring transport, before libfuse sees it: notes
  // its write flags and serves FUSE_TMPFILE and FUSE_STATX as Read does.
  // True if it was answered here.
  bool ServeRingRequest(int fd, const char* buf, size_t len);

  // Before the session loop starts. Without one FUSE_STATX goes to libfuse.
  void SetStatxHandler(StatxHandler handler) { statx_handler_ = std::move(handler); }
  uint64_t tmpfiles_served() const { return tmpfiles_served_.load(std::memory_order_relaxed); }
  // The write_flags of the WRITE request this thread read last (none when
  // its last request was not a WRITE). A session-loop thread processes each
  // request it reads before it reads the next, on the same thread, so inside
  // the write handler these are that request's flags.
  struct WriteFlags {
    bool kill_suidgid = false;  // FUSE_WRITE_KILL_SUIDGID: the writer lacks CAP_FSETID
    bool from_cache = false;    // FUSE_WRITE_CACHE: writeback of the kernel's page cache
  };
  static WriteFlags CurrentWriteFlags();

  // Whether the kernel offered, and we granted, shared mmap of direct-IO
  // files, and idmapped mounts.
  bool allow_mmap_offered() const;
  bool allow_mmap_granted() const;
  bool allow_idmap_granted() const;

 private:
  void NoteInit(const void* buf, size_t len);
  // True if buf holds a FUSE_TMPFILE request we serve; it is then answered.
  bool ServeTmpfile(int fd, const void* buf, size_t len);
  // Likewise for FUSE_STATX.
  bool ServeStatx(int fd, const void* buf, size_t len);
  static void NoteWriteFlags(const void* buf, size_t len);
  // A reply: through the ring entry its request came from, else /dev/fuse.
  ssize_t Send(int fd, const struct iovec* iov, int count);
  // Answers the request of `out.unique` with -err; a reply the kernel no
  // longer waits for (interrupted) is only logged.
  void SendError(int fd, fuse_out_header out, int err, const char* what);

  const InitWants wants_;
  std::atomic<bool> init_seen_{false};
  std::atomic<uint64_t> init_unique_{0};  // INIT request awaiting its reply; 0 = none
  std::atomic<bool> kernel_init_ext_{false};
  std::atomic<uint64_t> offered_{0};  // the kernel's 64-bit INIT flags
  std::atomic<uint64_t> granted_{0};  // the flags we added to the reply
  std::atomic<uint32_t> kernel_minor_{0};
  TmpfileHandler tmpfile_handler_;
  TmpfileAbandon tmpfile_abandon_;
  std::atomic<uint64_t> tmpfiles_served_{0};
  StatxHandler statx_handler_;
  std::function<bool(const InitReply&)> init_prepare_;
  std::function<void(const InitReply&)> init_done_;
  std::atomic<FuseUring*> ring_{nullptr};
};

}  // namespace reclaimfs::fs

// INIT request/reply inspection, WRITE flags and FUSE_TMPFILE on the raw FUSE
// protocol. Struct layouts come from the kernel ABI header; the flags2 bit is
// defined here because the installed header predates it.
#include "fs/fuse/fuse_channel.h"

#include "fs/fuse/fuse_protocol_ext.h"
#include "fs/fuse/fuse_uring.h"

#include <linux/fuse.h>
#include <linux/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <vector>

#include "spdlog/spdlog.h"

namespace reclaimfs::fs {
namespace {

using fuse_ext::kDirectIoAllowMmap;
constexpr uint32_t kInitExt = FUSE_INIT_EXT;
constexpr uint32_t kFuseInitOpcode = FUSE_INIT;

// FUSE_TMPFILE (protocol 7.37): libfuse 3.14 has no handler for it.
constexpr uint32_t kFuseTmpfileOpcode = FUSE_TMPFILE;

// Seconds as the protocol's whole seconds and nanoseconds.
void SplitTimeout(double t, uint64_t* sec, uint32_t* nsec) {
  if (!(t > 0)) {
    *sec = 0;
    *nsec = 0;
    return;
  }
  *sec = static_cast<uint64_t>(t);
  *nsec = static_cast<uint32_t>((t - static_cast<double>(*sec)) * 1e9);
}

void FillAttr(const struct stat& st, fuse_attr* a) {
  a->ino = st.st_ino;
  a->mode = st.st_mode;
  a->nlink = static_cast<uint32_t>(st.st_nlink);
  a->uid = st.st_uid;
  a->gid = st.st_gid;
  a->rdev = static_cast<uint32_t>(st.st_rdev);
  a->size = static_cast<uint64_t>(st.st_size);
  a->blksize = static_cast<uint32_t>(st.st_blksize);
  a->blocks = static_cast<uint64_t>(st.st_blocks);
  a->atime = static_cast<uint64_t>(st.st_atim.tv_sec);
  a->mtime = static_cast<uint64_t>(st.st_mtim.tv_sec);
  a->ctime = static_cast<uint64_t>(st.st_ctim.tv_sec);
  a->atimensec = static_cast<uint32_t>(st.st_atim.tv_nsec);
  a->mtimensec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  a->ctimensec = static_cast<uint32_t>(st.st_ctim.tv_nsec);
}
// Set by Read on the thread that then handles the request (see the header).
thread_local uint32_t current_write_flags = 0;

constexpr size_t kInitInFlags2End = offsetof(fuse_init_in, flags2) + sizeof(uint32_t);
constexpr size_t kInitOutFlags2End = offsetof(fuse_init_out, flags2) + sizeof(uint32_t);

}  // namespace

ssize_t FuseChannel::Send(int fd, const struct iovec* iov, int count) {
  FuseUring* ring = ring_.load(std::memory_order_acquire);
  ssize_t n = 0;
  if (ring != nullptr && ring->TakeReply(iov, count, &n)) return n;
  return ::writev(fd, iov, count);
}

void FuseChannel::SendError(int fd, fuse_out_header out, int err, const char* what) {
  out.error = -err;
  out.len = sizeof(out);
  const struct iovec iov{&out, sizeof(out)};
  if (Send(fd, &iov, 1) < 0) spdlog::debug("{} error reply not taken: {}", what, std::strerror(errno));
}

bool FuseChannel::ServeRingRequest(int fd, const char* buf, size_t len) {
  current_write_flags = 0;
  NoteWriteFlags(buf, len);
  return ServeTmpfile(fd, buf, len) || ServeStatx(fd, buf, len);
}

ssize_t FuseChannel::Read(int fd, void* buf, size_t len) {
  for (;;) {
    const ssize_t n = ::read(fd, buf, len);
    current_write_flags = 0;
    if (n <= 0) return n;
    const int saved = errno;
    NoteWriteFlags(buf, static_cast<size_t>(n));
    if (!init_seen_.load(std::memory_order_relaxed)) NoteInit(buf, static_cast<size_t>(n));
    const bool served =
        ServeTmpfile(fd, buf, static_cast<size_t>(n)) || ServeStatx(fd, buf, static_cast<size_t>(n));
    errno = saved;
    if (!served) return n;
    // Answered here: read the next request for libfuse.
  }
}

bool FuseChannel::ServeTmpfile(int fd, const void* buf, size_t len) {
  fuse_in_header in;
  if (!tmpfile_handler_ || len < sizeof(in)) return false;
  std::memcpy(&in, buf, sizeof(in));
  if (in.opcode != kFuseTmpfileOpcode) return false;

  // Body: fuse_create_in, then the name (the kernel's "/" placeholder;
  // unused). A short body is answered EINVAL rather than guessed at.
  TmpfileResult result;
  fuse_create_in create{};
  if (len - sizeof(in) < sizeof(create)) {
    result.error = EINVAL;
  } else {
    std::memcpy(&create, static_cast<const char*>(buf) + sizeof(in), sizeof(create));
    TmpfileRequest req;
    req.dir = in.nodeid;
    req.uid = in.uid;
    req.gid = in.gid;
    req.pid = in.pid;
    req.flags = create.flags;
    req.mode = create.mode;
    req.umask = create.umask;
    result = tmpfile_handler_(req);
  }

  fuse_out_header out{};
  out.unique = in.unique;
  if (result.error != 0) {
    SendError(fd, out, result.error, "FUSE_TMPFILE");
    return true;
  }

  // Same layout as a CREATE reply: fuse_entry_out (shorter before 7.9),
  // then fuse_open_out.
  fuse_entry_out entry{};
  entry.nodeid = result.nodeid;
  entry.generation = result.generation;
  SplitTimeout(result.entry_timeout, &entry.entry_valid, &entry.entry_valid_nsec);
  SplitTimeout(result.attr_timeout, &entry.attr_valid, &entry.attr_valid_nsec);
  FillAttr(result.attr, &entry.attr);
  fuse_open_out open{};
  open.fh = result.fh;
  if (result.direct_io) open.open_flags |= FOPEN_DIRECT_IO;
  if (result.keep_cache) open.open_flags |= FOPEN_KEEP_CACHE;
  // The negotiated minor is the lower of the kernel's and libfuse's (which
  // speaks the protocol of this header).
  const uint32_t minor = std::min<uint32_t>(kernel_minor_.load(std::memory_order_relaxed), FUSE_KERNEL_MINOR_VERSION);
  const size_t entry_size = minor < 9 ? FUSE_COMPAT_ENTRY_OUT_SIZE : sizeof(entry);
  out.len = static_cast<uint32_t>(sizeof(out) + entry_size + sizeof(open));
  const struct iovec iov[3] = {{&out, sizeof(out)}, {&entry, entry_size}, {&open, sizeof(open)}};
  if (Send(fd, iov, 3) < 0) {
    // The kernel no longer waits for it (interrupted): undo.
    spdlog::debug("FUSE_TMPFILE reply not taken: {}", std::strerror(errno));
    if (tmpfile_abandon_) tmpfile_abandon_(result);
    return true;
  }
  tmpfiles_served_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool FuseChannel::ServeStatx(int fd, const void* buf, size_t len) {
  fuse_in_header in;
  if (!statx_handler_ || len < sizeof(in)) return false;
  std::memcpy(&in, buf, sizeof(in));
  if (in.opcode != fuse_ext::kStatxOpcode) return false;

  // The body (fuse_statx_in: flags, fh, the caller's mask) changes nothing:
  // every field is always known, so all are answered.
  StatxResult result;
  if (len - sizeof(in) < sizeof(fuse_ext::StatxIn)) {
    result.error = EINVAL;
  } else {
    result = statx_handler_(in.nodeid);
  }
  fuse_out_header out{};
  out.unique = in.unique;
  if (result.error != 0) {
    SendError(fd, out, result.error, "FUSE_STATX");
    return true;
  }
  fuse_ext::StatxOut reply{};
  SplitTimeout(result.attr_timeout, &reply.attr_valid, &reply.attr_valid_nsec);
  fuse_ext::Statx& sx = reply.stat;
  const struct stat& st = result.attr;
  sx.mask = STATX_BASIC_STATS | STATX_BTIME;
  sx.blksize = static_cast<uint32_t>(st.st_blksize);
  sx.nlink = static_cast<uint32_t>(st.st_nlink);
  sx.uid = st.st_uid;
  sx.gid = st.st_gid;
  sx.mode = static_cast<uint16_t>(st.st_mode);
  sx.ino = st.st_ino;
  sx.size = static_cast<uint64_t>(st.st_size);
  sx.blocks = static_cast<uint64_t>(st.st_blocks);
  auto time = [](const struct timespec& t) {
    return fuse_ext::SxTime{t.tv_sec, static_cast<uint32_t>(t.tv_nsec), 0};
  };
  sx.atime = time(st.st_atim);
  sx.mtime = time(st.st_mtim);
  sx.ctime = time(st.st_ctim);
  sx.btime = time(result.btime);
  sx.rdev_major = major(st.st_rdev);
  sx.rdev_minor = minor(st.st_rdev);
  out.len = static_cast<uint32_t>(sizeof(out) + sizeof(reply));
  const struct iovec iov[2] = {{&out, sizeof(out)}, {&reply, sizeof(reply)}};
  if (Send(fd, iov, 2) < 0) spdlog::debug("FUSE_STATX reply not taken: {}", std::strerror(errno));
  return true;
}

FuseChannel::WriteFlags FuseChannel::CurrentWriteFlags() {
  WriteFlags f;
  f.kill_suidgid = (current_write_flags & FUSE_WRITE_KILL_SUIDGID) != 0;
  f.from_cache = (current_write_flags & FUSE_WRITE_CACHE) != 0;
  return f;
}

void FuseChannel::NoteWriteFlags(const void* buf, size_t len) {
  fuse_in_header in;
  if (len < sizeof(in) + sizeof(fuse_write_in)) return;
  std::memcpy(&in, buf, sizeof(in));
  if (in.opcode != FUSE_WRITE) return;
  fuse_write_in write;
  std::memcpy(&write, static_cast<const char*>(buf) + sizeof(in), sizeof(write));
  current_write_flags = write.write_flags;
}

void FuseChannel::NoteInit(const void* buf, size_t len) {
  fuse_in_header in;
  if (len < sizeof(in)) return;
  std::memcpy(&in, buf, sizeof(in));
  if (in.opcode != kFuseInitOpcode) return;
  const auto* body = static_cast<const char*>(buf) + sizeof(in);
  const size_t body_len = len - sizeof(in);
  fuse_init_in init{};
  std::memcpy(&init, body, std::min(body_len, sizeof(init)));
  if (init.major != 7) return;  // a newer major is answered and re-sent as 7.x
  const bool ext = body_len >= kInitInFlags2End && (init.flags & kInitExt) != 0;
  const uint64_t flags = init.flags | (ext ? static_cast<uint64_t>(init.flags2) << 32 : 0);
  kernel_init_ext_.store(ext, std::memory_order_relaxed);
  kernel_minor_.store(init.minor, std::memory_order_relaxed);
  offered_.store(flags, std::memory_order_release);
  init_unique_.store(in.unique, std::memory_order_release);
  init_seen_.store(true, std::memory_order_release);
}

ssize_t FuseChannel::Writev(int fd, const struct iovec* iov, int count) {
  const uint64_t unique = init_unique_.load(std::memory_order_acquire);
  // libfuse sends a reply as {out header, body}; INIT's body is fuse_init_out.
  if (unique == 0 || count != 2 || iov[0].iov_len != sizeof(fuse_out_header)) return Send(fd, iov, count);
  fuse_out_header out;
  std::memcpy(&out, iov[0].iov_base, sizeof(out));
  if (out.unique != unique) return Send(fd, iov, count);
  init_unique_.store(0, std::memory_order_release);
  const uint64_t offered = offered_.load(std::memory_order_acquire);
  uint64_t grant = 0;
  if (wants_.allow_mmap && (offered & kDirectIoAllowMmap) != 0) grant |= kDirectIoAllowMmap;
  if (wants_.allow_idmap && (offered & fuse_ext::kAllowIdmap) != 0) grant |= fuse_ext::kAllowIdmap;
  if (wants_.over_io_uring && (offered & fuse_ext::kOverIoUring) != 0) grant |= fuse_ext::kOverIoUring;
  if (out.error != 0 || iov[1].iov_len < kInitOutFlags2End || !kernel_init_ext_.load(std::memory_order_relaxed)) {
    grant = 0;
  }
  InitReply reply;
  reply.over_io_uring_offered = (offered & fuse_ext::kOverIoUring) != 0;
  if (grant & fuse_ext::kOverIoUring) {
    fuse_init_out init;
    std::memcpy(&init, iov[1].iov_base, kInitOutFlags2End);
    reply.max_write = init.max_write;
    reply.max_pages = init.max_pages;
    // Granted only with a transport ready to register: once granted, the
    // kernel serves no request until the rings have entries.
    if (!init_prepare_ || !init_prepare_(reply)) grant &= ~fuse_ext::kOverIoUring;
  }
  ssize_t n;
  if (grant == 0) {
    n = ::writev(fd, iov, count);
  } else {
    std::vector<char> body(static_cast<const char*>(iov[1].iov_base),
                           static_cast<const char*>(iov[1].iov_base) + iov[1].iov_len);
    fuse_init_out init;
    std::memcpy(&init, body.data(), kInitOutFlags2End);
    init.flags |= kInitExt;
    init.flags2 |= static_cast<uint32_t>(grant >> 32);
    std::memcpy(body.data(), &init, kInitOutFlags2End);
    const struct iovec patched[2] = {iov[0], {body.data(), body.size()}};
    n = ::writev(fd, patched, 2);
  }
  if (n >= 0) {
    granted_.store(grant, std::memory_order_release);
    if (grant != 0) spdlog::debug("INIT reply: granted flags 0x{:x}", grant);
    reply.over_io_uring_granted = (grant & fuse_ext::kOverIoUring) != 0;
    // The kernel has processed the reply when writev returns: the
    // connection is initialised and ring entries may be registered.
    if (init_done_ && out.error == 0) init_done_(reply);
  }
  return n;
}

bool FuseChannel::allow_mmap_offered() const {
  return (offered_.load(std::memory_order_acquire) & kDirectIoAllowMmap) != 0;
}
bool FuseChannel::allow_mmap_granted() const {
  return (granted_.load(std::memory_order_acquire) & kDirectIoAllowMmap) != 0;
}
bool FuseChannel::allow_idmap_granted() const {
  return (granted_.load(std::memory_order_acquire) & fuse_ext::kAllowIdmap) != 0;
}

}  // namespace reclaimfs::fs

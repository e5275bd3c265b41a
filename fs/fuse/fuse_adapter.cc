// Request handlers. Each one builds a RequestContext, calls Filesystem, and
// replies; errors become errno only here (ToErrno). A reply the kernel did
// not take (the request was interrupted) gives back what the call acquired:
// lookup references, open handles.
#include "fs/fuse/fuse_adapter.h"

#include "fs/fuse/fuse_protocol_ext.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fs/cache/errno_status.h"
#include "fs/fuse/fuse_api.h"
#include "fs/posix/inode_flags.h"
#include "fs/posix/posix_acl.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::fs {
namespace {

constexpr unsigned kMaxWrite = 1u << 20;

FuseAdapter& Self(fuse_req_t req) { return *static_cast<FuseAdapter*>(fuse_req_userdata(req)); }

int ErrnoOf(const absl::Status& s) {
  const int err = ToErrno(s);
  return err != 0 ? err : EIO;  // a failed call must never answer success
}

void ReplyStatus(fuse_req_t req, const absl::Status& s) { fuse_reply_err(req, s.ok() ? 0 : ErrnoOf(s)); }

// The kernel rejects long names itself on most paths; check anyway so the
// filesystem never sees one.
bool RejectLongName(fuse_req_t req, const char* name) {
  if (std::strlen(name) <= kNameMax) return false;
  fuse_reply_err(req, ENAMETOOLONG);
  return true;
}

// The fs uid and gid of thread `pid` (the fourth field of the Uid: and Gid:
// lines of its status), or nothing if the thread is gone.
struct FsIds {
  uint32_t uid = 0, gid = 0;
};
std::optional<FsIds> FsIdsOfThread(uint32_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/task/", pid, "/status"));
  std::string line;
  FsIds ids;
  int found = 0;
  auto fourth = [](const std::string& rest, uint32_t* out) {
    std::istringstream fields(rest);
    uint32_t real, effective, saved, fs;
    if (!(fields >> real >> effective >> saved >> fs)) return false;
    *out = fs;
    return true;
  };
  while (found < 2 && std::getline(in, line)) {
    if (line.rfind("Uid:", 0) == 0 && fourth(line.substr(4), &ids.uid)) ++found;
    if (line.rfind("Gid:", 0) == 0 && fourth(line.substr(4), &ids.gid)) ++found;
  }
  if (found < 2) return std::nullopt;
  return ids;
}

// Supplementary groups of thread `pid`, read from /proc as libfuse's
// fuse_req_getgroups does, for requests that come without a fuse_req.
// Empty if the thread is gone.
std::vector<uint32_t> GroupsOfThread(uint32_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/task/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Groups:", 0) != 0) continue;
    std::istringstream list(line.substr(7));
    std::vector<uint32_t> groups;
    for (uint32_t g; list >> g;) groups.push_back(g);
    return groups;
  }
  return {};
}

}  // namespace

// Handlers, friends of FuseAdapter. Static members so the table below can
// point at them.
struct FuseOps {
  static std::vector<uint32_t> Groups(fuse_req_t req) {
    std::vector<gid_t> groups(32);
    int n = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
    if (n > static_cast<int>(groups.size())) {
      groups.resize(n);
      n = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
    }
    if (n <= 0) return {};
    return std::vector<uint32_t>(groups.begin(), groups.begin() + std::min<int>(n, groups.size()));
  }

  // need_ids: the operation has rules about who the caller is (root, owner,
  // group member) beyond permission checks. When the kernel withheld the
  // ids (kernel_checked), only then are they read from /proc, a few
  // microseconds a request; the others keep the invalid ids, which no rule
  // takes for root or an owner, and pass their permission checks anyway.
  static RequestContext Context(fuse_req_t req, bool need_groups, bool need_ids = true) {
    const fuse_ctx* c = fuse_req_ctx(req);
    RequestContext ctx;
    ctx.uid = c->uid;
    ctx.gid = c->gid;
    ctx.pid = static_cast<uint32_t>(c->pid);
    ctx.umask = c->umask;
    ctx.kernel_checked = (c->uid == fuse_ext::kInvalidUidGid || c->gid == fuse_ext::kInvalidUidGid) &&
                         Self(req).channel_.allow_idmap_granted();
    if (ctx.kernel_checked && need_ids) {
      // The ids the kernel withheld, from the calling thread; unchanged
      // (invalid, so no rule takes the caller for root) if it is gone.
      if (std::optional<FsIds> ids = FsIdsOfThread(ctx.pid)) {
        ctx.uid = ids->uid;
        ctx.gid = ids->gid;
      }
    }
    // Supplementary groups cost a /proc read; fetch them only where the
    // filesystem decides on group membership (its own permission checks,
    // chown/chmod rules). Otherwise an ACL check fetches them if a group
    // entry decides (the request is unanswered until the call returns).
    if (need_groups || !Self(req).options_.default_permissions) {
      ctx.groups = Groups(req);
    } else {
      ctx.load_groups = [req] { return Groups(req); };
    }
    return ctx;
  }

  static fuse_entry_param Entry(const FuseAdapter& self, const Attributes& a) {
    fuse_entry_param e;
    std::memset(&e, 0, sizeof(e));
    e.ino = a.ino;
    // The kernel's root inode has generation 0 and it expects 0 for it.
    e.generation = a.ino == FUSE_ROOT_ID ? 0 : a.generation;
    a.ToStat(&e.attr);
    e.attr_timeout = self.options_.timeout_seconds;
    e.entry_timeout = self.options_.timeout_seconds;
    return e;
  }

  // Replies with a new entry; if the kernel did not take it, the lookup
  // reference the call added is given back.
  static void ReplyEntry(fuse_req_t req, const absl::StatusOr<Attributes>& attr) {
    FuseAdapter& self = Self(req);
    if (!attr.ok()) {
      fuse_reply_err(req, ErrnoOf(attr.status()));
      return;
    }
    const fuse_entry_param e = Entry(self, *attr);
    if (fuse_reply_entry(req, &e) != 0) self.fs_->Forget(attr->ino, 1);
  }

  static void FillOpen(const FuseAdapter& self, const OpenFile& of, fuse_file_info* fi) {
    fi->fh = of.fh;
    // With kernel_cache the kernel's page cache serves the file.
    fi->direct_io = of.direct_io && !self.options_.kernel_cache;
    fi->keep_cache = of.keep_cache;
  }

  // A close of a read-only descriptor has nothing to report (FLUSH only
  // reports writeback errors to writers, as NFS does, and locks are the
  // kernel's), so the kernel is told not to send FLUSH for it: one round
  // trip less per open/read/close.
  static void SkipFlushIfReadOnly(fuse_file_info* fi) {
    fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY;
  }

  static void Init(void* userdata, fuse_conn_info* conn) {
    const FuseAdapter& self = *static_cast<FuseAdapter*>(userdata);
    auto want = [conn](unsigned cap) {
      if (conn->capable & cap) conn->want |= cap;
    };
    auto drop = [conn](unsigned cap) { conn->want &= ~cap; };
    want(FUSE_CAP_ASYNC_READ);
    want(FUSE_CAP_READDIRPLUS);
    want(FUSE_CAP_READDIRPLUS_AUTO);
    // The kernel passes the caller's umask instead of applying it; the
    // filesystem applies it (RequestContext.umask).
    want(FUSE_CAP_DONT_MASK);
    // POSIX ACLs: the kernel reads them with getxattr, caches them and checks
    // permissions with them (this turns on default_permissions); the
    // filesystem validates them, keeps the mode in sync and does inheritance.
    // With no_default_permissions it is not asked for: the kernel passes the
    // ACL xattrs through uncached and the filesystem's own checks use them.
    // With noacl neither: the filesystem refuses the ACL xattrs.
    if (self.options_.default_permissions && self.options_.acl) {
      want(FUSE_CAP_POSIX_ACL);
    } else {
      drop(FUSE_CAP_POSIX_ACL);
    }
    want(FUSE_CAP_PARALLEL_DIROPS);
    want(FUSE_CAP_ASYNC_DIO);
    // chattr/lsattr flags on directories too.
    want(FUSE_CAP_IOCTL_DIR);
    // Locks stay local to the kernel; we implement no lock operations.
    drop(FUSE_CAP_POSIX_LOCKS);
    drop(FUSE_CAP_FLOCK_LOCKS);
    // Replies are copied, not spliced: the channel is our custom io.
    drop(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    // The kernel truncates (setattr size) before an O_TRUNC open, and clears
    // set-id bits on chown/truncate/fallocate itself (a SETATTR of the mode,
    // and a REMOVEXATTR of security.capability): fewer rules for Open and
    // SetAttr. Direct-IO writes are the exception: the kernel only flags
    // them (FUSE_WRITE_KILL_SUIDGID) and Write does the rest.
    drop(FUSE_CAP_ATOMIC_O_TRUNC);
    drop(FUSE_CAP_HANDLE_KILLPRIV);
    // File handles (name_to_handle_at, NFS export) outlive the kernel's
    // inodes: it decodes them with lookups of "." and "..", which we answer
    // for any node id (Filesystem::Lookup).
    want(FUSE_CAP_EXPORT_SUPPORT);
    if (self.options_.kernel_cache) {
      want(FUSE_CAP_WRITEBACK_CACHE);
      want(FUSE_CAP_AUTO_INVAL_DATA);
      want(FUSE_CAP_CACHE_SYMLINKS);
      conn->max_readahead = static_cast<unsigned>(std::min<uint64_t>(conn->max_readahead, self.options_.readahead));
    } else {
      // File data lives in our budgeted cache only.
      drop(FUSE_CAP_WRITEBACK_CACHE);
      drop(FUSE_CAP_AUTO_INVAL_DATA);
    }
    // libfuse aborts INIT unless this equals the max_read= mount option.
    conn->max_read = self.options_.max_read;
    conn->max_write = kMaxWrite;
    conn->max_background = self.options_.max_background;
    conn->congestion_threshold = 0;  // libfuse picks 3/4 of max_background
    conn->time_gran = 1;
    spdlog::debug("FUSE {}.{} capable 0x{:x} want 0x{:x} max_write {} max_background {}", conn->proto_major,
                  conn->proto_minor, conn->capable, conn->want, conn->max_write, conn->max_background);
  }

  static void Destroy(void* userdata) {
    // Shutdown is the daemon's job once the session loop has returned; the
    // kernel sends DESTROY only for some mounts, so nothing depends on it.
    spdlog::debug("FUSE destroy");
  }

  static void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (RejectLongName(req, name)) return;
    FuseAdapter& self = Self(req);
    auto attr = self.fs_->Lookup(Context(req, false, false), parent, name);
    if (!attr.ok() && ToErrno(attr.status()) == ENOENT) {
      // A negative entry: the kernel caches the absence for the entry timeout.
      // Safe because every change to the namespace comes through this mount.
      fuse_entry_param e;
      std::memset(&e, 0, sizeof(e));
      e.entry_timeout = self.options_.timeout_seconds;
      fuse_reply_entry(req, &e);
      return;
    }
    ReplyEntry(req, attr);
  }

  // The kernel sends FORGET when it evicts the inode.
  static void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    FuseAdapter& self = Self(req);
    self.mapped_.Forget(ino);
    self.fs_->Forget(ino, nlookup);
    fuse_reply_none(req);
  }

  static void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    FuseAdapter& self = Self(req);
    for (size_t i = 0; i < count; ++i) {
      self.mapped_.Forget(forgets[i].ino);
      self.fs_->Forget(forgets[i].ino, forgets[i].nlookup);
    }
    fuse_reply_none(req);
  }

  static void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    FuseAdapter& self = Self(req);
    ReplyAttr(req, self.fs_->GetAttr(ino), self.options_.timeout_seconds);
  }

  // FUSE_STATX, served by the channel: getattr with the birth time.
  static FuseChannel::StatxResult Statx(FuseAdapter& self, uint64_t nodeid) {
    FuseChannel::StatxResult r;
    auto attr = self.fs_->GetAttr(nodeid);
    if (!attr.ok()) {
      r.error = ErrnoOf(attr.status());
      return r;
    }
    attr->ToStat(&r.attr);
    r.btime.tv_sec = attr->btime.sec;
    r.btime.tv_nsec = attr->btime.nsec;
    r.attr_timeout = self.options_.timeout_seconds;
    return r;
  }

  // getattr and setattr answer the same way: the attributes or the errno.
  static void ReplyAttr(fuse_req_t req, const absl::StatusOr<Attributes>& attr, double timeout) {
    if (!attr.ok()) {
      fuse_reply_err(req, ErrnoOf(attr.status()));
      return;
    }
    struct stat st;
    std::memset(&st, 0, sizeof(st));
    attr->ToStat(&st);
    fuse_reply_attr(req, &st, timeout);
  }

  static void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* in, int to_set, fuse_file_info* fi) {
    FuseAdapter& self = Self(req);
    SetAttrRequest r;
    if (to_set & FUSE_SET_ATTR_MODE) r.mode = in->st_mode;
    if (to_set & FUSE_SET_ATTR_UID) r.uid = in->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) r.gid = in->st_gid;
    if (to_set & FUSE_SET_ATTR_SIZE) r.size = static_cast<uint64_t>(in->st_size);
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
      r.atime_now = true;
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
      r.atime = storage::Timespec{in->st_atim.tv_sec, static_cast<uint32_t>(in->st_atim.tv_nsec)};
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
      r.mtime_now = true;
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
      r.mtime = storage::Timespec{in->st_mtim.tv_sec, static_cast<uint32_t>(in->st_mtim.tv_nsec)};
    }
    // FUSE_SET_ATTR_CTIME (writeback cache) needs nothing: every change
    // updates ctime.
    if (fi != nullptr) r.fh = fi->fh;
    const bool ownership = (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) != 0;
    ReplyAttr(req, self.fs_->SetAttr(Context(req, ownership), ino, r), self.options_.timeout_seconds);
  }

  static void Readlink(fuse_req_t req, fuse_ino_t ino) {
    auto target = Self(req).fs_->Readlink(ino);
    if (!target.ok()) {
      fuse_reply_err(req, ErrnoOf(target.status()));
      return;
    }
    fuse_reply_readlink(req, target->c_str());
  }

  static void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
    if (RejectLongName(req, name)) return;
    ReplyEntry(req, Self(req).fs_->Mknod(Context(req, false), parent, name, mode, rdev));
  }

  static void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    if (RejectLongName(req, name)) return;
    ReplyEntry(req, Self(req).fs_->Mkdir(Context(req, false), parent, name, mode));
  }

  static void Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
    if (RejectLongName(req, name)) return;
    ReplyEntry(req, Self(req).fs_->Symlink(Context(req, false), parent, name, target));
  }

  static void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
    if (RejectLongName(req, new_name)) return;
    ReplyEntry(req, Self(req).fs_->Link(Context(req, false), ino, new_parent, new_name));
  }

  static void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (RejectLongName(req, name)) return;
    ReplyStatus(req, Self(req).fs_->Unlink(Context(req, false, false), parent, name));
  }

  static void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (RejectLongName(req, name)) return;
    ReplyStatus(req, Self(req).fs_->Rmdir(Context(req, false, false), parent, name));
  }

  static void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
                     const char* new_name, unsigned int flags) {
    if (RejectLongName(req, name) || RejectLongName(req, new_name)) return;
    ReplyStatus(req, Self(req).fs_->Rename(Context(req, false, false), parent, name, new_parent, new_name, flags));
  }

  static void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    FuseAdapter& self = Self(req);
    auto of = self.fs_->Open(Context(req, false, (fi->flags & O_TRUNC) != 0), ino, fi->flags);
    if (!of.ok()) {
      fuse_reply_err(req, ErrnoOf(of.status()));
      return;
    }
    FillOpen(self, *of, fi);
    SkipFlushIfReadOnly(fi);
    if (fuse_reply_open(req, fi) != 0) (void)self.fs_->Release(ino, of->fh);
  }

  static void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
    if (RejectLongName(req, name)) return;
    FuseAdapter& self = Self(req);
    auto created = self.fs_->Create(Context(req, false), parent, name, mode, fi->flags);
    if (!created.ok()) {
      fuse_reply_err(req, ErrnoOf(created.status()));
      return;
    }
    const auto& [attr, of] = *created;
    FillOpen(self, of, fi);
    SkipFlushIfReadOnly(fi);
    const fuse_entry_param e = Entry(self, attr);
    if (fuse_reply_create(req, &e, fi) != 0) {
      (void)self.fs_->Release(attr.ino, of.fh);
      self.fs_->Forget(attr.ino, 1);
    }
  }

  // FUSE_TMPFILE arrives through the channel, not libfuse (fuse_channel.h):
  // no fuse_req, so the context comes from the request header, and the
  // groups, when the filesystem checks permissions itself, from /proc.
  static FuseChannel::TmpfileResult Tmpfile(FuseAdapter& self, const FuseChannel::TmpfileRequest& r) {
    RequestContext ctx;
    ctx.uid = r.uid;
    ctx.gid = r.gid;
    ctx.pid = r.pid;
    ctx.umask = r.umask;
    if (!self.options_.default_permissions) ctx.groups = GroupsOfThread(r.pid);
    FuseChannel::TmpfileResult out;
    auto created = self.fs_->Tmpfile(ctx, r.dir, r.mode, static_cast<int>(r.flags));
    if (!created.ok()) {
      out.error = ErrnoOf(created.status());
      return out;
    }
    const auto& [attr, of] = *created;
    fuse_file_info fi;
    std::memset(&fi, 0, sizeof(fi));
    FillOpen(self, of, &fi);
    const fuse_entry_param e = Entry(self, attr);
    out.nodeid = e.ino;
    out.generation = e.generation;
    out.entry_timeout = e.entry_timeout;
    out.attr_timeout = e.attr_timeout;
    out.attr = e.attr;
    out.fh = fi.fh;
    out.direct_io = fi.direct_io;
    out.keep_cache = fi.keep_cache;
    return out;
  }

  static void AbandonTmpfile(FuseAdapter& self, const FuseChannel::TmpfileResult& r) {
    (void)self.fs_->Release(r.nodeid, r.fh);
    self.fs_->Forget(r.nodeid, 1);
  }

  static void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    if (off < 0) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    // A hit is answered here; a read that would wait for IO (or a page, or
    // a writer) goes to a blocking worker and this thread back to /dev/fuse.
    FuseAdapter& self = Self(req);
    // No lock owner: the kernel fills its page cache (see MappedFiles).
    // Marked before the data is read, so a direct write that lands after
    // this read sees the mark.
    if (fi->lock_owner == 0) self.mapped_.Mark(ino);
    if (ReadAndReply(self, req, ino, fi->fh, static_cast<uint64_t>(off), size, false)) return;
    self.blocking_.Submit([&self, req, ino, fh = fi->fh, off = static_cast<uint64_t>(off), size] {
      ReadAndReply(self, req, ino, fh, off, size, true);
    });
  }

  // False only when !may_wait and the read would have to wait: then nothing
  // was replied and nothing changed.
  static bool ReadAndReply(FuseAdapter& self, fuse_req_t req, fuse_ino_t ino, uint64_t fh, uint64_t off,
                           size_t size, bool may_wait) {
    // The reply points at the cached pages; libfuse writes it before the
    // callback returns, while the pages are still pinned.
    bool replied = false;
    auto n = self.fs_->ReadPinned(
        ino, fh, off, size,
        [&](const iovec* iov, int count) {
          ReplyIov(req, iov, count);
          replied = true;
        },
        may_wait);
    if (replied) return true;
    if (!may_wait && absl::IsUnavailable(n.status())) return false;
    if (!n.ok()) {
      fuse_reply_err(req, ErrnoOf(n.status()));
    } else {
      fuse_reply_buf(req, nullptr, 0);
    }
    return true;
  }

  // One buffer goes out without an allocation (fuse_reply_iov allocates
  // its header vector); several in one writev.
  static void ReplyIov(fuse_req_t req, const iovec* iov, int count) {
    if (count == 0) {
      fuse_reply_buf(req, nullptr, 0);
    } else if (count == 1) {
      fuse_reply_buf(req, static_cast<const char*>(iov[0].iov_base), iov[0].iov_len);
    } else {
      fuse_reply_iov(req, iov, count);
    }
  }

  static void Write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off,
                    fuse_file_info* fi) {
    if (off < 0) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    // libfuse does not pass write_flags on; the channel kept them for us.
    const FuseChannel::WriteFlags flags = FuseChannel::CurrentWriteFlags();
    WritePrivs privs;
    privs.kill_suidgid = flags.kill_suidgid;
    privs.kill_caps = !flags.from_cache;
    bool cleared_setid = false;
    privs.cleared_setid = &cleared_setid;
    FuseAdapter& self = Self(req);
    auto n = self.fs_->Write(ino, fi->fh, static_cast<uint64_t>(off), data, size, privs);
    if (!n.ok()) {
      fuse_reply_err(req, ErrnoOf(n.status()));
      return;
    }
    // The kernel keeps the mode it cached (a direct write refreshes only
    // size and times).
    if (cleared_setid) InvalidateAttributes(self, ino);
    if (flags.from_cache) {
      self.mapped_.Mark(ino);
    } else if (*n > 0 && self.mapped_.Contains(ino)) {
      self.invalidator_.StoreThenReplyWrite(req, ino, static_cast<uint64_t>(off), data, *n);
      return;
    }
    fuse_reply_write(req, *n);
  }

  static void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    FuseAdapter& self = Self(req);
    self.flushes_.fetch_add(1, std::memory_order_relaxed);
    ReplyStatus(req, self.fs_->Flush(ino, fi->fh));
  }

  static void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    ReplyStatus(req, Self(req).fs_->Release(ino, fi->fh));
  }

  // Waits for writeback: on a blocking worker.
  static void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
    FuseAdapter& self = Self(req);
    self.blocking_.Submit([&self, req, ino, fh = fi->fh, datasync] {
      ReplyStatus(req, self.fs_->Fsync(ino, fh, datasync != 0));
    });
  }

  static void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    FuseAdapter& self = Self(req);
    auto fh = self.fs_->OpenDir(Context(req, false, false), ino, fi->flags);
    if (!fh.ok()) {
      fuse_reply_err(req, ErrnoOf(fh.status()));
      return;
    }
    fi->fh = *fh;
    if (fuse_reply_open(req, fi) != 0) (void)self.fs_->ReleaseDir(ino, *fh);
  }

  // readdir and readdirplus: entries are packed until the kernel's buffer is
  // full; the entry that does not fit is refused (fn returns false) so the
  // filesystem neither consumes it nor takes a reference for it.
  static void ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
                            bool plus) {
    FuseAdapter& self = Self(req);
    std::vector<char> buf(size);
    size_t used = 0;
    std::vector<uint64_t> referenced;  // plus: references to give back if the reply fails
    auto fill = [&](const DirListEntry& d) -> bool {
      const size_t room = size - used;
      size_t need = 0;
      const bool dot = d.name == "." || d.name == "..";
      if (plus && !dot) {
        const fuse_entry_param e = Entry(self, d.attr);
        need = fuse_add_direntry_plus(req, buf.data() + used, room, d.name.c_str(), &e,
                                      static_cast<off_t>(d.next_offset));
      } else if (plus) {
        // "." and "..": the kernel takes no reference for them, so none is
        // announced (ino 0 = no entry, only the name and d_ino).
        fuse_entry_param e;
        std::memset(&e, 0, sizeof(e));
        e.attr.st_ino = d.ino;
        e.attr.st_mode = d.type;
        need = fuse_add_direntry_plus(req, buf.data() + used, room, d.name.c_str(), &e,
                                      static_cast<off_t>(d.next_offset));
      } else {
        struct stat st;
        std::memset(&st, 0, sizeof(st));
        st.st_ino = d.ino;
        st.st_mode = d.type;
        need = fuse_add_direntry(req, buf.data() + used, room, d.name.c_str(), &st,
                                 static_cast<off_t>(d.next_offset));
      }
      if (need > room) return false;
      used += need;
      if (plus && !dot) referenced.push_back(d.attr.ino);
      return true;
    };
    absl::Status s = self.fs_->ReadDir(Context(req, false, false), ino, fi->fh, static_cast<uint64_t>(off), plus, fill);
    if (!s.ok() && used == 0) {
      fuse_reply_err(req, ErrnoOf(s));
      return;
    }
    // On an error after some entries, those are returned; the next call
    // starts after them and meets the error again.
    if (fuse_reply_buf(req, buf.data(), used) != 0) {
      for (uint64_t referenced_ino : referenced) self.fs_->Forget(referenced_ino, 1);
    }
  }

  static void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    ReadDirCommon(req, ino, size, off, fi, false);
  }

  static void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    ReadDirCommon(req, ino, size, off, fi, true);
  }

  static void ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    ReplyStatus(req, Self(req).fs_->ReleaseDir(ino, fi->fh));
  }

  static void FsyncDir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
    FuseAdapter& self = Self(req);
    self.blocking_.Submit([&self, req, ino, fh = fi->fh, datasync] {
      ReplyStatus(req, self.fs_->FsyncDir(ino, fh, datasync != 0));
    });
  }

  static void StatFs(fuse_req_t req, fuse_ino_t ino) {
    auto stats = Self(req).fs_->StatFs();
    if (!stats.ok()) {
      fuse_reply_err(req, ErrnoOf(stats.status()));
      return;
    }
    struct statvfs sv;
    std::memset(&sv, 0, sizeof(sv));
    sv.f_bsize = stats->block_size;
    sv.f_frsize = stats->block_size;
    sv.f_blocks = stats->blocks;
    sv.f_bfree = stats->blocks_free;
    sv.f_bavail = stats->blocks_avail;
    sv.f_files = stats->files;
    sv.f_ffree = stats->files_free;
    sv.f_favail = stats->files_free;
    sv.f_namemax = stats->name_max;
    fuse_reply_statfs(req, &sv);
  }

  static void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                       int flags) {
    // Setting an access ACL clears set-gid unless the caller is in the
    // file's group, so ACL changes need the caller's groups.
    ReplyStatus(req, Self(req).fs_->SetXattr(Context(req, IsAclXattr(name)), ino, name,
                                             std::string_view(value, size), flags));
  }

  // getxattr/listxattr protocol: size 0 asks for the length; a buffer that
  // is too small is ERANGE.
  static void ReplyXattrValue(fuse_req_t req, const std::string& value, size_t size) {
    if (size == 0) {
      fuse_reply_xattr(req, value.size());
    } else if (size < value.size()) {
      fuse_reply_err(req, ERANGE);
    } else {
      fuse_reply_buf(req, value.data(), value.size());
    }
  }

  static void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    auto value = Self(req).fs_->GetXattr(ino, name);
    if (!value.ok()) {
      fuse_reply_err(req, ErrnoOf(value.status()));
      return;
    }
    ReplyXattrValue(req, *value, size);
  }

  static void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    auto names = Self(req).fs_->ListXattr(ino);
    if (!names.ok()) {
      fuse_reply_err(req, ErrnoOf(names.status()));
      return;
    }
    std::string list;
    for (const std::string& n : *names) {
      list += n;
      list.push_back('\0');
    }
    ReplyXattrValue(req, list, size);
  }

  static void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
    ReplyStatus(req, Self(req).fs_->RemoveXattr(Context(req, false), ino, name));
  }

  static void Access(fuse_req_t req, fuse_ino_t ino, int mask) {
    ReplyStatus(req, Self(req).fs_->Access(Context(req, true), ino, mask));
  }

  // The kernel passes the mode through, but (up to at least Linux 6.18) it
  // forwards only 0, KEEP_SIZE and PUNCH_HOLE|KEEP_SIZE; ZERO_RANGE,
  // COLLAPSE_RANGE and INSERT_RANGE fail with EOPNOTSUPP before reaching us.
  static void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info* fi) {
    if (off < 0 || len <= 0) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    // May write back and wait (shifts, zeroing past EOF): on a blocking worker.
    FuseAdapter& self = Self(req);
    self.blocking_.Submit([&self, req, ino, fh = fi->fh, mode, off, len, ctx = Context(req, false)] {
      ReplyStatus(req, self.fs_->Fallocate(ctx, ino, fh, mode, static_cast<uint64_t>(off), static_cast<uint64_t>(len)));
    });
  }

  static void Lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* fi) {
    // SEEK_SET/CUR/END are answered by the kernel and never arrive.
    if (whence != SEEK_DATA && whence != SEEK_HOLE) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    if (off < 0) {  // Linux answers a negative SEEK_DATA/SEEK_HOLE offset with ENXIO
      fuse_reply_err(req, ENXIO);
      return;
    }
    auto pos = Self(req).fs_->Lseek(ino, fi->fh, static_cast<uint64_t>(off), whence);
    if (!pos.ok()) {
      fuse_reply_err(req, ErrnoOf(pos.status()));
      return;
    }
    fuse_reply_lseek(req, static_cast<off_t>(*pos));
  }

  // The inode-flag ioctls (chattr, lsattr, xfs_io chattr) and FITRIM: the kernel
  // sends them restricted, with in/out buffers sized by the command; the
  // flags are an unsigned int, fsxattr its struct. Everything else ENOTTY.
  static void Ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void* arg, fuse_file_info* fi, unsigned flags,
                    const void* in_buf, size_t in_bufsz, size_t out_bufsz) {
    FuseAdapter& self = Self(req);
    const unsigned command = cmd;
    if (command == static_cast<unsigned>(FS_IOC_GETFLAGS) ||
        command == static_cast<unsigned>(FS_IOC_FSGETXATTR)) {
      auto iflags = self.fs_->GetFlags(ino);
      if (!iflags.ok()) {
        fuse_reply_err(req, ErrnoOf(iflags.status()));
        return;
      }
      if (command == static_cast<unsigned>(FS_IOC_GETFLAGS)) {
        const unsigned int out = *iflags;
        if (out_bufsz < sizeof(out)) {
          fuse_reply_err(req, EINVAL);
          return;
        }
        fuse_reply_ioctl(req, 0, &out, sizeof(out));
        return;
      }
      struct fsxattr fa;
      std::memset(&fa, 0, sizeof(fa));
      fa.fsx_xflags = XflagsFromFlags(*iflags);
      if (out_bufsz < sizeof(fa)) {
        fuse_reply_err(req, EINVAL);
        return;
      }
      fuse_reply_ioctl(req, 0, &fa, sizeof(fa));
      return;
    }
    if (command == static_cast<unsigned>(FS_IOC_SETFLAGS)) {
      unsigned int in = 0;
      if (in_bufsz < sizeof(in)) {
        fuse_reply_err(req, EINVAL);
        return;
      }
      std::memcpy(&in, in_buf, sizeof(in));
      ReplyFlagsChanged(req, ino, self.fs_->SetFlags(Context(req, false), ino, in));
      return;
    }
    if (command == static_cast<unsigned>(FS_IOC_FSSETXATTR)) {
      struct fsxattr fa;
      if (in_bufsz < sizeof(fa)) {
        fuse_reply_err(req, EINVAL);
        return;
      }
      std::memcpy(&fa, in_buf, sizeof(fa));
      auto old = self.fs_->GetFlags(ino);
      if (!old.ok()) {
        fuse_reply_err(req, ErrnoOf(old.status()));
        return;
      }
      auto iflags = FlagsFromXflags(fa.fsx_xflags, *old);
      if (!iflags.ok()) {
        fuse_reply_err(req, ErrnoOf(iflags.status()));
        return;
      }
      ReplyFlagsChanged(req, ino, self.fs_->SetFlags(Context(req, false), ino, *iflags));
      return;
    }
    if (command == static_cast<unsigned>(FITRIM)) {
      Trim(req, in_buf, in_bufsz, out_bufsz);
      return;
    }
    fuse_reply_err(req, ENOTTY);
  }

  // fstrim(8) on any directory or file of the mount: the range comes in, the
  // same struct goes back with len set to the bytes discarded.
  static void Trim(fuse_req_t req, const void* in_buf, size_t in_bufsz, size_t out_bufsz) {
    struct fstrim_range range;
    if (in_bufsz < sizeof(range) || out_bufsz < sizeof(range)) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    std::memcpy(&range, in_buf, sizeof(range));
    auto discarded = Self(req).fs_->Trim(Context(req, false), range.start, range.len, range.minlen);
    if (!discarded.ok()) {
      fuse_reply_err(req, ErrnoOf(discarded.status()));
      return;
    }
    range.len = *discarded;
    fuse_reply_ioctl(req, 0, &range, sizeof(range));
  }

  // After a change of attributes that no reply carries (mode by a write,
  // ctime by chattr): the kernel drops its cached copy, before the caller
  // learns the operation is done, so the next stat asks us. Attributes only
  // (no offset), which takes no inode lock in the kernel: safe from a
  // request thread, unlike entry invalidations (fuse_invalidator.h).
  static void InvalidateAttributes(const FuseAdapter& self, fuse_ino_t ino) {
    if (self.session_ != nullptr) fuse_lowlevel_notify_inval_inode(self.session_, ino, -1, 0);
  }

  static void ReplyFlagsChanged(fuse_req_t req, fuse_ino_t ino, const absl::Status& s) {
    if (s.ok()) InvalidateAttributes(Self(req), ino);
    ReplyIoctlStatus(req, s);
  }

  static void ReplyIoctlStatus(fuse_req_t req, const absl::Status& s) {
    if (s.ok()) {
      fuse_reply_ioctl(req, 0, nullptr, 0);
    } else {
      fuse_reply_err(req, ErrnoOf(s));
    }
  }

  static fuse_lowlevel_ops MakeTable() {
    fuse_lowlevel_ops ops;
    std::memset(&ops, 0, sizeof(ops));
    ops.init = Init;
    ops.destroy = Destroy;
    ops.lookup = Lookup;
    ops.forget = Forget;
    ops.forget_multi = ForgetMulti;
    ops.getattr = GetAttr;
    ops.setattr = SetAttr;
    ops.readlink = Readlink;
    ops.mknod = Mknod;
    ops.mkdir = Mkdir;
    ops.unlink = Unlink;
    ops.rmdir = Rmdir;
    ops.symlink = Symlink;
    ops.rename = Rename;
    ops.link = Link;
    ops.open = Open;
    ops.read = Read;
    ops.write = Write;
    ops.flush = Flush;
    ops.release = Release;
    ops.fsync = Fsync;
    ops.opendir = OpenDir;
    ops.readdir = ReadDir;
    ops.readdirplus = ReadDirPlus;
    ops.releasedir = ReleaseDir;
    ops.fsyncdir = FsyncDir;
    ops.statfs = StatFs;
    ops.setxattr = SetXattr;
    ops.getxattr = GetXattr;
    ops.listxattr = ListXattr;
    ops.removexattr = RemoveXattr;
    ops.access = Access;
    ops.create = Create;
    ops.fallocate = Fallocate;
    ops.lseek = Lseek;
    ops.ioctl = Ioctl;
    // copy_file_range, poll, bmap, locks: absent, so libfuse answers
    // ENOSYS and the kernel falls back (copy) or keeps locks local.
    return ops;
  }
};

FuseAdapter::FuseAdapter(Filesystem* fs, FuseAdapterOptions options)
    : fs_(fs),
      options_(options),
      channel_(FuseChannel::InitWants{.allow_mmap = !options.kernel_cache,
                                      .allow_idmap = options.default_permissions,
                                      .over_io_uring = options.transport != FuseTransport::kDev}),
      blocking_(options.blocking_threads) {
  channel_.SetTmpfileHandler(
      [this](const FuseChannel::TmpfileRequest& r) { return FuseOps::Tmpfile(*this, r); },
      [this](const FuseChannel::TmpfileResult& r) { FuseOps::AbandonTmpfile(*this, r); });
  channel_.SetStatxHandler([this](uint64_t nodeid) { return FuseOps::Statx(*this, nodeid); });
  channel_.SetInitHooks([this](const FuseChannel::InitReply& r) { return PrepareTransport(r); },
                        [this](const FuseChannel::InitReply& r) { StartTransport(r); });
}

bool FuseAdapter::PrepareTransport(const FuseChannel::InitReply& init) {
  FuseUring::Options o;
  o.fuse_fd = fuse_session_fd(session_);
  o.queues = FuseUring::PossibleCpus();
  o.depth = options_.uring_depth;
  // The kernel's max payload: the larger of max_write and max_pages pages.
  o.payload_size = std::max<size_t>({8192, init.max_write, static_cast<size_t>(init.max_pages) * 4096});
  const int fd = o.fuse_fd;
  auto ring = std::make_unique<FuseUring>(o, [this, fd](char* buf, size_t len) {
    if (channel_.ServeRingRequest(fd, buf, len)) return;
    fuse_buf b{};
    b.size = len;
    b.mem = buf;
    fuse_session_process_buf(session_, &b);
  });
  if (absl::Status s = ring->Prepare(); !s.ok()) {
    spdlog::error("{}; serving through /dev/fuse", std::string(s.message()));
    return false;
  }
  uring_ = std::move(ring);
  return true;
}

void FuseAdapter::StartTransport(const FuseChannel::InitReply& init) {
  if (options_.transport == FuseTransport::kDev) return;
  if (!init.over_io_uring_granted) {
    uring_.reset();
    const std::string why = init.over_io_uring_offered
                                ? std::string("it could not be set up")
                                : absl::StrCat("the kernel does not offer it; ", FuseUring::kEnableHint);
    if (options_.transport == FuseTransport::kUring) {
      spdlog::error("fuse_transport=uring: FUSE over io_uring is unavailable: {}; serving through /dev/fuse", why);
    } else {
      transport_note_ = absl::StrCat("FUSE over io_uring unavailable (", why, "): serving through /dev/fuse");
    }
    return;
  }
  // Replies are routed before the first ring request can arrive.
  channel_.SetRing(uring_.get());
  uring_->Start([this](const std::string&) {
    if (abort_connection_) abort_connection_();
  });
  transport_note_ = absl::StrCat("FUSE over io_uring: ", FuseUring::PossibleCpus(), " queues of ",
                                 options_.uring_depth, " entries, ", uring_->buffer_bytes() >> 10,
                                 " KiB of ring buffers");
}

void FuseAdapter::StopTransport() {
  if (uring_) uring_->Stop();
}

const char* FuseAdapter::transport() const { return uring_ && uring_->requests() > 0 ? "uring" : "dev"; }

FuseAdapter::~FuseAdapter() {
  StopBlockingWorkers();
  StopTransport();
  StopInvalidator();
  channel_.SetRing(nullptr);
}

void FuseAdapter::StopBlockingWorkers() { blocking_.Stop(); }

const fuse_lowlevel_ops& FuseAdapter::Operations() {
  static const fuse_lowlevel_ops ops = FuseOps::MakeTable();
  return ops;
}

absl::Status FuseAdapter::AttachChannel(fuse_session* session) {
  // libfuse passes the session's userdata (this adapter) to the callbacks.
  fuse_custom_io io;
  std::memset(&io, 0, sizeof(io));
  io.read = [](int fd, void* buf, size_t len, void* userdata) -> ssize_t {
    return static_cast<FuseAdapter*>(userdata)->channel_.Read(fd, buf, len);
  };
  io.writev = [](int fd, struct iovec* iov, int count, void* userdata) -> ssize_t {
    return static_cast<FuseAdapter*>(userdata)->channel_.Writev(fd, iov, count);
  };
  session_ = session;
  const int fd = fuse_session_fd(session);
  if (const int err = fuse_session_custom_io(session, &io, fd); err != 0) {
    return absl::InternalError(absl::StrCat("cannot take over the FUSE channel: ", std::strerror(-err)));
  }
  return absl::OkStatus();
}

void FuseAdapter::SetAbortConnection(std::function<void()> abort_connection) {
  abort_connection_ = std::move(abort_connection);
}

void FuseAdapter::StartInvalidator(fuse_session* session, std::function<void()> abort_connection) {
  invalidator_.Start(session, std::move(abort_connection));
  fs_->SetInvalidator([this](const Filesystem::InvalRequest& r) { invalidator_.Enqueue(r.parent, r.name); });
  invalidator_hooked_.store(true);
}

void FuseAdapter::StopInvalidator() {
  if (invalidator_hooked_.exchange(false)) fs_->SetInvalidator(nullptr);
  invalidator_.Stop();
}

std::string FuseAdapter::StatsText() const {
  return absl::StrCat("fuse_direct_io_allow_mmap ", channel_.allow_mmap_granted() ? 1 : 0, "\n",
                      "fuse_allow_idmap ", channel_.allow_idmap_granted() ? 1 : 0, "\n",
                      "fuse_inval_entry_sent ", invalidator_.sent(), "\n",
                      "fuse_inval_entry_dropped ", invalidator_.dropped(), "\n",
                      // Direct writes copied into the pages of mapped files.
                      "fuse_mapped_files ", mapped_.size(), "\n",
                      "fuse_mapped_write_stores ", invalidator_.stores(), "\n",
                      "fuse_mapped_write_stores_skipped ", invalidator_.stores_skipped(), "\n",
                      "fuse_tmpfiles_served ", channel_.tmpfiles_served(), "\n",
                      "fuse_flush_requests ", flushes_.load(std::memory_order_relaxed), "\n",
                      "fuse_blocking_requests ", blocking_.submitted(), "\n",
                      // Waiting requests run on their request thread: the queue was full.
                      "fuse_blocking_ran_inline ", blocking_.ran_inline(), "\n",
                      // 1: requests are served through the io_uring queues; 0: /dev/fuse.
                      "fuse_transport_uring ", std::string_view(transport()) == "uring" ? 1 : 0, "\n",
                      uring_ ? uring_->StatsText() : std::string());
}

}  // namespace reclaimfs::fs

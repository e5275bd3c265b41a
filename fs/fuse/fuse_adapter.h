// The FUSE adapter: libfuse low-level requests -> Filesystem calls -> replies.
// It owns the translation only (attributes to struct stat, status to errno,
// reply buffers, INIT capabilities), the /dev/fuse channel and the
// invalidation worker; POSIX semantics live in Filesystem.
//
// Threads: libfuse's session loop calls the operations from up to
// request_threads worker threads at once. Reads answer from the cache or
// hand the request to a blocking worker (blocking_workers.h), as fsync and
// fallocate always do; other operations block their request thread as long
// as the Filesystem call they make (fs/posix/filesystem.h). The main thread attaches
// the channel and starts and stops the invalidator; StopInvalidator may wait
// its grace period (fuse_invalidator.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "fs/fuse/blocking_workers.h"
#include "fs/fuse/fuse_channel.h"
#include "fs/fuse/fuse_invalidator.h"
#include "fs/fuse/mapped_files.h"
#include "fs/fuse/fuse_uring.h"
#include "fs/posix/filesystem.h"

struct fuse_lowlevel_ops;
struct fuse_session;

namespace reclaimfs::fs {

// How requests reach the daemon: through io_uring queues when the kernel
// offers FUSE_OVER_IO_URING (auto falls back to /dev/fuse, uring insists),
// or /dev/fuse reads only.
enum class FuseTransport { kAuto, kUring, kDev };

struct FuseAdapterOptions {
  bool kernel_cache = false;         // false: FOPEN_DIRECT_IO on every open file
  uint32_t max_background = 64;      // FUSE INIT max_background
  uint64_t readahead = 128 << 10;    // kernel readahead when kernel_cache
  bool acl = true;                   // false (noacl): the kernel is not told to use ACLs
  bool default_permissions = true;   // false: the filesystem checks, so it needs groups
  uint32_t max_read = 0;             // the max_read= mount option (0: none); INIT repeats it
  double timeout_seconds = 1.0;      // entry and attribute cache timeouts
  unsigned blocking_threads = 16;    // workers for reads that miss, fsync, fallocate
  FuseTransport transport = FuseTransport::kAuto;
  unsigned uring_depth = 8;          // ring entries per queue (io_uring transport)
};

class FuseAdapter {
 public:
  FuseAdapter(Filesystem* fs, FuseAdapterOptions options);
  ~FuseAdapter();  // StopInvalidator()

  FuseAdapter(const FuseAdapter&) = delete;
  FuseAdapter& operator=(const FuseAdapter&) = delete;

  // The operation table for fuse_session_new(); the session's userdata must
  // be this adapter.
  static const fuse_lowlevel_ops& Operations();

  // After fuse_session_mount(): routes the session's /dev/fuse reads and
  // writes through channel() (see fuse_channel.h for why).
  absl::Status AttachChannel(fuse_session* session);

  // Before INIT: how to abort the connection when the io_uring transport
  // can no longer serve (fuse_uring.h).
  void SetAbortConnection(std::function<void()> abort_connection);
  // Starts the dentry-invalidation worker and hands the filesystem a way to
  // queue requests for it. StopInvalidator() must run before the session is
  // destroyed; `abort_connection` is its last resort (fuse_invalidator.h).
  void StartInvalidator(fuse_session* session, std::function<void()> abort_connection);
  void StopInvalidator();
  // Runs the blocking requests still queued and joins their workers: after
  // the session loop, before the filesystem shuts down.
  void StopBlockingWorkers();
  // Stops the io_uring transport's queues, if it runs: after the blocking
  // workers (their replies go through it) and after the unmount.
  void StopTransport();
  // "uring" or "dev": how requests are served now.
  const char* transport() const;
  // The transport chosen at INIT, as one line for the log (empty with
  // fuse_transport=dev); logged once the mount has succeeded, so that a
  // mount stays silent on the terminal.
  const std::string& transport_note() const { return transport_note_; }

  FuseChannel& channel() { return channel_; }
  // "name value" lines about the adapter, for the control socket.
  std::string StatsText() const;

 private:
  friend struct FuseOps;
  bool PrepareTransport(const FuseChannel::InitReply& init);
  void StartTransport(const FuseChannel::InitReply& init);

  Filesystem* const fs_;
  const FuseAdapterOptions options_;
  FuseChannel channel_;
  fuse_session* session_ = nullptr;  // set by AttachChannel, before requests arrive
  FuseInvalidator invalidator_;
  std::atomic<bool> invalidator_hooked_{false};
  std::atomic<uint64_t> flushes_{0};  // FLUSH requests served
  MappedFiles mapped_;
  BlockingWorkers blocking_;
  // Started on the thread that answers INIT, before the session loop; the
  // channel routes replies to it.
  std::unique_ptr<FuseUring> uring_;
  std::function<void()> abort_connection_;  // set before INIT
  std::string transport_note_;
};

}  // namespace reclaimfs::fs

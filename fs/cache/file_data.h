// File data: the page cache, writeback and the mapping of file blocks to the
// data file. The POSIX layer (fs/posix/filesystem.h) calls it with the
// inode's io lock held (exclusive for Write/Truncate and the fallocate modes,
// shared for Read) and owns sizes and times; FileData owns pages, extents and
// reservations, the flushers and the page-cache shrinker.
//
// Threads: request threads; the eviction thread (Evict, Deallocate); the
// main thread (Start, Shutdown). Blocking: a page charge may enter bounded
// direct reclaim; Read waits for its pages' IO; data-path page waits are
// bounded (lock 30 s, writeback 60 s); Write may be paused by the dirty
// throttle (dirty_throttle.h); a Write past the end of file and a growing
// Truncate write back the old last page and wait for it; Sync, SyncAll and
// Shutdown wait for writeback (writeback.h); Evict(nonblocking) never waits.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <sys/uio.h>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "reclaim/memory_manager.h"
#include "storage/allocator.h"
#include "storage/block_device.h"
#include "storage/meta_store.h"

namespace reclaimfs::fs {

enum class ShrinkerMode { kNonBlocking, kBlocking };

struct FileDataOptions {
  double dirty_background_ratio = 0.10;  // of the cache budget: start background writeback
  double dirty_ratio = 0.20;             // of the cache budget: throttle dirtiers
  uint32_t dirty_expire_ms = 3000;       // periodic writeback of older dirty pages
  uint32_t writeback_interval_ms = 500;  // how often the periodic flusher looks
  unsigned flusher_threads = 2;
  uint64_t readahead_bytes = 128 * 1024;
  ShrinkerMode shrinker_mode = ShrinkerMode::kNonBlocking;
  uint32_t max_dirty_pause_ms = 200;     // bound of one throttle pause
};

// Implemented by the POSIX layer: writeback adds the inode's current record
// (size, times) to the batch that commits the extents the data now occupies,
// so size and extents reach the store together, after the data.
// AddInodeRecord is called inside MetaStore::Commit's prepare callback (under
// the commit lock, so records are persisted in the order they changed) with
// no page or writeback lock held; it may take the inode cache's lock and the
// inode's own leaf lock but must not call back into FileData or commit.
class InodeRecordSource {
 public:
  virtual ~InodeRecordSource() = default;
  virtual void AddInodeRecord(uint64_t ino, storage::MetaStore::Batch* batch) = 0;
  // A writeback of the file's data failed with `err`: the pages it covered
  // are not durable. Called with no page lock held; must not block.
  virtual void OnWritebackError(uint64_t ino, int err) {}
};

class FileData {
 public:
  FileData(storage::MetaStore* meta, storage::Allocator* alloc, storage::BlockDevice* dev,
           reclaim::MemoryManager* mm, InodeRecordSource* records, FileDataOptions options);
  ~FileData();  // Shutdown() if not done

  // Registers the page-cache shrinker, starts flushers.
  absl::Status Start();
  // Writes back everything, waits for IO, stops flushers, unregisters.
  absl::Status Shutdown();

  // Reads [off, off+len) of a file whose size is file_size; short at EOF.
  absl::StatusOr<size_t> Read(uint64_t ino, uint64_t file_size, uint64_t off, size_t len, char* out);
  // Reads like Read but copies nothing: `reply` is called once, before this
  // returns, with iovecs pointing into the cached pages (referenced, so
  // reclaim cannot free them, until it returns; the caller's shared io lock
  // keeps writers out). A read over more than one window of pages is copied
  // into one buffer instead. Not called on error; called with (nullptr, 0)
  // at or past EOF. Returns the bytes passed to reply.
  // With may_wait false it answers only from pages present and uptodate and
  // otherwise returns Unavailable at once, having charged, read and changed
  // nothing (the readahead state included; a read over one window that
  // loses a page to reclaim halfway may have moved it): the caller retries
  // where it may wait.
  using PagesReply = absl::FunctionRef<void(const struct iovec* iov, int count)>;
  absl::StatusOr<size_t> ReadPinned(uint64_t ino, uint64_t file_size, uint64_t off, size_t len,
                                    PagesReply reply, bool may_wait = true);
  // Copies data into the page cache, dirtying pages; reserves blocks for
  // holes (ENOSPC here, not at writeback); throttles the caller when dirty
  // memory is over the dirty limit. The caller updates the size afterwards.
  absl::Status Write(uint64_t ino, uint64_t file_size, uint64_t off, const char* data, size_t len);
  // Drops pages past new_size, zeroes the tail of the last page, frees blocks
  // past new_size; commits the extent changes with the inode record.
  absl::Status Truncate(uint64_t ino, uint64_t old_size, uint64_t new_size);
  // Zeroes [off, off+len): drops whole pages and frees their blocks.
  absl::Status PunchHole(uint64_t ino, uint64_t file_size, uint64_t off, uint64_t len);
  // fallocate mode 0: allocates blocks for holes in [off, off+len) as
  // unwritten extents (read as zeros). ENOSPC if they do not fit.
  absl::Status Preallocate(uint64_t ino, uint64_t off, uint64_t len);
  // fallocate ZERO_RANGE: [off, off+len) reads as zeros and has blocks:
  // whole pages are dropped and their blocks become unwritten, partial pages
  // at the edges are zeroed in the cache, holes are preallocated (ENOSPC if
  // they do not fit; the range reads as zeros either way).
  absl::Status ZeroRange(uint64_t ino, uint64_t off, uint64_t len);
  // fallocate COLLAPSE_RANGE / INSERT_RANGE, off and len multiples of the
  // page size (the caller checks them against the size). The dirty pages
  // from off on are written back and every cached page from off on dropped;
  // then one commit shifts the extents past off down by len, freeing those
  // in the range (collapse), or up by len leaving a hole (insert), and
  // carries the inode record: `set_size` runs inside that commit, before
  // the record is taken, so the new size reaches the store with the shifted
  // extents, never without them. set_size may only take the inode's leaf
  // lock.
  absl::Status CollapseRange(uint64_t ino, uint64_t off, uint64_t len,
                             const std::function<void()>& set_size);
  absl::Status InsertRange(uint64_t ino, uint64_t off, uint64_t len,
                           const std::function<void()>& set_size);
  // Writes back the file's dirty pages, waits for them, then commits the
  // inode record durably (datasync: skip if only times changed). Reports the
  // errors of this call's writeback; earlier background failures reach the
  // file's handles through InodeRecordSource::OnWritebackError.
  absl::Status Sync(uint64_t ino, bool datasync);
  absl::Status SyncAll();
  // lseek SEEK_DATA / SEEK_HOLE, counting dirty pages as data. ENXIO past EOF.
  absl::StatusOr<uint64_t> SeekData(uint64_t ino, uint64_t file_size, uint64_t off);
  absl::StatusOr<uint64_t> SeekHole(uint64_t ino, uint64_t file_size, uint64_t off);
  // Blocks allocated or reserved, in units of 512 bytes (st_blocks).
  uint64_t AllocatedSectors(uint64_t ino);

  // Eviction of a clean inode's cached state. nonblocking: Unavailable
  // (EAGAIN) if pages are dirty, under writeback or referenced; the caller
  // queues a retry.
  absl::Status Evict(uint64_t ino, bool nonblocking);
  // `ino` was just allocated for a new regular file: it has no stored
  // extents, so its first write need not scan the store for them.
  void AdoptNewFile(uint64_t ino);
  // nlink == 0 and no opens: drop pages, free all blocks and extents in one
  // batch (along with `batch`'s other records, e.g. inode deletion).
  // Deallocate commits `batch` itself (not synced): the blocks must be freed
  // inside that commit's prepare step. The caller must not commit it again.
  absl::Status Deallocate(uint64_t ino, storage::MetaStore::Batch* batch);

  // Live tuning: dirty ratios, expiry, writeback period and readahead of
  // `options` take effect now (the other fields are ignored). Never blocks.
  void SetTunables(const FileDataOptions& options);
  // Frees every clean, idle page (dirty, writeback and busy pages stay);
  // returns how many. Never waits for IO or a page lock.
  uint64_t DropCleanPages();
  // Unmaps page-buffer chunks no page uses (after the budget shrank), so
  // resident memory follows. Never blocks for long.
  void TrimPool();
  // Asks the flushers to write back all dirty data now. Never blocks.
  void KickWriteback();

  // Text "name value" lines: cache pages, dirty, writeback, hits, misses...
  std::string StatsText() const;
  uint64_t page_size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace reclaimfs::fs

// Metadata in RocksDB, one column family per kind of record. Every multi-key
// change is one atomic Batch. Commits are serialised (commit_mu_) so that the
// in-memory allocator state that a batch captured is persisted in the same
// order it was produced.
//
// Durability: each commit gets a sequence number. A commit is in the log once
// Commit returns (it survives the daemon being killed); it is durable (it
// survives the machine losing power) once durable_sequence() reaches it,
// after a sync commit or SyncWal. The allocator keeps freed blocks from
// reuse until the commit that freed them is durable.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/format.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
class Cache;
class WriteBufferManager;
}  // namespace rocksdb

namespace reclaimfs::storage {

struct MetaOptions {
  bool create_if_missing = false;  // mkfs only
  bool read_only = false;          // fsck
  // Memory the metadata store may use: its block cache and its memtables
  // (charged through a WriteBufferManager); the whole footprint is bounded.
  uint64_t block_cache_bytes = 8ull << 20;
  uint64_t memtable_bytes = 8ull << 20;
  // Opening retries while another process holds the store's lock (a daemon
  // still shutting down after umount), bounded by this.
  int lock_wait_ms = 10'000;
};

enum class ColumnFamily { kSuperblock, kInodes, kDentries, kDirCookies, kExtents, kXattrs, kFreeSpace, kOrphans };

class MetaStore {
 public:
  class Batch {
   public:
    Batch();
    ~Batch();
    Batch(Batch&&) noexcept;
    Batch& operator=(Batch&&) noexcept;

    void PutSuperblock(const Superblock& sb);
    // The generation the next new inode gets (see ReadNextGeneration).
    void PutNextGeneration(uint64_t next);
    void PutInode(const InodeRecord& rec);
    void DeleteInode(uint64_t ino);
    // Writes both the name->entry record and the cookie->name index.
    void PutDentry(uint64_t parent, std::string_view name, const DirEntry& e);
    void DeleteDentry(uint64_t parent, std::string_view name, uint64_t cookie);
    void PutExtent(uint64_t ino, const Extent& e);
    void DeleteExtent(uint64_t ino, uint64_t file_block);
    void PutXattr(uint64_t ino, std::string_view name, std::string_view value);
    void DeleteXattr(uint64_t ino, std::string_view name);
    void PutFreeExtent(uint64_t start_block, uint64_t length);
    void DeleteFreeExtent(uint64_t start_block);
    void AddOrphan(uint64_t ino);
    void RemoveOrphan(uint64_t ino);
    size_t Count() const;
    bool empty() const { return Count() == 0; }
    // The sequence number of the commit this batch is in; valid inside
    // Commit's prepare callback (0 before).
    uint64_t sequence() const;

   private:
    friend class MetaStore;
    struct Rep;  // operations recorded per column family, applied at Commit
    std::unique_ptr<Rep> rep_;
  };

  // Opens an existing store's metadata (dir = STORE/meta). Errors are clear:
  // "not a reclaimfs store (no metadata at ...)", "store is locked by another
  // process", "corrupt store: ...".
  static absl::StatusOr<std::unique_ptr<MetaStore>> Open(const std::string& dir,
                                                         const MetaOptions& options);
  ~MetaStore();

  absl::StatusOr<Superblock> ReadSuperblock();
  // High-water mark of inode generations: every generation ever handed out
  // is below it, so a reused inode number never gets an old generation.
  // 0 if the store has none yet (older stores).
  absl::StatusOr<uint64_t> ReadNextGeneration();
  absl::StatusOr<InodeRecord> GetInode(uint64_t ino);  // NotFound if absent
  // An entry read as absent stays known absent until a commit touches any
  // entry, so the create after a lookup of a new name reads the store once.
  absl::StatusOr<DirEntry> GetDentry(uint64_t parent, std::string_view name);
  uint64_t absent_dentry_hits() const;  // GetDentry answered by that memo
  // Entries of `parent` with cookie > after_cookie in cookie order; stops
  // when fn returns false.
  absl::Status ListDir(uint64_t parent, uint64_t after_cookie,
                       const std::function<bool(std::string_view name, const DirEntry&)>& fn);
  absl::StatusOr<bool> DirIsEmpty(uint64_t parent);
  absl::StatusOr<std::vector<Extent>> GetExtents(uint64_t ino);  // ordered by file_block
  absl::StatusOr<std::string> GetXattr(uint64_t ino, std::string_view name);
  absl::StatusOr<std::vector<std::string>> ListXattrs(uint64_t ino);
  // Full scans (mount, fsck).
  absl::Status ForEachInode(const std::function<bool(const InodeRecord&)>& fn);
  absl::Status ForEachDentry(const std::function<bool(uint64_t parent, std::string_view name, const DirEntry&)>& fn);
  absl::Status ForEachExtent(const std::function<bool(uint64_t ino, const Extent&)>& fn);
  absl::Status ForEachFreeExtent(const std::function<bool(uint64_t start, uint64_t length)>& fn);
  absl::Status ForEachOrphan(const std::function<bool(uint64_t ino)>& fn);

  // Highest inode number in use + 1 (computed at open, then handed out).
  uint64_t AllocateIno();

  // Commits atomically. `prepare`, if given, runs under the commit lock just
  // before the write, so state it adds (allocator changes) is persisted in
  // the order it was produced. sync=true makes the commit durable (WAL fsync).
  absl::Status Commit(Batch& batch, bool sync,
                      const std::function<absl::Status(Batch&)>& prepare = nullptr);
  // Makes every earlier commit durable. Never takes the commit lock.
  absl::Status SyncWal();
  // The newest commit written to the log, and the newest known durable.
  uint64_t last_sequence() const;
  uint64_t durable_sequence() const;

  // Approximate memory used by RocksDB (block cache + memtables + readers).
  uint64_t ApproximateMemoryUsage();
  // Live tuning of MetaOptions' two budgets: the write buffer manager's
  // size, then the shared cache's capacity (a smaller cache evicts at once;
  // memtables over the new size are flushed by RocksDB's own threads).
  void SetMemoryBudget(uint64_t block_cache_bytes, uint64_t memtable_bytes);
  uint64_t memory_capacity() const;  // the shared cache's capacity

 private:
  MetaStore();
  rocksdb::ColumnFamilyHandle* cf(ColumnFamily c) const;
  struct State;
  std::unique_ptr<State> s_;
  std::mutex commit_mu_;
};

// Creates a new store directory: metadata with superblock and root inode, a
// data file of `size_bytes`, and one free extent covering it. Refuses an
// existing store unless `force`.
struct MkfsOptions {
  uint64_t size_bytes = 1ull << 30;
  uint32_t block_size = kDefaultBlockSize;
  bool force = false;
  uint32_t root_uid = 0, root_gid = 0;
  uint32_t root_mode = 0755;
};
absl::Status MakeStore(const std::string& store_dir, const MkfsOptions& options);

}  // namespace reclaimfs::storage

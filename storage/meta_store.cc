// MetaStore: the metadata of a store in RocksDB, one column family per kind of
// record; see meta_store.h. Memory is bounded by one LRU cache shared by all
// column families, which also carries the memtables' charge through a
// WriteBufferManager, with index and filter blocks cached in it too.
#include "storage/meta_store.h"
#include "storage/rocksdb_logger.h"

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"
#include "storage/absent_dentries.h"
#include "storage/coding.h"

namespace reclaimfs::storage {

namespace {

// Raises a durable-sequence watermark; concurrent syncs may finish out of order.
void AdvanceDurable(std::atomic<uint64_t>& durable, uint64_t seq) {
  uint64_t cur = durable.load(std::memory_order_relaxed);
  while (cur < seq && !durable.compare_exchange_weak(cur, seq, std::memory_order_acq_rel)) {
  }
}


constexpr size_t kNumFamilies = 8;
constexpr std::array<const char*, kNumFamilies> kFamilyNames = {
    "superblock", "inodes", "dentries", "dir_cookies", "extents", "xattrs", "free_space", "orphans"};
constexpr const char* kSuperblockKey = "superblock";
constexpr const char* kNextGenerationKey = "next_generation";
constexpr auto kLockRetryInterval = std::chrono::milliseconds(50);

size_t Index(ColumnFamily c) { return static_cast<size_t>(c); }

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

// Maps a RocksDB error to a status whose code the filesystem turns into a
// sensible errno, keeping RocksDB's text and naming what we were doing.
absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(AbslView(what), ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsCorruption()) return absl::DataLossError(absl::StrCat("corrupt store: ", msg));
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  return absl::InternalError(msg);
}

// RocksDB reports a held LOCK file as an IOError; its wording differs between
// "held by this process" and "held by another process".
bool IsLockBusy(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  const std::string text = s.ToString();
  return text.find("lock hold by current process") != std::string::npos ||
         text.find("Resource temporarily unavailable") != std::string::npos;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

// ---------------------------------------------------------------------------
// Batch

struct MetaStore::Batch::Rep {
  struct Op {
    ColumnFamily cf;
    bool del;
    std::string key;
    std::string value;
  };
  // One ordered list across families: a later op on the same key wins, as in
  // a rocksdb::WriteBatch.
  std::vector<Op> ops;
  uint64_t sequence = 0;  // set by Commit before its prepare step

  // A moved-from Batch has no Rep; using it again starts a fresh one.
  static Rep& Of(std::unique_ptr<Rep>& rep) {
    if (!rep) rep = std::make_unique<Rep>();
    return *rep;
  }

  void Put(ColumnFamily cf, std::string key, std::string value) {
    ops.push_back(Op{cf, false, std::move(key), std::move(value)});
  }
  void Delete(ColumnFamily cf, std::string key) {
    ops.push_back(Op{cf, true, std::move(key), {}});
  }
};

MetaStore::Batch::Batch() : rep_(std::make_unique<Rep>()) {}
MetaStore::Batch::~Batch() = default;
MetaStore::Batch::Batch(Batch&&) noexcept = default;
MetaStore::Batch& MetaStore::Batch::operator=(Batch&&) noexcept = default;

void MetaStore::Batch::PutSuperblock(const Superblock& sb) {
  Rep::Of(rep_).Put(ColumnFamily::kSuperblock, kSuperblockKey, sb.Encode());
}
void MetaStore::Batch::PutNextGeneration(uint64_t next) {
  Rep::Of(rep_).Put(ColumnFamily::kSuperblock, kNextGenerationKey, EncodeU64(next));
}
void MetaStore::Batch::PutInode(const InodeRecord& rec) {
  Rep::Of(rep_).Put(ColumnFamily::kInodes, InodeKey(rec.ino), rec.Encode());
}
void MetaStore::Batch::DeleteInode(uint64_t ino) {
  Rep::Of(rep_).Delete(ColumnFamily::kInodes, InodeKey(ino));
}
void MetaStore::Batch::PutDentry(uint64_t parent, std::string_view name, const DirEntry& e) {
  Rep::Of(rep_).Put(ColumnFamily::kDentries, DentryKey(parent, name), e.Encode());
  Rep::Of(rep_).Put(ColumnFamily::kDirCookies, DirCookieKey(parent, e.cookie), std::string(name));
}
void MetaStore::Batch::DeleteDentry(uint64_t parent, std::string_view name, uint64_t cookie) {
  Rep::Of(rep_).Delete(ColumnFamily::kDentries, DentryKey(parent, name));
  Rep::Of(rep_).Delete(ColumnFamily::kDirCookies, DirCookieKey(parent, cookie));
}
void MetaStore::Batch::PutExtent(uint64_t ino, const Extent& e) {
  Rep::Of(rep_).Put(ColumnFamily::kExtents, ExtentKey(ino, e.file_block), EncodeExtentValue(e));
}
void MetaStore::Batch::DeleteExtent(uint64_t ino, uint64_t file_block) {
  Rep::Of(rep_).Delete(ColumnFamily::kExtents, ExtentKey(ino, file_block));
}
void MetaStore::Batch::PutXattr(uint64_t ino, std::string_view name, std::string_view value) {
  Rep::Of(rep_).Put(ColumnFamily::kXattrs, XattrKey(ino, name), std::string(value));
}
void MetaStore::Batch::DeleteXattr(uint64_t ino, std::string_view name) {
  Rep::Of(rep_).Delete(ColumnFamily::kXattrs, XattrKey(ino, name));
}
void MetaStore::Batch::PutFreeExtent(uint64_t start_block, uint64_t length) {
  Rep::Of(rep_).Put(ColumnFamily::kFreeSpace, FreeSpaceKey(start_block), EncodeU64(length));
}
void MetaStore::Batch::DeleteFreeExtent(uint64_t start_block) {
  Rep::Of(rep_).Delete(ColumnFamily::kFreeSpace, FreeSpaceKey(start_block));
}
void MetaStore::Batch::AddOrphan(uint64_t ino) {
  Rep::Of(rep_).Put(ColumnFamily::kOrphans, OrphanKey(ino), std::string());
}
void MetaStore::Batch::RemoveOrphan(uint64_t ino) {
  Rep::Of(rep_).Delete(ColumnFamily::kOrphans, OrphanKey(ino));
}
size_t MetaStore::Batch::Count() const { return rep_ ? rep_->ops.size() : 0; }
uint64_t MetaStore::Batch::sequence() const { return rep_ ? rep_->sequence : 0; }

// ---------------------------------------------------------------------------
// State

struct MetaStore::State {
  std::string dir;
  bool read_only = false;
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // every family opened
  std::array<rocksdb::ColumnFamilyHandle*, kNumFamilies> families{};
  std::atomic<uint64_t> next_ino{kRootIno + 1};
  std::atomic<uint64_t> last_seq{0};     // newest commit in the log
  std::atomic<uint64_t> durable_seq{0};  // newest commit known durable
  AbsentDentries absent;                  // names just read as absent

  ~State() {
    if (db == nullptr) return;
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    db->Close().PermitUncheckedError();
    delete db;
  }

  // Visits every key starting with `prefix` (all keys if empty) in order,
  // stopping when fn returns false. fn returns a status to abort on bad data.
  absl::Status Scan(ColumnFamily c, std::string_view start, std::string_view prefix,
                    const std::function<absl::StatusOr<bool>(std::string_view key,
                                                             std::string_view value)>& fn) {
    rocksdb::ReadOptions ro;
    std::string upper = PrefixSuccessor(prefix);
    rocksdb::Slice upper_slice(upper);
    if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, families[Index(c)]));
    if (start.empty()) {
      it->SeekToFirst();
    } else {
      it->Seek(ToSlice(start));
    }
    for (; it->Valid(); it->Next()) {
      std::string_view key = ToView(it->key());
      // Guards the prefix when no upper bound exists (an all-0xff prefix).
      if (key.substr(0, prefix.size()) != prefix) break;
      auto more = fn(key, ToView(it->value()));
      if (!more.ok()) return more.status();
      if (!*more) return absl::OkStatus();
    }
    return FromRocks(it->status(), absl::StrCat("scanning ", kFamilyNames[Index(c)], " in ", dir));
  }

  absl::StatusOr<std::string> Get(ColumnFamily c, std::string_view key, std::string_view what) {
    std::string value;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), families[Index(c)], ToSlice(key), &value);
    if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat(AbslView(what), " not found"));
    if (!s.ok()) return FromRocks(s, absl::StrCat("reading ", AbslView(what), " in ", dir));
    return value;
  }
};

MetaStore::MetaStore() : s_(std::make_unique<State>()) {}
MetaStore::~MetaStore() = default;

rocksdb::ColumnFamilyHandle* MetaStore::cf(ColumnFamily c) const { return s_->families[Index(c)]; }

// ---------------------------------------------------------------------------
// Open

absl::StatusOr<std::unique_ptr<MetaStore>> MetaStore::Open(const std::string& dir,
                                                           const MetaOptions& options) {
  if (options.create_if_missing && options.read_only) {
    return absl::InvalidArgumentError("cannot create a store read-only");
  }
  // RocksDB creates the directory and a LOCK file before it notices there is
  // no database, so check first: opening must never create anything.
  const bool has_db = Exists(dir + "/CURRENT");
  if (!options.create_if_missing) {
    if (!IsDirectory(dir)) {
      return absl::NotFoundError(absl::StrCat("not a reclaimfs store (no metadata at ", dir, ")"));
    }
    if (!has_db) {
      return absl::NotFoundError(
          absl::StrCat("not a reclaimfs store (no metadata database in ", dir, ")"));
    }
  }

  auto store = std::unique_ptr<MetaStore>(new MetaStore());
  State& st = *store->s_;
  st.dir = dir;
  st.read_only = options.read_only;
  // The memtables' charge lives in the same cache, so the cache's capacity
  // covers both budgets and the total stays bounded.
  st.cache = rocksdb::NewLRUCache(options.block_cache_bytes + options.memtable_bytes);
  st.write_buffers =
      std::make_shared<rocksdb::WriteBufferManager>(options.memtable_bytes, st.cache);

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = options.create_if_missing;
  db_options.write_buffer_manager = st.write_buffers;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_options.info_log = NewRocksDbLogger(db_options.info_log_level);  // no LOG files (see the header)
  db_options.max_background_jobs = 2;
  db_options.max_open_files = 512;
  db_options.max_manifest_file_size = 16 << 20;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = st.cache;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = false;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));

  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Small memtables: metadata writes are small and the budget is shared by
  // nine families.
  cf_options.write_buffer_size =
      std::max<uint64_t>(64 << 10, std::min<uint64_t>(1 << 20, options.memtable_bytes / 4));
  cf_options.max_write_buffer_number = 2;
  cf_options.arena_block_size = 64 << 10;

  // Open every family the database has (RocksDB requires it), ours included.
  std::vector<std::string> names;
  if (has_db) {
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, dir, &names);
    if (!s.ok()) return FromRocks(s, absl::StrCat("reading metadata at ", dir));
    for (const char* want : kFamilyNames) {
      if (std::find(names.begin(), names.end(), want) == names.end() &&
          !options.create_if_missing) {
        return absl::NotFoundError(absl::StrCat("not a reclaimfs store: metadata at ", dir,
                                                " has no '", want, "' column family"));
      }
    }
  }
  if (std::find(names.begin(), names.end(), rocksdb::kDefaultColumnFamilyName) == names.end()) {
    names.push_back(rocksdb::kDefaultColumnFamilyName);
  }
  for (const char* want : kFamilyNames) {
    if (std::find(names.begin(), names.end(), want) == names.end()) names.push_back(want);
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const auto& name : names) descriptors.emplace_back(name, cf_options);

  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(0, options.lock_wait_ms));
  rocksdb::Options merged(db_options, cf_options);
  for (;;) {
    rocksdb::Status s =
        options.read_only
            ? rocksdb::DB::OpenForReadOnly(merged, dir, descriptors, &st.handles, &st.db)
            : rocksdb::DB::Open(merged, dir, descriptors, &st.handles, &st.db);
    if (s.ok()) break;
    if (IsLockBusy(s)) {
      // A daemon that is still shutting down holds the lock briefly.
      if (std::chrono::steady_clock::now() >= deadline) {
        return absl::UnavailableError(
            absl::StrCat("store is in use by another process (metadata at ", dir, ")"));
      }
      std::this_thread::sleep_for(kLockRetryInterval);
      continue;
    }
    return FromRocks(s, absl::StrCat("opening metadata at ", dir));
  }
  for (size_t i = 0; i < names.size(); ++i) {
    for (size_t f = 0; f < kNumFamilies; ++f) {
      if (names[i] == kFamilyNames[f]) st.families[f] = st.handles[i];
    }
  }

  auto sb = store->ReadSuperblock();
  if (!sb.ok() && !(options.create_if_missing && absl::IsNotFound(sb.status()))) {
    if (absl::IsNotFound(sb.status())) {
      return absl::NotFoundError(
          absl::StrCat("not a reclaimfs store: no superblock in the metadata at ", dir));
    }
    return absl::Status(sb.status().code(),
                        absl::StrCat(sb.status().message(), " (metadata at ", dir, ")"));
  }

  // Inode numbers are handed out above the highest one in use.
  std::unique_ptr<rocksdb::Iterator> it(
      st.db->NewIterator(rocksdb::ReadOptions(), st.families[Index(ColumnFamily::kInodes)]));
  it->SeekToLast();
  if (it->Valid()) {
    if (it->key().size() != 8) {
      return absl::DataLossError(absl::StrCat("corrupt store: malformed inode key in ", dir));
    }
    st.next_ino = std::max<uint64_t>(DecodeU64(ToView(it->key())) + 1, kRootIno + 1);
  } else if (!it->status().ok()) {
    return FromRocks(it->status(), absl::StrCat("scanning inodes in ", dir));
  }
  return store;
}

// ---------------------------------------------------------------------------
// Reads

absl::StatusOr<Superblock> MetaStore::ReadSuperblock() {
  auto v = s_->Get(ColumnFamily::kSuperblock, kSuperblockKey, "superblock");
  if (!v.ok()) return v.status();
  return Superblock::Decode(*v);
}

absl::StatusOr<uint64_t> MetaStore::ReadNextGeneration() {
  auto v = s_->Get(ColumnFamily::kSuperblock, kNextGenerationKey, "generation mark");
  if (absl::IsNotFound(v.status())) return 0;
  if (!v.ok()) return v.status();
  if (v->size() != 8) return absl::DataLossError("corrupt store: malformed generation mark");
  return DecodeU64(*v);
}

absl::StatusOr<InodeRecord> MetaStore::GetInode(uint64_t ino) {
  auto v = s_->Get(ColumnFamily::kInodes, InodeKey(ino), absl::StrCat("inode ", ino));
  if (!v.ok()) return v.status();
  return InodeRecord::Decode(ino, *v);
}

absl::StatusOr<DirEntry> MetaStore::GetDentry(uint64_t parent, std::string_view name) {
  const std::string what = absl::StrCat("entry '", AbslView(name), "' in directory ", parent);
  if (s_->absent.KnownAbsent(parent, name)) return absl::NotFoundError(absl::StrCat(what, " not found"));
  const uint64_t epoch = s_->absent.epoch();
  auto v = s_->Get(ColumnFamily::kDentries, DentryKey(parent, name), what);
  if (absl::IsNotFound(v.status())) s_->absent.Remember(parent, name, epoch);
  if (!v.ok()) return v.status();
  return DirEntry::Decode(*v);
}

uint64_t MetaStore::absent_dentry_hits() const { return s_->absent.hits(); }

absl::Status MetaStore::ListDir(
    uint64_t parent, uint64_t after_cookie,
    const std::function<bool(std::string_view name, const DirEntry&)>& fn) {
  if (after_cookie == UINT64_MAX) return absl::OkStatus();
  // One snapshot for the cookie index and the entries it points to, so a
  // concurrent rename is seen entirely or not at all.
  const rocksdb::Snapshot* snap = s_->db->GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* snap;
    ~Release() { db->ReleaseSnapshot(snap); }
  } release{s_->db, snap};

  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  const std::string prefix = EncodeU64(parent);
  const std::string upper = PrefixSuccessor(prefix);
  rocksdb::Slice upper_slice(upper);
  if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(s_->db->NewIterator(ro, cf(ColumnFamily::kDirCookies)));
  for (it->Seek(DirCookieKey(parent, after_cookie + 1)); it->Valid(); it->Next()) {
    std::string_view key = ToView(it->key());
    if (key.size() != 16 || key.substr(0, 8) != prefix) break;
    const uint64_t cookie = DecodeU64(key.substr(8));
    std::string_view name = ToView(it->value());
    std::string value;
    rocksdb::Status s = s_->db->Get(ro, cf(ColumnFamily::kDentries), DentryKey(parent, name), &value);
    if (s.IsNotFound()) continue;  // stale index entry: fsck reports it, readdir skips it
    if (!s.ok()) return FromRocks(s, absl::StrCat("reading directory ", parent, " in ", s_->dir));
    auto e = DirEntry::Decode(value);
    if (!e.ok()) {
      return absl::DataLossError(absl::StrCat("directory ", parent, " entry '", AbslView(name),
                                              "': ", e.status().message()));
    }
    if (e->cookie != cookie) continue;
    if (!fn(name, *e)) return absl::OkStatus();
  }
  return FromRocks(it->status(), absl::StrCat("reading directory ", parent, " in ", s_->dir));
}

absl::StatusOr<bool> MetaStore::DirIsEmpty(uint64_t parent) {
  bool empty = true;
  absl::Status s = s_->Scan(ColumnFamily::kDentries, EncodeU64(parent), EncodeU64(parent),
                            [&](std::string_view, std::string_view) -> absl::StatusOr<bool> {
                              empty = false;
                              return false;
                            });
  if (!s.ok()) return s;
  return empty;
}

absl::StatusOr<std::vector<Extent>> MetaStore::GetExtents(uint64_t ino) {
  std::vector<Extent> out;
  const std::string prefix = EncodeU64(ino);
  absl::Status s = s_->Scan(
      ColumnFamily::kExtents, prefix, prefix,
      [&](std::string_view key, std::string_view value) -> absl::StatusOr<bool> {
        if (key.size() != 16) return absl::DataLossError(absl::StrCat("inode ", ino, ": malformed extent key"));
        auto e = DecodeExtentValue(DecodeU64(key.substr(8)), value);
        if (!e.ok()) return absl::DataLossError(absl::StrCat("inode ", ino, ": ", e.status().message()));
        out.push_back(*e);
        return true;
      });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::string> MetaStore::GetXattr(uint64_t ino, std::string_view name) {
  return s_->Get(ColumnFamily::kXattrs, XattrKey(ino, name),
                 absl::StrCat("extended attribute '", AbslView(name), "' of inode ", ino));
}

absl::StatusOr<std::vector<std::string>> MetaStore::ListXattrs(uint64_t ino) {
  std::vector<std::string> names;
  const std::string prefix = EncodeU64(ino);
  absl::Status s = s_->Scan(ColumnFamily::kXattrs, prefix, prefix,
                            [&](std::string_view key, std::string_view) -> absl::StatusOr<bool> {
                              names.emplace_back(key.substr(8));
                              return true;
                            });
  if (!s.ok()) return s;
  return names;
}

absl::Status MetaStore::ForEachInode(const std::function<bool(const InodeRecord&)>& fn) {
  return s_->Scan(ColumnFamily::kInodes, {}, {},
                  [&](std::string_view key, std::string_view value) -> absl::StatusOr<bool> {
                    if (key.size() != 8) return absl::DataLossError("malformed inode key");
                    auto rec = InodeRecord::Decode(DecodeU64(key), value);
                    if (!rec.ok()) return rec.status();
                    return fn(*rec);
                  });
}

absl::Status MetaStore::ForEachDentry(
    const std::function<bool(uint64_t parent, std::string_view name, const DirEntry&)>& fn) {
  return s_->Scan(ColumnFamily::kDentries, {}, {},
                  [&](std::string_view key, std::string_view value) -> absl::StatusOr<bool> {
                    if (key.size() < 8) return absl::DataLossError("malformed directory entry key");
                    const uint64_t parent = DecodeU64(key);
                    auto e = DirEntry::Decode(value);
                    if (!e.ok()) {
                      return absl::DataLossError(absl::StrCat("directory ", parent, " entry '",
                                                              AbslView(key.substr(8)), "': ", e.status().message()));
                    }
                    return fn(parent, key.substr(8), *e);
                  });
}

absl::Status MetaStore::ForEachExtent(const std::function<bool(uint64_t ino, const Extent&)>& fn) {
  return s_->Scan(ColumnFamily::kExtents, {}, {},
                  [&](std::string_view key, std::string_view value) -> absl::StatusOr<bool> {
                    if (key.size() != 16) return absl::DataLossError("malformed extent key");
                    const uint64_t ino = DecodeU64(key);
                    auto e = DecodeExtentValue(DecodeU64(key.substr(8)), value);
                    if (!e.ok()) {
                      return absl::DataLossError(absl::StrCat("inode ", ino, ": ", e.status().message()));
                    }
                    return fn(ino, *e);
                  });
}

absl::Status MetaStore::ForEachFreeExtent(
    const std::function<bool(uint64_t start, uint64_t length)>& fn) {
  return s_->Scan(ColumnFamily::kFreeSpace, {}, {},
                  [&](std::string_view key, std::string_view value) -> absl::StatusOr<bool> {
                    if (key.size() != 8 || value.size() != 8) {
                      return absl::DataLossError("malformed free-space record");
                    }
                    return fn(DecodeU64(key), DecodeU64(value));
                  });
}

absl::Status MetaStore::ForEachOrphan(const std::function<bool(uint64_t ino)>& fn) {
  return s_->Scan(ColumnFamily::kOrphans, {}, {},
                  [&](std::string_view key, std::string_view) -> absl::StatusOr<bool> {
                    if (key.size() != 8) return absl::DataLossError("malformed orphan key");
                    return fn(DecodeU64(key));
                  });
}

uint64_t MetaStore::AllocateIno() { return s_->next_ino.fetch_add(1); }

// ---------------------------------------------------------------------------
// Writes

absl::Status MetaStore::Commit(Batch& batch, bool sync,
                               const std::function<absl::Status(Batch&)>& prepare) {
  if (s_->read_only) return absl::FailedPreconditionError("metadata store is open read-only");
  std::lock_guard<std::mutex> lock(commit_mu_);
  const uint64_t seq = s_->last_seq.load(std::memory_order_relaxed) + 1;
  Batch::Rep::Of(batch.rep_).sequence = seq;
  if (prepare) {
    absl::Status s = prepare(batch);
    if (!s.ok()) return s;
  }
  rocksdb::WriteBatch wb;
  bool touches_dentries = false;
  for (const auto& op : Batch::Rep::Of(batch.rep_).ops) {
    touches_dentries |= op.cf == ColumnFamily::kDentries;
    rocksdb::Status s = op.del ? wb.Delete(cf(op.cf), op.key) : wb.Put(cf(op.cf), op.key, op.value);
    if (!s.ok()) return FromRocks(s, "building a metadata batch");
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status s = s_->db->Write(wo, &wb);
  // Visible now (or, on failure, maybe in part): absences read before are stale.
  if (touches_dentries) s_->absent.Invalidate();
  if (!s.ok()) return FromRocks(s, absl::StrCat("committing metadata in ", s_->dir));
  s_->last_seq.store(seq, std::memory_order_release);
  // The log is one ordered file: a synced commit makes every earlier one durable.
  if (sync) AdvanceDurable(s_->durable_seq, seq);
  // Applied: clear so that reusing the batch cannot replay these ops.
  batch.rep_->ops.clear();
  batch.rep_->sequence = 0;
  return absl::OkStatus();
}

absl::Status MetaStore::SyncWal() {
  if (s_->read_only) return absl::OkStatus();
  const uint64_t covered = s_->last_seq.load(std::memory_order_acquire);
  absl::Status s =
      FromRocks(s_->db->FlushWAL(/*sync=*/true), absl::StrCat("syncing metadata log in ", s_->dir));
  if (s.ok()) AdvanceDurable(s_->durable_seq, covered);
  return s;
}

uint64_t MetaStore::last_sequence() const { return s_->last_seq.load(std::memory_order_acquire); }
uint64_t MetaStore::durable_sequence() const { return s_->durable_seq.load(std::memory_order_acquire); }

uint64_t MetaStore::ApproximateMemoryUsage() {
  // The memtables are charged to the cache as reservations; count only what
  // they use beyond their reservation so nothing is counted twice.
  uint64_t memtables = 0, readers = 0;
  s_->db->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &memtables);
  s_->db->GetAggregatedIntProperty("rocksdb.estimate-table-readers-mem", &readers);
  const uint64_t reserved = s_->write_buffers->dummy_entries_in_cache_usage();
  const uint64_t beyond = memtables > reserved ? memtables - reserved : 0;
  return s_->cache->GetUsage() + beyond + readers;
}

void MetaStore::SetMemoryBudget(uint64_t block_cache_bytes, uint64_t memtable_bytes) {
  s_->write_buffers->SetBufferSize(memtable_bytes);
  s_->cache->SetCapacity(block_cache_bytes + memtable_bytes);
}

uint64_t MetaStore::memory_capacity() const { return s_->cache->GetCapacity(); }

}  // namespace reclaimfs::storage

// Filesystem: mount (open the store, replay orphans, start the workers),
// unmount (persist, drain evictions, write back, close), attributes, statfs,
// statistics, and the eviction work the retry queue runs. The namespace,
// file and xattr operations live in namespace_ops.cc, file_ops.cc and
// xattr_ops.cc.
#include "fs/posix/filesystem.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <unordered_map>
#include <set>

#include "absl/strings/str_cat.h"
#include "fs/cache/errno_status.h"
#include "fs/posix/attributes.h"
#include "fs/posix/filesystem_impl.h"
#include "fs/posix/permissions.h"
#include "reclaim/scope.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::fs {

namespace {

absl::Status WithContext(const absl::Status& s, std::string_view context) {
  if (s.ok()) return s;
  absl::Status out(s.code(), std::string(context) + ": " + std::string(s.message()));
  s.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace

absl::Status ValidateName(std::string_view name) {
  if (name.empty()) return ErrnoStatus(ENOENT, "empty name");
  if (name.size() > kNameMax) return ErrnoStatus(ENAMETOOLONG);
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return ErrnoStatus(EINVAL, "name contains '/' or NUL");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Impl: mount and unmount

Filesystem::Impl::Impl(const FilesystemOptions& opts)
    : options(opts), atime_policy{opts.atime, opts.relatime}, read_only(opts.read_only) {}

Filesystem::Impl::~Impl() {
  // Only reached after Stop(), or when Start() failed part way: make sure
  // nothing still calls into us while members go.
  if (shrinker_registered) mm->core().Unregister(shrinker.get());
  if (invalidator) invalidator->Stop();
  evictq.reset();
  root.reset();
}

absl::Status Filesystem::Impl::Start() {
  if (options.store_dir.empty()) return absl::InvalidArgumentError("no store directory given");
  const std::string& dir = options.store_dir;

  // Check the data file before opening the metadata: opening RocksDB
  // read-write replays its log into new files, and a store we refuse must
  // be left exactly as it was.
  const std::string data_path = dir + "/" + storage::kDataFileName;
  struct stat data_st;
  if (::stat(data_path.c_str(), &data_st) != 0) {
    return absl::NotFoundError(absl::StrCat(dir, ": cannot open data file ", data_path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(data_st.st_mode) && !S_ISBLK(data_st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(dir, ": data file ", data_path, " is not a regular file"));
  }

  absl::StatusOr<std::unique_ptr<storage::MetaStore>> m =
      storage::MetaStore::Open(dir + "/" + storage::kMetaDirName, options.meta);
  if (!m.ok()) return WithContext(m.status(), dir);
  meta = std::move(*m);

  absl::StatusOr<storage::Superblock> s = meta->ReadSuperblock();
  if (!s.ok()) return WithContext(s.status(), dir);
  sb = *s;

  absl::StatusOr<std::unique_ptr<storage::UringBlockStore>> d =
      storage::UringBlockStore::Open(data_path, sb.block_size, options.uring);
  if (!d.ok()) return WithContext(d.status(), dir);
  dev = std::move(*d);

  if (options.fault_injection) faults = std::make_unique<storage::FaultInjectingDevice>(dev.get());
  storage::BlockDevice* const io_dev = faults ? static_cast<storage::BlockDevice*>(faults.get()) : dev.get();

  alloc = std::make_unique<storage::Allocator>(sb.total_blocks());
  if (absl::Status st = alloc->Load(*meta); !st.ok()) return WithContext(st, dir);

  mm = std::make_unique<reclaim::MemoryManager>(options.memory);
  cache = std::make_unique<InodeCache>(meta.get(), &mm->budget());
  data = std::make_unique<FileData>(meta.get(), alloc.get(), io_dev, mm.get(), this, options.data);
  if (absl::Status st = data->Start(); !st.ok()) return WithContext(st, dir);

  const bool recover = !(options.no_recovery && options.read_only);
  if (recover) {
    if (absl::Status st = ReplayOrphans(); !st.ok()) return WithContext(st, dir);
  }

  uint64_t inodes = 0;
  uint64_t max_generation = 0;
  std::unordered_map<uint64_t, uint64_t> file_sizes;
  absl::Status st = meta->ForEachInode([&](const storage::InodeRecord& rec) {
    ++inodes;
    max_generation = std::max(max_generation, rec.generation);
    if (S_ISREG(rec.mode)) file_sizes[rec.ino] = rec.size;
    return true;
  });
  if (!st.ok()) return WithContext(st, dir);
  inode_count = inodes;
  // Stores from before the persisted mark have none: continue above every
  // generation still in use.
  absl::StatusOr<uint64_t> mark = meta->ReadNextGeneration();
  if (!mark.ok()) return WithContext(mark.status(), dir);
  next_generation = std::max(*mark, max_generation + 1);
  if (recover) {
    if (absl::Status t = TrimPastEof(file_sizes); !t.ok()) return WithContext(t, dir);
  }

  absl::StatusOr<InodeRef> r = cache->Get(storage::kRootIno);
  if (!r.ok()) return absl::DataLossError(absl::StrCat(dir, ": corrupt store: no root inode"));
  root = std::move(*r);
  if (!S_ISDIR(Rec(root.get()).mode)) {
    return absl::DataLossError(absl::StrCat(dir, ": corrupt store: root is not a directory"));
  }

  evictq = std::make_unique<EvictQueue>([this](uint64_t ino, bool final_pass) {
    return EvictWork(ino, final_pass);
  });
  evictq->Start();
  invalidator = std::make_unique<DentryInvalidator>();
  invalidator->Start();
  shrinker = std::make_unique<InodeShrinker>(cache.get(), data.get(), evictq.get(), invalidator.get(),
                                             &mm->budget(), options.inode_cache_fraction);
  mm->core().Register(shrinker.get());
  shrinker_registered = true;
  return absl::OkStatus();
}

absl::Status Filesystem::Impl::Stop() {
  absl::Status result;
  auto note = [&](const absl::Status& s) {
    if (!s.ok() && result.ok()) result = s;
  };
  // Reclaim stops calling us (Unregister waits for a running scan).
  if (shrinker_registered) {
    mm->core().Unregister(shrinker.get());
    shrinker_registered = false;
  }
  if (invalidator) invalidator->Stop();
  if (cache) note(PersistAllDirty(false));
  // Every queued eviction runs now, while the flushers can still write its
  // pages back; unlinked inodes nobody refers to are deallocated.
  if (evictq) evictq->Drain();
  if (data) note(data->Shutdown());
  if (cache) note(PersistAllDirty(true));
  if (meta) note(meta->SyncWal());
  root.reset();
  data.reset();
  cache.reset();
  mm.reset();
  alloc.reset();
  faults.reset();
  dev.reset();
  meta.reset();
  return result;
}

// A write cut off by a crash may have left written blocks past the end of
// file (writeback ran ahead of the size it was raising). They are not part
// of the file; drop them, and zero the last block's tail, so that a later
// extension reads zeros instead of that write's bytes.
absl::Status Filesystem::Impl::TrimPastEof(const std::unordered_map<uint64_t, uint64_t>& sizes) {
  std::set<uint64_t> trim;
  const uint64_t bs = sb.block_size;
  absl::Status st = meta->ForEachExtent([&](uint64_t ino, const storage::Extent& e) {
    auto it = sizes.find(ino);
    if (it != sizes.end() && !e.unwritten && e.file_end() > (it->second + bs - 1) / bs) trim.insert(ino);
    return true;
  });
  if (!st.ok()) return st;
  for (uint64_t ino : trim) {
    if (absl::Status s = data->Truncate(ino, UINT64_MAX, sizes.at(ino)); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("trimming blocks past the end of inode ", ino, ": ", s.message()));
    }
  }
  if (!trim.empty()) spdlog::info("dropped blocks past the end of {} file(s) left by an interrupted write", trim.size());
  return absl::OkStatus();
}

absl::Status Filesystem::Impl::ReplayOrphans() {
  std::vector<uint64_t> orphans;
  absl::Status st = meta->ForEachOrphan([&](uint64_t ino) {
    orphans.push_back(ino);
    return true;
  });
  if (!st.ok()) return st;
  for (uint64_t ino : orphans) {
    absl::StatusOr<storage::InodeRecord> rec = meta->GetInode(ino);
    if (rec.ok() && rec->nlink == 0) {
      if (absl::Status s = DeallocateOnDisk(ino); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("freeing orphan inode ", ino, ": ", s.message()));
      }
      orphans_replayed.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (!rec.ok() && !absl::IsNotFound(rec.status())) return rec.status();
    // Gone already, or linked again: only the orphan entry is stale.
    storage::MetaStore::Batch batch;
    batch.RemoveOrphan(ino);
    if (absl::Status s = meta->Commit(batch, false); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Impl: helpers

absl::Status Filesystem::Impl::CheckWritable() const {
  if (read_only.load(std::memory_order_relaxed)) return ErrnoStatus(EROFS);
  return absl::OkStatus();
}

absl::StatusOr<InodeRef> Filesystem::Impl::Pin(uint64_t ino, InodeCache::ChargeMode mode) {
  if (ino == 0) return ErrnoStatus(EINVAL, "node id 0");
  if (!cache) return ErrnoStatus(EIO, "filesystem is shut down");
  return cache->Get(ino, mode);
}

absl::StatusOr<InodeRef> Filesystem::Impl::PinDir(uint64_t ino, InodeCache::ChargeMode mode) {
  absl::StatusOr<InodeRef> r = Pin(ino, mode);
  if (!r.ok()) return r;
  if (!S_ISDIR(Rec(r->get()).mode)) return ErrnoStatus(ENOTDIR);
  return r;
}

storage::InodeRecord Filesystem::Impl::Rec(Inode* inode) {
  std::lock_guard a(inode->attr_mu);
  return inode->body->rec;
}

Attributes Filesystem::Impl::AttrsOf(Inode* inode) {
  storage::InodeRecord rec = Rec(inode);
  const uint64_t sectors = S_ISREG(rec.mode) ? data->AllocatedSectors(rec.ino) : 0;
  return AttributesOf(rec, sectors, sb.block_size);
}

absl::Status Filesystem::Impl::Commit(storage::MetaStore::Batch& batch, std::vector<Inode*> inodes, bool sync,
                                      bool after_writeback) {
  return CommitRecords(batch, std::move(inodes), sync, /*generation_mark=*/false);
}

absl::Status Filesystem::Impl::CommitNewInode(storage::MetaStore::Batch& batch, std::vector<Inode*> inodes) {
  return CommitRecords(batch, std::move(inodes), /*sync=*/false, /*generation_mark=*/true);
}

absl::Status Filesystem::Impl::CommitRecords(storage::MetaStore::Batch& batch, std::vector<Inode*> inodes, bool sync,
                                             bool generation_mark) {
  std::sort(inodes.begin(), inodes.end());
  inodes.erase(std::unique(inodes.begin(), inodes.end()), inodes.end());
  inodes.erase(std::remove(inodes.begin(), inodes.end(), nullptr), inodes.end());
  std::vector<uint64_t> versions(inodes.size());
  absl::Status s = meta->Commit(batch, sync, [&](storage::MetaStore::Batch& b) {
    // Creates commit concurrently (one directory each): the mark is read
    // here, in commit order, so a later commit never lowers it.
    if (generation_mark) b.PutNextGeneration(next_generation.load(std::memory_order_relaxed));
    for (size_t i = 0; i < inodes.size(); ++i) {
      std::lock_guard a(inodes[i]->attr_mu);
      b.PutInode(inodes[i]->body->rec);
      versions[i] = inodes[i]->body->version;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  for (size_t i = 0; i < inodes.size(); ++i) {
    std::lock_guard a(inodes[i]->attr_mu);
    inodes[i]->body->persisted = std::max(inodes[i]->body->persisted, versions[i]);
  }
  return absl::OkStatus();
}

absl::Status Filesystem::Impl::PersistIfDirty(Inode* inode, bool sync, bool after_writeback) {
  {
    std::lock_guard a(inode->attr_mu);
    if (after_writeback ? inode->body->clean() : !inode->body->dirty()) return absl::OkStatus();
  }
  storage::MetaStore::Batch batch;
  return Commit(batch, {inode}, sync, after_writeback);
}

absl::Status Filesystem::Impl::PersistAllDirty(bool after_writeback) {
  std::vector<InodeRef> refs = cache->PinAllBodies();
  std::vector<Inode*> dirty;
  for (InodeRef& r : refs) {
    std::lock_guard a(r->attr_mu);
    if (after_writeback ? !r->body->clean() : r->body->dirty()) dirty.push_back(r.get());
  }
  constexpr size_t kPerCommit = 256;
  for (size_t i = 0; i < dirty.size(); i += kPerCommit) {
    storage::MetaStore::Batch batch;
    std::vector<Inode*> chunk(dirty.begin() + i, dirty.begin() + std::min(dirty.size(), i + kPerCommit));
    if (absl::Status s = Commit(batch, std::move(chunk), false, after_writeback); !s.ok()) return s;
  }
  return absl::OkStatus();
}

uint64_t Filesystem::Impl::NewGeneration() {
  // Inode numbers are reused after a remount (the highest one, deleted);
  // the kernel tells a stale file handle by (node id, generation), so a
  // generation is never handed out twice: the mark goes into the batch
  // that creates the inode (CommitNewInode).
  return next_generation.fetch_add(1, std::memory_order_relaxed);
}

void Filesystem::Impl::AddInodeRecord(uint64_t ino, storage::MetaStore::Batch* batch) {
  // Without a cached body the store already has the current record (bodies
  // are dropped only when clean), or the inode is being deleted: add nothing.
  InodeRef ref = cache->GetCached(ino);
  if (!ref) return;
  std::lock_guard a(ref->attr_mu);
  batch->PutInode(ref->body->rec);
}

void Filesystem::Impl::OnWritebackError(uint64_t ino, int err) {
  if (cache) cache->RecordWritebackError(ino, err);
}

// ---------------------------------------------------------------------------
// Impl: eviction and deallocation (the retry queue's thread)

void Filesystem::Impl::QueueEviction(uint64_t ino) {
  if (evictq) evictq->Add(ino);
}

void Filesystem::Impl::ReclaimDeferredSpace() {
  using std::chrono::milliseconds;
  constexpr milliseconds kFlushBound{5'000};
  // The kernel sends RELEASE (after close) and FORGET (after the last
  // unlink) without waiting for them, so they may still be on their way
  // when the next request arrives. An unlinked inode held only by lookups
  // will certainly go: wait a little for it. One still open may be a
  // RELEASE in flight or a user's open file: wait only a moment.
  constexpr milliseconds kForgetWait{200}, kReleaseWait{20}, kPoll{2};
  if (!evictq || !cache) return;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    if (!evictq->Flush(kFlushBound)) {
      spdlog::warn("deferred deallocations did not finish within {} ms", kFlushBound.count());
      return;
    }
    const InodeCache::UnlinkedCounts left = cache->Unlinked();
    const auto waited = std::chrono::steady_clock::now() - start;
    const bool wait = (left.closed > 0 && waited < kForgetWait) || (left.open > 0 && waited < kReleaseWait);
    if (!wait) return;
    std::this_thread::sleep_for(kPoll);
  }
}

absl::Status Filesystem::Impl::DeallocateOnDisk(uint64_t ino) {
  storage::MetaStore::Batch batch;
  absl::StatusOr<std::vector<std::string>> names = meta->ListXattrs(ino);
  if (!names.ok()) return names.status();
  for (const std::string& n : *names) batch.DeleteXattr(ino, n);
  batch.DeleteInode(ino);
  batch.RemoveOrphan(ino);
  // FileData drops the pages and commits this batch together with the
  // extent deletions and the freed space (it must free under the commit lock).
  if (absl::Status s = data->Deallocate(ino, &batch); !s.ok()) return s;
  // Should the batch come back uncommitted, commit it here.
  absl::StatusOr<storage::InodeRecord> still = meta->GetInode(ino);
  if (still.ok()) return meta->Commit(batch, false);
  if (!absl::IsNotFound(still.status())) return still.status();
  return absl::OkStatus();
}

EvictQueue::Outcome Filesystem::Impl::EvictWork(uint64_t ino, bool final_pass) {
  using Outcome = EvictQueue::Outcome;
  // Eviction frees memory: it may use the reserve, and must not recurse into
  // this filesystem's own shrinker.
  reclaim::ScopedReclaimFlags scope(reclaim::kScopeNoFs | reclaim::kScopeMayUseReserve);
  absl::StatusOr<InodeRef> r = cache->Get(ino);
  if (!r.ok()) return ToErrno(r.status()) == ENOENT ? Outcome::kDone : Outcome::kRetry;
  InodeRef ref = std::move(*r);
  const InodeRefState state = cache->State(ref.get());

  if (state.unlinked) {
    if (state.referenced()) {
      // The last Forget/Release queues it again; at unmount the orphan
      // record stays for the next mount.
      cache->SetQueued(ref.get(), false);
      return Outcome::kDone;
    }
    if (!cache->Doom(ref)) return Outcome::kRetry;  // briefly pinned elsewhere
    if (absl::Status s = DeallocateOnDisk(ino); !s.ok()) {
      dealloc_failures.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("deallocating inode {}: {}", ino, s.ToString());
      cache->Undoom(ref.get());
      return Outcome::kRetry;
    }
    cache->Remove(ref);
    {
      std::lock_guard t(tmpfile_mu);
      tmpfiles.erase(ino);
    }
    inode_count.fetch_sub(1, std::memory_order_relaxed);
    deallocations.fetch_add(1, std::memory_order_relaxed);
    return Outcome::kDone;
  }

  if (!PersistIfDirty(ref.get(), false).ok()) return Outcome::kRetry;
  absl::Status evicted;
  {
    // Not reclaim: waiting for the inode's writeback here is fine.
    std::unique_lock io(ref->io_mu);
    evicted = data->Evict(ino, false);
  }
  if (!evicted.ok()) {
    if (!final_pass) return Outcome::kRetry;
    // At unmount FileData::Shutdown writes back whatever is left.
    cache->SetQueued(ref.get(), false);
    return Outcome::kDone;
  }
  // Writeback is over: our record supersedes any snapshot it committed.
  if (!PersistIfDirty(ref.get(), false, /*after_writeback=*/true).ok()) return Outcome::kRetry;
  cache->SetQueued(ref.get(), false);
  cache->DropBody(ref);  // fails harmlessly if the inode is in use again
  return Outcome::kDone;
}

// ---------------------------------------------------------------------------
// Filesystem: mount, unmount, attributes, statistics

Filesystem::Filesystem() = default;

Filesystem::~Filesystem() {
  if (impl_) (void)Shutdown();
}

absl::StatusOr<std::unique_ptr<Filesystem>> Filesystem::Open(const FilesystemOptions& options) {
  std::unique_ptr<Filesystem> fs(new Filesystem());
  fs->impl_ = std::make_unique<Impl>(options);
  if (absl::Status s = fs->impl_->Start(); !s.ok()) {
    (void)fs->impl_->Stop();
    fs->impl_->stopped = true;
    return s;
  }
  return fs;
}

absl::Status Filesystem::Shutdown() {
  std::lock_guard l(impl_->shutdown_mu);
  if (!impl_->stopped) {
    impl_->stopped = true;
    impl_->stop_status = impl_->Stop();
  }
  return impl_->stop_status;
}

absl::StatusOr<Attributes> Filesystem::GetAttr(uint64_t ino) {
  absl::StatusOr<InodeRef> r = impl_->Pin(ino);
  if (!r.ok()) return r.status();
  return impl_->AttrsOf(r->get());
}

absl::Status Filesystem::Access(const RequestContext& ctx, uint64_t ino, int mask) {
  absl::StatusOr<InodeRef> r = impl_->Pin(ino);
  if (!r.ok()) return r.status();
  const storage::InodeRecord rec = Impl::Rec(r->get());
  if (mask == F_OK) return absl::OkStatus();
  if ((mask & W_OK) && impl_->read_only.load() &&
      (S_ISREG(rec.mode) || S_ISDIR(rec.mode) || S_ISLNK(rec.mode))) {
    return ErrnoStatus(EROFS);
  }
  return impl_->CheckPerm(ctx, rec, mask);
}

absl::StatusOr<FsStats> Filesystem::StatFs() {
  impl_->ReclaimDeferredSpace();  // deleted files count as free at once
  FsStats st;
  st.block_size = impl_->sb.block_size;
  st.blocks = impl_->alloc->total_blocks();
  st.blocks_free = impl_->alloc->free_blocks();
  st.blocks_avail = impl_->alloc->available_blocks();
  // Inodes live in the metadata store and cost no data blocks; offer one
  // per available block as the free estimate.
  st.files_free = st.blocks_avail;
  st.files = impl_->inode_count.load() + st.files_free;
  st.name_max = kNameMax;
  return st;
}

absl::Status Filesystem::SetFaultRules(std::string_view rules) {
  if (!impl_->faults) return absl::FailedPreconditionError("fault injection is off (mount with fault_injection=true)");
  absl::StatusOr<std::vector<storage::FaultRule>> parsed = storage::ParseFaultRules(rules);
  if (!parsed.ok()) return parsed.status();
  return impl_->faults->SetRules(*parsed);
}

absl::Status Filesystem::SetReadOnly(bool ro) {
  if (ro) {
    if (absl::Status s = impl_->PersistAllDirty(false); !s.ok()) return s;
    if (absl::Status s = impl_->data->SyncAll(); !s.ok()) return s;
    if (absl::Status s = impl_->meta->SyncWal(); !s.ok()) return s;
  }
  impl_->read_only.store(ro);
  return absl::OkStatus();
}

reclaim::MemoryManager& Filesystem::memory() { return *impl_->mm; }

void Filesystem::Retune(const FilesystemOptions& o) {
  Impl& s = *impl_;
  if (s.meta) s.meta->SetMemoryBudget(o.meta.block_cache_bytes, o.meta.memtable_bytes);
  if (s.data) s.data->SetTunables(o.data);
  if (s.shrinker) s.shrinker->set_share_fraction(o.inode_cache_fraction);
  if (!s.mm) return;
  reclaim::MemoryBudget& budget = s.mm->budget();
  const bool shrinking = o.memory.budget_bytes < budget.limit();
  // Watermarks first: with a smaller limit they are fractions of it.
  budget.SetFractions(o.memory.watermarks);
  budget.SetLimit(o.memory.budget_bytes);  // wakes kswapd when below low
  if (shrinking && s.data) s.data->KickWriteback();
}

bool Filesystem::WaitWithinBudget(std::chrono::milliseconds bound) {
  Impl& s = *impl_;
  if (!s.mm) return true;
  reclaim::MemoryManager& mm = *s.mm;
  const auto deadline = std::chrono::steady_clock::now() + bound;
  bool fits = false;
  for (;;) {
    fits = mm.budget().used() <= mm.budget().limit();
    if (fits || std::chrono::steady_clock::now() >= deadline) break;
    // kswapd stops at the high watermark and sleeps after a pass that freed
    // nothing; dirty pages need the flushers. Keep both going, and look
    // again on progress or every 10 ms.
    const uint64_t gen = mm.progress().Generation();
    mm.kswapd().Wake();
    if (s.data) s.data->KickWriteback();
    mm.progress().WaitFor(gen, std::chrono::milliseconds(10));
  }
  if (s.data) s.data->TrimPool();
  return fits;
}

Filesystem::DropCounts Filesystem::DropCaches(bool pages, bool inodes) {
  Impl& s = *impl_;
  DropCounts counts;
  if (inodes && s.shrinker) {
    reclaim::ScopedReclaimFlags in_reclaim(reclaim::kScopeInReclaim);
    counts.inodes = s.shrinker->DropClean();
  }
  // After the inodes: an evicted inode's pages may have gone with it.
  if (pages && s.data) counts.pages = s.data->DropCleanPages();
  return counts;
}

void Filesystem::SetInvalidator(std::function<void(const InvalRequest&)> invalidate) {
  if (!impl_->invalidator) return;
  if (!invalidate) {
    impl_->invalidator->SetCallback(nullptr);
    return;
  }
  impl_->invalidator->SetCallback(
      [fn = std::move(invalidate)](uint64_t parent, const std::string& name) { fn(InvalRequest{parent, name}); });
}

std::string Filesystem::StatsText() const {
  const Impl& s = *impl_;
  std::string out;
  auto line = [&](const char* name, uint64_t v) { absl::StrAppend(&out, name, " ", v, "\n"); };
  if (s.mm) {
    out += s.mm->StatsText();  // budget_* and the reclaim counters
    if (!out.empty() && out.back() != '\n') out += '\n';
  }
  if (s.meta) line("meta_budget", s.meta->memory_capacity());
  if (s.data) {
    out += s.data->StatsText();
    if (!out.empty() && out.back() != '\n') out += '\n';
  }
  if (s.cache) {
    const InodeCacheCounters c = s.cache->counters();
    line("inode_stubs", c.stubs);
    line("inode_bodies", c.bodies);
    line("inode_body_bytes", c.body_bytes);
    line("inode_idle_bodies", c.idle);
    line("inode_bodies_loaded", c.loaded);
    line("inode_bodies_evicted", c.evicted);
    line("inode_cache_hits", c.hits);
  }
  if (s.shrinker) {
    if (s.mm) line("inode_share_bytes", s.shrinker->share_bytes());
    line("inode_shrink_scanned", s.shrinker->scanned());
    line("inode_shrink_freed", s.shrinker->freed());
    line("inode_shrink_busy", s.shrinker->busy());
    line("evict_deferred", s.shrinker->deferred());
  }
  if (s.evictq) {
    line("evict_queued", s.evictq->added());
    line("evict_retried", s.evictq->retried());
    line("evict_done", s.evictq->done());
    line("evict_abandoned", s.evictq->abandoned());
    line("evict_pending", s.evictq->pending());
  }
  line("inode_deallocations", s.deallocations.load());
  line("inode_dealloc_failures", s.dealloc_failures.load());
  line("orphans_replayed", s.orphans_replayed.load());
  if (s.meta) line("meta_absent_dentry_hits", s.meta->absent_dentry_hits());
  line("inodes", s.inode_count.load());
  line("open_handles", s.handles.size());
  if (s.invalidator) {
    line("dentry_inval_queued", s.invalidator->queued());
    line("dentry_inval_sent", s.invalidator->sent());
    line("dentry_inval_dropped", s.invalidator->dropped());
  }
  return out;
}

}  // namespace reclaimfs::fs

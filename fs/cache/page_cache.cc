// PageCache: page lookup and creation, the budget charge of every page, the
// two-list LRU and the dirty/writeback counters.
#include "fs/cache/page_cache.h"

#include <cstdlib>
#include <cstring>

#include "storage/block_device.h"

namespace reclaimfs::fs {

// ---- LRU lists ----------------------------------------------------------

void PageCache::LruList::PushFront(Page* p) {
  p->lru_prev = nullptr;
  p->lru_next = head;
  if (head) head->lru_prev = p;
  head = p;
  if (!tail) tail = p;
  ++n;
}

void PageCache::LruList::PushBack(Page* p) {
  p->lru_next = nullptr;
  p->lru_prev = tail;
  if (tail) tail->lru_next = p;
  tail = p;
  if (!head) head = p;
  ++n;
}

void PageCache::LruList::Remove(Page* p) {
  if (p->lru_prev) p->lru_prev->lru_next = p->lru_next; else head = p->lru_next;
  if (p->lru_next) p->lru_next->lru_prev = p->lru_prev; else tail = p->lru_prev;
  p->lru_prev = p->lru_next = nullptr;
  --n;
}

void PageCache::LruAddLocked(Page* p) {
  (p->Test(kPageActive) ? active_ : inactive_).PushFront(p);
  p->Set(kPageLru);
}

void PageCache::LruDelLocked(Page* p) {
  if (!p->Test(kPageLru)) return;
  (p->Test(kPageActive) ? active_ : inactive_).Remove(p);
  p->Clear(kPageLru);
}

// ---- construction -------------------------------------------------------

PageCache::PageCache(reclaim::MemoryManager* mm, storage::MetaStore* meta, uint32_t page_size)
    : mm_(mm), meta_(meta), page_size_(page_size), pool_(page_size) {}

PageCache::~PageCache() { DropAll(); }

void PageCache::DropAll() {
  std::lock_guard<std::mutex> l(files_mu_);
  for (auto& [ino, fs] : files_) {
    std::lock_guard<std::mutex> fl(fs->mu);
    for (auto& [index, p] : fs->pages) {
      {
        std::lock_guard<std::mutex> lru(lru_mu_);
        LruDelLocked(p);
        p->Clear(kPageAttached);
      }
      ClearDirty(p);
      Put(p);  // the index's reference
    }
    fs->pages.clear();
  }
  files_.clear();
  std::lock_guard<std::mutex> d(dirty_mu_);
  for (auto& [state, ref] : dirty_files_) state->on_dirty_list = false;
  dirty_files_.clear();
}

// ---- files --------------------------------------------------------------

std::shared_ptr<FileState> PageCache::GetFile(uint64_t ino) {
  std::lock_guard<std::mutex> l(files_mu_);
  auto& slot = files_[ino];
  if (!slot) slot = std::make_shared<FileState>(ino, &mm_->budget());
  return slot;
}

std::shared_ptr<FileState> PageCache::FindFile(uint64_t ino) {
  std::lock_guard<std::mutex> l(files_mu_);
  auto it = files_.find(ino);
  return it == files_.end() ? nullptr : it->second;
}

void PageCache::RemoveFile(uint64_t ino, const FileState* expected) {
  std::lock_guard<std::mutex> l(files_mu_);
  auto it = files_.find(ino);
  if (it != files_.end() && it->second.get() == expected) {
    {
      std::lock_guard<std::mutex> d(dirty_mu_);
      if (it->second->on_dirty_list) {
        it->second->on_dirty_list = false;
        dirty_files_.erase(it->second.get());
      }
    }
    files_.erase(it);
  }
}

std::vector<std::shared_ptr<FileState>> PageCache::Files() {
  std::lock_guard<std::mutex> l(files_mu_);
  std::vector<std::shared_ptr<FileState>> out;
  out.reserve(files_.size());
  for (auto& [ino, fs] : files_) out.push_back(fs);
  return out;
}

std::vector<std::shared_ptr<FileState>> PageCache::DirtyFiles() {
  std::lock_guard<std::mutex> l(dirty_mu_);
  std::vector<std::shared_ptr<FileState>> out;
  out.reserve(dirty_files_.size());
  for (auto it = dirty_files_.begin(); it != dirty_files_.end();) {
    if (it->first->nr_dirty.load() == 0) {
      it->first->on_dirty_list = false;
      it = dirty_files_.erase(it);
    } else {
      out.push_back(it->second);
      ++it;
    }
  }
  return out;
}

absl::Status PageCache::EnsureExtents(FileState* fs) {
  if (fs->extents_loaded.load(std::memory_order_acquire)) return absl::OkStatus();
  // Read without the file lock (it is a leaf lock). Nobody changes the
  // stored extents of a file whose map is not loaded: every committer loads
  // it first, and the map is never unloaded while the state lives.
  auto extents = meta_->GetExtents(fs->ino);
  if (!extents.ok()) return extents.status();
  std::lock_guard<std::mutex> l(fs->mu);
  if (!fs->extents_loaded.load(std::memory_order_relaxed)) {
    fs->extents.Assign(*extents);
    fs->extents_loaded.store(true, std::memory_order_release);
  }
  return absl::OkStatus();
}

// ---- pages --------------------------------------------------------------

Page* PageCache::NewPage(FileState* fs, uint64_t index) {
  void* buf = pool_.Allocate();
  if (!buf) return nullptr;
  nr_pages_.fetch_add(1, std::memory_order_relaxed);
  return new Page(fs, fs->ino, index, static_cast<char*>(buf));
}

void PageCache::FreePage(Page* p) {
  if (p->Test(kPageDirty)) nr_dirty_.fetch_sub(1, std::memory_order_relaxed);
  pool_.Free(p->data);
  delete p;
  nr_pages_.fetch_sub(1, std::memory_order_relaxed);
  mm_->budget().Uncharge(page_charge());
}

void PageCache::Put(Page* p) {
  if (p->Unref()) FreePage(p);
}

Page* PageCache::Find(FileState* fs, uint64_t index) {
  std::lock_guard<std::mutex> l(fs->mu);
  auto it = fs->pages.find(index);
  if (it == fs->pages.end()) return nullptr;
  it->second->Ref();
  return it->second;
}

std::vector<Page*> PageCache::FindRange(FileState* fs, uint64_t first, uint64_t end) {
  std::vector<Page*> out;
  std::lock_guard<std::mutex> l(fs->mu);
  for (auto it = fs->pages.lower_bound(first); it != fs->pages.end() && it->first < end; ++it) {
    it->second->Ref();
    out.push_back(it->second);
  }
  return out;
}

Page* PageCache::InsertOrGet(FileState* fs, Page* fresh, bool* inserted) {
  std::lock_guard<std::mutex> l(fs->mu);
  auto [it, ok] = fs->pages.emplace(fresh->index, fresh);
  *inserted = ok;
  if (!ok) {
    it->second->Ref();
    return it->second;
  }
  // One reference for the index, one for the caller; born locked so that
  // whoever finds it waits until it is filled.
  fresh->Ref();
  fresh->Set(kPageLocked | kPageAttached);
  std::lock_guard<std::mutex> lru(lru_mu_);
  LruAddLocked(fresh);
  return fresh;
}

absl::StatusOr<Page*> PageCache::FindOrCreate(FileState* fs, uint64_t index, bool* created) {
  *created = false;
  if (Page* p = Find(fs, index)) return p;
  // Charge before taking any lock: it may run direct reclaim.
  absl::Status s = mm_->budget().Charge(page_charge());
  if (!s.ok()) return s;
  Page* p = InsertCharged(fs, index, created);
  if (!p) return absl::ResourceExhaustedError("out of memory for a page");
  return p;
}

Page* PageCache::InsertCharged(FileState* fs, uint64_t index, bool* created) {
  *created = false;
  Page* fresh = NewPage(fs, index);
  if (!fresh) {
    mm_->budget().Uncharge(page_charge());
    return nullptr;
  }
  bool inserted = false;
  Page* p = InsertOrGet(fs, fresh, &inserted);
  if (!inserted) FreePage(fresh);  // releases the charge
  *created = inserted;
  return p;
}

Page* PageCache::CreateForReadahead(FileState* fs, uint64_t index) {
  {
    std::lock_guard<std::mutex> l(fs->mu);
    if (fs->pages.count(index)) return nullptr;
  }
  if (!mm_->budget().TryCharge(page_charge())) {
    stats_.readahead_skipped.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  Page* fresh = NewPage(fs, index);
  if (!fresh) {
    mm_->budget().Uncharge(page_charge());
    return nullptr;
  }
  bool inserted = false;
  Page* p = InsertOrGet(fs, fresh, &inserted);
  if (!inserted) {
    FreePage(fresh);
    Put(p);
    return nullptr;
  }
  return p;
}

void PageCache::Detach(Page* p) {
  FileState* fs = p->file;
  {
    std::lock_guard<std::mutex> l(fs->mu);
    auto it = fs->pages.find(p->index);
    if (it == fs->pages.end() || it->second != p) return;
    fs->pages.erase(it);
    std::lock_guard<std::mutex> lru(lru_mu_);
    LruDelLocked(p);
    p->Clear(kPageAttached);
  }
  Put(p);  // the index's reference; the caller still holds one
}

// ---- accounting ---------------------------------------------------------

void PageCache::SetDirty(Page* p) {
  if (p->Set(kPageDirty)) return;
  const int64_t now = NowMs();
  p->dirtied_at_ms.store(now, std::memory_order_relaxed);
  if (p->file->nr_dirty.fetch_add(1) == 0) {
    p->file->dirtied_when_ms.store(now);
    std::lock_guard<std::mutex> l(dirty_mu_);
    if (!p->file->on_dirty_list) {
      p->file->on_dirty_list = true;
      dirty_files_.emplace(p->file, p->file->shared_from_this());
    }
  }
  nr_dirty_.fetch_add(1, std::memory_order_relaxed);
}

void PageCache::ClearDirty(Page* p) {
  if (!p->Clear(kPageDirty)) return;
  p->file->nr_dirty.fetch_sub(1);
  nr_dirty_.fetch_sub(1, std::memory_order_relaxed);
}

void PageCache::SetWriteback(Page* p) {
  if (p->Set(kPageWriteback)) return;
  p->file->nr_writeback.fetch_add(1);
  nr_writeback_.fetch_add(1, std::memory_order_relaxed);
}

void PageCache::EndWriteback(Page* p) {
  if (!p->Test(kPageWriteback)) return;
  p->file->nr_writeback.fetch_sub(1);
  nr_writeback_.fetch_sub(1, std::memory_order_relaxed);
  if (p->Clear(kPageReclaim)) {
    // Reclaim wanted this page while it was dirty: now that it is clean, put
    // it where the shrinker looks next (Linux's PG_reclaim rotation).
    std::lock_guard<std::mutex> l(lru_mu_);
    if (p->Test(kPageLru) && !p->Test(kPageActive)) {
      inactive_.Remove(p);
      inactive_.PushBack(p);
    }
  }
  p->EndWriteback();
}

void PageCache::SetReserved(Page* p) {
  if (!p->Set(kPageReserved)) p->file->nr_reserved.fetch_add(1);
}

void PageCache::ClearReserved(Page* p) {
  if (p->Clear(kPageReserved)) p->file->nr_reserved.fetch_sub(1);
}

// ---- LRU policy ---------------------------------------------------------

void PageCache::MarkAccessed(Page* p) {
  const uint32_t f = p->Flags();
  if (!(f & kPageReferenced)) {
    p->Set(kPageReferenced);
    return;
  }
  if (f & kPageActive) return;
  std::lock_guard<std::mutex> l(lru_mu_);
  if (p->Test(kPageLru) && !p->Test(kPageActive)) {
    inactive_.Remove(p);
    p->Set(kPageActive);
    p->Clear(kPageReferenced);
    active_.PushFront(p);
  }
}

uint64_t PageCache::LruPages() const {
  // No lock: reclaim's Count() must never wait for one.
  return inactive_.n + active_.n;
}

uint64_t PageCache::ActivePages() const {
  return active_.n;
}

uint64_t PageCache::InactivePages() const {
  return inactive_.n;
}

void PageCache::BalanceLists(uint64_t nr) {
  std::lock_guard<std::mutex> l(lru_mu_);
  for (uint64_t i = 0; i < nr && active_.n > inactive_.n && active_.tail; ++i) {
    Page* p = active_.tail;
    active_.Remove(p);
    if (p->Clear(kPageReferenced)) {
      // Used since the last look: one more round on the active list.
      active_.PushFront(p);
      continue;
    }
    p->Clear(kPageActive);
    inactive_.PushFront(p);
    stats_.shrink_deactivated.fetch_add(1, std::memory_order_relaxed);
  }
}

void PageCache::IsolateForReclaim(uint64_t nr, bool eager_pageout, IsolateResult* out) {
  std::lock_guard<std::mutex> l(lru_mu_);
  for (uint64_t i = 0; i < nr && inactive_.tail; ++i) {
    Page* p = inactive_.tail;
    inactive_.Remove(p);
    ++out->scanned;
    const uint32_t f = p->Flags();
    // As Linux's folio_check_references for unmapped file pages: the
    // referenced bit alone does not keep a clean page. A page used twice
    // is on the active list already (MarkAccessed); one read once and then
    // left to age to the inactive tail is what reclaim is for.
    const bool referenced = p->Clear(kPageReferenced);
    if (f & kPageWriteback) {
      p->Set(kPageReclaim);
      inactive_.PushFront(p);
      ++out->writeback;
      continue;
    }
    if (f & kPageDirty) {
      ++out->dirty_seen;
      inactive_.PushFront(p);
      if (referenced) {
        ++out->referenced;  // in use: keep it, write it later
        continue;
      }
      const bool marked_before = p->Set(kPageReclaim);
      // Pageout work only for a page reclaim meets dirty a second time:
      // the flushers reclaim kicked usually wrote it in between, and a
      // queued page is pinned, unreclaimable even once clean.
      if ((marked_before || eager_pageout) && !p->Set(kPagePageout)) {
        // The work pins the page with a reference, never with its lock.
        p->Ref();
        out->dirty.push_back(p);
      }
      continue;
    }
    // Index reference only: anything more is a reader, writer or IO.
    if ((f & kPageLocked) || p->Refs() > 1) {
      inactive_.PushFront(p);
      ++out->busy;
      continue;
    }
    p->Clear(kPageLru);
    p->Ref();
    out->clean.push_back(p);
  }
}

void PageCache::IsolateCleanLocked(LruList& list, std::vector<Page*>* out) {
  for (Page* p = list.tail; p != nullptr;) {
    Page* const prev = p->lru_prev;
    const uint32_t f = p->Flags();
    if (!(f & (kPageDirty | kPageWriteback | kPageLocked)) && p->Refs() == 1) {
      list.Remove(p);
      p->Clear(kPageLru);
      p->Ref();
      out->push_back(p);
    }
    p = prev;
  }
}

uint64_t PageCache::DropClean() {
  std::vector<Page*> isolated;
  {
    std::lock_guard<std::mutex> l(lru_mu_);
    IsolateCleanLocked(inactive_, &isolated);
    IsolateCleanLocked(active_, &isolated);
  }
  uint64_t freed = 0;
  for (Page* p : isolated) freed += TryFreeIsolated(p) ? 1 : 0;
  return freed;
}

bool PageCache::TryFreeIsolated(Page* p) {
  if (!p->TryLock()) {
    PutBack(p);
    return false;
  }
  if (!p->Test(kPageAttached)) {
    p->Unlock();
    Put(p);
    return false;
  }
  FileState* fs = p->file;  // alive: the page is attached and locked
  if (!fs->mu.try_lock()) {
    p->Unlock();
    PutBack(p);
    return false;
  }
  const uint32_t f = p->Flags();
  // Refs: the index's and ours. Find() takes references under fs->mu, so
  // none can appear while we hold it.
  if ((f & (kPageDirty | kPageWriteback)) || p->Refs() != 2) {
    fs->mu.unlock();
    p->Unlock();
    PutBack(p);
    return false;
  }
  fs->pages.erase(p->index);
  {
    std::lock_guard<std::mutex> lru(lru_mu_);
    LruDelLocked(p);
    p->Clear(kPageAttached);
  }
  fs->mu.unlock();
  p->Unlock();
  Put(p);  // index
  Put(p);  // ours: frees and uncharges
  return true;
}

void PageCache::PutBack(Page* p) {
  {
    std::lock_guard<std::mutex> l(lru_mu_);
    // Detach clears kPageAttached under this lock, so a page detached while
    // isolated is never put back.
    if (p->Test(kPageAttached) && !p->Test(kPageLru)) LruAddLocked(p);
  }
  Put(p);
}

}  // namespace reclaimfs::fs

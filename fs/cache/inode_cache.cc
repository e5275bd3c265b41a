// The inode cache: stubs, on-demand bodies, the idle LRU and reference counts.
#include "fs/cache/inode_cache.h"

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "fs/cache/errno_status.h"

namespace reclaimfs::fs {

InodeRef& InodeRef::operator=(InodeRef&& other) noexcept {
  if (this != &other) {
    reset();
    cache_ = other.cache_;
    inode_ = other.inode_;
    epoch_ = other.epoch_;
    other.cache_ = nullptr;
    other.inode_ = nullptr;
  }
  return *this;
}

void InodeRef::reset() {
  if (inode_ != nullptr) cache_->Unpin(inode_);
  inode_ = nullptr;
  cache_ = nullptr;
}

InodeCache::InodeCache(storage::MetaStore* meta, reclaim::MemoryBudget* budget)
    : meta_(meta), budget_(budget) {}

InodeCache::~InodeCache() {
  uint64_t charged = 0;
  for (auto& [ino, inode] : stubs_) {
    if (inode->body) charged += inode->body->charge;
  }
  if (charged > 0) budget_->Uncharge(charged);
}

uint64_t InodeCache::ChargeFor(const storage::InodeRecord& rec) {
  // The body, its share of the stub and the strings it owns.
  return sizeof(InodeBody) + sizeof(Inode) + rec.symlink.capacity();
}

InodeRef InodeCache::PinLocked(Inode* inode) {
  ++inode->pins_;
  ++inode->epoch_;
  LruRemoveLocked(inode);
  return InodeRef(this, inode, inode->epoch_);
}

void InodeCache::LruRemoveLocked(Inode* inode) {
  if (inode->on_lru_) {
    lru_.erase(inode->lru_pos_);
    inode->on_lru_ = false;
    idle_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void InodeCache::MaybeEraseLocked(Inode* inode) {
  if (inode->pins_ == 0 && !inode->body && inode->lookups_ == 0 && inode->opens_ == 0 &&
      !inode->doomed_) {
    unlinked_.erase(inode->ino);
    stubs_.erase(inode->ino);  // destroys *inode
  }
}

uint64_t InodeCache::TakeBodyLocked(Inode* inode, std::unique_ptr<InodeBody>* out) {
  std::lock_guard a(inode->attr_mu);
  *out = std::move(inode->body);
  const uint64_t charge = (*out)->charge;
  --bodies_;
  body_bytes_.fetch_sub(charge, std::memory_order_relaxed);
  return charge;
}

void InodeCache::Unpin(Inode* inode) {
  std::lock_guard l(mu_);
  if (--inode->pins_ > 0) return;
  if (inode->body && !inode->queued_ && !inode->doomed_) {
    lru_.push_back(inode);
    inode->lru_pos_ = std::prev(lru_.end());
    inode->on_lru_ = true;
    idle_.fetch_add(1, std::memory_order_relaxed);
  } else {
    MaybeEraseLocked(inode);
  }
}

absl::StatusOr<InodeRef> InodeCache::Get(uint64_t ino, ChargeMode mode) {
  InodeRef ref;
  Inode* inode = nullptr;
  {
    std::lock_guard l(mu_);
    auto [it, inserted] = stubs_.try_emplace(ino);
    if (inserted) it->second = std::make_unique<Inode>(ino);
    inode = it->second.get();
    if (inode->doomed_) return ErrnoStatus(ENOENT, absl::StrCat("inode ", ino, " is being deleted"));
    ref = PinLocked(inode);
    if (inode->body) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      return ref;
    }
  }
  // Load and charge with no locks held: the charge may enter direct reclaim.
  absl::StatusOr<storage::InodeRecord> rec = meta_->GetInode(ino);
  if (!rec.ok()) {
    ref.reset();
    if (absl::IsNotFound(rec.status())) return ErrnoStatus(ENOENT, absl::StrCat("no inode ", ino));
    return rec.status();
  }
  const uint64_t charge = ChargeFor(*rec);
  if (mode == ChargeMode::kMayReclaim) {
    if (absl::Status s = budget_->Charge(charge); !s.ok()) {
      ref.reset();
      return ErrnoStatus(ENOMEM, absl::StrCat("inode ", ino, ": ", s.message()));
    }
  } else {
    budget_->ForceCharge(charge);
  }
  auto body = std::make_unique<InodeBody>();
  body->charge = charge;
  const bool unlinked = rec->nlink == 0;
  body->rec = std::move(*rec);
  bool installed = false;
  {
    std::lock_guard l(mu_);
    std::lock_guard a(inode->attr_mu);
    if (!inode->body) {
      inode->body = std::move(body);
      if (unlinked) {
        inode->unlinked_ = true;
        unlinked_.insert(ino);
      }
      ++bodies_;
      body_bytes_.fetch_add(charge, std::memory_order_relaxed);
      installed = true;
    }
  }
  if (installed) {
    loaded_.fetch_add(1, std::memory_order_relaxed);
  } else {
    budget_->Uncharge(charge);  // another thread loaded it first
  }
  return ref;
}

InodeRef InodeCache::GetCached(uint64_t ino) {
  std::lock_guard l(mu_);
  auto it = stubs_.find(ino);
  if (it == stubs_.end()) return InodeRef();
  Inode* inode = it->second.get();
  if (!inode->body || inode->doomed_) return InodeRef();
  return PinLocked(inode);
}

InodeRef InodeCache::Install(const storage::InodeRecord& rec) {
  const uint64_t charge = ChargeFor(rec);
  budget_->ForceCharge(charge);
  auto body = std::make_unique<InodeBody>();
  body->rec = rec;
  body->charge = charge;
  bool installed = false;
  InodeRef ref;
  {
    std::lock_guard l(mu_);
    auto [it, inserted] = stubs_.try_emplace(rec.ino);
    if (inserted) it->second = std::make_unique<Inode>(rec.ino);
    Inode* inode = it->second.get();
    ref = PinLocked(inode);
    std::lock_guard a(inode->attr_mu);
    if (!inode->body) {
      inode->body = std::move(body);
      ++bodies_;
      body_bytes_.fetch_add(charge, std::memory_order_relaxed);
      installed = true;
    }
  }
  if (!installed) budget_->Uncharge(charge);
  return ref;
}

void InodeCache::AddLookup(Inode* inode, uint64_t parent, std::string_view name) {
  std::lock_guard l(mu_);
  ++inode->lookups_;
  if (parent != 0) {
    inode->dentry_parent_ = parent;
    inode->dentry_name_.assign(name);
  }
}

bool InodeCache::Forget(uint64_t ino, uint64_t n) {
  std::lock_guard l(mu_);
  auto it = stubs_.find(ino);
  if (it == stubs_.end()) return false;
  Inode* inode = it->second.get();
  inode->lookups_ -= std::min(n, inode->lookups_);
  if (inode->lookups_ > 0) return false;
  inode->dentry_parent_ = 0;
  inode->dentry_name_.clear();
  const bool dealloc = inode->unlinked_ && inode->opens_ == 0;
  MaybeEraseLocked(inode);
  return dealloc;
}

void InodeCache::AddOpen(Inode* inode) {
  std::lock_guard l(mu_);
  ++inode->opens_;
}

bool InodeCache::ReleaseOpen(uint64_t ino) {
  std::lock_guard l(mu_);
  auto it = stubs_.find(ino);
  if (it == stubs_.end()) return false;
  Inode* inode = it->second.get();
  if (inode->opens_ > 0) --inode->opens_;
  if (inode->opens_ > 0) return false;
  const bool dealloc = inode->unlinked_ && inode->lookups_ == 0;
  MaybeEraseLocked(inode);
  return dealloc;
}

bool InodeCache::SetUnlinked(Inode* inode) {
  std::lock_guard l(mu_);
  inode->unlinked_ = true;
  unlinked_.insert(inode->ino);
  return inode->lookups_ == 0 && inode->opens_ == 0;
}

void InodeCache::ClearUnlinked(Inode* inode) {
  std::lock_guard l(mu_);
  inode->unlinked_ = false;
  unlinked_.erase(inode->ino);
}

void InodeCache::RecordWritebackError(uint64_t ino, int err) {
  std::lock_guard l(mu_);
  auto it = stubs_.find(ino);
  if (it != stubs_.end()) it->second->wb_err.Record(err);
}

InodeCache::UnlinkedCounts InodeCache::Unlinked() const {
  std::lock_guard l(mu_);
  UnlinkedCounts c;
  for (uint64_t ino : unlinked_) {
    auto it = stubs_.find(ino);
    if (it == stubs_.end()) continue;
    (it->second->opens_ > 0 ? c.open : c.closed) += 1;
  }
  return c;
}

void InodeCache::SetDentry(Inode* inode, uint64_t parent, std::string_view name) {
  std::lock_guard l(mu_);
  inode->dentry_parent_ = parent;
  inode->dentry_name_.assign(name);
}

void InodeCache::ClearDentry(Inode* inode) {
  std::lock_guard l(mu_);
  inode->dentry_parent_ = 0;
  inode->dentry_name_.clear();
}

std::optional<std::pair<uint64_t, std::string>> InodeCache::TakeDentry(Inode* inode) {
  std::lock_guard l(mu_);
  if (inode->lookups_ == 0 || inode->dentry_parent_ == 0) return std::nullopt;
  std::pair<uint64_t, std::string> d(inode->dentry_parent_, std::move(inode->dentry_name_));
  inode->dentry_parent_ = 0;
  inode->dentry_name_.clear();
  return d;
}

InodeRefState InodeCache::State(Inode* inode) {
  std::lock_guard l(mu_);
  return InodeRefState{inode->lookups_, inode->opens_, inode->pins_, inode->unlinked_};
}

std::vector<InodeRef> InodeCache::IsolateIdle(size_t n) {
  std::vector<InodeRef> refs;
  std::lock_guard l(mu_);
  refs.reserve(std::min(n, lru_.size()));
  while (refs.size() < n && !lru_.empty()) refs.push_back(PinLocked(lru_.front()));
  return refs;
}

void InodeCache::SetQueued(Inode* inode, bool queued) {
  std::lock_guard l(mu_);
  inode->queued_ = queued;
}

bool InodeCache::DropBody(InodeRef& ref) {
  Inode* inode = ref.inode_;
  std::unique_ptr<InodeBody> body;
  uint64_t charge = 0;
  {
    std::lock_guard l(mu_);
    if (inode->pins_ != 1 || inode->epoch_ != ref.epoch_ || inode->doomed_ || !inode->body) return false;
    {
      std::lock_guard a(inode->attr_mu);
      if (!inode->body->clean()) return false;
    }
    charge = TakeBodyLocked(inode, &body);
    inode->pins_ = 0;
    inode->queued_ = false;
    ref.inode_ = nullptr;
    ref.cache_ = nullptr;
    MaybeEraseLocked(inode);
  }
  evicted_.fetch_add(1, std::memory_order_relaxed);
  budget_->Uncharge(charge);
  return true;
}

bool InodeCache::Doom(InodeRef& ref) {
  std::lock_guard l(mu_);
  Inode* inode = ref.inode_;
  if (inode->pins_ != 1 || !inode->unlinked_ || inode->lookups_ != 0 || inode->opens_ != 0) return false;
  inode->doomed_ = true;
  return true;
}

void InodeCache::Undoom(Inode* inode) {
  std::lock_guard l(mu_);
  inode->doomed_ = false;
}

void InodeCache::Remove(InodeRef& ref) {
  Inode* inode = ref.inode_;
  std::unique_ptr<InodeBody> body;
  std::unique_ptr<Inode> stub;
  uint64_t charge = 0;
  {
    std::lock_guard l(mu_);
    if (inode->body) charge = TakeBodyLocked(inode, &body);
    LruRemoveLocked(inode);
    auto it = stubs_.find(inode->ino);
    stub = std::move(it->second);
    stubs_.erase(it);
    unlinked_.erase(inode->ino);
    ref.inode_ = nullptr;
    ref.cache_ = nullptr;
  }
  removed_.fetch_add(1, std::memory_order_relaxed);
  if (charge > 0) budget_->Uncharge(charge);
}

std::vector<InodeRef> InodeCache::PinAllBodies() {
  std::vector<InodeRef> refs;
  std::lock_guard l(mu_);
  for (auto& [ino, inode] : stubs_) {
    if (inode->body && !inode->doomed_) refs.push_back(PinLocked(inode.get()));
  }
  return refs;
}

InodeCacheCounters InodeCache::counters() const {
  InodeCacheCounters c;
  {
    std::lock_guard l(mu_);
    c.stubs = stubs_.size();
    c.bodies = bodies_;
    c.idle = lru_.size();
  }
  c.body_bytes = body_bytes_.load(std::memory_order_relaxed);
  c.loaded = loaded_.load(std::memory_order_relaxed);
  c.evicted = evicted_.load(std::memory_order_relaxed);
  c.hits = hits_.load(std::memory_order_relaxed);
  c.removed = removed_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace reclaimfs::fs

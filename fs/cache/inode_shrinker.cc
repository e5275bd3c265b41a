// Non-blocking eviction of idle inode bodies.
#include "fs/cache/inode_shrinker.h"

#include <algorithm>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <utility>
#include <vector>

namespace reclaimfs::fs {

InodeShrinker::InodeShrinker(InodeCache* cache, FileData* data, EvictQueue* queue,
                             DentryInvalidator* invalidator, reclaim::MemoryBudget* budget,
                             double share_fraction)
    : cache_(cache),
      data_(data),
      queue_(queue),
      invalidator_(invalidator),
      budget_(budget),
      share_fraction_(share_fraction) {}

uint64_t InodeShrinker::share_bytes() const {
  const double f = std::max(0.0, share_fraction_.load(std::memory_order_relaxed));
  return static_cast<uint64_t>(static_cast<double>(budget_->limit()) * f);
}

uint64_t InodeShrinker::Count() { return cache_->idle_count(); }

reclaim::ShrinkResult InodeShrinker::Scan(const reclaim::ShrinkControl& sc) {
  reclaim::ShrinkResult result;
  const bool over_share = cache_->body_bytes() > share_bytes();
  if (!over_share && sc.priority > kDesperatePriority) {
    result.hint = reclaim::ShrinkHint::kStop;
    return result;
  }
  return EvictIdle(sc.nr_to_scan, over_share, /*defer=*/true);
}

uint64_t InodeShrinker::DropClean() {
  uint64_t freed = 0;
  const uint64_t batches = cache_->idle_count() / 256 + 2;  // each inode looked at about once
  for (uint64_t i = 0; i < batches; ++i) {
    const reclaim::ShrinkResult r = EvictIdle(256, /*over_share=*/false, /*defer=*/false);
    freed += r.freed;
    if (r.scanned == 0 || r.freed == 0) break;
  }
  return freed;
}

reclaim::ShrinkResult InodeShrinker::EvictIdle(uint64_t nr, bool over_share, bool defer) {
  reclaim::ShrinkResult result;
  std::vector<InodeRef> batch = cache_->IsolateIdle(nr);
  if (batch.empty()) {
    result.hint = reclaim::ShrinkHint::kStop;
    return result;
  }
  std::vector<uint64_t> deferred;
  std::vector<std::pair<uint64_t, std::string>> inval;
  for (InodeRef& ref : batch) {
    ++result.scanned;
    // A held io lock means IO on this inode right now: busy, skip.
    std::unique_lock io(ref->io_mu, std::try_to_lock);
    if (!io.owns_lock()) {
      busy_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    bool dirty;
    {
      std::unique_lock attr(ref->attr_mu, std::try_to_lock);
      if (!attr.owns_lock()) {
        busy_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      dirty = !ref->body->clean();
    }
    absl::Status evicted = dirty ? absl::UnavailableError("record dirty") : data_->Evict(ref->ino, true);
    if (absl::IsUnavailable(evicted) && !defer) {
      busy_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (absl::IsUnavailable(evicted)) {
      // Writing back would block: the retry queue owns this eviction now
      // (handed over once our pin is gone, so the worker can drop it).
      cache_->SetQueued(ref.get(), true);
      deferred.push_back(ref->ino);
      continue;
    }
    if (!evicted.ok()) continue;
    std::optional<std::pair<uint64_t, std::string>> dentry;
    if (over_share) dentry = cache_->TakeDentry(ref.get());
    io.unlock();
    if (cache_->DropBody(ref)) {
      ++result.freed;
      if (dentry) inval.push_back(std::move(*dentry));
    }
  }
  batch.clear();  // unpin before handing work to other threads
  for (uint64_t ino : deferred) queue_->Add(ino);
  for (auto& [parent, name] : inval) invalidator_->Push(parent, std::move(name));
  scanned_.fetch_add(result.scanned, std::memory_order_relaxed);
  freed_.fetch_add(result.freed, std::memory_order_relaxed);
  deferred_.fetch_add(deferred.size(), std::memory_order_relaxed);
  // Only IO can make progress on what was deferred.
  if (result.freed == 0 && !deferred.empty()) result.hint = reclaim::ShrinkHint::kBackoff;
  return result;
}

}  // namespace reclaimfs::fs

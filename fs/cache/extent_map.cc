// ExtentMap: lookups, splitting, merging and the delta of records changed.
#include "fs/cache/extent_map.h"

#include <algorithm>
#include <iterator>

namespace reclaimfs::fs {

using storage::BlockRun;
using storage::Extent;

void ExtentDelta::ApplyTo(uint64_t ino, storage::MetaStore::Batch* batch) const {
  for (const auto& [fb, e] : changes_) {
    if (e) {
      batch->PutExtent(ino, *e);
    } else {
      batch->DeleteExtent(ino, fb);
    }
  }
}

ExtentMap::~ExtentMap() {
  if (budget_ != nullptr) budget_->Uncharge(charged_);
}

void ExtentMap::Recharge() {
  if (budget_ == nullptr) return;
  const uint64_t want = map_.size() * kRecordBytes;
  if (want > charged_) budget_->ForceCharge(want - charged_);
  if (want < charged_) budget_->Uncharge(charged_ - want);
  charged_ = want;
}

void ExtentMap::Assign(const std::vector<Extent>& extents) {
  map_.clear();
  for (const Extent& e : extents) map_[e.file_block] = e;
  Recharge();
}

ExtentMap::Mapping ExtentMap::Lookup(uint64_t fb) const {
  auto it = map_.upper_bound(fb);
  if (it == map_.begin()) return {};
  --it;
  const Extent& e = it->second;
  if (fb >= e.file_end()) return {};
  return {true, e.disk_block + (fb - e.file_block), e.unwritten};
}

uint64_t ExtentMap::GoalFor(uint64_t fb) const {
  auto it = map_.lower_bound(fb);
  if (it == map_.begin()) return 0;
  --it;
  const Extent& e = it->second;
  // Where fb would sit had the previous extent continued: holes filled later
  // then land between their neighbours (ext4 does the same).
  return e.disk_block + (fb - e.file_block);
}

std::optional<uint64_t> ExtentMap::NextMapped(uint64_t fb) const {
  auto it = map_.upper_bound(fb);
  if (it != map_.begin()) {
    auto prev = std::prev(it);
    if (fb < prev->second.file_end()) return fb;
  }
  if (it == map_.end()) return std::nullopt;
  return it->second.file_block;
}

uint64_t ExtentMap::MappedEnd(uint64_t fb) const {
  auto it = map_.upper_bound(fb);
  if (it == map_.begin()) return fb;
  --it;
  return fb < it->second.file_end() ? it->second.file_end() : fb;
}

namespace {

// Removes [fb, end) from `map`, keeping the parts of overlapping extents
// outside it; the removed pieces go to `removed`.
void RemoveRange(std::map<uint64_t, Extent>& map, uint64_t fb, uint64_t end, ExtentDelta* delta,
                 std::vector<Extent>* removed) {
  std::vector<Extent> overlapping;
  auto it = map.upper_bound(fb);
  if (it != map.begin()) {
    auto prev = std::prev(it);
    if (prev->second.file_end() > fb) it = prev;
  }
  while (it != map.end() && it->first < end) {
    overlapping.push_back(it->second);
    it = map.erase(it);
  }
  for (const Extent& e : overlapping) {
    delta->Delete(e.file_block);
    if (e.file_block < fb) {
      Extent left = e;
      left.length = fb - e.file_block;
      map[left.file_block] = left;
      delta->Put(left);
    }
    if (e.file_end() > end) {
      Extent right = e;
      right.file_block = end;
      right.disk_block = e.disk_block + (end - e.file_block);
      right.length = e.file_end() - end;
      map[right.file_block] = right;
      delta->Put(right);
    }
    const uint64_t s = std::max(fb, e.file_block);
    const uint64_t t = std::min(end, e.file_end());
    removed->push_back({s, e.disk_block + (s - e.file_block), t - s, e.unwritten});
  }
}

}  // namespace

void ExtentMap::Insert(Extent e, ExtentDelta* delta) {
  auto next = map_.lower_bound(e.file_block);
  if (next != map_.begin()) {
    auto prev = std::prev(next);
    const Extent& p = prev->second;
    if (p.file_end() == e.file_block && p.disk_block + p.length == e.disk_block &&
        p.unwritten == e.unwritten) {
      e.file_block = p.file_block;
      e.disk_block = p.disk_block;
      e.length += p.length;
      map_.erase(prev);  // same key as the merged record: the Put below replaces it
    }
  }
  next = map_.find(e.file_end());
  if (next != map_.end()) {
    const Extent& n = next->second;
    if (e.disk_block + e.length == n.disk_block && n.unwritten == e.unwritten) {
      e.length += n.length;
      delta->Delete(n.file_block);
      map_.erase(next);
    }
  }
  map_[e.file_block] = e;
  delta->Put(e);
}

void ExtentMap::MapWritten(uint64_t fb, uint64_t db, uint64_t n, ExtentDelta* delta,
                           std::vector<BlockRun>* displaced) {
  std::vector<Extent> removed;
  RemoveRange(map_, fb, fb + n, delta, &removed);
  for (const Extent& r : removed) {
    if (r.disk_block != db + (r.file_block - fb)) displaced->push_back({r.disk_block, r.length});
  }
  Insert({fb, db, n, false}, delta);
  Recharge();
}

void ExtentMap::MapUnwritten(uint64_t fb, uint64_t db, uint64_t n, ExtentDelta* delta) {
  Insert({fb, db, n, true}, delta);
  Recharge();
}

void ExtentMap::Unmap(uint64_t fb, uint64_t end, ExtentDelta* delta, std::vector<BlockRun>* freed) {
  std::vector<Extent> removed;
  RemoveRange(map_, fb, end, delta, &removed);
  for (const Extent& r : removed) freed->push_back({r.disk_block, r.length});
  Recharge();
}

void ExtentMap::MarkUnwritten(uint64_t fb, uint64_t end, ExtentDelta* delta) {
  std::vector<Extent> removed;
  RemoveRange(map_, fb, end, delta, &removed);
  for (Extent r : removed) {  // ascending: each merges with the one before
    r.unwritten = true;
    Insert(r, delta);
  }
  Recharge();
}

std::map<uint64_t, Extent>::iterator ExtentMap::Move(std::map<uint64_t, Extent>::iterator it,
                                                     int64_t shift, ExtentDelta* delta) {
  // A later move may put a record at this key again: the delta keeps the
  // last change per key, so moving in the direction of the shift's far end
  // first (up: descending, down: ascending) leaves the right final records.
  delta->Delete(it->first);
  auto node = map_.extract(it);
  node.key() += shift;
  node.mapped().file_block += shift;
  delta->Put(node.mapped());
  return map_.insert(std::move(node)).position;
}

void ExtentMap::Collapse(uint64_t fb, uint64_t n, ExtentDelta* delta, std::vector<BlockRun>* freed) {
  if (n == 0) return;
  Unmap(fb, fb + n, delta, freed);
  // Ascending: each record lands below every record not yet moved.
  for (auto it = map_.lower_bound(fb + n); it != map_.end();) {
    auto next = std::next(it);
    Move(it, -static_cast<int64_t>(n), delta);
    it = next;
  }
  // The extents on either side of the seam may now be contiguous.
  if (auto seam = map_.find(fb); seam != map_.end()) {
    const Extent e = seam->second;
    map_.erase(seam);
    delta->Delete(fb);
    Insert(e, delta);  // puts it back at fb, or merged into its neighbour
  }
  Recharge();
}

void ExtentMap::InsertHole(uint64_t fb, uint64_t n, ExtentDelta* delta) {
  if (n == 0) return;
  // Split the extent across fb so that its right part moves alone.
  auto it = map_.upper_bound(fb);
  if (it != map_.begin()) {
    auto prev = std::prev(it);
    Extent e = prev->second;
    if (e.file_block < fb && e.file_end() > fb) {
      Extent right = e;
      right.file_block = fb;
      right.disk_block = e.disk_block + (fb - e.file_block);
      right.length = e.file_end() - fb;
      e.length = fb - e.file_block;
      prev->second = e;
      delta->Put(e);
      map_[fb] = right;
      delta->Put(right);
    }
  }
  // Descending: each record lands above every record not yet moved.
  for (auto end = map_.end(); end != map_.begin();) {
    auto last = std::prev(end);
    if (last->first < fb) break;
    end = Move(last, static_cast<int64_t>(n), delta);
  }
  Recharge();
}

uint64_t ExtentMap::BlockCount() const {
  uint64_t n = 0;
  for (const auto& [fb, e] : map_) n += e.length;
  return n;
}

std::vector<Extent> ExtentMap::Extents() const {
  std::vector<Extent> out;
  out.reserve(map_.size());
  for (const auto& [fb, e] : map_) out.push_back(e);
  return out;
}

}  // namespace reclaimfs::fs

// Allocator: the free-space maps of the data file; see allocator.h.
#include "storage/allocator.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_format.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::storage {

namespace {

using RunMap = std::map<uint64_t, uint64_t>;

uint64_t End(RunMap::const_iterator it) { return it->first + it->second; }

// The run containing `block`, or end().
RunMap::iterator Containing(RunMap& runs, uint64_t block) {
  auto it = runs.upper_bound(block);
  if (it == runs.begin()) return runs.end();
  --it;
  return block < End(it) ? it : runs.end();
}

// Removes [start, start+len) from `run`, which must contain it, keeping
// what is left on either side; records the change into batch if given.
void CarveFrom(RunMap& runs, RunMap::iterator run, uint64_t start, uint64_t len,
               MetaStore::Batch* batch) {
  const uint64_t run_start = run->first;
  const uint64_t run_end = End(run);
  const uint64_t end = start + len;
  if (start > run_start) {
    run->second = start - run_start;
    if (batch) batch->PutFreeExtent(run_start, run->second);
  } else {
    runs.erase(run);
    if (batch) batch->DeleteFreeExtent(run_start);
  }
  if (end < run_end) {
    runs.emplace(end, run_end - end);
    if (batch) batch->PutFreeExtent(end, run_end - end);
  }
}

// Removes [start, start+len) from the map, which may hold it as several
// adjacent runs. Returns false, changing nothing, if any block is not free.
bool Carve(RunMap& runs, uint64_t start, uint64_t len, MetaStore::Batch* batch) {
  for (uint64_t cur = start; cur < start + len;) {
    auto it = Containing(runs, cur);
    if (it == runs.end()) return false;
    cur = End(it);
  }
  for (uint64_t cur = start; cur < start + len;) {
    auto it = Containing(runs, cur);
    const uint64_t piece_end = std::min(End(it), start + len);
    CarveFrom(runs, it, cur, piece_end - cur, batch);
    cur = piece_end;
  }
  return true;
}

// Adds [start, start+len), merging with free neighbours. Returns false,
// changing nothing, if it overlaps a free run (a double free).
bool Insert(RunMap& runs, uint64_t start, uint64_t len, MetaStore::Batch* batch) {
  const uint64_t end = start + len;
  auto next = runs.lower_bound(start);
  if (next != runs.end() && next->first < end) return false;
  auto prev = next == runs.begin() ? runs.end() : std::prev(next);
  if (prev != runs.end() && End(prev) > start) return false;

  uint64_t new_start = start, new_end = end;
  if (next != runs.end() && next->first == end) {
    new_end = End(next);
    if (batch) batch->DeleteFreeExtent(next->first);
    runs.erase(next);
  }
  if (prev != runs.end() && End(prev) == start) {
    new_start = prev->first;
    prev->second = new_end - new_start;
  } else {
    runs.emplace(new_start, new_end - new_start);
  }
  if (batch) batch->PutFreeExtent(new_start, new_end - new_start);
  return true;
}

std::vector<BlockRun> ToRuns(const RunMap& runs) {
  std::vector<BlockRun> out;
  out.reserve(runs.size());
  for (const auto& [start, len] : runs) out.push_back(BlockRun{start, len});
  return out;
}

}  // namespace

Allocator::Allocator(uint64_t total_blocks) : total_(total_blocks) {}

absl::Status Allocator::Load(MetaStore& meta) {
  RunMap runs;
  uint64_t free = 0;
  uint64_t prev_end = 0;
  absl::Status bad;
  absl::Status s = meta.ForEachFreeExtent([&](uint64_t start, uint64_t len) {
    if (len == 0 || start + len < start || start + len > total_) {
      bad = absl::DataLossError(absl::StrFormat(
          "free extent [%d, +%d) lies outside the data file (%d blocks)", start, len, total_));
      return false;
    }
    if (start < prev_end) {
      bad = absl::DataLossError(absl::StrFormat(
          "free extent [%d, +%d) overlaps the previous one (ending at %d)", start, len, prev_end));
      return false;
    }
    // Adjacent runs stay separate: the map must mirror the keys on disk.
    runs.emplace(start, len);
    free += len;
    prev_end = start + len;
    return true;
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  std::lock_guard<std::mutex> lock(mu_);
  meta_ = &meta;
  disk_runs_ = runs;
  runs_ = std::move(runs);
  free_ = free;
  pending_ = 0;
  pending_frees_.clear();
  reserved_ = 0;
  return absl::OkStatus();
}

void Allocator::ReleaseDurableLocked() {
  const uint64_t durable = meta_ ? meta_->durable_sequence() : UINT64_MAX;
  while (!pending_frees_.empty() && pending_frees_.front().sequence <= durable) {
    const BlockRun run = pending_frees_.front().run;
    pending_frees_.pop_front();
    Insert(runs_, run.start, run.length, nullptr);
    free_ += run.length;
    pending_ -= run.length;
  }
}

absl::Status Allocator::SyncPendingFrees() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ReleaseDurableLocked();
    if (pending_frees_.empty() || meta_ == nullptr) return absl::OkStatus();
  }
  absl::Status s = meta_->SyncWal();
  std::lock_guard<std::mutex> lock(mu_);
  ReleaseDurableLocked();
  return s;
}

absl::Status Allocator::Reserve(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  // Pending frees count: Allocate makes them durable when it needs them.
  // Blocks being discarded count too: they come back within a hole punch.
  const uint64_t free = free_ + pending_ + discarding_;
  const uint64_t available = free > reserved_ ? free - reserved_ : 0;
  if (n > available) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "no space left: %d blocks wanted, %d available", n, available));
  }
  reserved_ += n;
  return absl::OkStatus();
}

void Allocator::Unreserve(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  reserved_ -= std::min(n, reserved_);
}

absl::StatusOr<std::vector<BlockRun>> Allocator::Allocate(uint64_t n, uint64_t goal,
                                                          bool from_reservation) {
  std::vector<BlockRun> out;
  if (n == 0) return out;
  std::unique_lock<std::mutex> lock(mu_);
  ReleaseDurableLocked();
  // Blocks reserved by others are not ours to take; pending frees are ours
  // once the log is synced.
  auto usable = [&] {
    const uint64_t consumed = from_reservation ? std::min(n, reserved_) : 0;
    const uint64_t others = reserved_ - consumed;
    return free_ > others ? free_ - others : 0;
  };
  if (n > usable() && pending_ > 0 && meta_ != nullptr) {
    lock.unlock();
    absl::Status synced = meta_->SyncWal();
    lock.lock();
    if (!synced.ok()) spdlog::warn("allocator: syncing the metadata log for freed blocks: {}", synced.ToString());
    ReleaseDurableLocked();
  }
  // A discard holds free blocks for the time of a hole punch: wait for them
  // rather than fail a write for space that is there.
  constexpr auto kDiscardWait = std::chrono::seconds(2);
  if (n > usable() && discarding_ > 0) {
    discards_returned_.wait_for(lock, kDiscardWait, [&] { return discarding_ == 0 || n <= usable(); });
  }
  if (n > usable()) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("no space left: %d blocks wanted, %d available", n, usable()));
  }
  const uint64_t consumed = from_reservation ? std::min(n, reserved_) : 0;

  auto take = [&](RunMap::iterator run, uint64_t start, uint64_t len) {
    CarveFrom(runs_, run, start, len, nullptr);
    out.push_back(BlockRun{start, len});
  };
  auto finish = [&]() {
    free_ -= n;
    reserved_ -= consumed;
    return out;
  };

  // 1. Exactly at the goal, so the file continues contiguously.
  if (auto it = Containing(runs_, goal); it != runs_.end() && End(it) - goal >= n) {
    take(it, goal, n);
    return finish();
  }
  // 2. The first run after the goal that fits, then 3. the first anywhere.
  for (auto it = runs_.lower_bound(goal); it != runs_.end(); ++it) {
    if (it->second >= n) {
      take(it, it->first, n);
      return finish();
    }
  }
  for (auto it = runs_.begin(); it != runs_.end() && it->first < goal; ++it) {
    if (it->second >= n) {
      take(it, it->first, n);
      return finish();
    }
  }
  // 4. No single run fits: gather runs, largest first so the file gets as
  // few pieces as possible.
  std::vector<std::pair<uint64_t, uint64_t>> by_size(runs_.begin(), runs_.end());
  std::stable_sort(by_size.begin(), by_size.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  uint64_t left = n;
  for (const auto& [start, len] : by_size) {
    if (left == 0) break;
    const uint64_t piece = std::min(len, left);
    take(runs_.find(start), start, piece);
    left -= piece;
  }
  std::sort(out.begin(), out.end(),
            [](const BlockRun& a, const BlockRun& b) { return a.start < b.start; });
  return finish();
}

void Allocator::CommitAllocation(const std::vector<BlockRun>& runs, MetaStore::Batch* batch) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const BlockRun& r : runs) {
    if (r.length == 0) continue;
    if (r.start + r.length < r.start || r.start + r.length > total_ ||
        !Carve(disk_runs_, r.start, r.length, batch)) {
      // Not free on disk: committing it would corrupt the map, so skip it.
      spdlog::error("allocator: committing blocks [{}, +{}) that are not free on disk; ignored",
                    r.start, r.length);
    }
  }
}

void Allocator::CancelAllocation(const std::vector<BlockRun>& runs) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const BlockRun& r : runs) {
    if (r.length == 0) continue;
    if (r.start + r.length < r.start || r.start + r.length > total_ ||
        !Insert(runs_, r.start, r.length, nullptr)) {
      spdlog::error("allocator: cancelling blocks [{}, +{}) that are already free; ignored",
                    r.start, r.length);
      continue;
    }
    free_ += r.length;
  }
}

void Allocator::Free(BlockRun run, MetaStore::Batch* batch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (run.length == 0) return;
  if (run.start + run.length < run.start || run.start + run.length > total_) {
    spdlog::error("allocator: freeing blocks [{}, +{}) outside the data file ({} blocks); ignored",
                  run.start, run.length, total_);
    return;
  }
  // Check both maps before changing either, so a double free changes nothing.
  auto overlaps = [&](const RunMap& m) {
    auto next = m.lower_bound(run.start);
    if (next != m.end() && next->first < run.start + run.length) return true;
    if (next == m.begin()) return false;
    auto prev = std::prev(next);
    return prev->first + prev->second > run.start;
  };
  if (overlaps(disk_runs_) || overlaps(runs_)) {
    spdlog::error("allocator: freeing blocks [{}, +{}) that are already free (double free); ignored",
                  run.start, run.length);
    return;
  }
  Insert(disk_runs_, run.start, run.length, batch);
  // Allocatable only once the commit that frees it is durable.
  pending_frees_.push_back(PendingFree{batch ? batch->sequence() : 0, run});
  pending_ += run.length;
  ReleaseDurableLocked();
}

std::vector<BlockRun> Allocator::TakeForDiscard(uint64_t* cursor, uint64_t end, uint64_t min_length,
                                                uint64_t max_blocks) {
  std::vector<BlockRun> out;
  std::lock_guard<std::mutex> lock(mu_);
  end = std::min(end, total_);
  min_length = std::max<uint64_t>(min_length, 1);
  // Reserved blocks must stay allocatable for the writeback that consumes them.
  uint64_t budget = std::min(max_blocks, free_ > reserved_ ? free_ - reserved_ : 0);
  uint64_t cur = *cursor;
  while (cur < end && budget > 0) {
    auto it = Containing(runs_, cur);
    if (it == runs_.end()) it = runs_.lower_bound(cur);
    if (it == runs_.end() || it->first >= end) {
      cur = end;
      break;
    }
    const uint64_t start = std::max(cur, it->first);
    const uint64_t stop = std::min(End(it), end);
    if (stop - start < min_length) {
      cur = stop;
      continue;
    }
    const uint64_t len = std::min(stop - start, budget);
    CarveFrom(runs_, it, start, len, nullptr);
    out.push_back(BlockRun{start, len});
    free_ -= len;
    discarding_ += len;
    budget -= len;
    cur = start + len;
  }
  *cursor = cur;
  return out;
}

void Allocator::ReturnDiscarded(const std::vector<BlockRun>& runs) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const BlockRun& r : runs) {
      if (r.length == 0) continue;
      discarding_ -= std::min(discarding_, r.length);
      if (!Insert(runs_, r.start, r.length, nullptr)) {
        spdlog::error("allocator: discarded blocks [{}, +{}) came back already free; ignored", r.start, r.length);
        continue;
      }
      free_ += r.length;
    }
  }
  discards_returned_.notify_all();
}

uint64_t Allocator::free_blocks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return free_ + pending_ + discarding_;
}

uint64_t Allocator::pending_free_blocks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_;
}

uint64_t Allocator::reserved_blocks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reserved_;
}

uint64_t Allocator::available_blocks() const {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t free = free_ + pending_ + discarding_;
  return free > reserved_ ? free - reserved_ : 0;
}

std::vector<BlockRun> Allocator::FreeRuns() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ToRuns(runs_);
}

std::vector<BlockRun> Allocator::DiskFreeRuns() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ToRuns(disk_runs_);
}

}  // namespace reclaimfs::storage

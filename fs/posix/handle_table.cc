// The handle table.
#include "fs/posix/handle_table.h"

#include <fcntl.h>

namespace reclaimfs::fs {

bool Handle::readable() const {
  const int acc = flags & O_ACCMODE;
  return acc == O_RDONLY || acc == O_RDWR;
}

bool Handle::writable() const {
  const int acc = flags & O_ACCMODE;
  return acc == O_WRONLY || acc == O_RDWR;
}

bool Handle::append() const { return (flags & O_APPEND) != 0; }

uint64_t HandleTable::Add(const Handle& h) {
  std::lock_guard l(mu_);
  const uint64_t fh = next_++;
  handles_.emplace(fh, h);
  return fh;
}

std::optional<Handle> HandleTable::Get(uint64_t fh) const {
  std::lock_guard l(mu_);
  auto it = handles_.find(fh);
  if (it == handles_.end()) return std::nullopt;
  return it->second;
}

std::optional<Handle> HandleTable::Remove(uint64_t fh) {
  std::lock_guard l(mu_);
  auto it = handles_.find(fh);
  if (it == handles_.end()) return std::nullopt;
  Handle h = it->second;
  handles_.erase(it);
  return h;
}

void HandleTable::SetScanEnd(uint64_t fh, uint64_t cookie) {
  std::lock_guard l(mu_);
  auto it = handles_.find(fh);
  if (it != handles_.end()) it->second.scan_end = cookie;
}

int HandleTable::TakeWritebackError(uint64_t fh, const ErrorSequence& errors) {
  std::lock_guard l(mu_);
  auto it = handles_.find(fh);
  if (it == handles_.end()) return 0;
  return errors.Check(&it->second.wb_err_seen);
}

int HandleTable::PeekWritebackError(uint64_t fh, const ErrorSequence& errors) const {
  std::lock_guard l(mu_);
  auto it = handles_.find(fh);
  if (it == handles_.end()) return 0;
  uint64_t seen = it->second.wb_err_seen;
  return errors.Check(&seen);
}

size_t HandleTable::size() const {
  std::lock_guard l(mu_);
  return handles_.size();
}

}  // namespace reclaimfs::fs

// The part of FileDataOptions that may change while mounted (dirty ratios
// and expiry, the writeback period, readahead). Each reader keeps one and
// loads its fields without locks; FileData::SetTunables stores new values.
#pragma once

#include <atomic>
#include <cstdint>

#include "fs/cache/file_data.h"

namespace reclaimfs::fs {

struct DataTunables {
  explicit DataTunables(const FileDataOptions& o) { Store(o); }

  void Store(const FileDataOptions& o) {
    dirty_background_ratio.store(o.dirty_background_ratio, std::memory_order_relaxed);
    dirty_ratio.store(o.dirty_ratio, std::memory_order_relaxed);
    dirty_expire_ms.store(o.dirty_expire_ms, std::memory_order_relaxed);
    writeback_interval_ms.store(o.writeback_interval_ms, std::memory_order_relaxed);
    readahead_bytes.store(o.readahead_bytes, std::memory_order_relaxed);
  }

  std::atomic<double> dirty_background_ratio{0};
  std::atomic<double> dirty_ratio{0};
  std::atomic<uint32_t> dirty_expire_ms{0};
  std::atomic<uint32_t> writeback_interval_ms{0};
  std::atomic<uint64_t> readahead_bytes{0};
};

}  // namespace reclaimfs::fs

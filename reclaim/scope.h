// Thread-local reclaim scopes: the userspace counterpart of memalloc_nofs_save().
// A scope adds flags for the lifetime of an RAII object; nested scopes only add.
#pragma once

#include <cstdint>

namespace reclaimfs::reclaim {

enum ScopeFlag : uint32_t {
  kScopeNone = 0,
  kScopeInReclaim = 1u << 0,     // inside reclaim: never recurse into reclaim
  kScopeNoFs = 1u << 1,          // skip shrinkers that take filesystem locks
  kScopeNoIo = 1u << 2,          // never wait for IO
  kScopeMayUseReserve = 1u << 3, // may charge below the min watermark
};

// Flags in force on the calling thread.
uint32_t CurrentScope();

class ScopedReclaimFlags {
 public:
  explicit ScopedReclaimFlags(uint32_t flags);
  ~ScopedReclaimFlags();
  ScopedReclaimFlags(const ScopedReclaimFlags&) = delete;
  ScopedReclaimFlags& operator=(const ScopedReclaimFlags&) = delete;

 private:
  uint32_t saved_;
};

}  // namespace reclaimfs::reclaim

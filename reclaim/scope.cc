// Thread-local reclaim scope flags and their RAII guard.
#include "reclaim/scope.h"

namespace reclaimfs::reclaim {

namespace {
// Per thread, like current->flags in Linux: a scope describes what the
// calling thread is doing, so it never leaks to other threads.
thread_local uint32_t tls_scope = kScopeNone;
}  // namespace

uint32_t CurrentScope() { return tls_scope; }

ScopedReclaimFlags::ScopedReclaimFlags(uint32_t flags) : saved_(tls_scope) {
  tls_scope = saved_ | flags;
}

ScopedReclaimFlags::~ScopedReclaimFlags() { tls_scope = saved_; }

}  // namespace reclaimfs::reclaim

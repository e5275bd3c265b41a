// Errors are absl::Status values inside reclaimfs; the POSIX errno travels as
// a payload so the FUSE boundary can answer the exact errno. Stateless; any
// thread; never blocks.
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace reclaimfs::fs {

// A status carrying `err` (e.g. ENOTEMPTY) with a canonical code close to it.
absl::Status ErrnoStatus(int err, std::string_view message = {});
// The errno to answer for `s`: the payload if present, otherwise derived from
// the canonical code (NotFound->ENOENT, ResourceExhausted->ENOSPC, ...). 0 for OK.
int ToErrno(const absl::Status& s);

}  // namespace reclaimfs::fs

// Early-return helpers for absl::Status and absl::StatusOr. Macros only: no
// state, no threads, nothing blocks.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RFS_RETURN_IF_ERROR(expr)           \
  do {                                      \
    const absl::Status rfs_status_ = (expr); \
    if (!rfs_status_.ok()) return rfs_status_; \
  } while (0)

#define RFS_CONCAT_INNER_(a, b) a##b
#define RFS_CONCAT_(a, b) RFS_CONCAT_INNER_(a, b)
#define RFS_ASSIGN_OR_RETURN(lhs, expr) \
  RFS_ASSIGN_OR_RETURN_IMPL_(RFS_CONCAT_(rfs_statusor_, __LINE__), lhs, expr)
#define RFS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(*tmp)

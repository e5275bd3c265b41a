// Errno payloads on absl::Status, and the canonical-code fallback.
#include "fs/cache/errno_status.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>

#include "absl/strings/cord.h"

namespace reclaimfs::fs {
namespace {

constexpr char kErrnoPayload[] = "reclaimfs/errno";

absl::StatusCode CodeFor(int err) {
  switch (err) {
    case ENOENT: return absl::StatusCode::kNotFound;
    case EEXIST: return absl::StatusCode::kAlreadyExists;
    case EACCES:
    case EPERM: return absl::StatusCode::kPermissionDenied;
    case ENOSPC:
    case ENOMEM:
    case EDQUOT: return absl::StatusCode::kResourceExhausted;
    case EINVAL:
    case ENAMETOOLONG: return absl::StatusCode::kInvalidArgument;
    case EAGAIN: return absl::StatusCode::kUnavailable;
    case EOPNOTSUPP: return absl::StatusCode::kUnimplemented;
    case EIO: return absl::StatusCode::kDataLoss;
    case ERANGE:
    case EFBIG:
    case ENXIO: return absl::StatusCode::kOutOfRange;
    default: return absl::StatusCode::kFailedPrecondition;
  }
}

}  // namespace

absl::Status ErrnoStatus(int err, std::string_view message) {
  std::string msg(message);
  if (msg.empty()) msg = std::strerror(err);
  absl::Status s(CodeFor(err), msg);
  s.SetPayload(kErrnoPayload, absl::Cord(std::to_string(err)));
  return s;
}

int ToErrno(const absl::Status& s) {
  if (s.ok()) return 0;
  if (auto p = s.GetPayload(kErrnoPayload)) {
    std::string text(*p);
    int err = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), err);
    if (ec == std::errc() && err > 0) return err;
  }
  switch (s.code()) {
    case absl::StatusCode::kNotFound: return ENOENT;
    case absl::StatusCode::kAlreadyExists: return EEXIST;
    case absl::StatusCode::kPermissionDenied: return EACCES;
    case absl::StatusCode::kResourceExhausted: return ENOSPC;
    case absl::StatusCode::kInvalidArgument: return EINVAL;
    case absl::StatusCode::kUnavailable: return EAGAIN;
    case absl::StatusCode::kUnimplemented: return EOPNOTSUPP;
    case absl::StatusCode::kOutOfRange: return ERANGE;
    case absl::StatusCode::kDeadlineExceeded: return ETIMEDOUT;
    case absl::StatusCode::kCancelled: return EINTR;
    default: return EIO;
  }
}

}  // namespace reclaimfs::fs

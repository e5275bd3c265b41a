// Byte-level encoding helpers shared by the record codecs: a writer that
// appends fixed-width big-endian integers and length-prefixed strings, and a
// bounds-checked reader that never reads past its input. Also the codecs of
// records whose struct lives in format.h but whose value layout is internal
// (extent values, free-space values).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/format.h"

namespace reclaimfs::storage {

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void U32(uint32_t v);
  void U64(uint64_t v);
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void Bytes(std::string_view b) { out_->append(b.data(), b.size()); }
  // u32 length, then the bytes.
  void String(std::string_view s);

 private:
  std::string* out_;
};

// Every getter returns false (and leaves the reader failed) instead of
// reading past the end, so a decoder checks once at the end.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool U8(uint8_t* v);
  bool U32(uint32_t* v);
  bool U64(uint64_t* v);
  bool I64(int64_t* v);
  bool Bytes(size_t n, std::string_view* v);
  bool String(std::string_view* v);
  size_t remaining() const { return in_.size() - pos_; }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

// Value of an extents-CF record (the key carries ino and file_block).
std::string EncodeExtentValue(const Extent& e);
absl::StatusOr<Extent> DecodeExtentValue(uint64_t file_block, std::string_view bytes);

// This abseil may have its own string_view type; StrCat needs it.
inline absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Smallest key greater than every key that starts with `prefix` (empty if
// none exists, i.e. the prefix is all 0xff), for iterate_upper_bound.
std::string PrefixSuccessor(std::string_view prefix);

}  // namespace reclaimfs::storage

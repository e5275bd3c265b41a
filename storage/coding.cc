// Byte-level encoding helpers; see coding.h.
#include "storage/coding.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace reclaimfs::storage {

void ByteWriter::U32(uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) U8(static_cast<uint8_t>(v >> shift));
}

void ByteWriter::U64(uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) U8(static_cast<uint8_t>(v >> shift));
}

void ByteWriter::String(std::string_view s) {
  U32(static_cast<uint32_t>(s.size()));
  Bytes(s);
}

bool ByteReader::U8(uint8_t* v) {
  if (remaining() < 1) return false;
  *v = static_cast<uint8_t>(in_[pos_++]);
  return true;
}

bool ByteReader::U32(uint32_t* v) {
  if (remaining() < 4) return false;
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) r = (r << 8) | static_cast<uint8_t>(in_[pos_ + i]);
  pos_ += 4;
  *v = r;
  return true;
}

bool ByteReader::U64(uint64_t* v) {
  if (remaining() < 8) return false;
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i) r = (r << 8) | static_cast<uint8_t>(in_[pos_ + i]);
  pos_ += 8;
  *v = r;
  return true;
}

bool ByteReader::I64(int64_t* v) {
  uint64_t u;
  if (!U64(&u)) return false;
  *v = static_cast<int64_t>(u);
  return true;
}

bool ByteReader::Bytes(size_t n, std::string_view* v) {
  if (remaining() < n) return false;
  *v = in_.substr(pos_, n);
  pos_ += n;
  return true;
}

bool ByteReader::String(std::string_view* v) {
  uint32_t n;
  // Check the length against what is left before trusting it.
  if (!U32(&n)) return false;
  return Bytes(n, v);
}

namespace {
constexpr uint8_t kExtentVersion = 1;
constexpr uint8_t kExtentUnwritten = 1;
}  // namespace

std::string EncodeExtentValue(const Extent& e) {
  std::string out;
  ByteWriter w(&out);
  w.U8(kExtentVersion);
  w.U64(e.disk_block);
  w.U64(e.length);
  w.U8(e.unwritten ? kExtentUnwritten : 0);
  return out;
}

absl::StatusOr<Extent> DecodeExtentValue(uint64_t file_block, std::string_view bytes) {
  ByteReader r(bytes);
  uint8_t version = 0, flags = 0;
  Extent e;
  e.file_block = file_block;
  if (!r.U8(&version)) return absl::DataLossError("extent record is empty");
  if (version != kExtentVersion) {
    return absl::DataLossError(absl::StrFormat("extent record has unknown version %d", version));
  }
  if (!r.U64(&e.disk_block) || !r.U64(&e.length) || !r.U8(&flags) || !r.done()) {
    return absl::DataLossError(absl::StrFormat("extent record is truncated or malformed (%d bytes)",
                                               bytes.size()));
  }
  if ((flags & ~kExtentUnwritten) != 0) {
    return absl::DataLossError(absl::StrFormat("extent record has unknown flags 0x%x", flags));
  }
  if (e.length == 0 || e.disk_block + e.length < e.disk_block ||
      e.file_block + e.length < e.file_block) {
    return absl::DataLossError(absl::StrFormat("extent record has invalid range (disk %d, length %d)",
                                               e.disk_block, e.length));
  }
  e.unwritten = (flags & kExtentUnwritten) != 0;
  return e;
}

std::string PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(s.back());
    if (c != 0xff) {
      ++c;
      return s;
    }
    s.pop_back();
  }
  return s;
}

}  // namespace reclaimfs::storage

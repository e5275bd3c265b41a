// Encodings of the superblock, the records and the keys; see format.h.
// Records start with a one-byte layout version so a later build can tell old
// records from new ones; decoders check every length and reject trailing
// bytes, so a garbage value becomes an error instead of a bad read.
#include "storage/format.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "storage/coding.h"

namespace reclaimfs::storage {

namespace {

// 1: no flags field; 2: flags appended. Both decode.
constexpr uint8_t kInodeVersionNoFlags = 1;
constexpr uint8_t kInodeVersion = 2;
constexpr uint8_t kDentryVersion = 1;
constexpr uint32_t kMinBlockSize = 512;
constexpr uint32_t kMaxBlockSize = 1u << 20;
constexpr size_t kSuperblockBytes = 8 + 4 + 4 + 8 + 16 + 8;
constexpr size_t kMaxSymlink = 4096;

bool IsPowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

void PutTime(ByteWriter& w, const Timespec& t) {
  w.I64(t.sec);
  w.U32(t.nsec);
}

bool GetTime(ByteReader& r, Timespec* t) {
  return r.I64(&t->sec) && r.U32(&t->nsec) && t->nsec < 1'000'000'000u;
}

std::string Prefixed(uint64_t id, std::string_view suffix) {
  std::string k = EncodeU64(id);
  k.append(suffix.data(), suffix.size());
  return k;
}

}  // namespace

std::string Superblock::Encode() const {
  std::string out;
  ByteWriter w(&out);
  w.U64(magic);
  w.U32(version);
  w.U32(block_size);
  w.U64(size_bytes);
  w.Bytes(std::string_view(reinterpret_cast<const char*>(uuid.data()), uuid.size()));
  w.I64(created_sec);
  return out;
}

absl::StatusOr<Superblock> Superblock::Decode(std::string_view bytes) {
  ByteReader r(bytes);
  Superblock sb;
  if (!r.U64(&sb.magic) || sb.magic != kMagic) {
    return absl::InvalidArgumentError("bad magic: not a reclaimfs store");
  }
  if (!r.U32(&sb.version)) return absl::DataLossError("superblock is truncated");
  if (sb.version != kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "unsupported format version %d (this build reads %d)", sb.version, kFormatVersion));
  }
  std::string_view uuid;
  if (bytes.size() != kSuperblockBytes || !r.U32(&sb.block_size) || !r.U64(&sb.size_bytes) ||
      !r.Bytes(sb.uuid.size(), &uuid) || !r.I64(&sb.created_sec)) {
    return absl::DataLossError(absl::StrFormat("superblock has %d bytes, expected %d",
                                               bytes.size(), kSuperblockBytes));
  }
  std::copy(uuid.begin(), uuid.end(), sb.uuid.begin());
  if (!IsPowerOfTwo(sb.block_size) || sb.block_size < kMinBlockSize ||
      sb.block_size > kMaxBlockSize) {
    return absl::DataLossError(absl::StrFormat("superblock has invalid block size %d", sb.block_size));
  }
  if (sb.size_bytes % sb.block_size != 0) {
    return absl::DataLossError(absl::StrFormat(
        "superblock size %d is not a multiple of the block size %d", sb.size_bytes, sb.block_size));
  }
  return sb;
}

std::string InodeRecord::Encode() const {
  std::string out;
  ByteWriter w(&out);
  w.U8(kInodeVersion);
  w.U32(mode);
  w.U32(uid);
  w.U32(gid);
  w.U32(nlink);
  w.U64(size);
  w.U64(rdev);
  w.U64(generation);
  PutTime(w, atime);
  PutTime(w, mtime);
  PutTime(w, ctime);
  PutTime(w, btime);
  w.U64(next_dir_cookie);
  w.U64(parent);
  w.String(symlink);
  w.U32(flags);
  return out;
}

absl::StatusOr<InodeRecord> InodeRecord::Decode(uint64_t ino, std::string_view bytes) {
  ByteReader r(bytes);
  InodeRecord rec;
  rec.ino = ino;
  uint8_t version = 0;
  if (!r.U8(&version)) return absl::DataLossError(absl::StrFormat("inode %d: empty record", ino));
  if (version != kInodeVersion && version != kInodeVersionNoFlags) {
    return absl::DataLossError(
        absl::StrFormat("inode %d: unknown record version %d", ino, version));
  }
  std::string_view target;
  bool ok = r.U32(&rec.mode) && r.U32(&rec.uid) && r.U32(&rec.gid) && r.U32(&rec.nlink) &&
            r.U64(&rec.size) && r.U64(&rec.rdev) && r.U64(&rec.generation) &&
            GetTime(r, &rec.atime) && GetTime(r, &rec.mtime) && GetTime(r, &rec.ctime) &&
            GetTime(r, &rec.btime) && r.U64(&rec.next_dir_cookie) && r.U64(&rec.parent) &&
            r.String(&target) && (version == kInodeVersionNoFlags || r.U32(&rec.flags)) && r.done();
  if (!ok) {
    return absl::DataLossError(
        absl::StrFormat("inode %d: truncated or malformed record (%d bytes)", ino, bytes.size()));
  }
  if (target.size() > kMaxSymlink) {
    return absl::DataLossError(absl::StrFormat("inode %d: symlink target too long", ino));
  }
  rec.symlink.assign(target.data(), target.size());
  return rec;
}

std::string DirEntry::Encode() const {
  std::string out;
  ByteWriter w(&out);
  w.U8(kDentryVersion);
  w.U64(ino);
  w.U32(type);
  w.U64(cookie);
  return out;
}

absl::StatusOr<DirEntry> DirEntry::Decode(std::string_view bytes) {
  ByteReader r(bytes);
  DirEntry e;
  uint8_t version = 0;
  if (!r.U8(&version)) return absl::DataLossError("directory entry: empty record");
  if (version != kDentryVersion) {
    return absl::DataLossError(
        absl::StrFormat("directory entry: unknown record version %d", version));
  }
  if (!r.U64(&e.ino) || !r.U32(&e.type) || !r.U64(&e.cookie) || !r.done()) {
    return absl::DataLossError(absl::StrFormat(
        "directory entry: truncated or malformed record (%d bytes)", bytes.size()));
  }
  if ((e.type & ~static_cast<uint32_t>(S_IFMT)) != 0) {
    return absl::DataLossError(absl::StrFormat("directory entry: invalid type 0%o", e.type));
  }
  return e;
}

std::string EncodeU64(uint64_t v) {
  std::string out;
  ByteWriter(&out).U64(v);
  return out;
}

uint64_t DecodeU64(std::string_view b) {
  // Callers check the length; a short input decodes what is there rather
  // than reading past it.
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < b.size(); ++i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

std::string InodeKey(uint64_t ino) { return EncodeU64(ino); }
std::string DentryKey(uint64_t parent, std::string_view name) { return Prefixed(parent, name); }
std::string DirCookieKey(uint64_t parent, uint64_t cookie) {
  return Prefixed(parent, EncodeU64(cookie));
}
std::string ExtentKey(uint64_t ino, uint64_t file_block) {
  return Prefixed(ino, EncodeU64(file_block));
}
std::string XattrKey(uint64_t ino, std::string_view name) { return Prefixed(ino, name); }
std::string FreeSpaceKey(uint64_t start_block) { return EncodeU64(start_block); }
std::string OrphanKey(uint64_t ino) { return EncodeU64(ino); }

}  // namespace reclaimfs::storage

// On-disk format of a store: the superblock and the records kept in RocksDB.
// A store is a directory holding `meta/` (RocksDB) and `data` (the block file).
// All integers in keys are big-endian so RocksDB's byte order is numeric order.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace reclaimfs::storage {

inline constexpr uint64_t kMagic = 0x5245434C41494D46ull;  // "RECLAIMF"
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kDefaultBlockSize = 4096;
inline constexpr uint64_t kRootIno = 1;
inline constexpr const char* kMetaDirName = "meta";
inline constexpr const char* kDataFileName = "data";

struct Superblock {
  uint64_t magic = kMagic;
  uint32_t version = kFormatVersion;
  uint32_t block_size = kDefaultBlockSize;
  uint64_t size_bytes = 0;  // data file size; a multiple of block_size
  std::array<uint8_t, 16> uuid{};
  int64_t created_sec = 0;

  uint64_t total_blocks() const { return size_bytes / block_size; }
  std::string Encode() const;
  // Checks magic and version; a clear error names what is wrong.
  static absl::StatusOr<Superblock> Decode(std::string_view bytes);
};

struct Timespec {
  int64_t sec = 0;
  uint32_t nsec = 0;
  bool operator==(const Timespec&) const = default;
};

struct InodeRecord {
  uint64_t ino = 0;
  uint32_t mode = 0;  // type and permission bits, as st_mode
  uint32_t uid = 0, gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  uint64_t rdev = 0;
  uint64_t generation = 0;
  Timespec atime, mtime, ctime, btime;
  uint64_t next_dir_cookie = 3;  // directories: next readdir cookie (1, 2 are . and ..)
  uint64_t parent = 0;           // directories: parent ino (for ".." and cycle checks)
  std::string symlink;           // symlinks: target
  // Inode flags as chattr(1) sets them: the FS_*_FL bits of <linux/fs.h>
  // (immutable, append-only, ...). Record version 2; version 1 decodes as 0.
  uint32_t flags = 0;

  std::string Encode() const;
  static absl::StatusOr<InodeRecord> Decode(uint64_t ino, std::string_view bytes);
  bool operator==(const InodeRecord&) const = default;
};

struct DirEntry {
  uint64_t ino = 0;
  uint32_t type = 0;    // S_IFMT bits of the target
  uint64_t cookie = 0;  // stable readdir offset, unique within the directory
  std::string Encode() const;
  static absl::StatusOr<DirEntry> Decode(std::string_view bytes);
  bool operator==(const DirEntry&) const = default;
};

// A run of blocks of a file: file blocks [file_block, file_block+length) live
// at disk blocks [disk_block, disk_block+length) of the data file.
struct Extent {
  uint64_t file_block = 0;
  uint64_t disk_block = 0;
  uint64_t length = 0;
  // Allocated by fallocate but never written: reads as zeros.
  bool unwritten = false;
  uint64_t file_end() const { return file_block + length; }
  bool operator==(const Extent&) const = default;
};

// Key encodings (exposed for fsck and tests).
std::string EncodeU64(uint64_t v);  // 8 bytes big-endian
uint64_t DecodeU64(std::string_view b);
std::string InodeKey(uint64_t ino);
std::string DentryKey(uint64_t parent, std::string_view name);
std::string DirCookieKey(uint64_t parent, uint64_t cookie);
std::string ExtentKey(uint64_t ino, uint64_t file_block);
std::string XattrKey(uint64_t ino, std::string_view name);
std::string FreeSpaceKey(uint64_t start_block);
std::string OrphanKey(uint64_t ino);

}  // namespace reclaimfs::storage

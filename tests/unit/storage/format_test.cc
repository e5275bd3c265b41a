// Round trips of the on-disk records and rejection of damaged ones.
#include "storage/format.h"

#include <sys/stat.h>

#include <random>

#include "gtest/gtest.h"
#include "storage/coding.h"

namespace reclaimfs::storage {
namespace {

InodeRecord SampleInode() {
  InodeRecord r;
  r.ino = 42;
  r.mode = S_IFLNK | 0777;
  r.uid = 1000;
  r.gid = 100;
  r.nlink = 3;
  r.size = 1ull << 40;
  r.rdev = 7;
  r.generation = 9;
  r.atime = {1, 2};
  r.mtime = {-5, 999'999'999};
  r.ctime = {1700000000, 0};
  r.btime = {3, 4};
  r.next_dir_cookie = 77;
  r.parent = 1;
  r.symlink = std::string("target\0with nul", 15);
  r.flags = 0x30;  // immutable | append-only
  return r;
}

TEST(FormatTest, KeysAreBigEndianAndOrdered) {
  EXPECT_EQ(EncodeU64(0x0102030405060708ull), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(DecodeU64(EncodeU64(0xfedcba9876543210ull)), 0xfedcba9876543210ull);
  EXPECT_LT(InodeKey(255), InodeKey(256));
  EXPECT_LT(ExtentKey(1, 0xffff), ExtentKey(1, 0x10000));
  EXPECT_LT(ExtentKey(1, UINT64_MAX), ExtentKey(2, 0));
  EXPECT_LT(DirCookieKey(5, 3), DirCookieKey(5, 300));
  EXPECT_EQ(DentryKey(1, "abc"), EncodeU64(1) + "abc");
  EXPECT_EQ(XattrKey(2, "user.x"), EncodeU64(2) + "user.x");
  EXPECT_EQ(FreeSpaceKey(9), EncodeU64(9));
  EXPECT_EQ(OrphanKey(9), EncodeU64(9));
}

TEST(FormatTest, PrefixSuccessor) {
  EXPECT_EQ(PrefixSuccessor(std::string("\x00\x01", 2)), std::string("\x00\x02", 2));
  EXPECT_EQ(PrefixSuccessor(std::string("\x01\xff", 2)), std::string("\x02", 1));
  EXPECT_EQ(PrefixSuccessor(std::string("\xff\xff", 2)), "");
}

TEST(FormatTest, SuperblockRoundTrip) {
  Superblock sb;
  sb.size_bytes = 1ull << 30;
  sb.block_size = 4096;
  for (int i = 0; i < 16; ++i) sb.uuid[i] = static_cast<uint8_t>(i * 17);
  sb.created_sec = 1700000000;
  auto got = Superblock::Decode(sb.Encode());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->magic, kMagic);
  EXPECT_EQ(got->version, kFormatVersion);
  EXPECT_EQ(got->size_bytes, sb.size_bytes);
  EXPECT_EQ(got->uuid, sb.uuid);
  EXPECT_EQ(got->created_sec, sb.created_sec);
  EXPECT_EQ(got->total_blocks(), (1ull << 30) / 4096);
}

TEST(FormatTest, SuperblockBadMagicAndVersion) {
  Superblock sb;
  sb.size_bytes = 1 << 20;
  std::string bytes = sb.Encode();

  std::string bad_magic = bytes;
  bad_magic[0] ^= 0x55;
  auto r = Superblock::Decode(bad_magic);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "bad magic: not a reclaimfs store");
  EXPECT_FALSE(Superblock::Decode("").ok());
  EXPECT_EQ(Superblock::Decode("abc").status().message(), "bad magic: not a reclaimfs store");

  Superblock v2 = sb;
  v2.version = 2;
  r = Superblock::Decode(v2.Encode());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "unsupported format version 2 (this build reads 1)");
}

TEST(FormatTest, SuperblockRejectsTruncatedAndInvalid) {
  Superblock sb;
  sb.size_bytes = 1 << 20;
  const std::string bytes = sb.Encode();
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(Superblock::Decode(bytes.substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(Superblock::Decode(bytes + "x").ok());
  Superblock odd = sb;
  odd.block_size = 3000;
  EXPECT_FALSE(Superblock::Decode(odd.Encode()).ok());
  Superblock unaligned = sb;
  unaligned.size_bytes = 4097;
  EXPECT_FALSE(Superblock::Decode(unaligned.Encode()).ok());
}

TEST(FormatTest, InodeRoundTrip) {
  InodeRecord r = SampleInode();
  auto got = InodeRecord::Decode(42, r.Encode());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, r);
  // The key, not the value, carries the inode number.
  auto other = InodeRecord::Decode(43, r.Encode());
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->ino, 43u);
}

// Version 1 records, written before inode flags existed, still decode:
// the same layout without the trailing flags, which read as 0.
TEST(FormatTest, InodeVersion1DecodesWithoutFlags) {
  const InodeRecord r = SampleInode();
  std::string v2 = r.Encode();
  ASSERT_EQ(v2[0], 2);
  std::string v1 = v2.substr(0, v2.size() - 4);
  v1[0] = 1;
  auto got = InodeRecord::Decode(42, v1);
  ASSERT_TRUE(got.ok()) << got.status();
  InodeRecord expected = r;
  expected.flags = 0;
  EXPECT_EQ(*got, expected);
  // A version 1 record with trailing bytes (flags it cannot have) is rejected.
  v2[0] = 1;
  EXPECT_FALSE(InodeRecord::Decode(42, v2).ok());
  // Re-encoding writes version 2, flags included.
  auto again = InodeRecord::Decode(42, got->Encode());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->flags, 0u);
  EXPECT_EQ(got->Encode()[0], 2);
}

TEST(FormatTest, InodeRejectsEveryTruncation) {
  const std::string bytes = SampleInode().Encode();
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = InodeRecord::Decode(42, bytes.substr(0, n));
    EXPECT_FALSE(r.ok()) << "accepted " << n << " of " << bytes.size() << " bytes";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
    }
  }
  EXPECT_FALSE(InodeRecord::Decode(42, bytes + "junk").ok());
  std::string bad_version = bytes;
  bad_version[0] = 9;
  EXPECT_FALSE(InodeRecord::Decode(42, bad_version).ok());
}

TEST(FormatTest, InodeRejectsHugeSymlinkLength) {
  InodeRecord r;
  std::string bytes = r.Encode();
  // The symlink length (empty target) comes just before the four bytes of
  // flags; claim 4 GiB.
  for (size_t i = bytes.size() - 8; i < bytes.size() - 4; ++i) bytes[i] = '\xff';
  EXPECT_FALSE(InodeRecord::Decode(1, bytes).ok());
}

TEST(FormatTest, DirEntryRoundTripAndRejection) {
  DirEntry e{.ino = 99, .type = S_IFREG, .cookie = 12345};
  auto got = DirEntry::Decode(e.Encode());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, e);
  const std::string bytes = e.Encode();
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(DirEntry::Decode(bytes.substr(0, n)).ok());
  EXPECT_FALSE(DirEntry::Decode(bytes + "x").ok());
  DirEntry bad_type = e;
  bad_type.type = 0644;  // permission bits are not a type
  EXPECT_FALSE(DirEntry::Decode(bad_type.Encode()).ok());
}

TEST(FormatTest, ExtentValueRoundTripAndRejection) {
  Extent e{.file_block = 10, .disk_block = 500, .length = 8, .unwritten = true};
  auto got = DecodeExtentValue(10, EncodeExtentValue(e));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, e);
  const std::string bytes = EncodeExtentValue(e);
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(DecodeExtentValue(10, bytes.substr(0, n)).ok());
  Extent empty = e;
  empty.length = 0;
  EXPECT_FALSE(DecodeExtentValue(10, EncodeExtentValue(empty)).ok());
  Extent wraps = e;
  wraps.disk_block = UINT64_MAX - 2;
  EXPECT_FALSE(DecodeExtentValue(10, EncodeExtentValue(wraps)).ok());
}

TEST(FormatTest, RandomGarbageNeverCrashes) {
  std::mt19937_64 rng(1234);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string junk(rng() % 120, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    accepted += InodeRecord::Decode(1, junk).ok();
    accepted += DirEntry::Decode(junk).ok();
    accepted += Superblock::Decode(junk).ok();
    accepted += DecodeExtentValue(0, junk).ok();
  }
  // Random bytes almost never form a valid record (version byte, exact size).
  EXPECT_LT(accepted, 50);
}

}  // namespace
}  // namespace reclaimfs::storage

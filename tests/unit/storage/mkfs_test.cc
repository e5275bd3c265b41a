// MakeStore: what a new store contains and what mkfs refuses.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "storage/meta_store.h"
#include "temp_dir.h"

namespace reclaimfs::storage {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

absl::StatusOr<std::unique_ptr<MetaStore>> OpenMeta(const std::string& store) {
  MetaOptions o;
  o.lock_wait_ms = 0;
  return MetaStore::Open(store + "/" + kMetaDirName, o);
}

TEST(MakeStoreTest, CreatesSuperblockRootAndFreeSpace) {
  TempDir tmp;
  const std::string store = tmp.Sub("store");  // created by MakeStore
  MkfsOptions o;
  o.size_bytes = (3 << 20) + 100;  // rounded down to whole blocks
  o.root_uid = 1000;
  o.root_gid = 1001;
  o.root_mode = 0750;
  ASSERT_TRUE(MakeStore(store, o).ok());
  EXPECT_EQ(fs::file_size(store + "/" + kDataFileName), 3u << 20);

  auto meta = OpenMeta(store);
  ASSERT_TRUE(meta.ok()) << meta.status();
  auto sb = (*meta)->ReadSuperblock();
  ASSERT_TRUE(sb.ok());
  EXPECT_EQ(sb->size_bytes, 3u << 20);
  EXPECT_EQ(sb->block_size, kDefaultBlockSize);
  EXPECT_NE(sb->uuid, (std::array<uint8_t, 16>{}));
  EXPECT_GT(sb->created_sec, 1600000000);

  auto root = (*meta)->GetInode(kRootIno);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->mode, static_cast<uint32_t>(S_IFDIR | 0750));
  EXPECT_EQ(root->uid, 1000u);
  EXPECT_EQ(root->gid, 1001u);
  EXPECT_EQ(root->nlink, 2u);
  EXPECT_EQ(root->parent, kRootIno);
  EXPECT_GT(root->mtime.sec, 0);

  std::vector<std::pair<uint64_t, uint64_t>> runs;
  ASSERT_TRUE((*meta)->ForEachFreeExtent([&](uint64_t s, uint64_t l) {
    runs.emplace_back(s, l);
    return true;
  }).ok());
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0], std::make_pair(uint64_t{0}, sb->total_blocks()));
  EXPECT_EQ((*meta)->AllocateIno(), kRootIno + 1);
}

TEST(MakeStoreTest, RefusesExistingStoreWithoutForce) {
  TempDir tmp;
  ASSERT_TRUE(MakeStore(tmp.path(), MkfsOptions{.size_bytes = 2 << 20}).ok());
  std::array<uint8_t, 16> first_uuid;
  {
    auto meta = OpenMeta(tmp.path());
    ASSERT_TRUE(meta.ok());
    first_uuid = (*meta)->ReadSuperblock()->uuid;
  }

  absl::Status s = MakeStore(tmp.path(), MkfsOptions{.size_bytes = 4 << 20});
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_NE(s.message().find("--force"), std::string::npos);
  EXPECT_EQ(fs::file_size(tmp.Sub(kDataFileName)), 2u << 20) << "untouched";

  ASSERT_TRUE(MakeStore(tmp.path(), MkfsOptions{.size_bytes = 4 << 20, .force = true}).ok());
  EXPECT_EQ(fs::file_size(tmp.Sub(kDataFileName)), 4u << 20);
  auto meta = OpenMeta(tmp.path());
  ASSERT_TRUE(meta.ok());
  EXPECT_NE((*meta)->ReadSuperblock()->uuid, first_uuid);
}

TEST(MakeStoreTest, RefusesALoneDataFileToo) {
  TempDir tmp;
  std::ofstream(tmp.Sub(kDataFileName)) << "precious";
  EXPECT_TRUE(absl::IsAlreadyExists(MakeStore(tmp.path(), MkfsOptions{.size_bytes = 2 << 20})));
  EXPECT_EQ(fs::file_size(tmp.Sub(kDataFileName)), 8u);
}

TEST(MakeStoreTest, ForceRefusesAStoreInUse) {
  TempDir tmp;
  ASSERT_TRUE(MakeStore(tmp.path(), MkfsOptions{.size_bytes = 2 << 20}).ok());
  auto meta = OpenMeta(tmp.path());
  ASSERT_TRUE(meta.ok());
  absl::Status s = MakeStore(tmp.path(), MkfsOptions{.size_bytes = 2 << 20, .force = true});
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_TRUE((*meta)->GetInode(kRootIno).ok());
}

TEST(MakeStoreTest, RejectsInvalidSizes) {
  TempDir tmp;
  absl::Status s = MakeStore(tmp.path(), MkfsOptions{.size_bytes = 4096});
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("1 MiB"), std::string::npos) << s;
  EXPECT_TRUE(absl::IsInvalidArgument(MakeStore(tmp.path(), MkfsOptions{.size_bytes = 0})));
  EXPECT_TRUE(absl::IsInvalidArgument(
      MakeStore(tmp.path(), MkfsOptions{.size_bytes = 2 << 20, .block_size = 1000})));
  EXPECT_FALSE(fs::exists(tmp.Sub(kDataFileName)));
  EXPECT_FALSE(fs::exists(tmp.Sub(kMetaDirName)));
}

TEST(MakeStoreTest, ClearErrorWhenParentUnusable) {
  TempDir tmp;
  std::ofstream(tmp.Sub("file")) << "x";
  absl::Status s = MakeStore(tmp.Sub("file/store"), MkfsOptions{.size_bytes = 2 << 20});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot create store directory"), std::string::npos) << s;
}

}  // namespace
}  // namespace reclaimfs::storage

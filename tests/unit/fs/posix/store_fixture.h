// A fixture for tests of the POSIX layer driven directly: a fresh 64 MiB
// store in a temporary directory, opened with a 32 MiB budget, removed
// after the test.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "fs/posix/filesystem.h"
#include "gtest/gtest.h"
#include "storage/meta_store.h"

namespace reclaimfs::fs {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/reclaimfs_posix_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store_ = dir_ + "/store";
    storage::MkfsOptions mk;
    mk.size_bytes = 64ull << 20;
    ASSERT_TRUE(storage::MakeStore(store_, mk).ok());
    options_.store_dir = store_;
    options_.memory.budget_bytes = 32ull << 20;
    options_.meta.lock_wait_ms = 2000;
  }
  void TearDown() override {
    if (fs_) {
      EXPECT_TRUE(fs_->Shutdown().ok());
    }
    fs_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void Mount() {
    auto r = Filesystem::Open(options_);
    ASSERT_TRUE(r.ok()) << r.status();
    fs_ = std::move(*r);
  }
  void Unmount() {
    ASSERT_TRUE(fs_->Shutdown().ok());
    fs_.reset();
  }
  void Remount() {
    Unmount();
    Mount();
  }

  std::string dir_, store_;
  FilesystemOptions options_;
  std::unique_ptr<Filesystem> fs_;
};

}  // namespace reclaimfs::fs

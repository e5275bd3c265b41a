// LiveConfig: `set` validates like the config file and is all or nothing,
// refuses keys that need a remount, records origins; a reload re-reads the
// file, keeps remount-only keys, and a bad file changes nothing.
#include "fs/daemon/live_config.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace reclaimfs::fs {
namespace {

using ::testing::HasSubstr;

class LiveConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/reclaimfs-config-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/reclaimfs.toml";
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  void WriteFile(const std::string& text) {
    std::ofstream out(path_, std::ios::trunc);
    out << text;
  }
  std::string dir_, path_;
};

TEST_F(LiveConfigTest, OriginsOfDefaultFileOptionAndLive) {
  WriteFile("cache_budget = \"128M\"\ndirty_ratio = 0.3\n");
  LiveConfig live(path_, {{"readahead", "256K"}});
  ASSERT_TRUE(live.Load().ok());
  EXPECT_EQ(live.current().cache_budget, 128ull << 20);
  ASSERT_TRUE(live.Set({"dirty_ratio=0.4"}).ok());
  const std::string text = live.Text();
  EXPECT_THAT(text, HasSubstr("cache_budget = 128M  # file\n"));
  EXPECT_THAT(text, HasSubstr("readahead = 256K  # -o\n"));
  EXPECT_THAT(text, HasSubstr("dirty_ratio = 0.4  # live\n"));
  EXPECT_THAT(text, HasSubstr("meta_budget = 32M  # default\n"));
  const std::string threads = std::to_string(Config().request_threads);  // follows the cores
  EXPECT_THAT(text, HasSubstr("request_threads = " + threads + "  # default, needs a remount\n"));
}

TEST_F(LiveConfigTest, SetValidatesLikeTheFileAndIsAllOrNothing) {
  LiveConfig live(std::nullopt, {});
  ASSERT_TRUE(live.Load().ok());
  absl::Status s = live.Set({"cache_budget=64M", "watermark_low=2"});
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("config: watermark_low: must be in"));
  EXPECT_EQ(live.current().cache_budget, 256ull << 20);  // nothing applied

  s = live.Set({"dirty_ratio=0.05"});  // below dirty_background_ratio
  EXPECT_THAT(std::string(s.message()), HasSubstr("config: dirty_ratio: must be greater than"));
  s = live.Set({"no_such_key=1"});
  EXPECT_THAT(std::string(s.message()), HasSubstr("config: unknown key 'no_such_key'"));
  s = live.Set({"cache_budget"});
  EXPECT_THAT(std::string(s.message()), HasSubstr("expected key=value"));
  EXPECT_FALSE(live.Set({}).ok());
  s = live.Set({"cache_budget=12Q"});
  EXPECT_THAT(std::string(s.message()), HasSubstr("config: cache_budget:"));

  EXPECT_TRUE(live.Set({"cache_budget=64M", "log_level=debug", "watermark_high=0.2"}).ok());
  EXPECT_EQ(live.current().cache_budget, 64ull << 20);
  EXPECT_EQ(live.current().log_level, "debug");
}

TEST_F(LiveConfigTest, RemountKeysAreRefused) {
  LiveConfig live(std::nullopt, {});
  ASSERT_TRUE(live.Load().ok());
  for (const char* word : {"request_threads=4", "shrinker_mode=blocking", "kernel_cache=true",
                           "uring_queue_depth=8", "metrics_listen=:9100", "host_pressure=on"}) {
    absl::Status s = live.Set({word});
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << word;
    EXPECT_THAT(std::string(s.message()), HasSubstr("needs a remount")) << word;
  }
}

TEST_F(LiveConfigTest, ApplierSeesEveryChangeBeforeAndAfter) {
  LiveConfig live(std::nullopt, {});
  ASSERT_TRUE(live.Load().ok());
  std::vector<std::pair<uint64_t, uint64_t>> seen;
  live.SetApplier([&](const Config& before, const Config& after) {
    seen.emplace_back(before.cache_budget, after.cache_budget);
  });
  ASSERT_TRUE(live.Set({"cache_budget=32M"}).ok());
  EXPECT_FALSE(live.Set({"cache_budget=0"}).ok());  // refused: not applied
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].first, 256ull << 20);
  EXPECT_EQ(seen[0].second, 32ull << 20);
}

TEST_F(LiveConfigTest, ReloadAppliesTheFileKeepsRemountKeysAndReportsBadFiles) {
  WriteFile("cache_budget = \"128M\"\n");
  LiveConfig live(path_, {{"dirty_expire_ms", "1000"}});
  ASSERT_TRUE(live.Load().ok());
  ASSERT_TRUE(live.Set({"readahead=1M"}).ok());

  WriteFile("cache_budget = \"64M\"\ndirty_expire_ms = 5000\nrequest_threads = 4\n");
  std::vector<std::string> kept;
  ASSERT_TRUE(live.Reload(&kept).ok());
  EXPECT_EQ(live.current().cache_budget, 64ull << 20);
  EXPECT_EQ(live.current().dirty_expire_ms, 1000u);       // -o still wins
  EXPECT_EQ(live.current().readahead, 128ull << 10);      // the live value is replaced
  EXPECT_EQ(live.current().request_threads, Config().request_threads);  // needs a remount
  EXPECT_THAT(kept, ::testing::ElementsAre("request_threads"));
  EXPECT_THAT(live.Text(), HasSubstr("last reload: ok at "));
  EXPECT_THAT(live.Text(), HasSubstr("kept until a remount: request_threads"));
  EXPECT_THAT(live.Text(), HasSubstr("request_threads = " + std::to_string(Config().request_threads) +
                                     "  # default, needs a remount"));

  WriteFile("cache_budget = \"16M\"\nwatermark_low = \"x\"\n");
  absl::Status s = live.Reload();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(live.current().cache_budget, 64ull << 20);
  EXPECT_THAT(live.Text(), HasSubstr("nothing changed: config: watermark_low:"));

  WriteFile("cache_budget = [\n");
  EXPECT_FALSE(live.Reload().ok());
  EXPECT_THAT(live.Text(), HasSubstr("nothing changed: config: " + path_ + ":"));
  EXPECT_EQ(live.current().cache_budget, 64ull << 20);
}

}  // namespace
}  // namespace reclaimfs::fs

// Config parsing and validation: every key from TOML and from -o text, size
// suffixes, each bad value and unknown key naming the key, overrides beating
// the file, and the mapping onto FilesystemOptions. Also the daemon's
// command-line option sorting, which feeds the overrides.
#include "fs/daemon/config.h"

#include <sys/mount.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "fs/daemon/mount_options.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace reclaimfs::fs {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(const absl::Status& s) { return std::string(s.message()); }

TEST(ParseSizeTest, Suffixes) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("128K"), 128u << 10);
  EXPECT_EQ(*ParseSize("128k"), 128u << 10);
  EXPECT_EQ(*ParseSize("256M"), 256ull << 20);
  EXPECT_EQ(*ParseSize("1G"), 1ull << 30);
  EXPECT_EQ(*ParseSize("2T"), 2ull << 40);
  EXPECT_EQ(*ParseSize("64MB"), 64ull << 20);
  EXPECT_EQ(*ParseSize("64MiB"), 64ull << 20);
  EXPECT_EQ(*ParseSize(" 8M "), 8ull << 20);
  EXPECT_EQ(*ParseSize("0"), 0u);
}

TEST(ParseSizeTest, Rejects) {
  EXPECT_FALSE(ParseSize("").ok());
  EXPECT_FALSE(ParseSize("M").ok());
  EXPECT_FALSE(ParseSize("-1M").ok());
  EXPECT_FALSE(ParseSize("1.5G").ok());
  EXPECT_FALSE(ParseSize("12X").ok());
  EXPECT_FALSE(ParseSize("99999999999999999999").ok());
  EXPECT_FALSE(ParseSize("20000000T").ok());  // overflows 64 bits
}

TEST(ConfigTest, Defaults) {
  Config c;
  EXPECT_EQ(c.cache_budget, 256ull << 20);
  EXPECT_EQ(c.meta_budget, 32ull << 20);
  EXPECT_DOUBLE_EQ(c.watermark_min, 0.02);
  EXPECT_DOUBLE_EQ(c.watermark_low, 0.06);
  EXPECT_DOUBLE_EQ(c.watermark_high, 0.10);
  EXPECT_DOUBLE_EQ(c.dirty_background_ratio, 0.10);
  EXPECT_DOUBLE_EQ(c.dirty_ratio, 0.20);
  EXPECT_EQ(c.dirty_expire_ms, 3000u);
  EXPECT_EQ(c.writeback_interval_ms, 500u);
  EXPECT_EQ(c.flusher_threads, 2u);
  EXPECT_EQ(c.uring_queue_depth, 64u);
  EXPECT_EQ(c.readahead, 128u << 10);
  EXPECT_EQ(c.shrinker_mode, ShrinkerMode::kNonBlocking);
  EXPECT_FALSE(c.kernel_cache);
  EXPECT_FALSE(c.fault_injection);
  EXPECT_EQ(c.max_background, 64u);
  EXPECT_DOUBLE_EQ(c.inode_cache_fraction, 0.25);
  EXPECT_EQ(c.lock_wait_ms, 10000u);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_TRUE(ValidateConfig(c).ok());
}

constexpr char kFullToml[] = R"(
cache_budget = "1G"
meta_budget = 67108864
watermark_min = 0.01
watermark_low = 0.05
watermark_high = 0.2
dirty_background_ratio = 0.05
dirty_ratio = 0.5
dirty_expire_ms = 1000
writeback_interval_ms = 100
flusher_threads = 4
uring_queue_depth = 256
readahead = "1M"
shrinker_mode = "blocking"
kernel_cache = true
fault_injection = true
max_background = 128
inode_cache_fraction = 0.5
lock_wait_ms = 2500
log_level = "debug"
)";

TEST(ConfigTest, EveryKeyFromToml) {
  Config c;
  ASSERT_TRUE(ApplyConfigToml(&c, kFullToml, "test.toml").ok());
  EXPECT_EQ(c.cache_budget, 1ull << 30);
  EXPECT_EQ(c.meta_budget, 64ull << 20);
  EXPECT_DOUBLE_EQ(c.watermark_min, 0.01);
  EXPECT_DOUBLE_EQ(c.watermark_low, 0.05);
  EXPECT_DOUBLE_EQ(c.watermark_high, 0.2);
  EXPECT_DOUBLE_EQ(c.dirty_background_ratio, 0.05);
  EXPECT_DOUBLE_EQ(c.dirty_ratio, 0.5);
  EXPECT_EQ(c.dirty_expire_ms, 1000u);
  EXPECT_EQ(c.writeback_interval_ms, 100u);
  EXPECT_EQ(c.flusher_threads, 4u);
  EXPECT_EQ(c.uring_queue_depth, 256u);
  EXPECT_EQ(c.readahead, 1ull << 20);
  EXPECT_EQ(c.shrinker_mode, ShrinkerMode::kBlocking);
  EXPECT_TRUE(c.kernel_cache);
  EXPECT_TRUE(c.fault_injection);
  EXPECT_EQ(c.max_background, 128u);
  EXPECT_DOUBLE_EQ(c.inode_cache_fraction, 0.5);
  EXPECT_EQ(c.lock_wait_ms, 2500u);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_TRUE(ValidateConfig(c).ok());
}

TEST(ConfigTest, EveryKeyFromText) {
  const std::vector<std::pair<std::string, std::string>> overrides = {
      {"cache_budget", "512M"},        {"meta_budget", "16M"},
      {"watermark_min", "0.03"},       {"watermark_low", "0.07"},
      {"watermark_high", "0.15"},      {"dirty_background_ratio", "0.2"},
      {"dirty_ratio", "0.4"},          {"dirty_expire_ms", "5000"},
      {"writeback_interval_ms", "250"}, {"flusher_threads", "8"},
      {"uring_queue_depth", "100"},    {"readahead", "0"},
      {"shrinker_mode", "nonblocking"}, {"kernel_cache", "yes"}, {"fault_injection", "true"},
      {"max_background", "12"},        {"request_threads", "4"},
      {"blocking_threads", "24"},      {"fuse_transport", "uring"},
      {"fuse_uring_depth", "16"},      {"inode_cache_fraction", "1"},
      {"lock_wait_ms", "0"},           {"log_level", "WARNING"},
      {"metrics_listen", "127.0.0.1:9100"},
      {"host_pressure", "on"},         {"host_pressure_floor", "48M"},
      {"host_pressure_threshold", "20"}, {"host_pressure_file", "/run/psi"},
  };
  Config c;
  for (const auto& [k, v] : overrides) ASSERT_TRUE(SetConfigValue(&c, k, v).ok()) << k;
  EXPECT_EQ(c.cache_budget, 512ull << 20);
  EXPECT_EQ(c.meta_budget, 16ull << 20);
  EXPECT_DOUBLE_EQ(c.watermark_min, 0.03);
  EXPECT_DOUBLE_EQ(c.watermark_low, 0.07);
  EXPECT_DOUBLE_EQ(c.watermark_high, 0.15);
  EXPECT_DOUBLE_EQ(c.dirty_background_ratio, 0.2);
  EXPECT_DOUBLE_EQ(c.dirty_ratio, 0.4);
  EXPECT_EQ(c.dirty_expire_ms, 5000u);
  EXPECT_EQ(c.writeback_interval_ms, 250u);
  EXPECT_EQ(c.flusher_threads, 8u);
  EXPECT_EQ(c.uring_queue_depth, 100u);  // powers of two are not required
  EXPECT_EQ(c.readahead, 0u);
  EXPECT_EQ(c.shrinker_mode, ShrinkerMode::kNonBlocking);
  EXPECT_TRUE(c.kernel_cache);
  EXPECT_EQ(c.max_background, 12u);
  EXPECT_EQ(c.request_threads, 4u);
  EXPECT_EQ(c.blocking_threads, 24u);
  EXPECT_EQ(c.fuse_transport, "uring");
  EXPECT_EQ(c.fuse_uring_depth, 16u);
  EXPECT_DOUBLE_EQ(c.inode_cache_fraction, 1.0);
  EXPECT_EQ(c.lock_wait_ms, 0u);
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_EQ(c.metrics_listen, "127.0.0.1:9100");
  EXPECT_TRUE(c.host_pressure);
  EXPECT_EQ(c.host_pressure_floor, 48ull << 20);
  EXPECT_DOUBLE_EQ(c.host_pressure_threshold, 20);
  EXPECT_EQ(c.host_pressure_file, "/run/psi");
  EXPECT_TRUE(ValidateConfig(c).ok());
  // Every key is covered above.
  EXPECT_EQ(overrides.size(), ConfigKeys().size());
}

TEST(ConfigTest, MetricsListenTakesAnIpAndAPort) {
  Config c;
  EXPECT_TRUE(SetConfigValue(&c, "metrics_listen", ":9100").ok());
  EXPECT_TRUE(SetConfigValue(&c, "metrics_listen", "[::1]:9100").ok());
  EXPECT_TRUE(SetConfigValue(&c, "metrics_listen", "off").ok());
  EXPECT_EQ(c.metrics_listen, "");
  for (const char* bad : {"localhost:9100", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:", "1.2.3:80"}) {
    absl::Status s = SetConfigValue(&c, "metrics_listen", bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_THAT(ErrorOf(s), HasSubstr("config: metrics_listen: ")) << bad;
  }
  EXPECT_FALSE(IsLiveConfigKey("metrics_listen"));
  EXPECT_TRUE(IsLiveConfigKey("cache_budget"));
}

TEST(ConfigTest, FuseTransportDefaultsToAutoAndNeedsARemount) {
  Config c;
  EXPECT_EQ(c.fuse_transport, "auto");
  EXPECT_EQ(ConfigValueText(c, "fuse_transport"), "auto");
  for (const char* t : {"auto", "uring", "dev"}) {
    ASSERT_TRUE(SetConfigValue(&c, "fuse_transport", t).ok()) << t;
    EXPECT_EQ(ConfigValueText(c, "fuse_transport"), t);
  }
  absl::Status s = SetConfigValue(&c, "fuse_transport", "fast");
  EXPECT_THAT(ErrorOf(s), HasSubstr("expected \"auto\", \"uring\" or \"dev\""));
  EXPECT_FALSE(IsLiveConfigKey("fuse_transport"));
  EXPECT_FALSE(IsLiveConfigKey("fuse_uring_depth"));
}

TEST(ConfigTest, RequestThreadsFollowTheCores) {
  const uint32_t cores = std::thread::hardware_concurrency();
  EXPECT_EQ(Config().request_threads, std::clamp<uint32_t>(cores, 2, 16));
}

TEST(ConfigTest, SizesAsTomlIntegersAndStrings) {
  Config c;
  ASSERT_TRUE(ApplyConfigToml(&c, "cache_budget = 2097152\nreadahead = \"64K\"\n", "t").ok());
  EXPECT_EQ(c.cache_budget, 2u << 20);
  EXPECT_EQ(c.readahead, 64u << 10);
}

struct BadValue {
  const char* key;
  const char* value;  // -o text
};

TEST(ConfigTest, EachBadValueNamesTheKey) {
  const BadValue bad[] = {
      {"cache_budget", "512K"},          {"cache_budget", "lots"},          {"meta_budget", "0"},
      {"watermark_min", "-0.1"},         {"watermark_low", "1"},            {"watermark_high", "1.5"},
      {"watermark_high", "x"},           {"dirty_background_ratio", "0"},   {"dirty_ratio", "1.01"},
      {"dirty_expire_ms", "0"},          {"dirty_expire_ms", "soon"},       {"writeback_interval_ms", "-5"},
      {"flusher_threads", "0"},          {"flusher_threads", "65"},         {"uring_queue_depth", "0"},
      {"uring_queue_depth", "4097"},     {"readahead", "65M"},              {"shrinker_mode", "lazy"},
      {"kernel_cache", "maybe"},         {"max_background", "0"},           {"max_background", "70000"},
      {"inode_cache_fraction", "0"},     {"inode_cache_fraction", "2"},     {"lock_wait_ms", "-1"},
      {"log_level", "loud"},             {"request_threads", "0"},          {"request_threads", "257"},
      {"fuse_transport", "io_uring"},    {"fuse_transport", ""},            {"fuse_uring_depth", "0"},
      {"fuse_uring_depth", "1025"},
  };
  for (const BadValue& b : bad) {
    Config c;
    const absl::Status s = SetConfigValue(&c, b.key, b.value);
    ASSERT_FALSE(s.ok()) << b.key << "=" << b.value;
    EXPECT_THAT(ErrorOf(s), HasSubstr(std::string("config: ") + b.key + ": ")) << b.value;
  }
}

TEST(ConfigTest, BadTomlTypesNameTheKey) {
  const char* bad[] = {
      "cache_budget = true",     "watermark_low = \"abc\"", "flusher_threads = 2.5",
      "kernel_cache = 3",        "shrinker_mode = 1",       "log_level = [\"info\"]",
      "cache_budget = -5",       "readahead = 1.0",
  };
  for (const char* toml : bad) {
    Config c;
    const absl::Status s = ApplyConfigToml(&c, toml, "t.toml");
    ASSERT_FALSE(s.ok()) << toml;
    const std::string key(toml, std::string(toml).find(' '));
    EXPECT_THAT(ErrorOf(s), HasSubstr("config: " + key + ": ")) << toml;
  }
}

TEST(ConfigTest, UnknownKey) {
  Config c;
  EXPECT_EQ(ErrorOf(SetConfigValue(&c, "cache_budgett", "1G")), "config: unknown key 'cache_budgett'");
  EXPECT_EQ(ErrorOf(ApplyConfigToml(&c, "bogus = 1\n", "t.toml")), "config: unknown key 'bogus'");
  // Tables are not part of the format: their name is an unknown key.
  EXPECT_EQ(ErrorOf(ApplyConfigToml(&c, "[memory]\ncache_budget = 1\n", "t.toml")),
            "config: unknown key 'memory'");
}

TEST(ConfigTest, SyntaxErrorNamesTheFile) {
  Config c;
  const absl::Status s = ApplyConfigToml(&c, "cache_budget = = 3\n", "my.toml");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(ErrorOf(s), HasSubstr("my.toml:1"));
}

TEST(ConfigTest, BadFileLeavesConfigUntouched) {
  Config c;
  ASSERT_FALSE(ApplyConfigToml(&c, "cache_budget = \"8M\"\nflusher_threads = 0\n", "t").ok());
  EXPECT_EQ(c.cache_budget, 256ull << 20);
}

TEST(ConfigTest, CrossKeyValidation) {
  Config c;
  c.watermark_min = 0.06;
  EXPECT_THAT(ErrorOf(ValidateConfig(c)), HasSubstr("config: watermark_low: "));
  c = Config();
  c.watermark_high = 0.06;
  EXPECT_THAT(ErrorOf(ValidateConfig(c)), HasSubstr("config: watermark_high: "));
  c = Config();
  c.dirty_background_ratio = 0.2;
  EXPECT_THAT(ErrorOf(ValidateConfig(c)), HasSubstr("config: dirty_ratio: "));
  c = Config();
  c.watermark_min = 0;  // min may be zero
  EXPECT_TRUE(ValidateConfig(c).ok());
}

TEST(ConfigTest, FileThenOverrides) {
  const std::string path = ::testing::TempDir() + "/reclaimfs_config_test.toml";
  {
    std::ofstream out(path);
    out << "cache_budget = \"64M\"\nflusher_threads = 3\nlog_level = \"error\"\n";
  }
  Config c;
  ASSERT_TRUE(ApplyConfigFile(&c, path).ok());
  EXPECT_EQ(c.cache_budget, 64ull << 20);
  // -o overrides are applied after the file and win.
  ASSERT_TRUE(SetConfigValue(&c, "cache_budget", "128M").ok());
  EXPECT_EQ(c.cache_budget, 128ull << 20);
  EXPECT_EQ(c.flusher_threads, 3u);
  EXPECT_EQ(c.log_level, "error");
  std::remove(path.c_str());
  EXPECT_FALSE(ApplyConfigFile(&c, path).ok());  // missing file
}

// The sample shipped in tools/ parses and documents exactly the defaults.
TEST(ConfigTest, ExampleFileHasTheDefaults) {
  const char* path = RECLAIMFS_EXAMPLE_CONFIG;  // set by the build
  Config c;
  const absl::Status s = ApplyConfigFile(&c, path);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(ConfigText(c), ConfigText(Config()));
}

TEST(ConfigTest, MapsOntoFilesystemOptions) {
  Config c;
  ASSERT_TRUE(ApplyConfigToml(&c, kFullToml, "t").ok());
  FilesystemOptions o;
  ApplyConfigToOptions(c, &o);
  EXPECT_EQ(o.memory.budget_bytes, 1ull << 30);
  EXPECT_DOUBLE_EQ(o.memory.watermarks.min, 0.01);
  EXPECT_DOUBLE_EQ(o.memory.watermarks.low, 0.05);
  EXPECT_DOUBLE_EQ(o.memory.watermarks.high, 0.2);
  EXPECT_EQ(o.meta.block_cache_bytes, 32ull << 20);
  EXPECT_EQ(o.meta.memtable_bytes, 32ull << 20);
  EXPECT_EQ(o.meta.lock_wait_ms, 2500);
  EXPECT_EQ(o.uring.queue_depth, 256u);
  EXPECT_DOUBLE_EQ(o.data.dirty_background_ratio, 0.05);
  EXPECT_DOUBLE_EQ(o.data.dirty_ratio, 0.5);
  EXPECT_EQ(o.data.dirty_expire_ms, 1000u);
  EXPECT_EQ(o.data.writeback_interval_ms, 100u);
  EXPECT_EQ(o.data.flusher_threads, 4u);
  EXPECT_EQ(o.data.readahead_bytes, 1ull << 20);
  EXPECT_EQ(o.data.shrinker_mode, ShrinkerMode::kBlocking);
  EXPECT_TRUE(o.kernel_cache);
  EXPECT_DOUBLE_EQ(o.inode_cache_fraction, 0.5);
}

TEST(ConfigTest, ConfigTextListsEveryKey) {
  const std::string text = ConfigText(Config());
  for (std::string_view key : ConfigKeys()) EXPECT_THAT(text, HasSubstr(std::string(key) + " = "));
  EXPECT_THAT(text, HasSubstr("cache_budget = 256M"));
}

// The daemon's command line.
absl::StatusOr<MountRequest> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "reclaimfs");
  return ParseMountCommandLine(static_cast<int>(args.size()), args.data());
}

TEST(MountOptionsTest, Basic) {
  auto r = Parse({"store:/srv/store", "/mnt/x", "-f"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->source, "store:/srv/store");
  EXPECT_EQ(r->store_dir, "/srv/store");
  EXPECT_EQ(r->mountpoint, "/mnt/x");
  EXPECT_TRUE(r->foreground);
  EXPECT_TRUE(r->default_permissions);
  EXPECT_FALSE(r->read_only);
  EXPECT_EQ(FuseMountOptionString(*r), "fsname=store:/srv/store,default_permissions");
}

// ext4's acl/noacl: the last one given wins; neither reaches the kernel.
TEST(MountOptionsTest, AclAndNoacl) {
  auto r = Parse({"/srv/s", "/mnt/x", "-o", "noacl"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->acl);
  EXPECT_EQ(FuseMountOptionString(*r), "fsname=/srv/s,default_permissions");
  r = Parse({"/srv/s", "/mnt/x", "-o", "noacl,acl"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->acl);
  r = Parse({"/srv/s", "/mnt/x"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->acl);
}

TEST(MountOptionsTest, MountHelperStyle) {
  // mount.fuse3 passes one -o list; mount(8) and fstab add their own.
  auto r = Parse({"/srv/s,1", "/mnt/x", "-o",
                  "rw,noatime,dev,suid,_netdev,nofail,x-systemd.automount,allow_other,config=/etc/r.toml",
                  "-o", "cache_budget=64M,kernel_cache,no_default_permissions,control_socket=/tmp/c.sock"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->foreground);
  EXPECT_FALSE(r->atime);
  EXPECT_FALSE(r->default_permissions);
  EXPECT_EQ(*r->config_path, "/etc/r.toml");
  EXPECT_EQ(*r->control_socket, "/tmp/c.sock");
  ASSERT_EQ(r->config_overrides.size(), 2u);
  EXPECT_EQ(r->config_overrides[0], std::make_pair(std::string("cache_budget"), std::string("64M")));
  EXPECT_EQ(r->config_overrides[1], std::make_pair(std::string("kernel_cache"), std::string("true")));
  EXPECT_EQ(FuseMountOptionString(*r), "fsname=/srv/s\\,1,rw,noatime,dev,suid,allow_other");
}

TEST(MountOptionsTest, ReadOnlyAndRemount) {
  auto r = Parse({"s", "/mnt/x", "-oro"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->read_only);
  r = Parse({"s", "/mnt/x", "-o", "remount,ro"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->remount);
  EXPECT_EQ(r->remount_set & MS_RDONLY, static_cast<unsigned long>(MS_RDONLY));
  r = Parse({"s", "/mnt/x", "-o", "remount,rw,nosuid"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->remount_clear & MS_RDONLY, static_cast<unsigned long>(MS_RDONLY));
  EXPECT_EQ(r->remount_set & MS_NOSUID, static_cast<unsigned long>(MS_NOSUID));
}

TEST(MountOptionsTest, Errors) {
  EXPECT_EQ(ErrorOf(Parse({"s", "/mnt/x", "-o", "frobnicate"}).status()), "unknown option 'frobnicate'");
  EXPECT_EQ(ErrorOf(Parse({"s", "/mnt/x", "-x"}).status()), "unknown option '-x'");
  EXPECT_EQ(ErrorOf(Parse({"s"}).status()), "missing MOUNTPOINT");
  EXPECT_EQ(ErrorOf(Parse({}).status()), "missing STORE and MOUNTPOINT");
  EXPECT_THAT(ErrorOf(Parse({"s", "/m", "-o", "cache_budget"}).status()), HasSubstr("cache_budget"));
  EXPECT_THAT(ErrorOf(Parse({"s", "/m", "extra"}).status()), HasSubstr("extra"));
}

TEST(MountOptionsTest, MaxReadIsRemembered) {
  auto r = Parse({"s", "/m", "-o", "max_read=65536"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->max_read, 65536u);
  EXPECT_EQ(FuseMountOptionString(*r), "fsname=s,default_permissions,max_read=65536");
  EXPECT_THAT(ErrorOf(Parse({"s", "/m", "-o", "max_read=lots"}).status()), HasSubstr("max_read"));
}

TEST(MountOptionsTest, DebugImpliesForeground) {
  auto r = Parse({"s", "/m", "-d"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->debug);
  EXPECT_TRUE(r->foreground);
}

}  // namespace
}  // namespace reclaimfs::fs

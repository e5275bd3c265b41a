// The daemon's configuration: every tunable key, its default, parsing from a
// flat TOML file and from `-o key=value` overrides, validation, and the
// mapping onto FilesystemOptions. A pure library (no FUSE, no I/O besides
// reading the file) so it is unit-tested on its own.
//
// Stateless functions over the caller's Config: the main thread at startup,
// and LiveConfig (live_config.h) on the control-socket and reload threads,
// each on its own copy. Only ApplyConfigFile does IO, reading the file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fs/posix/filesystem.h"

namespace reclaimfs::fs {

// The number of cores, at least 2 and at most 16.
uint32_t DefaultRequestThreads();

struct Config {
  uint64_t cache_budget = 256ull << 20;  // the page + inode cache budget
  uint64_t meta_budget = 32ull << 20;    // RocksDB block cache + memtables, half each
  double watermark_min = 0.02;
  double watermark_low = 0.06;
  double watermark_high = 0.10;
  double dirty_background_ratio = 0.10;
  double dirty_ratio = 0.20;
  uint32_t dirty_expire_ms = 3000;
  uint32_t writeback_interval_ms = 500;
  uint32_t flusher_threads = 2;
  uint32_t uring_queue_depth = 64;
  uint64_t readahead = 128ull << 10;
  ShrinkerMode shrinker_mode = ShrinkerMode::kNonBlocking;
  bool kernel_cache = false;
  bool fault_injection = false;  // tests: IO through a fault-injecting device
  uint32_t max_background = 64;
  // FUSE request threads. Each holds a request buffer of max_write + 4 KiB
  // (outside the cache budget). They do not wait for IO (reads that miss,
  // fsync and fallocate go to blocking_threads), so by default there are as
  // many as cores: fewer threads taking turns on /dev/fuse switch less.
  uint32_t request_threads = DefaultRequestThreads();
  // Workers for the requests that wait for IO; bounds the reads and fsyncs
  // waiting at once.
  uint32_t blocking_threads = 16;
  // How requests reach the daemon: "auto" (io_uring queues when the kernel
  // offers FUSE over io_uring, else /dev/fuse), "uring" (refuse to mount
  // without it) or "dev".
  std::string fuse_transport = "auto";
  // Ring entries per io_uring queue (one queue per CPU); each holds a
  // payload buffer of max_write (1 MiB), outside the cache budget.
  uint32_t fuse_uring_depth = 8;
  double inode_cache_fraction = 0.25;
  uint32_t lock_wait_ms = 10'000;
  std::string log_level = "info";  // trace, debug, info, warn, error, critical, off
  // HTTP endpoint serving /metrics, "ADDRESS:PORT" (":PORT" is loopback);
  // empty: off.
  std::string metrics_listen;
  // Host memory pressure (PSI): under pressure the budget is capped toward
  // host_pressure_floor, and grows back slowly when pressure is gone.
  bool host_pressure = false;
  uint64_t host_pressure_floor = 32ull << 20;
  double host_pressure_threshold = 10.0;  // PSI "some avg10", percent
  // PSI-format file to watch instead of the system's and the cgroup's (tests).
  std::string host_pressure_file;
};

// The default file, read when it exists and no config= is given.
inline constexpr std::string_view kDefaultConfigPath = "/etc/reclaimfs/reclaimfs.toml";

// Every key, in documentation order.
const std::vector<std::string_view>& ConfigKeys();
bool IsConfigKey(std::string_view key);
// True for keys that may change while mounted (reclaimfs-ctl set, SIGHUP);
// the others need a remount.
bool IsLiveConfigKey(std::string_view key);
// The value of `key` as ConfigText prints it ("" for an unknown key).
std::string ConfigValueText(const Config& config, std::string_view key);
// True for keys whose bare name (`-o kernel_cache`) means "true".
bool IsBooleanConfigKey(std::string_view key);

// Sets one key from its textual form (a `-o` value). Errors read
// "config: <key>: <problem>" or "config: unknown key '<key>'".
absl::Status SetConfigValue(Config* config, std::string_view key, std::string_view value);

// Applies a TOML document (flat table of keys) on top of `config`.
// `origin` names the document in syntax errors (usually the file path).
// `keys_set`, if given, receives the keys the document set (on success).
absl::Status ApplyConfigToml(Config* config, std::string_view toml_text, std::string_view origin,
                             std::vector<std::string>* keys_set = nullptr);
// Reads and applies a TOML file; a missing or unreadable file is an error.
absl::Status ApplyConfigFile(Config* config, const std::string& path,
                             std::vector<std::string>* keys_set = nullptr);

// Checks relations between keys (watermark order, dirty ratios); per-key
// ranges are checked as keys are set. Run after all sources are applied.
absl::Status ValidateConfig(const Config& config);

// Parses "4096", "128K", "256M", "1G", "2T" (binary units; an optional
// trailing "B" or "iB" is accepted).
absl::StatusOr<uint64_t> ParseSize(std::string_view text);

// Copies the filesystem-facing keys into `options` (memory, meta, uring,
// data, inode cache); adapter-only keys (max_background, log_level) stay.
void ApplyConfigToOptions(const Config& config, FilesystemOptions* options);

// "key = value" lines for every key, for logs and the control socket.
std::string ConfigText(const Config& config);

}  // namespace reclaimfs::fs

// reclaim_bench: mounts a store with a small cache budget, drives a working set
// many times the budget with concurrent readers and dirtying writers, and
// prints throughput, direct-reclaim stalls, the kswapd/direct split of reclaim,
// backoff waits, dirty-throttle pauses and the daemon's peak RSS against its
// budget — once per shrinker mode, then the ratios between the modes.
//
// It measures; it asserts nothing. Numbers come from the daemon's own
// counters (reclaimfs-ctl stat) and /proc/PID/status.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "tools/bench_plots.h"

namespace {

using Clock = std::chrono::steady_clock;
using Stats = std::map<std::string, double>;

struct Config {
  std::string reclaimfs, mkfs, ctl;
  uint64_t budget = 32ull << 20;
  uint64_t meta_budget = 16ull << 20;
  unsigned factor = 16;
  unsigned seconds = 10;
  unsigned readers = 4, writers = 4;
  size_t io_size = 64 * 1024;
  std::vector<std::string> modes{"nonblocking", "blocking"};
  std::string extra_options;
  bool dump_stats = false;
  unsigned rounds = 5;
  std::string csv_dir;  // samples and pictures go here when set
  bool plot = false;
  // Dirty limits well above the daemon's defaults, so reclaim meets dirty
  // pages (the case the two shrinker modes differ in) and not only the
  // flushers do.
  double dirty_ratio = 0.6, dirty_background_ratio = 0.4;
};

struct Result {
  std::string mode;
  double read_mbps = 0, write_mbps = 0;
  uint64_t vm_hwm = 0;
  uint64_t fill_vm_hwm = 0;  // of the mount that populated the working set
  Stats stats;
  bool ok = false;
};

uint64_t ParseSize(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  switch (end && *end ? (*end | 0x20) : 0) {
    case 'k': v *= 1ull << 10; break;
    case 'm': v *= 1ull << 20; break;
    case 'g': v *= 1ull << 30; break;
    default: break;
  }
  return static_cast<uint64_t>(v);
}

int Run(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid == 0) {
    // Quiet: mkfs and fusermount would interleave with the report.
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string Capture(const std::string& cmd) {
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    pclose(f);
  }
  return out;
}

bool IsMounted(const std::string& mnt) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string f[5];
    for (auto& x : f) ls >> x;
    if (f[4] == mnt) return true;
  }
  return false;
}

uint64_t VmHwm(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

double Get(const Stats& s, const std::string& k) {
  auto it = s.find(k);
  return it == s.end() ? 0 : it->second;
}

Stats ParseStats(const std::string& text) {
  Stats s;
  std::istringstream in(text);
  std::string name, value;
  while (in >> name >> value) {
    try {
      s[name] = std::stod(value);
    } catch (...) {
    }
  }
  return s;
}

// Deterministic content so readers could verify; the benchmark only times.
void Fill(char* buf, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(buf + i, &v, 8);
  }
}

// Starts the daemon in the foreground on `mnt`; returns its pid once the
// mount answers, or -1.
pid_t StartDaemon(const Config& cfg, const std::string& store, const std::string& mnt,
                  const std::string& opts) {
  pid_t daemon = fork();
  if (daemon == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execl(cfg.reclaimfs.c_str(), cfg.reclaimfs.c_str(), store.c_str(), mnt.c_str(), "-f", "-o",
          opts.c_str(), nullptr);
    _exit(127);
  }
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (!IsMounted(mnt) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (IsMounted(mnt)) return daemon;
  kill(daemon, SIGKILL);
  waitpid(daemon, nullptr, 0);
  return -1;
}

// Unmounts and waits (bounded) for the daemon to write back and exit.
void StopDaemon(pid_t daemon, const std::string& mnt) {
  Run({"/bin/fusermount3", "-u", mnt});
  int status = 0;
  for (int i = 0; i < 600 && waitpid(daemon, &status, WNOHANG) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (kill(daemon, 0) == 0) {
    kill(daemon, SIGKILL);
    waitpid(daemon, nullptr, 0);
  }
}

Result RunMode(const Config& cfg, const std::string& mode, unsigned round) {
  Result r;
  r.mode = mode;
  char tmpl[] = "/tmp/reclaimfs-bench-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string store = dir + "/store", mnt = dir + "/mnt";
  std::filesystem::create_directories(mnt);
  uint64_t working_set = cfg.budget * cfg.factor;
  uint64_t store_size = working_set * 2 + (256ull << 20);
  if (Run({cfg.mkfs, store, "--size", std::to_string(store_size)}) != 0) {
    std::fprintf(stderr, "mkfs failed\n");
    std::filesystem::remove_all(dir);
    return r;
  }
  std::string opts = "cache_budget=" + std::to_string(cfg.budget) +
                     ",meta_budget=" + std::to_string(cfg.meta_budget) + ",shrinker_mode=" + mode +
                     ",dirty_ratio=" + std::to_string(cfg.dirty_ratio) +
                     ",dirty_background_ratio=" + std::to_string(cfg.dirty_background_ratio) + ",log_level=warn";
  if (!cfg.extra_options.empty()) opts += "," + cfg.extra_options;

  const unsigned nfiles = 8;
  const uint64_t file_size = working_set / nfiles;
  // Populate the working set (this already runs far over the budget), then
  // mount again: the measured phase starts with a cold cache and counters
  // that cover it alone.
  pid_t daemon = StartDaemon(cfg, store, mnt, opts);
  if (daemon < 0) {
    std::fprintf(stderr, "mount failed (%s)\n", mode.c_str());
    std::filesystem::remove_all(dir);
    return r;
  }
  {
    std::vector<std::thread> fill;
    for (unsigned f = 0; f < nfiles; ++f) {
      fill.emplace_back([&, f] {
        int fd = open((mnt + "/f" + std::to_string(f)).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        std::vector<char> buf(1 << 20);
        for (uint64_t off = 0; off < file_size; off += buf.size()) {
          Fill(buf.data(), buf.size(), f * 1000003 + off);
          if (pwrite(fd, buf.data(), buf.size(), off) < 0) break;
        }
        close(fd);
      });
    }
    for (auto& t : fill) t.join();
  }
  r.fill_vm_hwm = VmHwm(daemon);
  StopDaemon(daemon, mnt);
  daemon = StartDaemon(cfg, store, mnt, opts);
  if (daemon < 0) {
    std::fprintf(stderr, "remount failed (%s)\n", mode.c_str());
    std::filesystem::remove_all(dir);
    return r;
  }

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> read_bytes{0}, write_bytes{0};
  std::vector<std::thread> workers;
  auto worker = [&](unsigned id, bool writer) {
    std::mt19937_64 rng(id * 7919 + (writer ? 1 : 0));
    std::vector<int> fds;
    for (unsigned f = 0; f < nfiles; ++f) {
      fds.push_back(open((mnt + "/f" + std::to_string(f)).c_str(), (writer ? O_WRONLY : O_RDONLY) | O_CLOEXEC));
    }
    std::vector<char> buf(cfg.io_size);
    Fill(buf.data(), buf.size(), id);
    const uint64_t slots = file_size / cfg.io_size;
    while (!stop.load(std::memory_order_relaxed)) {
      int fd = fds[rng() % nfiles];
      uint64_t off = (rng() % slots) * cfg.io_size;
      ssize_t n = writer ? pwrite(fd, buf.data(), buf.size(), off) : pread(fd, buf.data(), buf.size(), off);
      if (n <= 0) break;
      (writer ? write_bytes : read_bytes).fetch_add(n, std::memory_order_relaxed);
    }
    for (int fd : fds) close(fd);
  };
  for (unsigned i = 0; i < cfg.readers; ++i) workers.emplace_back(worker, i, false);
  for (unsigned i = 0; i < cfg.writers; ++i) workers.emplace_back(worker, 100 + i, true);
  auto start = Clock::now();
  std::vector<reclaimfs::bench::TimelineSample> timeline;
  if (cfg.csv_dir.empty()) {
    std::this_thread::sleep_for(std::chrono::seconds(cfg.seconds));
  } else {
    // A sample every 200 ms: the daemon's counters and our byte counts.
    uint64_t last_read = 0, last_write = 0;
    auto last = start;
    const auto end = start + std::chrono::seconds(cfg.seconds);
    while (Clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      const Stats s = ParseStats(Capture(cfg.ctl + " stat " + mnt + " 2>/dev/null"));
      const auto now = Clock::now();
      const double dt = std::chrono::duration<double>(now - last).count();
      const double page = Get(s, "pagecache_page_size") > 0 ? Get(s, "pagecache_page_size") : 4096;
      const uint64_t rd = read_bytes.load(), wr = write_bytes.load();
      reclaimfs::bench::TimelineSample t;
      t.t = std::chrono::duration<double>(now - start).count();
      t.used_mib = Get(s, "budget_used") / (1 << 20);
      t.limit_mib = Get(s, "budget_limit") / (1 << 20);
      t.dirty_mib = Get(s, "pagecache_dirty") * page / (1 << 20);
      t.writeback_mib = Get(s, "pagecache_writeback") * page / (1 << 20);
      t.read_mibps = (rd - last_read) / dt / (1 << 20);
      t.write_mibps = (wr - last_write) / dt / (1 << 20);
      timeline.push_back(t);
      last_read = rd;
      last_write = wr;
      last = now;
    }
  }
  stop = true;
  for (auto& t : workers) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  r.read_mbps = read_bytes / secs / (1 << 20);
  r.write_mbps = write_bytes / secs / (1 << 20);

  r.stats = ParseStats(Capture(cfg.ctl + " stat " + mnt + " 2>/dev/null"));
  if (!cfg.csv_dir.empty()) {
    const std::string suffix = mode + "-r" + std::to_string(round) + ".csv";
    reclaimfs::bench::WriteTimeline(cfg.csv_dir + "/timeline-" + suffix, timeline);
    reclaimfs::bench::WriteHistogram(cfg.csv_dir + "/stall-" + suffix,
                                     Capture(cfg.ctl + " metrics " + mnt + " 2>/dev/null"), "direct_stall_seconds");
  }
  r.vm_hwm = VmHwm(daemon);
  StopDaemon(daemon, mnt);
  std::filesystem::remove_all(dir);
  r.ok = !r.stats.empty();
  return r;
}

// Percent of the objects reclaim freed that kswapd freed.
double KswapdShare(const Stats& s) {
  const double k = Get(s, "kswapd_freed"), d = Get(s, "direct_freed");
  return k + d > 0 ? 100 * k / (k + d) : 0;
}

void Print(const Config& cfg, const Result& r) {
  const Stats& s = r.stats;
  double kfreed = Get(s, "kswapd_freed"), dfreed = Get(s, "direct_freed");
  double total = kfreed + dfreed;
  uint64_t bound = cfg.budget + cfg.meta_budget;
  std::printf("mode %s\n", r.mode.c_str());
  std::printf("  throughput        read %.1f MiB/s  write %.1f MiB/s  total %.1f MiB/s\n", r.read_mbps,
              r.write_mbps, r.read_mbps + r.write_mbps);
  std::printf("  direct stall      count %.0f  p50 %.0f us  p99 %.0f us  max %.0f us\n",
              Get(s, "direct_stall_us_count"), Get(s, "direct_stall_us_p50"), Get(s, "direct_stall_us_p99"),
              Get(s, "direct_stall_us_max"));
  std::printf("  ... of it on CPU p50 %.0f us  p99 %.0f us  max %.0f us\n", Get(s, "direct_stall_cpu_us_p50"),
              Get(s, "direct_stall_cpu_us_p99"), Get(s, "direct_stall_cpu_us_max"));
  std::printf("  charge stall      count %.0f  p50 %.0f us  p99 %.0f us  max %.0f us  (a whole charge, all attempts)\n",
              Get(s, "charge_stall_us_count"), Get(s, "charge_stall_us_p50"), Get(s, "charge_stall_us_p99"),
              Get(s, "charge_stall_us_max"));
  std::printf("  direct reclaim    entries %.0f  scanned %.0f  freed %.0f  throttled %.0f (timeouts %.0f)\n",
              Get(s, "direct_reclaims"), Get(s, "direct_scanned"), Get(s, "direct_freed"),
              Get(s, "direct_throttles"), Get(s, "direct_throttle_timeouts"));
  std::printf("  reclaim share     kswapd %.1f%%  direct %.1f%%  (objects freed %.0f / %.0f)\n", KswapdShare(s),
              total ? 100 - KswapdShare(s) : 0, kfreed, dfreed);
  std::printf("  backoff waits     %.0f (timeouts %.0f)\n", Get(s, "backoff_waits"), Get(s, "backoff_timeouts"));
  std::printf("  dirty throttle    pauses %.0f  p99 %.0f us  max %.0f us\n", Get(s, "dirty_throttle_pauses"),
              Get(s, "dirty_throttle_us_p99"), Get(s, "dirty_throttle_us_max"));
  std::printf("  budget peak used  %.1f MiB of %.1f MiB\n", Get(s, "budget_peak_used") / (1 << 20),
              cfg.budget / double(1 << 20));
  std::printf("  daemon VmHWM      %.1f MiB  (cache %.0f + meta %.0f = %.0f MiB budgets, +%.1f MiB overhead)\n",
              r.vm_hwm / double(1 << 20), cfg.budget / double(1 << 20), cfg.meta_budget / double(1 << 20),
              bound / double(1 << 20), (double(r.vm_hwm) - double(bound)) / (1 << 20));
  std::printf("  populating VmHWM  %.1f MiB  (8 writers of 1 MiB, before the measured mount)\n",
              r.fill_vm_hwm / double(1 << 20));
}

struct Summary {
  double total_mbps = 0, stall_p50 = 0, stall_p99 = 0, stall_max = 0, charge_p99 = 0;
  double kswapd_share = 0, vm_hwm_mib = 0, fill_vm_hwm_mib = 0;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Summary Summarize(const std::vector<Result>& runs) {
  auto median_of = [&](auto field) {
    std::vector<double> v;
    for (const Result& r : runs) v.push_back(field(r));
    return Median(std::move(v));
  };
  Summary s;
  s.total_mbps = median_of([](const Result& r) { return r.read_mbps + r.write_mbps; });
  auto median_stat = [&](const char* name) {
    return median_of([name](const Result& r) { return Get(r.stats, name); });
  };
  s.stall_p50 = median_stat("direct_stall_us_p50");
  s.stall_p99 = median_stat("direct_stall_us_p99");
  s.stall_max = median_stat("direct_stall_us_max");
  s.charge_p99 = median_stat("charge_stall_us_p99");
  s.kswapd_share = median_of([](const Result& r) { return KswapdShare(r.stats); });
  s.vm_hwm_mib = median_of([](const Result& r) { return r.vm_hwm / double(1 << 20); });
  s.fill_vm_hwm_mib = median_of([](const Result& r) { return r.fill_vm_hwm / double(1 << 20); });
  return s;
}

void PrintSummary(const Config& cfg, const std::string& mode, const Summary& s) {
  std::printf("  %-12s throughput %.1f MiB/s  direct stall p50 %.0f us  p99 %.0f us  max %.0f us  "
              "kswapd %.1f%%  VmHWM %.1f MiB (populating %.1f; budgets %.0f MiB)\n",
              mode.c_str(), s.total_mbps, s.stall_p50, s.stall_p99, s.stall_max, s.kswapd_share, s.vm_hwm_mib,
              s.fill_vm_hwm_mib, (cfg.budget + cfg.meta_budget) / double(1 << 20));
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  std::string self_dir = std::filesystem::canonical("/proc/self/exe").parent_path().string();
  cfg.reclaimfs = self_dir + "/../fs/reclaimfs";
  cfg.mkfs = self_dir + "/mkfs.reclaimfs";
  cfg.ctl = self_dir + "/reclaimfs-ctl";
  std::string budget = "32M", meta = "16M", io = "64K";
  CLI::App app{"reclaim benchmark: nonblocking vs blocking shrinkers under a small cache budget"};
  app.add_option("--budget", budget, "cache budget (K/M/G)");
  app.add_option("--meta-budget", meta, "RocksDB budget (K/M/G)");
  app.add_option("--factor", cfg.factor, "working set as a multiple of the budget");
  app.add_option("--seconds", cfg.seconds, "measured time of each run");
  app.add_option("--readers", cfg.readers, "threads doing random reads");
  app.add_option("--writers", cfg.writers, "threads doing random overwrites");
  app.add_option("--io-size", io, "bytes per read/write (K/M)");
  app.add_option("--modes", cfg.modes, "shrinker modes to run, in order")->delimiter(',');
  app.add_option("--dirty-ratio", cfg.dirty_ratio, "dirty_ratio of the mount")->check(CLI::Range(0.01, 0.99));
  app.add_option("--dirty-background-ratio", cfg.dirty_background_ratio, "dirty_background_ratio of the mount")
      ->check(CLI::Range(0.01, 0.99));
  app.add_option("-o", cfg.extra_options, "extra mount options");
  app.add_option("--rounds", cfg.rounds, "runs of each mode, alternating; the summary takes medians")
      ->check(CLI::Range(1u, 100u));
  app.add_flag("--dump-stats", cfg.dump_stats, "also print every daemon counter of each mode");
  app.add_option("--csv", cfg.csv_dir, "write samples (timeline, stall histogram) of each run as CSV here");
  app.add_flag("--plot", cfg.plot, "draw the CSVs of round 1 with gnuplot (needs --csv)");
  app.add_option("--reclaimfs", cfg.reclaimfs);
  app.add_option("--mkfs", cfg.mkfs);
  app.add_option("--ctl", cfg.ctl);
  CLI11_PARSE(app, argc, argv);
  if (cfg.plot && cfg.csv_dir.empty()) {
    std::fprintf(stderr, "--plot needs --csv DIR\n");
    return 1;
  }
  if (!cfg.csv_dir.empty()) std::filesystem::create_directories(cfg.csv_dir);
  cfg.budget = ParseSize(budget);
  cfg.meta_budget = ParseSize(meta);
  cfg.io_size = ParseSize(io);

  std::printf("reclaim_bench: budget %s, working set %ux (%.0f MiB), %u readers + %u writers, %zu-byte IO, "
              "dirty ratio %.2f (background %.2f), %us per run, %u round(s) of each mode\n",
              budget.c_str(), cfg.factor, cfg.budget * cfg.factor / double(1 << 20), cfg.readers, cfg.writers,
              cfg.io_size, cfg.dirty_ratio, cfg.dirty_background_ratio, cfg.seconds, cfg.rounds);
  // Rounds alternate the modes so drift on the machine (other load, the
  // disk's own caches) falls on both alike; the summary takes medians.
  std::map<std::string, std::vector<Result>> by_mode;
  for (unsigned round = 1; round <= cfg.rounds; ++round) {
    for (const auto& mode : cfg.modes) {
      Result r = RunMode(cfg, mode, round);
      if (!r.ok) {
        std::fprintf(stderr, "mode %s: no results\n", mode.c_str());
        return 1;
      }
      std::printf("round %u, ", round);
      Print(cfg, r);
      if (cfg.dump_stats) {
        for (const auto& [name, value] : r.stats) std::printf("    %s %.0f\n", name.c_str(), value);
      }
      by_mode[mode].push_back(std::move(r));
    }
  }
  std::map<std::string, Summary> summary;
  std::printf("median of %u round(s)\n", cfg.rounds);
  for (const auto& mode : cfg.modes) {
    summary[mode] = Summarize(by_mode[mode]);
    PrintSummary(cfg, mode, summary[mode]);
  }
  if (cfg.modes.size() == 2) {
    const Summary &a = summary[cfg.modes[0]], &b = summary[cfg.modes[1]];
    auto ratio = [](double x, double y) { return y > 0 ? x / y : 0; };
    std::printf("ratios %s/%s (medians)\n", cfg.modes[1].c_str(), cfg.modes[0].c_str());
    std::printf("  direct stall p99  %.1fx  (%.0f us vs %.0f us)\n", ratio(b.stall_p99, a.stall_p99), b.stall_p99,
                a.stall_p99);
    std::printf("  charge stall p99  %.1fx  (%.0f us vs %.0f us)\n", ratio(b.charge_p99, a.charge_p99),
                b.charge_p99, a.charge_p99);
    std::printf("  direct stall max  %.1fx\n", ratio(b.stall_max, a.stall_max));
    std::printf("  throughput        %s is %.2fx of %s\n", cfg.modes[0].c_str(), ratio(a.total_mbps, b.total_mbps),
                cfg.modes[1].c_str());
  }
  if (cfg.plot && !reclaimfs::bench::Plot(cfg.csv_dir, cfg.modes)) return 1;
  return 0;
}

// PrometheusText: classifies the stat lines and writes each metric family
// with its HELP and TYPE lines.
#include "fs/daemon/prometheus_text.h"

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace reclaimfs::fs {

namespace {

constexpr std::string_view kPrefix = "reclaimfs_";

struct GaugeSpec {
  const char* exported;  // without the prefix
  const char* help;
};

// Stat lines that are levels, not running totals.
const std::map<std::string, GaugeSpec, std::less<>>& Gauges() {
  static const auto* gauges = new std::map<std::string, GaugeSpec, std::less<>>{
      {"budget_limit", {"budget_limit_bytes", "Cache budget in effect (after host pressure)."}},
      {"budget_used", {"budget_used_bytes", "Bytes charged to the cache budget."}},
      {"budget_free", {"budget_free_bytes", "Free cache budget."}},
      {"budget_peak_used", {"budget_peak_used_bytes", "Highest charge to the cache budget since mount."}},
      {"watermark_min", {"watermark_min_bytes", "Free budget below which charges enter direct reclaim."}},
      {"watermark_low", {"watermark_low_bytes", "Free budget below which kswapd wakes."}},
      {"watermark_high", {"watermark_high_bytes", "Free budget kswapd reclaims up to."}},
      {"budget_configured", {"budget_configured_bytes", "Cache budget as configured."}},
      {"budget_floor", {"budget_floor_bytes", "Lowest cache budget host pressure may impose."}},
      {"host_pressure_some_avg10", {"host_pressure_some_avg10", "Host memory pressure (PSI some avg10, percent)."}},
      {"host_pressure_active", {"host_pressure_active", "1 while host memory pressure holds the budget down."}},
      {"meta_budget", {"meta_budget_bytes", "Metadata store (RocksDB) cache capacity."}},
      {"pagecache_page_size", {"pagecache_page_size_bytes", "Size of one cache page."}},
      {"pagecache_pages", {"pagecache_pages", "Pages in the page cache."}},
      {"pagecache_dirty", {"pagecache_dirty_pages", "Dirty pages."}},
      {"pagecache_writeback", {"pagecache_writeback_pages", "Pages under writeback."}},
      {"pagecache_active", {"pagecache_active_pages", "Pages on the active LRU list."}},
      {"pagecache_inactive", {"pagecache_inactive_pages", "Pages on the inactive LRU list."}},
      {"pagecache_pool_bytes", {"pagecache_pool_bytes", "Resident page buffer memory (pages in use, free buffers not yet returned)."}},
      {"inode_stubs", {"inode_stubs", "Inode stubs (nodes the kernel or the cache refers to)."}},
      {"inode_bodies", {"inode_bodies", "Cached inode bodies."}},
      {"inode_body_bytes", {"inode_body_bytes", "Bytes of cached inode bodies."}},
      {"inode_idle_bodies", {"inode_idle_bodies", "Cached inode bodies nobody uses."}},
      {"inode_share_bytes", {"inode_share_bytes", "Budget share the inode cache may hold before it shrinks."}},
      {"writeback_flusher_threads", {"writeback_flusher_threads", "Flusher threads taking new work."}},
      {"evict_pending", {"evict_pending", "Evictions waiting in the retry queue."}},
      {"inodes", {"inodes", "Inodes in the filesystem."}},
      {"open_handles", {"open_handles", "Open file and directory handles."}},
      {"mount_read_only", {"mount_read_only", "1 if the mount is read-only."}},
      {"fuse_direct_io_allow_mmap", {"fuse_direct_io_allow_mmap", "1 if the kernel allows mmap of direct-IO files."}},
  };
  return *gauges;
}

struct HistogramSpec {
  const char* stat;      // its summary lines in the stat text
  const char* exported;  // without the prefix
  const char* help;
  const reclaim::LatencyHistogram reclaim::ReclaimStats::*field;
};

constexpr HistogramSpec kHistograms[] = {
    {"direct_stall_us", "direct_stall_seconds", "Time of one direct-reclaim call.",
     &reclaim::ReclaimStats::direct_stall_us},
    {"direct_stall_cpu_us", "direct_stall_cpu_seconds", "CPU time of one direct-reclaim call.",
     &reclaim::ReclaimStats::direct_stall_cpu_us},
    {"charge_stall_us", "charge_stall_seconds", "Whole slow path of a charge that entered direct reclaim.",
     &reclaim::ReclaimStats::charge_stall_us},
    {"dirty_throttle_us", "dirty_throttle_seconds", "Time a writer was paused by the dirty throttle.",
     &reclaim::ReclaimStats::dirty_throttle_us},
};

bool IsHistogramSummary(std::string_view name) {
  for (const HistogramSpec& h : kHistograms) {
    for (const char* suffix : {"_count", "_p50", "_p99", "_max"}) {
      if (name == absl::StrCat(h.stat, suffix)) return true;
    }
  }
  return false;
}

std::string Seconds(uint64_t micros) { return absl::StrFormat("%.6f", static_cast<double>(micros) / 1e6); }

class Writer {
 public:
  explicit Writer(std::string_view mountpoint)
      : labels_(absl::StrCat("mountpoint=\"", EscapeLabelValue(mountpoint), "\"")) {}

  void Family(std::string_view name, std::string_view type, std::string_view help) {
    const std::string full = std::string(kPrefix).append(name);
    out_.append("# HELP ").append(full).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(full).append(" ").append(type).append("\n");
  }
  void Sample(std::string_view name, std::string_view value, std::string_view extra_label = "") {
    out_.append(kPrefix).append(name).append("{").append(labels_).append(extra_label).append("} ");
    out_.append(value).append("\n");
  }
  std::string Take() { return std::move(out_); }

 private:
  const std::string labels_;
  std::string out_;
};

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string PrometheusText(std::string_view stats_text, const reclaim::ReclaimStats& reclaim,
                           std::string_view mountpoint) {
  Writer w(mountpoint);
  std::set<std::string> seen;  // a name once, even if two sources print it
  for (absl::string_view line : absl::StrSplit(absl::string_view(stats_text.data(), stats_text.size()), '\n')) {
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words.size() != 2) continue;
    const std::string name(words[0]);
    // Integers print as they are; a few gauges are decimal (PSI averages).
    const std::string text(words[1]);
    double number = 0;
    if (!absl::SimpleAtod(text, &number) || IsHistogramSummary(name) || !seen.insert(name).second) continue;
    if (auto it = Gauges().find(name); it != Gauges().end()) {
      w.Family(it->second.exported, "gauge", it->second.help);
      w.Sample(it->second.exported, text);
    } else if (absl::EndsWith(name, "_us")) {
      const std::string exported = absl::StrCat(name.substr(0, name.size() - 3), "_seconds_total");
      w.Family(exported, "counter", absl::StrCat("Total of ", name, " (reclaimfs-ctl stat), in seconds."));
      w.Sample(exported, absl::StrFormat("%.6f", number / 1e6));
    } else {
      const std::string exported = absl::StrCat(name, "_total");
      w.Family(exported, "counter", absl::StrCat("Count of ", name, " (reclaimfs-ctl stat)."));
      w.Sample(exported, text);
    }
  }
  for (const HistogramSpec& h : kHistograms) {
    const reclaim::LatencyHistogram::Cumulative c = (reclaim.*(h.field)).Snapshot();
    w.Family(h.exported, "histogram", h.help);
    const std::string bucket = absl::StrCat(h.exported, "_bucket");
    for (size_t i = 0; i < c.upper_us.size(); ++i) {
      const std::string le = c.upper_us[i] == UINT64_MAX ? "+Inf" : Seconds(c.upper_us[i]);
      w.Sample(bucket, absl::StrCat(c.counts[i]), absl::StrCat(",le=\"", le, "\""));
    }
    w.Sample(absl::StrCat(h.exported, "_sum"), Seconds(c.sum_us));
    w.Sample(absl::StrCat(h.exported, "_count"), absl::StrCat(c.count));
  }
  return w.Take();
}

}  // namespace reclaimfs::fs

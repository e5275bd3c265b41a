// RunTop: polls `stat`, prints a header every 20 lines and one line a second.
#include "tools/ctl_top.h"

#include <chrono>
#include <cstdio>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "fs/daemon/control_client.h"

namespace reclaimfs::ctl {

namespace {

constexpr double kMiB = 1 << 20;

double Get(const StatValues& v, const std::string& name) {
  auto it = v.find(name);
  return it == v.end() ? 0 : it->second;
}

}  // namespace

StatValues ParseStats(const std::string& text) {
  StatValues values;
  std::istringstream in(text);
  std::string name, value;
  while (in >> name >> value) {
    double d = 0;
    if (absl::SimpleAtod(value, &d)) values[name] = d;
  }
  return values;
}

std::string TopHeader() {
  return absl::StrFormat("%8s %8s %6s %9s %9s %9s %9s %7s %7s %7s %8s %8s\n", "used_MiB", "limit", "hit%",
                         "kswp_scan", "kswp_free", "dir_scan", "dir_free", "stalls", "dirty", "wback",
                         "rd_MiB/s", "wr_MiB/s");
}

std::string TopLine(const StatValues& before, const StatValues& now, double seconds) {
  auto rate = [&](const std::string& name) {
    const double d = Get(now, name) - Get(before, name);
    return seconds > 0 && d > 0 ? d / seconds : 0.0;
  };
  const double page = Get(now, "pagecache_page_size") > 0 ? Get(now, "pagecache_page_size") : 4096;
  const double hits = rate("pagecache_hits"), misses = rate("pagecache_misses");
  const double hit_ratio = hits + misses > 0 ? 100 * hits / (hits + misses) : 100;
  return absl::StrFormat("%8.1f %8.1f %6.1f %9.0f %9.0f %9.0f %9.0f %7.0f %7.1f %7.1f %8.1f %8.1f\n",
                         Get(now, "budget_used") / kMiB, Get(now, "budget_limit") / kMiB, hit_ratio,
                         rate("kswapd_scanned"), rate("kswapd_freed"), rate("direct_scanned"), rate("direct_freed"),
                         rate("allocation_stalls"), Get(now, "pagecache_dirty") * page / kMiB,
                         Get(now, "pagecache_writeback") * page / kMiB,
                         (rate("pagecache_misses") + rate("pagecache_readahead_pages")) * page / kMiB,
                         rate("writeback_pages_written") * page / kMiB);
}

int RunTop(const std::string& socket, const std::string& where, const std::vector<std::string>& args) {
  long count = 0;
  if (args.size() == 2 && args[0] == "-n") {
    if (!absl::SimpleAtoi(args[1], &count) || count < 1) {
      std::fprintf(stderr, "reclaimfs-ctl: top: -n takes a positive count, got '%s'\n", args[1].c_str());
      return 1;
    }
  } else if (!args.empty()) {
    std::fprintf(stderr, "reclaimfs-ctl: top takes no arguments but -n COUNT (got '%s')\n", args[0].c_str());
    return 1;
  }
  auto sample = [&](StatValues* out) {
    auto reply = fs::SendControlCommand(socket, "stat");
    if (!reply.ok()) {
      std::fprintf(stderr, "reclaimfs-ctl: no reclaimfs daemon serves %s (%s)\n", where.c_str(),
                   std::string(reply.status().message()).c_str());
      return false;
    }
    *out = ParseStats(*reply);
    return true;
  };
  StatValues before;
  if (!sample(&before)) return 1;
  auto t0 = std::chrono::steady_clock::now();
  for (long line = 0; count == 0 || line < count; ++line) {
    if (line % 20 == 0) std::fputs(TopHeader().c_str(), stdout);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    StatValues now;
    if (!sample(&now)) return 1;
    const auto t1 = std::chrono::steady_clock::now();
    std::fputs(TopLine(before, now, std::chrono::duration<double>(t1 - t0).count()).c_str(), stdout);
    std::fflush(stdout);
    before = std::move(now);
    t0 = t1;
  }
  return 0;
}

}  // namespace reclaimfs::ctl

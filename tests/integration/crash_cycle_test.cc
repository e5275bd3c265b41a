// The crash_cycle tool on short runs: a few kill -9 cycles with the store
// rotating between 60% and 87% full, and a few on a small store that is never
// freed of durable files so the writers meet ENOSPC. Each run must exit 0 and
// its summary must report durable files verified and none lost. The tool
// finds the daemon and mkfs/fsck in the build tree next to itself.
#include <cstdlib>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/process_util.h"

namespace reclaimfs::itest {
namespace {

struct Summary {
  unsigned cycles = 0, kills = 0;
  unsigned long verified = 0, lost = 0;
  unsigned long enospc = 0;  // summed over the per-cycle lines
};

std::optional<Summary> ParseSummary(const std::string& output) {
  static const std::regex summary(
      R"(crash_cycle: (\d+) cycles, (\d+) kills, (\d+) durable files verified[^,]*, (\d+) lost)");
  static const std::regex enospc(R"(, (\d+) ENOSPC,)");
  std::smatch m;
  if (!std::regex_search(output, m, summary)) return std::nullopt;
  Summary s;
  s.cycles = std::stoul(m[1]);
  s.kills = std::stoul(m[2]);
  s.verified = std::stoul(m[3]);
  s.lost = std::stoul(m[4]);
  for (auto it = std::sregex_iterator(output.begin(), output.end(), enospc); it != std::sregex_iterator(); ++it) {
    s.enospc += std::stoul((*it)[1]);
  }
  return s;
}

// Runs crash_cycle with `args`; fails (printing its whole output) unless it
// exits 0 with a summary line. Returns the summary.
Summary RunCrashCycle(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  const char* bin = std::getenv("CRASH_CYCLE_BIN");
  if (bin == nullptr || *bin == '\0') {
    ADD_FAILURE() << "CRASH_CYCLE_BIN is not set (run through `meson test`)";
    return {};
  }
  std::vector<std::string> argv{bin};
  argv.insert(argv.end(), args.begin(), args.end());
  const RunResult r = RunCapture(argv, timeout);
  EXPECT_FALSE(r.timed_out) << "crash_cycle ran over " << timeout.count() << " s: " << r.Describe();
  EXPECT_EQ(r.exit_code, 0) << "crash_cycle failed: " << r.Describe();
  const std::optional<Summary> s = ParseSummary(r.output);
  EXPECT_TRUE(s.has_value()) << "no summary line in the output: " << r.Describe();
  if (!s) return {};
  std::cout << r.output;  // the per-cycle lines and the summary, for the test log
  return *s;
}

TEST(CrashCycleTest, RotatingStoreLosesNothingAcrossKills) {
  const Summary s = RunCrashCycle({"--cycles", "4", "--store-size", "512M"}, 90s);
  EXPECT_EQ(s.cycles, 4u);
  EXPECT_EQ(s.kills, 4u);
  EXPECT_GT(s.verified, 0u) << "no durable file was verified";
  EXPECT_EQ(s.lost, 0u);
}

TEST(CrashCycleTest, FullStoreLosesNothingAcrossKills) {
  // 192 MiB fill up within the first three or so cycles; the later ones
  // churn at ENOSPC.
  const Summary s = RunCrashCycle({"--cycles", "6", "--space", "fill", "--store-size", "192M",
                                   "--min-kill-ms", "1500", "--max-kill-ms", "2500"},
                                  100s);
  EXPECT_EQ(s.cycles, 6u);
  EXPECT_EQ(s.kills, 6u);
  EXPECT_GT(s.verified, 0u) << "no durable file was verified";
  EXPECT_EQ(s.lost, 0u);
  EXPECT_GT(s.enospc, 0u) << "the store never filled up";
}

}  // namespace
}  // namespace reclaimfs::itest

// reclaim_bench's samples and pictures: a timeline CSV per run (budget use,
// dirty and writeback memory, throughput, sampled while the run goes), a
// CSV of each run's direct-reclaim stall histogram (from the daemon's
// Prometheus buckets), and a gnuplot script that draws both shrinker modes'
// stall distributions and each mode's timeline as PNG files.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace reclaimfs::bench {

struct TimelineSample {
  double t = 0;                 // seconds since the measured phase began
  double used_mib = 0, limit_mib = 0, dirty_mib = 0, writeback_mib = 0;
  double read_mibps = 0, write_mibps = 0;  // over the last interval
};

void WriteTimeline(const std::string& path, const std::vector<TimelineSample>& samples);
// `metrics`: the text of `reclaimfs-ctl metrics`; writes le_us,count (the
// count in each bucket, not cumulative) of `histogram`.
void WriteHistogram(const std::string& path, const std::string& metrics, const std::string& histogram);
// Writes the gnuplot script into `dir` and runs gnuplot there on the CSVs of
// round 1 of `modes`. Returns false (and says why) if gnuplot is missing or
// fails.
bool Plot(const std::string& dir, const std::vector<std::string>& modes);

}  // namespace reclaimfs::bench

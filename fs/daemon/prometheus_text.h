// The daemon's statistics in the Prometheus text exposition format (0.0.4):
// the `reclaimfs-ctl stat` lines as counters (reclaimfs_*_total) and gauges,
// and the reclaim latency histograms as real histograms (_bucket{le=...},
// _sum, _count, in seconds). Every sample carries a mountpoint label.
// Pure functions over text and counters: any thread.
#pragma once

#include <string>
#include <string_view>

#include "reclaim/stats.h"

namespace reclaimfs::fs {

// `stats_text`: "name value" lines (Filesystem::StatsText and friends).
// Names listed as gauges in prometheus_text.cc become gauges (sizes in
// _bytes), the rest counters; *_us counters are exported in seconds; the
// histograms' summary lines (_count, _p50, _p99, _max) are replaced by the
// histograms of `reclaim`.
std::string PrometheusText(std::string_view stats_text, const reclaim::ReclaimStats& reclaim,
                           std::string_view mountpoint);

// A label value with \, " and newline escaped.
std::string EscapeLabelValue(std::string_view value);

}  // namespace reclaimfs::fs

// `reclaimfs-ctl top`: a vmstat-like line a second from the daemon's stat
// counters (the deltas of the counters over the interval).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace reclaimfs::ctl {

using StatValues = std::map<std::string, double>;

// "name value" lines; others are ignored.
StatValues ParseStats(const std::string& text);
std::string TopHeader();
// One line from two samples `seconds` apart.
std::string TopLine(const StatValues& before, const StatValues& now, double seconds);

// Samples every second until `count` lines (0: forever) or an error.
// args: nothing, or "-n N". Returns the exit status.
int RunTop(const std::string& socket, const std::string& where, const std::vector<std::string>& args);

}  // namespace reclaimfs::ctl

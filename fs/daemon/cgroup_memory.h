// The daemon's own cgroup (v2): its memory limit, to warn at mount when it
// is below the budgets, and its memory.pressure file, one of the sources of
// host pressure (reclaim/host_pressure.h) with the system-wide PSI file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace reclaimfs::fs {

// The cgroup v2 directory of this process, from /proc/self/cgroup.
std::optional<std::string> OwnCgroupDir();
// memory.max of that cgroup; nullopt when there is none, or it is "max".
std::optional<uint64_t> CgroupMemoryLimit();
// The PSI files to watch: the cgroup's memory.pressure and the system's
// /proc/pressure/memory, those that can be read.
std::vector<std::string> DefaultPressureFiles();

}  // namespace reclaimfs::fs

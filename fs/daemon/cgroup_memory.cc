// Cgroup lookups: "0::/path" in /proc/self/cgroup names the v2 directory
// under the unified hierarchy's mount; v1's memory controller is a fallback
// for the limit only (v1 has no memory.pressure).
#include "fs/daemon/cgroup_memory.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"

namespace reclaimfs::fs {

namespace {

constexpr char kCgroupRoot[] = "/sys/fs/cgroup";

std::optional<std::string> ReadText(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::optional<std::string> OwnCgroupDir() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "0::")) return std::string(kCgroupRoot) + line.substr(3);
  }
  return std::nullopt;
}

std::optional<uint64_t> CgroupMemoryLimit() {
  std::optional<std::string> text;
  if (const std::optional<std::string> dir = OwnCgroupDir()) text = ReadText(*dir + "/memory.max");
  if (!text) {
    // cgroup v1's memory controller ("N:memory:/path"), where v2 has none.
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line)) {
      const size_t at = line.find(":memory:");
      if (at == std::string::npos) continue;
      text = ReadText(std::string(kCgroupRoot) + "/memory" + line.substr(at + 8) + "/memory.limit_in_bytes");
      break;
    }
  }
  if (!text) return std::nullopt;
  uint64_t limit = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &limit)) return std::nullopt;  // "max"
  // v1 says "no limit" with a huge number (a page-rounded INT64_MAX).
  if (limit >= (uint64_t{1} << 62)) return std::nullopt;
  return limit;
}

std::vector<std::string> DefaultPressureFiles() {
  std::vector<std::string> files;
  if (const std::optional<std::string> dir = OwnCgroupDir()) {
    const std::string own = *dir + "/memory.pressure";
    if (ReadText(own)) files.push_back(own);
  }
  if (ReadText("/proc/pressure/memory")) files.push_back("/proc/pressure/memory");
  return files;
}

}  // namespace reclaimfs::fs

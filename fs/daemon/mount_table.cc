// mountinfo parsing. Line format (proc(5)):
//   id parent major:minor root mount_point mount_options [tags...] - fstype source super_options
// with space, tab, newline and backslash in paths escaped as \ooo octal.
#include "fs/daemon/mount_table.h"

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace reclaimfs::fs {
namespace {

std::string Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Splits on `sep`, dropping empty pieces.
std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const size_t end = s.find(sep);
    std::string_view piece = s.substr(0, end);
    if (!piece.empty()) out.push_back(piece);
    if (end == std::string_view::npos) break;
    s.remove_prefix(end + 1);
  }
  return out;
}

std::vector<std::string> SplitCommas(std::string_view s) {
  std::vector<std::string> out;
  for (std::string_view piece : Split(s, ',')) out.emplace_back(piece);
  return out;
}

}  // namespace

bool MountEntry::HasMountOption(std::string_view opt) const {
  for (const std::string& o : mount_options) {
    if (o == opt) return true;
  }
  return false;
}

bool MountEntry::superblock_read_only() const {
  for (const std::string& o : super_options) {
    if (o == "ro") return true;
  }
  return false;
}

unsigned long MountEntry::MountFlags() const {
  static constexpr std::pair<std::string_view, unsigned long> kFlags[] = {
      {"ro", MS_RDONLY},         {"nosuid", MS_NOSUID},       {"nodev", MS_NODEV},
      {"noexec", MS_NOEXEC},     {"sync", MS_SYNCHRONOUS},   {"noatime", MS_NOATIME},
      {"nodiratime", MS_NODIRATIME}, {"relatime", MS_RELATIME}, {"dirsync", MS_DIRSYNC},
  };
  unsigned long flags = 0;
  for (const auto& [name, bit] : kFlags) {
    if (HasMountOption(name)) flags |= bit;
  }
  if (superblock_read_only()) flags |= MS_RDONLY;
  return flags;
}

bool MountEntry::is_fuse() const {
  return fstype == "fuse" || fstype == "fuseblk" || fstype.rfind("fuse.", 0) == 0 ||
         fstype.rfind("fuseblk.", 0) == 0;
}

std::vector<MountEntry> ParseMountInfo(std::string_view text) {
  std::vector<MountEntry> table;
  for (std::string_view line : Split(text, '\n')) {
    std::vector<std::string_view> f = Split(line, ' ');
    size_t dash = 0;
    for (size_t i = 6; i < f.size(); ++i) {
      if (f[i] == "-") {
        dash = i;
        break;
      }
    }
    if (dash == 0 || dash + 2 >= f.size()) continue;
    MountEntry e;
    if (!absl::SimpleAtoi(absl::string_view(f[0].data(), f[0].size()), &e.id)) continue;
    e.device = std::string(f[2]);
    e.root = Unescape(f[3]);
    e.mount_point = Unescape(f[4]);
    e.mount_options = SplitCommas(f[5]);
    e.fstype = Unescape(f[dash + 1]);
    e.source = Unescape(f[dash + 2]);
    if (dash + 3 < f.size()) e.super_options = SplitCommas(f[dash + 3]);
    table.push_back(std::move(e));
  }
  return table;
}

absl::StatusOr<std::vector<MountEntry>> ReadMountTable(std::string_view path) {
  const std::string name(path);
  std::ifstream in(name);
  if (!in) return absl::UnavailableError(absl::StrCat("cannot read ", name, ": ", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  return ParseMountInfo(text.str());
}

std::optional<MountEntry> FindTopMount(const std::vector<MountEntry>& table, std::string_view mount_point) {
  std::optional<MountEntry> found;
  for (const MountEntry& e : table) {
    if (e.mount_point == mount_point) found = e;
  }
  return found;
}

std::vector<MountEntry> FindMountsOfDevice(const std::vector<MountEntry>& table, std::string_view device) {
  std::vector<MountEntry> found;
  for (const MountEntry& e : table) {
    if (e.device == device && e.root == "/") found.push_back(e);
  }
  return found;
}

std::optional<MountEntry> FindMountById(const std::vector<MountEntry>& table, uint64_t id) {
  for (const MountEntry& e : table) {
    if (e.id == id) return e;
  }
  return std::nullopt;
}

}  // namespace reclaimfs::fs

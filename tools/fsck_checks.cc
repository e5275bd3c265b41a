// fsck's consistency checks; see fsck_checks.h. Everything is loaded into
// memory first (inodes, entries, extents), then cross-checked.
#include "tools/fsck_checks.h"

#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace reclaimfs::tools {

namespace {

using storage::DirEntry;
using storage::Extent;
using storage::InodeRecord;
using storage::kRootIno;
using storage::MetaStore;

constexpr size_t kMaxReported = 1000;
constexpr uint64_t kFirstCookie = 3;  // 1 and 2 are "." and ".."

struct InodeInfo {
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint64_t parent = 0;
  uint64_t next_cookie = 0;
  uint64_t names = 0;    // entries naming it
  uint64_t subdirs = 0;  // directories: entries naming a directory
  uint64_t entries = 0;  // directories: entries in it
  std::vector<uint64_t> parents;  // directories that name it
  bool orphan = false;
  bool is_dir() const { return S_ISDIR(mode); }
};

struct DiskRange {
  uint64_t start, length;
  uint64_t ino, file_block;
  uint64_t end() const { return start + length; }
};

class Checker {
 public:
  Checker(MetaStore& meta, FsckReport& report) : meta_(meta), r_(report) {}

  void Run(std::optional<uint64_t> data_file_bytes) {
    CheckSuperblock(data_file_bytes);
    if (!LoadInodes()) return;
    LoadOrphans();
    CheckEntries();
    CheckCookieIndex();
    CheckLinkCounts();
    CheckTree();
    CheckExtentsAndFreeSpace();
  }

 private:
  template <typename... Args>
  void Problem(const absl::FormatSpec<Args...>& format, const Args&... args) {
    ++r_.problem_count;
    if (r_.problems.size() < kMaxReported) r_.problems.push_back(absl::StrFormat(format, args...));
  }

  InodeInfo* Find(uint64_t ino) {
    auto it = inodes_.find(ino);
    return it == inodes_.end() ? nullptr : &it->second;
  }

  void CheckSuperblock(std::optional<uint64_t> data_file_bytes) {
    auto sb = meta_.ReadSuperblock();
    if (!sb.ok()) {
      Problem("superblock: %s", std::string(sb.status().message()));
      if (data_file_bytes) r_.total_blocks = *data_file_bytes / storage::kDefaultBlockSize;
      return;
    }
    r_.total_blocks = sb->total_blocks();
    if (data_file_bytes && *data_file_bytes != sb->size_bytes) {
      Problem("superblock: data file is %d bytes, the superblock says %d", *data_file_bytes,
              sb->size_bytes);
    }
  }

  bool LoadInodes() {
    absl::Status s = meta_.ForEachInode([&](const InodeRecord& rec) {
      InodeInfo& info = inodes_[rec.ino];
      info.mode = rec.mode;
      info.nlink = rec.nlink;
      info.parent = rec.parent;
      info.next_cookie = rec.next_dir_cookie;
      return true;
    });
    if (!s.ok()) Problem("inodes: %s (the scan stopped there)", std::string(s.message()));
    r_.inodes = inodes_.size();
    const InodeInfo* root = Find(kRootIno);
    if (root == nullptr) {
      Problem("root directory (inode %d) is missing", kRootIno);
      return false;
    }
    if (!root->is_dir()) Problem("root inode %d is not a directory (mode 0%o)", kRootIno, root->mode);
    if (root->parent != kRootIno) Problem("root directory's parent is %d, not itself", root->parent);
    return true;
  }

  void LoadOrphans() {
    absl::Status s = meta_.ForEachOrphan([&](uint64_t ino) {
      ++r_.orphans;
      InodeInfo* info = Find(ino);
      if (info == nullptr) {
        Problem("orphan list names inode %d, which does not exist", ino);
      } else {
        info->orphan = true;
        if (info->nlink != 0) Problem("orphan list names inode %d, whose nlink is %d, not 0", ino, info->nlink);
      }
      return true;
    });
    if (!s.ok()) Problem("orphans: %s", std::string(s.message()));
  }

  void CheckEntries() {
    std::set<std::pair<uint64_t, uint64_t>> cookies;
    absl::Status s = meta_.ForEachDentry([&](uint64_t parent, std::string_view name_view,
                                             const DirEntry& e) {
      ++r_.dentries;
      const std::string name(name_view);
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
          name.find('\0') != std::string::npos) {
        Problem("directory %d has an entry with an invalid name '%s'", parent, name);
      }
      InodeInfo* dir = Find(parent);
      if (dir == nullptr) {
        Problem("entry '%s' is in directory %d, which does not exist", name, parent);
      } else if (!dir->is_dir()) {
        Problem("entry '%s' is in inode %d, which is not a directory", name, parent);
      } else {
        ++dir->entries;
        if (e.cookie < kFirstCookie || e.cookie >= dir->next_cookie) {
          Problem("entry '%s' in directory %d has cookie %d outside [%d, %d)", name, parent,
                  e.cookie, kFirstCookie, dir->next_cookie);
        }
      }
      if (!cookies.insert({parent, e.cookie}).second) {
        Problem("directory %d has two entries with cookie %d (one is '%s')", parent, e.cookie, name);
      }
      InodeInfo* target = Find(e.ino);
      if (target == nullptr) {
        Problem("entry '%s' in directory %d names inode %d, which does not exist", name, parent, e.ino);
        return true;
      }
      if (e.ino == kRootIno) Problem("entry '%s' in directory %d names the root directory", name, parent);
      if ((target->mode & S_IFMT) != e.type) {
        Problem("entry '%s' in directory %d says type 0%o, inode %d has type 0%o", name, parent,
                e.type, e.ino, target->mode & S_IFMT);
      }
      ++target->names;
      if (target->is_dir()) {
        target->parents.push_back(parent);
        if (dir != nullptr) ++dir->subdirs;
      }
      children_[parent].push_back(e.ino);
      return true;
    });
    if (!s.ok()) Problem("directory entries: %s (the scan stopped there)", std::string(s.message()));
  }

  // Readdir walks the cookie index; it must list exactly the entries.
  void CheckCookieIndex() {
    for (auto& [ino, info] : inodes_) {
      if (!info.is_dir()) continue;
      uint64_t listed = 0;
      absl::Status s = meta_.ListDir(ino, 0, [&](std::string_view, const DirEntry&) {
        ++listed;
        return true;
      });
      if (!s.ok()) {
        Problem("directory %d: cannot list: %s", ino, std::string(s.message()));
      } else if (listed != info.entries) {
        Problem("directory %d: readdir index lists %d entries, %d exist", ino, listed, info.entries);
      }
    }
  }

  void CheckLinkCounts() {
    for (auto& [ino, info] : inodes_) {
      if (info.nlink == 0) {
        if (!info.orphan) Problem("inode %d has nlink 0 but is not in the orphan list (leaked)", ino);
        if (info.names != 0) Problem("inode %d has nlink 0 but %d entries name it", ino, info.names);
        continue;
      }
      if (info.is_dir()) {
        const uint64_t expect = 2 + info.subdirs;
        if (info.nlink != expect) {
          Problem("directory %d has nlink %d, expected %d (2 + %d subdirectories)", ino, info.nlink,
                  expect, info.subdirs);
        }
        const uint64_t want_names = ino == kRootIno ? 0 : 1;
        if (info.names > want_names) {
          Problem("directory %d has %d names (a directory has exactly one)", ino, info.names);
        }
        if (info.parents.size() == 1 && info.parent != info.parents[0]) {
          Problem("directory %d records parent %d but is named in directory %d", ino, info.parent,
                  info.parents[0]);
        }
      } else if (info.nlink != info.names) {
        Problem("inode %d has nlink %d but %d entries name it", ino, info.nlink, info.names);
      }
    }
  }

  // Walks the tree from the root; what is not reached is disconnected, and a
  // disconnected directory whose parents lead back to itself is a cycle.
  void CheckTree() {
    std::unordered_set<uint64_t> reached{kRootIno};
    std::deque<uint64_t> queue{kRootIno};
    while (!queue.empty()) {
      const uint64_t dir = queue.front();
      queue.pop_front();
      auto it = children_.find(dir);
      if (it == children_.end()) continue;
      for (uint64_t child : it->second) {
        const InodeInfo* info = Find(child);
        if (info == nullptr || !reached.insert(child).second) continue;
        if (info->is_dir()) queue.push_back(child);
      }
    }
    std::unordered_set<uint64_t> in_reported_cycle;
    for (auto& [ino, info] : inodes_) {
      if (reached.count(ino) || (info.nlink == 0 && info.names == 0)) continue;
      if (in_reported_cycle.count(ino)) continue;
      if (info.names == 0) {
        Problem("inode %d (nlink %d) is not reachable from the root: no entry names it", ino, info.nlink);
        continue;
      }
      // A named file is cut off only through its directory, reported itself.
      if (!info.is_dir()) continue;
      // Follow parents upward while they stay unreached.
      std::vector<uint64_t> path{ino};
      std::unordered_set<uint64_t> on_path{ino};
      uint64_t cur = ino;
      bool cycle = false;
      for (;;) {
        const InodeInfo* ci = Find(cur);
        uint64_t up = 0;
        if (ci != nullptr && !ci->parents.empty()) up = ci->parents[0];
        if (up == 0 || reached.count(up) || Find(up) == nullptr) break;
        if (on_path.count(up)) {
          cycle = true;
          auto from = std::find(path.begin(), path.end(), up);
          std::string ring;
          for (auto p = from; p != path.end(); ++p) {
            absl::StrAppend(&ring, *p, " -> ");
            in_reported_cycle.insert(*p);
          }
          absl::StrAppend(&ring, up);
          Problem("directory cycle disconnected from the root: %s", ring);
          break;
        }
        path.push_back(up);
        on_path.insert(up);
        cur = up;
      }
      if (!cycle) Problem("inode %d is not reachable from the root (disconnected subtree)", ino);
    }
  }

  void CheckExtentsAndFreeSpace() {
    const uint64_t total = r_.total_blocks;
    std::vector<DiskRange> used;
    uint64_t prev_ino = 0, prev_file_end = 0;
    bool have_prev = false;
    absl::Status s = meta_.ForEachExtent([&](uint64_t ino, const Extent& e) {
      ++r_.extents;
      const InodeInfo* owner = Find(ino);
      if (owner == nullptr) {
        Problem("extent at file block %d belongs to inode %d, which does not exist", e.file_block, ino);
      } else if (!S_ISREG(owner->mode)) {
        Problem("inode %d is not a regular file but has an extent at file block %d", ino, e.file_block);
      }
      if (have_prev && prev_ino == ino && e.file_block < prev_file_end) {
        Problem("inode %d: extent at file block %d overlaps the previous one (ending at %d)", ino,
                e.file_block, prev_file_end);
      }
      have_prev = true;
      prev_ino = ino;
      prev_file_end = e.file_end();
      if (e.disk_block >= total || e.length > total - e.disk_block) {
        Problem("inode %d: extent at file block %d maps disk blocks [%d, %d), outside the data file (%d blocks)",
                ino, e.file_block, e.disk_block, e.disk_block + e.length, total);
        return true;
      }
      used.push_back(DiskRange{e.disk_block, e.length, ino, e.file_block});
      r_.used_blocks += e.length;
      return true;
    });
    if (!s.ok()) Problem("extents: %s (the scan stopped there)", std::string(s.message()));

    std::sort(used.begin(), used.end(),
              [](const DiskRange& a, const DiskRange& b) { return a.start < b.start; });
    // Compare each range with the one reaching furthest so far, so an
    // overlap with any earlier range is found.
    const DiskRange* furthest = nullptr;
    for (const DiskRange& d : used) {
      if (furthest != nullptr && d.start < furthest->end()) {
        Problem("disk blocks [%d, %d) are used twice: inode %d file block %d and inode %d file block %d",
                d.start, std::min(d.end(), furthest->end()), furthest->ino, furthest->file_block, d.ino,
                d.file_block);
      }
      if (furthest == nullptr || d.end() > furthest->end()) furthest = &d;
    }

    std::vector<std::pair<uint64_t, uint64_t>> free;
    uint64_t prev_end = 0;
    s = meta_.ForEachFreeExtent([&](uint64_t start, uint64_t length) {
      if (length == 0) {
        Problem("free extent at block %d has length 0", start);
        return true;
      }
      if (start >= total || length > total - start) {
        Problem("free extent [%d, %d) lies outside the data file (%d blocks)", start, start + length, total);
        return true;
      }
      if (start < prev_end) {
        Problem("free extent [%d, %d) overlaps the previous free extent (ending at %d)", start,
                start + length, prev_end);
      }
      prev_end = std::max(prev_end, start + length);
      free.emplace_back(start, length);
      r_.free_blocks += length;
      return true;
    });
    if (!s.ok()) Problem("free space: %s (the scan stopped there)", std::string(s.message()));

    // Both lists are sorted by start: walk them together.
    size_t u = 0;
    for (const auto& [fstart, flen] : free) {
      const uint64_t fend = fstart + flen;
      while (u < used.size() && used[u].end() <= fstart) ++u;
      for (size_t k = u; k < used.size() && used[k].start < fend; ++k) {
        if (used[k].end() > fstart) {
          Problem("disk blocks [%d, %d) are both free and used by inode %d (file block %d)",
                  std::max(fstart, used[k].start), std::min(fend, used[k].end()), used[k].ino,
                  used[k].file_block);
        }
      }
    }
    if (r_.used_blocks + r_.free_blocks != total) {
      Problem("block accounting: %d used + %d free = %d, but the data file has %d blocks%s",
              r_.used_blocks, r_.free_blocks, r_.used_blocks + r_.free_blocks, total,
              r_.used_blocks + r_.free_blocks < total ? " (blocks leaked)" : "");
    }
  }

  MetaStore& meta_;
  FsckReport& r_;
  std::map<uint64_t, InodeInfo> inodes_;
  std::unordered_map<uint64_t, std::vector<uint64_t>> children_;  // dir -> inodes it names
};

}  // namespace

std::string FsckReport::Summary() const {
  return absl::StrFormat(
      "%d inodes, %d entries, %d extents, %d orphans; blocks: %d used + %d free of %d; %s", inodes,
      dentries, extents, orphans, used_blocks, free_blocks, total_blocks,
      clean() ? "clean" : absl::StrFormat("%d problem%s found", problem_count, problem_count == 1 ? "" : "s"));
}

FsckReport CheckMetadata(MetaStore& meta, std::optional<uint64_t> data_file_bytes) {
  FsckReport report;
  Checker(meta, report).Run(data_file_bytes);
  return report;
}

absl::StatusOr<FsckReport> CheckStore(const std::string& store_dir) {
  const std::string meta_dir = store_dir + "/" + storage::kMetaDirName;
  const std::string data_path = store_dir + "/" + storage::kDataFileName;
  struct stat st;
  if (::stat(store_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat(store_dir, " is not a directory"));
  }
  storage::MetaOptions options;
  options.read_only = true;
  options.lock_wait_ms = 0;
  auto meta = MetaStore::Open(meta_dir, options);
  if (!meta.ok()) return meta.status();

  std::optional<uint64_t> data_bytes;
  FsckReport report;
  if (::stat(data_path.c_str(), &st) == 0) {
    data_bytes = static_cast<uint64_t>(st.st_size);
    report = CheckMetadata(**meta, data_bytes);
  } else {
    report = CheckMetadata(**meta, std::nullopt);
    ++report.problem_count;
    report.problems.insert(report.problems.begin(), absl::StrCat("data file ", data_path, " is missing"));
  }
  return report;
}

}  // namespace reclaimfs::tools

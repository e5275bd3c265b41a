// crash_cycle: verification after a crash; see crash_cycle_verify.h.
#include "tools/crash_cycle_verify.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>
#include <thread>

namespace crash_cycle {
namespace {

constexpr uint64_t kBlock = 4096;
constexpr size_t kRenderChunk = 1 << 20;

std::string ErrnoText(int err) { return std::string(strerrorname_np(err)) + " (" + strerror(err) + ")"; }

// First offset in [off, off + actual.size()) where `actual` differs from the
// content (which must cover the range), or nullopt.
std::optional<uint64_t> DiffRange(const Content& c, uint64_t off, std::string_view actual) {
  std::string expected;
  for (uint64_t done = 0; done < actual.size();) {
    const size_t n = std::min<uint64_t>(kRenderChunk, actual.size() - done);
    expected.resize(n);
    c.Render(off + done, expected);
    const std::string_view got = actual.substr(done, n);
    if (got != expected) {
      const auto mm = std::mismatch(got.begin(), got.end(), expected.begin());
      return off + done + static_cast<uint64_t>(mm.first - got.begin());
    }
    done += n;
  }
  return std::nullopt;
}

// First offset where the file differs from the content (a shorter or longer
// file differs where the shorter one ends), or nullopt when identical.
std::optional<uint64_t> FirstDifference(const Content& c, std::string_view actual) {
  const uint64_t common = std::min<uint64_t>(c.size(), actual.size());
  if (auto d = DiffRange(c, 0, actual.substr(0, common))) return d;
  if (c.size() != actual.size()) return common;
  return std::nullopt;
}

bool AllZero(std::string_view s) { return s.find_first_not_of('\0') == std::string_view::npos; }

// How many 4 KiB blocks (by file offset) of two contents of one size differ.
uint64_t DiffBlocks(const Content& a, const Content& b) {
  uint64_t n = 0;
  std::string x, y;
  for (uint64_t start = 0; start < a.size(); start += kBlock) {
    const uint64_t len = std::min<uint64_t>(kBlock, a.size() - start);
    x.resize(len);
    y.resize(len);
    a.Render(start, x);
    b.Render(start, y);
    n += x != y ? 1 : 0;
  }
  return n;
}

// An append cut short by the crash: the old content intact, then a prefix of
// the appended data in which whole 4 KiB blocks (by file offset) may read as
// zeros (the size got out before the data). Returns what was found, as
// content, or nullopt if the file is not such a state.
std::optional<Content> MatchTornAppend(const Content& old, const Content& target, std::string_view actual) {
  if (actual.size() < old.size() || actual.size() > target.size()) return std::nullopt;
  if (DiffRange(old, 0, actual.substr(0, old.size()))) return std::nullopt;
  Content found = target;
  found.Resize(actual.size());
  for (uint64_t start = old.size(); start < actual.size();) {
    const uint64_t end = std::min<uint64_t>(actual.size(), (start / kBlock + 1) * kBlock);
    const std::string_view got = actual.substr(start, end - start);
    if (DiffRange(target, start, got)) {
      if (!AllZero(got)) return std::nullopt;
      found.Zero(start, end - start);
    }
    start = end;
  }
  return found;
}

// A punch cut short by the crash: the size unchanged and every 4 KiB block
// (by file offset) either as before or as punched. Returns what was found,
// and how many blocks hold the punched state, or nullopt.
std::optional<Content> MatchTornPunch(const Content& old, const Content& target, std::string_view actual,
                                      uint64_t* punched_blocks) {
  if (actual.size() != old.size() || target.size() != old.size()) return std::nullopt;
  Content found;
  *punched_blocks = 0;
  for (uint64_t start = 0; start < actual.size(); start += kBlock) {
    const uint64_t n = std::min<uint64_t>(kBlock, actual.size() - start);
    const std::string_view got = actual.substr(start, n);
    if (!DiffRange(old, start, got)) {
      found.AppendFrom(old, start, n);
    } else if (!DiffRange(target, start, got)) {
      found.AppendFrom(target, start, n);
      ++*punched_blocks;
    } else {
      return std::nullopt;
    }
  }
  return found;
}

struct FileRead {
  int err = 0;
  std::string what;  // the failing call
  std::string data;
  std::optional<std::string> xattr;
};

FileRead ReadWhole(int root_fd, const std::string& name) {
  FileRead r;
  const int fd = openat(root_fd, name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r.err = errno;
    r.what = "open";
    return r;
  }
  struct stat st{};
  if (fstat(fd, &st) == 0) r.data.reserve(st.st_size);
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.err = errno;
      r.what = "read at offset " + std::to_string(r.data.size());
      break;
    }
    if (n == 0) break;
    r.data.append(buf, n);
  }
  char value[512];
  const ssize_t n = r.err ? 0 : fgetxattr(fd, "user.k", value, sizeof value);
  if (n >= 0 && !r.err) {
    r.xattr = std::string(value, n);
  } else if (!r.err && errno != ENODATA) {
    r.err = errno;
    r.what = "getxattr user.k";
  }
  close(fd);
  return r;
}

bool ChangesContent(Variant v) {
  return v == Variant::kTmpRename || v == Variant::kAppend || v == Variant::kTruncate || v == Variant::kPunch;
}

std::string Hex(std::string_view s) {
  std::string out;
  char b[4];
  for (unsigned char c : s) {
    std::snprintf(b, sizeof b, "%02x", c);
    out += b;
  }
  return out;
}

enum class Fate { kNone, kApplied, kPartial, kNotApplied };

// The outcome for one inode, applied to the model after all are checked.
struct Check {
  Inode resolved;  // what was found, as the new committed state
  bool lost = false;
  std::string report;
  std::string note;  // a torn change, described
  Fate fate = Fate::kNone;
  uint64_t bytes = 0;
};

class InodeChecker {
 public:
  InodeChecker(const Model& model, int root_fd, unsigned cycle) : model_(model), root_fd_(root_fd), cycle_(cycle) {}
  Check Run(const Inode& ino);

 private:
  void LookUp(const std::string& name, bool required);
  void CheckLinks();
  void CheckXattr(const Inode& ino, const std::optional<std::string>& found, Check& c);
  std::optional<Content> MatchContent(const Inode& ino, const std::string& data, Fate* fate, std::string* note);
  std::string DescribeMismatch(const Inode& ino, const std::string& data);
  std::string DescribeExpected(const Content& c, uint64_t off) const;
  std::string DescribeFound(std::string_view data, uint64_t off) const;
  // ", written for NAME" for a seed whose data was meant for a durable file.
  std::string Owner(uint64_t seed) const;
  std::string Report(const Inode& ino) const;

  const Model& model_;
  const int root_fd_;
  const unsigned cycle_;
  std::vector<std::string> names_;  // every name of the inode being checked
  std::vector<std::string> present_;
  std::vector<struct stat> stats_;
  std::vector<std::string> problems_;
};

void InodeChecker::LookUp(const std::string& name, bool required) {
  struct stat st{};
  if (fstatat(root_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) {
      problems_.push_back(name + ": stat failed with " + ErrnoText(errno));
    } else if (required) {
      problems_.push_back(name + ": missing");
    }
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%o", st.st_mode);
    problems_.push_back(name + ": not a regular file (mode " + mode + ")");
    return;
  }
  present_.push_back(name);
  stats_.push_back(st);
}

Check InodeChecker::Run(const Inode& ino) {
  present_.clear();
  stats_.clear();
  problems_.clear();
  names_ = ino.names;
  if (ino.pending && !ino.pending->add_name.empty()) names_.push_back(ino.pending->add_name);
  Check c;
  c.resolved = ino;
  const Pending* p = ino.pending ? &*ino.pending : nullptr;
  for (const std::string& name : ino.names) LookUp(name, !(p && p->remove_name == name));
  if (p && !p->add_name.empty()) LookUp(p->add_name, false);

  if (p && (p->variant == Variant::kTmpRename || p->variant == Variant::kLink)) {
    c.fate = std::count(present_.begin(), present_.end(), p->add_name) ? Fate::kApplied : Fate::kNotApplied;
  } else if (p && p->variant == Variant::kRotate) {
    c.fate = std::count(present_.begin(), present_.end(), p->remove_name) ? Fate::kNotApplied : Fate::kApplied;
  }
  c.resolved.names = present_;
  if (present_.empty()) {  // a creation that did not happen, or a deletion that did
    if (problems_.empty()) return c;
    c.lost = true;
    c.report = Report(ino);
    return c;
  }
  CheckLinks();
  const FileRead r = ReadWhole(root_fd_, present_[0]);
  c.bytes = r.data.size();
  if (r.err != 0) {
    problems_.push_back(present_[0] + ": " + r.what + " failed with " + ErrnoText(r.err));
  } else {
    if (auto found = MatchContent(ino, r.data, &c.fate, &c.note)) {
      c.resolved.committed.content = std::move(*found);
    } else {
      problems_.push_back(DescribeMismatch(ino, r.data));
    }
    CheckXattr(ino, r.xattr, c);
  }
  if (!problems_.empty()) {
    c.lost = true;
    c.report = Report(ino);
    return c;
  }
  c.resolved.born = true;
  if (c.fate == Fate::kApplied || c.fate == Fate::kPartial) {
    c.resolved.last_by = p->variant;
    c.resolved.last_cycle = p->cycle;
    if (!p->how.empty()) c.resolved.how = p->how;
  }
  return c;
}

// All present names must be one file, with at least as many links.
void InodeChecker::CheckLinks() {
  for (size_t i = 1; i < stats_.size(); ++i) {
    if (stats_[i].st_ino != stats_[0].st_ino) {
      problems_.push_back(present_[i] + " is not the same file as " + present_[0] + " (inode " +
                          std::to_string(stats_[i].st_ino) + " vs " + std::to_string(stats_[0].st_ino) + ")");
    }
  }
  if (stats_[0].st_nlink < present_.size()) {
    problems_.push_back(present_[0] + ": st_nlink " + std::to_string(stats_[0].st_nlink) + " but " +
                        std::to_string(present_.size()) + " names are present");
  }
}

// user.k must hold the committed value, or the pending one.
void InodeChecker::CheckXattr(const Inode& ino, const std::optional<std::string>& found, Check& c) {
  const Pending* p = ino.pending ? &*ino.pending : nullptr;
  const std::optional<Xattr>& committed = ino.born ? ino.committed.xattr : p->state.xattr;
  auto same = [&](const std::optional<Xattr>& x) { return x ? found == x->Value() : !found; };
  if (p && p->variant == Variant::kXattr && same(p->state.xattr)) {
    c.resolved.committed.xattr = p->state.xattr;
    c.fate = Fate::kApplied;
  } else if (same(committed)) {
    c.resolved.committed.xattr = committed;
    if (p && p->variant == Variant::kXattr) c.fate = Fate::kNotApplied;
  } else {
    problems_.push_back("xattr user.k: expected " +
                        (committed ? std::to_string(committed->len) + " bytes" : std::string("none")) + ", found " +
                        (found ? std::to_string(found->size()) + " bytes" : std::string("none")));
  }
}

// Which acceptable content the file holds: the pending change's, the
// committed one, or a torn state between them (an append or a punch).
std::optional<Content> InodeChecker::MatchContent(const Inode& ino, const std::string& data, Fate* fate,
                                                  std::string* note) {
  const Pending* p = ino.pending ? &*ino.pending : nullptr;
  const Content* target = p && ChangesContent(p->variant) ? &p->state.content : nullptr;
  const Content* committed = ino.born ? &ino.committed.content : nullptr;
  if (target && !FirstDifference(*target, data)) {
    *fate = Fate::kApplied;
    return *target;
  }
  if (committed && !FirstDifference(*committed, data)) {
    if (target) *fate = Fate::kNotApplied;
    return *committed;
  }
  if (!committed || !target) return std::nullopt;
  const std::string what = "after kill " + std::to_string(cycle_) + ": " + present_[0] + " (file " +
                           std::to_string(ino.id) + "): the pending " + VariantName(p->variant) + " from cycle " +
                           std::to_string(p->cycle) + " was found torn: ";
  std::optional<Content> torn;
  if (p->variant == Variant::kAppend && (torn = MatchTornAppend(*committed, *target, data))) {
    *note = what + std::to_string(data.size() - committed->size()) + " of " +
            std::to_string(target->size() - committed->size()) + " appended bytes are there";
  }
  uint64_t punched = 0;
  if (p->variant == Variant::kPunch && (torn = MatchTornPunch(*committed, *target, data, &punched))) {
    const uint64_t differ = DiffBlocks(*committed, *target);
    *note = what + std::to_string(punched) + " of the " + std::to_string(differ) +
            " 4 KiB blocks it changes hold the punched state, the others the old data";
  }
  if (torn) *fate = Fate::kPartial;
  return torn;
}

std::string InodeChecker::DescribeMismatch(const Inode& ino, const std::string& data) {
  const Pending* p = ino.pending ? &*ino.pending : nullptr;
  // Compare against the durable state; a file never committed only has its pending one.
  const Content& expected = ino.born ? ino.committed.content : p->state.content;
  const uint64_t d = FirstDifference(expected, data).value_or(0);
  uint64_t blocks = 0, differ = 0, zero = 0;
  const uint64_t common = std::min<uint64_t>(expected.size(), data.size());
  std::string want;
  for (uint64_t off = 0; off < common; off += kBlock, ++blocks) {
    const uint64_t n = std::min(kBlock, common - off);
    want.resize(n);
    expected.Render(off, want);
    const std::string_view got(data.data() + off, n);
    if (got != want) {
      ++differ;
      zero += AllZero(got) ? 1 : 0;
    }
  }
  std::string out = "content differs: expected size " + std::to_string(expected.size()) + ", actual size " +
                    std::to_string(data.size()) + ", first difference at offset " + std::to_string(d) + "; " +
                    std::to_string(differ) + " of " + std::to_string(blocks) + " 4 KiB blocks in the common " +
                    "range differ (" + std::to_string(zero) + " of them all zeros)";
  if (d < expected.size()) out += "\n      expected there: " + DescribeExpected(expected, d);
  out += "\n      found there:    " + DescribeFound(data, d);
  if (p && ChangesContent(p->variant) && ino.born) {
    const uint64_t d2 = FirstDifference(p->state.content, data).value_or(0);
    out += std::string("\n      the pending ") + VariantName(p->variant) + " state (size " +
           std::to_string(p->state.content.size()) + ") does not match either: first difference at offset " +
           std::to_string(d2);
  }
  return out;
}

std::string InodeChecker::DescribeExpected(const Content& c, uint64_t off) const {
  const Segment s = c.At(off);
  if (s.zeros()) return "zeros (a hole or an extension), " + std::to_string(s.len) + " bytes of them";
  return DescribeSeed(s.seed) + " at stream offset " + std::to_string(s.pos) + Owner(s.seed);
}

std::string InodeChecker::Owner(uint64_t seed) const {
  const std::string owner = model_.SeedOwner(seed);
  if (owner.empty()) return "";
  const std::string name = owner.substr(0, owner.find(' '));
  const bool own = std::find(names_.begin(), names_.end(), name) != names_.end();
  return ", written for " + owner + (own ? " (this file's own data)" : "");
}

std::string InodeChecker::DescribeFound(std::string_view data, uint64_t off) const {
  if (off >= data.size()) return "end of file";
  const std::string_view rest = data.substr(off);
  const size_t zeros = std::min(rest.find_first_not_of('\0'), rest.size());
  if (zeros >= std::min<size_t>(rest.size(), 64)) {
    return "zeros (" + std::to_string(zeros) + " bytes" + (zeros == rest.size() ? ", to the end of the file)" : ")");
  }
  if (auto tag = FindTagBefore(data, off)) {
    // Trust the tag only if the bytes at `off` really continue its stream.
    const uint64_t pos = tag->pos + (off - tag->offset);
    std::string probe(std::min<size_t>(rest.size(), 32), '\0');
    FillStream(tag->seed, pos, probe);
    if (rest.substr(0, probe.size()) == probe) {
      return DescribeSeed(tag->seed) + " at stream offset " + std::to_string(pos) + Owner(tag->seed);
    }
  }
  return "untagged bytes " + Hex(rest.substr(0, 16));
}

std::string InodeChecker::Report(const Inode& ino) const {
  std::vector<std::string> names = ino.names;
  if (ino.pending && !ino.pending->add_name.empty()) names.push_back(ino.pending->add_name + " (pending)");
  std::string out = "LOST in the verification after kill " + std::to_string(cycle_) + ": ";
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  out += "\n    file " + std::to_string(ino.id) + ", " + ino.History();
  for (const std::string& problem : problems_) out += "\n    - " + problem;
  return out;
}

}  // namespace

VerifyResult Verify(Model& model, int root_fd, unsigned cycle, unsigned threads,
                    const std::atomic<bool>& cancelled) {
  const std::vector<Inode> inodes = model.Snapshot();
  std::vector<Check> checks(inodes.size());
  std::atomic<size_t> next = 0;
  auto worker = [&] {
    InodeChecker checker(model, root_fd, cycle);
    for (size_t i = next++; i < inodes.size() && !cancelled; i = next++) checks[i] = checker.Run(inodes[i]);
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < std::max(1u, threads); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();

  VerifyResult result;
  if (cancelled) return result;
  for (size_t i = 0; i < inodes.size(); ++i) {
    const Inode& ino = inodes[i];
    Check& c = checks[i];
    ++result.files;
    result.bytes += c.bytes;
    if (!c.note.empty()) result.notes.push_back(c.note);
    if (c.lost) {
      result.losses.push_back(c.report);
      model.Forget(ino.id, "lost");
      continue;
    }
    switch (c.fate) {
      case Fate::kApplied: ++result.applied; break;
      case Fate::kPartial: ++result.partial; break;
      case Fate::kNotApplied: ++result.not_applied; break;
      case Fate::kNone: break;
    }
    result.ok_names.insert(result.ok_names.end(), c.resolved.names.begin(), c.resolved.names.end());
    if (ino.pending || ino.busy) {
      const char* event = c.fate == Fate::kApplied   ? "adopt"
                          : c.fate == Fate::kPartial ? "adopt-torn"
                          : c.fate == Fate::kNone    ? "release"
                                                     : "revert";
      model.Resolve(c.resolved, event);
    }
  }
  return result;
}

}  // namespace crash_cycle

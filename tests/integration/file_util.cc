// File helpers; see file_util.h.
#include "tests/integration/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <system_error>

namespace reclaimfs::itest {

std::string SysResult::Describe(int expected) const {
  std::string out;
  if (ret != -1) {
    out = "succeeded (returned " + std::to_string(ret) + ")";
  } else {
    out = std::string("failed with ") + strerrorname_np(err) + " (" + strerror(err) + ")";
  }
  if (expected != 0) out += std::string(", expected ") + strerrorname_np(expected);
  return out;
}

void ThrowErrno(const std::string& what, const std::string& path) {
  throw std::system_error(errno, std::generic_category(), what + " " + path);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) close(fd_);
}

int UniqueFd::Close() {
  int r = close(fd_);
  fd_ = -1;
  return r;
}

UniqueFd Open(const std::string& path, int flags, mode_t mode) {
  int fd = open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) ThrowErrno("open", path);
  return UniqueFd(fd);
}

void PwriteAll(int fd, const void* data, size_t len, off_t off) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = pwrite(fd, p, len, off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ThrowErrno("pwrite at " + std::to_string(off), "fd " + std::to_string(fd));
    if (n == 0) throw std::runtime_error("pwrite returned 0");
    p += n;
    len -= n;
    off += n;
  }
}

void PreadExact(int fd, void* data, size_t len, off_t off) {
  char* p = static_cast<char*>(data);
  while (len > 0) {
    ssize_t n = pread(fd, p, len, off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ThrowErrno("pread at " + std::to_string(off), "fd " + std::to_string(fd));
    if (n == 0) throw std::runtime_error("short read at offset " + std::to_string(off));
    p += n;
    len -= n;
    off += n;
  }
}

std::string ReadAt(int fd, size_t len, off_t off) {
  std::string buf(len, '\0');
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, buf.data() + got, len - got, off + got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ThrowErrno("pread", "fd " + std::to_string(fd));
    if (n == 0) break;
    got += n;
  }
  buf.resize(got);
  return buf;
}

void WriteFile(const std::string& path, std::string_view data, mode_t mode) {
  UniqueFd fd = Open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  PwriteAll(fd.get(), data.data(), data.size(), 0);
  if (fd.Close() != 0) ThrowErrno("close", path);
}

std::string ReadFile(const std::string& path) {
  UniqueFd fd = Open(path, O_RDONLY);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ThrowErrno("read", path);
    if (n == 0) break;
    out.append(buf, n);
  }
  return out;
}

void Fsync(const std::string& path) {
  UniqueFd fd = Open(path, O_RDONLY);
  if (fsync(fd.get()) != 0) ThrowErrno("fsync", path);
}

struct stat Stat(const std::string& path) {
  struct stat st{};
  if (stat(path.c_str(), &st) != 0) ThrowErrno("stat", path);
  return st;
}

struct stat Lstat(const std::string& path) {
  struct stat st{};
  if (lstat(path.c_str(), &st) != 0) ThrowErrno("lstat", path);
  return st;
}

bool Exists(const std::string& path) {
  struct stat st{};
  return lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> ListDir(const std::string& path) {
  DIR* d = opendir(path.c_str());
  if (d == nullptr) ThrowErrno("opendir", path);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
    errno = 0;
  }
  int err = errno;
  closedir(d);
  if (err != 0) {
    errno = err;
    ThrowErrno("readdir", path);
  }
  return names;
}

namespace {
uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

void FillBlock(uint64_t seed, uint64_t index, std::span<char> out) {
  uint64_t s = SplitMix(seed * 0x100000001b3ull ^ SplitMix(index)) | 1;
  size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    std::memcpy(out.data() + i, &s, 8);
  }
  for (; i < out.size(); ++i) out[i] = static_cast<char>(s >> (8 * (i % 8)));
}

std::string MakeBlock(uint64_t seed, uint64_t index, size_t len) {
  std::string s(len, '\0');
  FillBlock(seed, index, s);
  return s;
}

uint64_t Checksum(std::span<const char> data, uint64_t h) {
  size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, data.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; i < data.size(); ++i) h = (h ^ static_cast<unsigned char>(data[i])) * 0x100000001b3ull;
  return h ^ data.size();
}

uint64_t FileChecksum(const std::string& path) {
  UniqueFd fd = Open(path, O_RDONLY);
  std::vector<char> buf(1 << 20);
  uint64_t h = 0xcbf29ce484222325ull;
  // Hash in whole 1 MiB units (short reads refilled) so the result does not
  // depend on how the kernel split the reads.
  for (bool eof = false; !eof;) {
    size_t got = 0;
    while (got < buf.size()) {
      ssize_t n = read(fd.get(), buf.data() + got, buf.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) ThrowErrno("read", path);
      if (n == 0) {
        eof = true;
        break;
      }
      got += n;
    }
    if (got > 0) h = Checksum(std::span<const char>(buf.data(), got), h);
  }
  return h;
}

long FirstDifference(std::span<const char> a, std::span<const char> b) {
  const size_t n = std::min(a.size(), b.size());
  auto m = std::mismatch(a.begin(), a.begin() + n, b.begin());
  if (m.first != a.begin() + n) return m.first - a.begin();
  return a.size() == b.size() ? -1 : static_cast<long>(n);
}

int64_t Nanos(const struct timespec& ts) { return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec; }

namespace {

std::map<std::string, std::string> Xattrs(const std::string& path) {
  std::map<std::string, std::string> out;
  ssize_t n = llistxattr(path.c_str(), nullptr, 0);
  if (n <= 0) return out;
  std::string names(n, '\0');
  n = llistxattr(path.c_str(), names.data(), names.size());
  if (n < 0) ThrowErrno("llistxattr", path);
  for (size_t pos = 0; pos < static_cast<size_t>(n);) {
    std::string name = names.c_str() + pos;
    pos += name.size() + 1;
    ssize_t vn = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (vn < 0) ThrowErrno("lgetxattr " + name, path);
    std::string v(vn, '\0');
    vn = lgetxattr(path.c_str(), name.c_str(), v.data(), v.size());
    if (vn < 0) ThrowErrno("lgetxattr " + name, path);
    v.resize(vn);
    out[name] = v;
  }
  return out;
}

void SnapshotInto(const std::string& root, const std::string& rel, const SnapshotOptions& opt,
                  TreeSnapshot* out) {
  const std::string path = rel.empty() ? root : root + "/" + rel;
  struct stat st = Lstat(path);
  NodeSnapshot n;
  n.mode = st.st_mode;
  n.uid = st.st_uid;
  n.gid = st.st_gid;
  n.nlink = st.st_nlink;
  n.size = st.st_size;
  n.rdev = st.st_rdev;
  n.mtime_ns = Nanos(st.st_mtim);
  if (opt.ino_and_ctime) {
    n.ino = st.st_ino;
    n.ctime_ns = Nanos(st.st_ctim);
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(4096, '\0');
    ssize_t len = readlink(path.c_str(), target.data(), target.size());
    if (len < 0) ThrowErrno("readlink", path);
    target.resize(len);
    n.symlink = target;
  }
  if (S_ISREG(st.st_mode) && opt.content) n.content = FileChecksum(path);
  if (opt.xattrs) n.xattrs = Xattrs(path);
  (*out)[rel.empty() ? "." : rel] = n;
  if (S_ISDIR(st.st_mode)) {
    for (const auto& name : ListDir(path)) {
      SnapshotInto(root, rel.empty() ? name : rel + "/" + name, opt, out);
    }
  }
}

std::string Describe(const NodeSnapshot& n) {
  std::ostringstream os;
  os << "mode=" << std::oct << n.mode << std::dec << " uid=" << n.uid << " gid=" << n.gid
     << " nlink=" << n.nlink << " size=" << n.size << " ino=" << n.ino << " mtime=" << n.mtime_ns
     << " ctime=" << n.ctime_ns << " rdev=" << n.rdev << " link='" << n.symlink
     << "' content=" << std::hex << n.content << std::dec << " xattrs={";
  for (const auto& [k, v] : n.xattrs) os << k << ":" << v.size() << "B ";
  os << "}";
  return os.str();
}

}  // namespace

TreeSnapshot SnapshotTree(const std::string& root, SnapshotOptions options) {
  TreeSnapshot out;
  SnapshotInto(root, "", options, &out);
  return out;
}

std::string DiffSnapshots(const TreeSnapshot& before, const TreeSnapshot& after) {
  std::ostringstream os;
  for (const auto& [path, n] : before) {
    auto it = after.find(path);
    if (it == after.end()) {
      os << "  missing: " << path << "\n";
    } else if (!(it->second == n)) {
      os << "  changed: " << path << "\n    before: " << Describe(n)
         << "\n    after:  " << Describe(it->second) << "\n";
    }
  }
  for (const auto& [path, n] : after) {
    if (!before.contains(path)) os << "  added: " << path << " " << Describe(n) << "\n";
  }
  return os.str();
}

}  // namespace reclaimfs::itest

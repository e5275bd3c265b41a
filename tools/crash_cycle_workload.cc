// crash_cycle: the writers' churn; see crash_cycle_workload.h.
#include "tools/crash_cycle_workload.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

namespace crash_cycle {
namespace {

constexpr uint64_t kMaxFileSize = 2ull << 20;
constexpr uint64_t kMaxAppend = 512ull << 10;
constexpr uint64_t kMaxGrow = 1ull << 20;
constexpr uint64_t kMaxJunk = 200ull << 10;
constexpr size_t kMaxChunk = 256 << 10;
constexpr unsigned kJunkPerDir = 16;
constexpr unsigned kRotateEvery = 8;     // operations between two looks at the free space
constexpr unsigned kMaxDeletions = 256;  // per rotation, so the writer returns to churning

// How often each variant runs, relative to the others.
unsigned Weight(Variant v) {
  switch (v) {
    case Variant::kTmpRename: return 8;
    case Variant::kAppend: return 3;
    case Variant::kJunk: return 3;
    case Variant::kTruncate: return 2;
    case Variant::kPunch: return 2;
    case Variant::kXattr: return 2;
    case Variant::kLink: return 1;
    case Variant::kRotate: return 0;
  }
  return 0;
}

std::string ParentDir(const std::string& path) { return path.substr(0, path.rfind('/')); }

}  // namespace

std::string DirName(unsigned d) { return "d" + std::to_string(d); }

void CycleCounters::Unexpected(std::string what) {
  std::lock_guard lock(mu);
  unexpected.push_back(std::move(what));
}

Writer::Writer(unsigned id, uint64_t seed, const WorkloadConfig& config, Model& model)
    : id_(id), config_(config), model_(model), rng_(seed), buf_(kMaxChunk) {}

bool Writer::Stopping() const { return ctx_->killed->load() || ctx_->cancelled->load(); }

void Writer::Run(const CycleContext& ctx) {
  ctx_ = &ctx;
  if (!leftover_tmp_.empty()) {  // the previous cycle's kill left it; nobody reuses the name
    unlinkat(ctx.root_fd, leftover_tmp_.c_str(), 0);
    leftover_tmp_.clear();
  }
  for (unsigned ops = 0; !Stopping(); ++ops) {
    if (config_.space == SpacePolicy::kRotate && ops % kRotateEvery == 0 && Rotate() == Outcome::kOver) break;
    if (RunVariant(PickVariant()) == Outcome::kOver) break;
  }
  ctx_ = nullptr;
}

Variant Writer::PickVariant() {
  unsigned total = 0;
  for (Variant v : config_.variants) total += Weight(v);
  unsigned r = static_cast<unsigned>(rng_() % total);
  for (Variant v : config_.variants) {
    if (r < Weight(v)) return v;
    r -= Weight(v);
  }
  return config_.variants.front();
}

Writer::Outcome Writer::RunVariant(Variant v) {
  switch (v) {
    case Variant::kTmpRename: return TmpRename();
    case Variant::kAppend: return Append();
    case Variant::kTruncate: return Truncate();
    case Variant::kPunch: return Punch();
    case Variant::kLink: return Link();
    case Variant::kXattr: return SetXattr();
    case Variant::kJunk: return Junk();
    case Variant::kRotate: return Rotate();
  }
  return Outcome::kDone;
}

Writer::Outcome Writer::Fail(int err, const std::string& op, const std::string& path) {
  if (err == ENOSPC) {
    ctx_->counters->enospc++;
    return Outcome::kNoSpace;
  }
  if (!Stopping()) {
    ctx_->counters->Unexpected("writer " + std::to_string(id_) + ": " + op + " " + path + ": " +
                               strerrorname_np(err) + " (" + strerror(err) + ")");
  }
  return Outcome::kOver;
}

Writer::Chunks Writer::PickChunks() { return static_cast<Chunks>(rng_() % 3); }

const char* Writer::ChunksName(Chunks c) {
  switch (c) {
    case Chunks::kPages: return "page-multiple writes";
    case Chunks::kSmall: return "small writes";
    case Chunks::kAny: return "writes of any size";
  }
  return "";
}

int Writer::WriteStream(int fd, uint64_t seed, uint64_t len, Chunks chunks) {
  uint64_t pos = 0;
  while (pos < len) {
    size_t chunk = chunks == Chunks::kPages   ? 4096 * (1 + rng_() % (kMaxChunk / 4096))
                   : chunks == Chunks::kSmall ? 1 + rng_() % 8192
                                              : 1 + rng_() % kMaxChunk;
    chunk = std::min<uint64_t>(chunk, len - pos);
    FillStream(seed, pos, std::span<char>(buf_.data(), chunk));
    size_t done = 0;
    while (done < chunk) {  // a short write is followed by one that reports the error
      const ssize_t n = write(fd, buf_.data() + done, chunk - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      done += n;
    }
    pos += chunk;
    ctx_->counters->bytes_written += chunk;
  }
  return 0;
}

int Writer::FsyncDir(const std::string& dir) {
  const int fd = openat(ctx_->root_fd, dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int err = fsync(fd) == 0 ? 0 : errno;
  close(fd);
  return err;
}

uint64_t Writer::RandomFileSize() {
  switch (rng_() % 4) {
    case 0: return rng_() % (64 << 10);                           // small
    case 1: return 4096 * (rng_() % (kMaxFileSize / 4096 + 1));   // whole pages
    default: return rng_() % (kMaxFileSize + 1);
  }
}

std::string Writer::RandomDir() { return DirName(static_cast<unsigned>(rng_() % config_.dirs)); }

std::string Writer::NewName(char prefix, const std::string& dir) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "/%c%u-%06u", prefix, id_, counter_++);
  return dir + buf;
}

Pending Writer::Change(Variant v, const FileState& state) const {
  Pending p;
  p.variant = v;
  p.cycle = ctx_->cycle;
  p.state = state;
  return p;
}

uint64_t Writer::NewSeed(StreamKind kind) { return MakeSeed(kind, id_, ctx_->cycle, counter_++); }

// Write a temp file, fsync it, rename it to a new name, fsync the directory.
Writer::Outcome Writer::TmpRename() {
  const std::string dir = RandomDir();
  const std::string name = NewName('f', dir);
  // Per-writer temp names are reused, so O_TRUNC meets what a kill left.
  const bool reuse = rng_() % 2 == 0;
  const std::string tmp = reuse ? dir + "/w" + std::to_string(id_) + ".tmp" : NewName('t', dir) + ".tmp";
  const uint64_t seed = NewSeed(StreamKind::kFile);
  const uint64_t size = RandomFileSize();

  const int fd = openat(ctx_->root_fd, tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return Fail(errno, "open", tmp);
  if (!reuse) leftover_tmp_ = tmp;
  const Chunks chunks = PickChunks();
  int err = WriteStream(fd, seed, size, chunks);
  if (err == 0 && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && err == 0) err = errno;
  if (err == ENOSPC) unlinkat(ctx_->root_fd, tmp.c_str(), 0);
  if (err != 0) return Fail(err, "write+fsync", tmp);

  FileState state;
  state.content.AppendStream(seed, 0, size);
  model_.NoteSeed(seed, name);
  const std::string how = "as " + tmp + (reuse ? " (a reused temp name)" : "") + " with " + ChunksName(chunks);
  const uint64_t id = model_.BeginCreate(name, std::move(state), ctx_->cycle, how);
  if (renameat(ctx_->root_fd, tmp.c_str(), ctx_->root_fd, name.c_str()) != 0) {
    err = errno;
    if (err == ENOSPC) unlinkat(ctx_->root_fd, tmp.c_str(), 0);
    return Fail(err, "rename to " + name + " of", tmp);  // the pending creation stays
  }
  if (!reuse) leftover_tmp_.clear();
  if ((err = FsyncDir(dir)) != 0) return Fail(err, "fsync of directory", dir);
  model_.Commit(id);
  ctx_->counters->committed[static_cast<int>(Variant::kTmpRename)]++;
  return Outcome::kDone;
}

// Append to a durable file and fsync. A failure leaves the change pending
// (and the file held) until the next verification sorts it out.
Writer::Outcome Writer::Append() {
  auto lease = model_.AcquireRandom(rng_);
  if (!lease) return Outcome::kDone;
  const int fd = openat(ctx_->root_fd, lease->name.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    model_.Release(lease->id);
    return Fail(err, "open", lease->name);
  }
  struct stat st{};
  if (fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != lease->state.content.size()) {
    // O_APPEND would write elsewhere than recorded; the verifier will report it.
    if (!Stopping()) {
      ctx_->counters->Unexpected("writer " + std::to_string(id_) + ": " + lease->name + " has size " +
                                 std::to_string(st.st_size) + " before an append, recorded " +
                                 std::to_string(lease->state.content.size()));
    }
    close(fd);
    model_.Release(lease->id);
    return Outcome::kDone;
  }
  const uint64_t seed = NewSeed(StreamKind::kAppend);
  const uint64_t add = rng_() % (kMaxAppend + 1);
  const Chunks chunks = PickChunks();
  Pending p = Change(Variant::kAppend, lease->state);
  p.how = std::string("by an append with ") + ChunksName(chunks);
  p.state.content.AppendStream(seed, 0, add);
  model_.NoteSeed(seed, lease->name + " (appended)");
  model_.SetPending(lease->id, std::move(p));
  int err = WriteStream(fd, seed, add, chunks);
  if (err == 0 && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && err == 0) err = errno;
  if (err != 0) return Fail(err, "append+fsync", lease->name);
  model_.Commit(lease->id);
  ctx_->counters->committed[static_cast<int>(Variant::kAppend)]++;
  return Outcome::kDone;
}

// Shrink (mostly) or grow a durable file with ftruncate, then fsync.
Writer::Outcome Writer::Truncate() {
  auto lease = model_.AcquireRandom(rng_);
  if (!lease) return Outcome::kDone;
  const uint64_t size = lease->state.content.size();
  const uint64_t new_size = rng_() % 10 < 7 ? rng_() % (size + 1) : size + rng_() % (kMaxGrow + 1);
  const int fd = openat(ctx_->root_fd, lease->name.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    model_.Release(lease->id);
    return Fail(err, "open", lease->name);
  }
  Pending p = Change(Variant::kTruncate, lease->state);
  p.state.content.Resize(new_size);
  model_.SetPending(lease->id, std::move(p));
  int err = ftruncate(fd, static_cast<off_t>(new_size)) == 0 ? 0 : errno;
  if (err == 0 && fsync(fd) != 0) err = errno;
  close(fd);
  if (err != 0) return Fail(err, "ftruncate+fsync", lease->name);
  model_.Commit(lease->id);
  ctx_->counters->committed[static_cast<int>(Variant::kTruncate)]++;
  return Outcome::kDone;
}

// Punch a hole (keeping the size), then fsync; the range reads as zeros.
Writer::Outcome Writer::Punch() {
  auto lease = model_.AcquireRandom(rng_);
  if (!lease) return Outcome::kDone;
  const uint64_t size = lease->state.content.size();
  if (size == 0) {
    model_.Release(lease->id);
    return Outcome::kDone;
  }
  uint64_t off = rng_() % size;
  uint64_t len = 1 + rng_() % std::min<uint64_t>(size - off + 8192, 1 << 20);  // may reach past EOF
  if (rng_() % 2 == 0) {  // page-aligned half of the time
    off &= ~uint64_t{4095};
    len = (len + 4095) & ~uint64_t{4095};
  }
  const int fd = openat(ctx_->root_fd, lease->name.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    model_.Release(lease->id);
    return Fail(err, "open", lease->name);
  }
  Pending p = Change(Variant::kPunch, lease->state);
  p.state.content.Zero(off, len);
  model_.SetPending(lease->id, std::move(p));
  int err = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                      static_cast<off_t>(len)) == 0 ? 0 : errno;
  if (err == 0 && fsync(fd) != 0) err = errno;
  close(fd);
  if (err != 0) return Fail(err, "punch+fsync", lease->name);
  model_.Commit(lease->id);
  ctx_->counters->committed[static_cast<int>(Variant::kPunch)]++;
  return Outcome::kDone;
}

// A new hard link to a durable file, then fsync of its directory.
Writer::Outcome Writer::Link() {
  auto lease = model_.AcquireRandom(rng_);
  if (!lease) return Outcome::kDone;
  const std::string dir = RandomDir();
  const std::string name = NewName('l', dir);
  Pending p = Change(Variant::kLink, lease->state);
  p.add_name = name;
  model_.SetPending(lease->id, std::move(p));
  if (linkat(ctx_->root_fd, lease->name.c_str(), ctx_->root_fd, name.c_str(), 0) != 0) {
    return Fail(errno, "link of " + lease->name + " as", name);
  }
  if (const int err = FsyncDir(dir); err != 0) return Fail(err, "fsync of directory", dir);
  model_.Commit(lease->id);
  ctx_->counters->committed[static_cast<int>(Variant::kLink)]++;
  return Outcome::kDone;
}

// Set user.k on a durable file, then fsync it.
Writer::Outcome Writer::SetXattr() {
  auto lease = model_.AcquireRandom(rng_);
  if (!lease) return Outcome::kDone;
  const int fd = openat(ctx_->root_fd, lease->name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    model_.Release(lease->id);
    return Fail(err, "open", lease->name);
  }
  const Xattr x{NewSeed(StreamKind::kXattr), static_cast<uint32_t>(1 + rng_() % 255)};
  Pending p = Change(Variant::kXattr, lease->state);
  p.state.xattr = x;
  model_.SetPending(lease->id, std::move(p));
  const std::string value = x.Value();
  int err = fsetxattr(fd, "user.k", value.data(), value.size(), 0) == 0 ? 0 : errno;
  if (err == 0 && fsync(fd) != 0) err = errno;
  close(fd);
  if (err != 0) return Fail(err, "setxattr+fsync", lease->name);
  model_.Commit(lease->id);
  ctx_->counters->committed[static_cast<int>(Variant::kXattr)]++;
  return Outcome::kDone;
}

// Overwrite one junk file and unlink another; junk is never verified, it
// only moves blocks around between the durable files.
Writer::Outcome Writer::Junk() {
  auto junk_name = [&] { return RandomDir() + "/junk" + std::to_string(rng_() % kJunkPerDir); };
  const std::string name = junk_name();
  const int fd = openat(ctx_->root_fd, name.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return Fail(errno, "open", name);
  int err = WriteStream(fd, NewSeed(StreamKind::kJunk), rng_() % (kMaxJunk + 1), PickChunks());
  if (err == 0 && rng_() % 4 == 0 && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && err == 0) err = errno;
  if (err == ENOSPC) unlinkat(ctx_->root_fd, name.c_str(), 0);
  if (err != 0) return Fail(err, "write", name);
  ctx_->counters->committed[static_cast<int>(Variant::kJunk)]++;
  const std::string victim = junk_name();
  if (unlinkat(ctx_->root_fd, victim.c_str(), 0) != 0 && errno != ENOENT) return Fail(errno, "unlink", victim);
  return Outcome::kDone;
}

// --space rotate: above the high mark, delete the oldest durable names until
// the use is estimated to be below the low mark.
Writer::Outcome Writer::Rotate() {
  std::unique_lock lock(*ctx_->rotate_mu, std::try_to_lock);
  if (!lock.owns_lock()) return Outcome::kDone;
  struct statvfs vfs{};
  if (fstatvfs(ctx_->root_fd, &vfs) != 0) return Fail(errno, "statvfs", ".");
  if (vfs.f_blocks == 0) return Outcome::kDone;
  const double used = 1.0 - static_cast<double>(vfs.f_bfree) / static_cast<double>(vfs.f_blocks);
  if (used <= config_.rotate_high) return Outcome::kDone;
  const auto to_free =
      static_cast<uint64_t>((used - config_.rotate_low) * static_cast<double>(vfs.f_blocks) * vfs.f_frsize);
  uint64_t freed = 0;
  for (unsigned i = 0; i < kMaxDeletions && freed < to_free && !Stopping(); ++i) {
    auto lease = model_.AcquireOldest();
    if (!lease) break;  // every durable file is held by a writer
    const Outcome o = Delete(*lease);
    if (o != Outcome::kDone) return o;
    freed += lease->state.content.size();
  }
  return Outcome::kDone;
}

// Unlink a durable name, then fsync its directory.
Writer::Outcome Writer::Delete(const Lease& lease) {
  Pending p = Change(Variant::kRotate, lease.state);
  p.remove_name = lease.name;
  model_.SetPending(lease.id, std::move(p));
  if (unlinkat(ctx_->root_fd, lease.name.c_str(), 0) != 0) return Fail(errno, "unlink", lease.name);
  const std::string dir = ParentDir(lease.name);
  if (const int err = FsyncDir(dir); err != 0) return Fail(err, "fsync of directory", dir);
  model_.Commit(lease.id);
  ctx_->counters->committed[static_cast<int>(Variant::kRotate)]++;
  return Outcome::kDone;
}

ChurnThreads::ChurnThreads(const std::vector<std::unique_ptr<Writer>>& writers, const CycleContext& ctx)
    : running_(writers.size()) {
  for (const auto& w : writers) {
    threads_.emplace_back([this, &ctx, writer = w.get()] {
      writer->Run(ctx);
      std::lock_guard lock(mu_);
      --running_;
      cv_.notify_all();
    });
  }
}

ChurnThreads::~ChurnThreads() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

bool ChurnThreads::WaitStopped(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return running_ == 0; });
}

void ChurnThreads::Abandon() {
  for (auto& t : threads_) t.detach();
}

}  // namespace crash_cycle

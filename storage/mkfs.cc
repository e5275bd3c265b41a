// MakeStore: creates a new store directory (data file, metadata with the
// superblock, the root directory and a free map covering the whole file).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/coding.h"
#include "storage/meta_store.h"

namespace reclaimfs::storage {

namespace {

constexpr uint64_t kMinStoreBytes = 1ull << 20;

absl::Status ErrnoError(int err, std::string_view what) {
  // Appends ": <strerror>" itself.
  return absl::ErrnoToStatus(err, AbslView(what));
}

absl::Status RandomUuid(std::array<uint8_t, 16>* uuid) {
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "cannot open /dev/urandom");
  size_t got = 0;
  while (got < uuid->size()) {
    ssize_t n = ::read(fd, uuid->data() + got, uuid->size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      ::close(fd);
      return ErrnoError(err, "cannot read /dev/urandom");
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  // RFC 4122 version 4 (random) and variant bits.
  (*uuid)[6] = static_cast<uint8_t>(((*uuid)[6] & 0x0f) | 0x40);
  (*uuid)[8] = static_cast<uint8_t>(((*uuid)[8] & 0x3f) | 0x80);
  return absl::OkStatus();
}

absl::Status CreateDataFile(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("cannot create ", path));
  absl::Status status;
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    status = ErrnoError(errno, absl::StrFormat("cannot size %s to %d bytes", path, size));
  } else if (::fsync(fd) != 0) {
    status = ErrnoError(errno, absl::StrCat("cannot sync ", path));
  }
  ::close(fd);
  if (!status.ok()) ::unlink(path.c_str());
  return status;
}

Timespec Now() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return Timespec{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

absl::Status WriteMetadata(const std::string& meta_dir, const Superblock& sb,
                           const MkfsOptions& options) {
  MetaOptions mo;
  mo.create_if_missing = true;
  mo.lock_wait_ms = 0;
  auto meta = MetaStore::Open(meta_dir, mo);
  if (!meta.ok()) return meta.status();

  InodeRecord root;
  root.ino = kRootIno;
  root.mode = S_IFDIR | (options.root_mode & 07777);
  root.uid = options.root_uid;
  root.gid = options.root_gid;
  root.nlink = 2;
  root.parent = kRootIno;
  root.generation = 1;
  root.atime = root.mtime = root.ctime = root.btime = Now();

  MetaStore::Batch batch;
  batch.PutSuperblock(sb);
  batch.PutInode(root);
  batch.PutFreeExtent(0, sb.total_blocks());
  return (*meta)->Commit(batch, /*sync=*/true);
}

}  // namespace

absl::Status MakeStore(const std::string& store_dir, const MkfsOptions& options) {
  namespace fs = std::filesystem;
  const uint32_t bs = options.block_size;
  if (bs < 512 || bs > (1u << 20) || (bs & (bs - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("invalid block size %d (a power of two from 512 to 1 MiB)", bs));
  }
  const uint64_t size = options.size_bytes / bs * bs;
  if (size < kMinStoreBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "size %d bytes is too small (the minimum is 1 MiB)", options.size_bytes));
  }
  if (size / bs > (1ull << 48)) {
    return absl::InvalidArgumentError(absl::StrFormat("size %d bytes is too large", size));
  }

  std::error_code ec;
  fs::create_directories(store_dir, ec);
  if (ec) return ErrnoError(ec.value(), absl::StrCat("cannot create store directory ", store_dir));
  if (!fs::is_directory(store_dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(store_dir, " is not a directory"));
  }
  if (::access(store_dir.c_str(), W_OK | X_OK) != 0) {
    return ErrnoError(errno, absl::StrCat("store directory ", store_dir, " is not writable"));
  }

  const std::string meta_dir = store_dir + "/" + kMetaDirName;
  const std::string data_path = store_dir + "/" + kDataFileName;
  const bool has_meta = fs::exists(fs::symlink_status(meta_dir, ec));
  const bool has_data = fs::exists(fs::symlink_status(data_path, ec));
  if (has_meta || has_data) {
    if (!options.force) {
      return absl::AlreadyExistsError(absl::StrCat(
          store_dir, " already holds a reclaimfs store; use --force to overwrite it"));
    }
    // Refuse to overwrite a store that is mounted: its lock is held.
    if (has_meta) {
      MetaOptions probe;
      probe.lock_wait_ms = 0;
      auto open = MetaStore::Open(meta_dir, probe);
      if (absl::IsUnavailable(open.status())) return open.status();
    }
    fs::remove_all(meta_dir, ec);
    if (ec) return ErrnoError(ec.value(), absl::StrCat("cannot remove ", meta_dir));
    fs::remove(data_path, ec);
    if (ec) return ErrnoError(ec.value(), absl::StrCat("cannot remove ", data_path));
  }

  Superblock sb;
  sb.block_size = bs;
  sb.size_bytes = size;
  sb.created_sec = Now().sec;
  if (absl::Status s = RandomUuid(&sb.uuid); !s.ok()) return s;

  if (absl::Status s = CreateDataFile(data_path, size); !s.ok()) return s;
  if (absl::Status s = WriteMetadata(meta_dir, sb, options); !s.ok()) {
    // Leave nothing half-made behind.
    fs::remove_all(meta_dir, ec);
    fs::remove(data_path, ec);
    return s;
  }
  return absl::OkStatus();
}

}  // namespace reclaimfs::storage

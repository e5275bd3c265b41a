// fallocate ZERO_RANGE, COLLAPSE_RANGE and INSERT_RANGE on a mounted
// reclaimfs, each result compared byte for byte with a model of the file:
// ranges over dirty cached pages, written-back data, holes and preallocated
// blocks; st_blocks; a fixed-seed random sequence with remounts; kill -9
// after fsync'd operations; and the errors Linux gives.
//
// The kernel's FUSE client forwards only the modes it knows (fs/fuse/file.c;
// up to at least Linux 6.18 only 0, KEEP_SIZE and PUNCH_HOLE|KEEP_SIZE): a
// mode it does not forward fails with EOPNOTSUPP before reaching the daemon.
// Each test probes which modes arrive (KernelForwards) and expects, per
// mode, either the model's result or that refusal with the file unchanged;
// the POSIX-layer unit tests drive all modes directly either way.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <random>
#include <string>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

constexpr off_t kBlock = 4096;


// What a successful fallocate does to the file's bytes, per fallocate(2).
void ApplyToModel(int mode, off_t off, off_t len, std::string* model) {
  const size_t size = model->size();
  const bool keep = mode & FALLOC_FL_KEEP_SIZE;
  switch (mode & ~FALLOC_FL_KEEP_SIZE) {
    case 0:
      if (!keep && size < size_t(off + len)) model->resize(off + len, '\0');
      break;
    case FALLOC_FL_PUNCH_HOLE:
    case FALLOC_FL_ZERO_RANGE:
      if (!keep && size < size_t(off + len)) model->resize(off + len, '\0');
      if (size_t(off) < model->size()) {
        std::fill_n(model->begin() + off, std::min<size_t>(len, model->size() - off), '\0');
      }
      break;
    case FALLOC_FL_COLLAPSE_RANGE:
      model->erase(off, len);
      break;
    case FALLOC_FL_INSERT_RANGE:
      model->insert(off, len, '\0');
      break;
  }
}

// Does a valid request with `mode` reach the daemon? Probed on a scratch
// file: a mode the kernel does not forward fails with EOPNOTSUPP, which the
// daemon never answers to a valid request of these modes.
bool KernelForwards(const std::string& dir, int mode) {
  const std::string path = dir + "/.probe";
  UniqueFd fd = Open(path, O_CREAT | O_RDWR | O_TRUNC);
  const std::string data(4 * kBlock, 'p');
  PwriteAll(fd.get(), data.data(), data.size(), 0);
  const int r = fallocate(fd.get(), mode, kBlock, kBlock);
  const int err = errno;
  fd.Close();
  unlink(path.c_str());
  if (r == 0) return true;
  if (err != EOPNOTSUPP) ADD_FAILURE() << "probe of mode " << mode << ": " << strerror(err);
  return false;
}

class FallocateModesTest : public ReclaimfsTest {
 protected:
  // Probed once per test (the same kernel answers every time).
  bool Forwards(int mode) {
    auto it = forwards_.find(mode);
    if (it == forwards_.end()) it = forwards_.emplace(mode, KernelForwards(mnt(), mode)).first;
    return it->second;
  }
  // What a valid request of `mode` must return here.
  int Expected(int mode) { return Forwards(mode) ? 0 : EOPNOTSUPP; }

 private:
  std::map<int, bool> forwards_;
};

// A file on the mount and its model, changed in step.
class ModeledFile {
 public:
  ModeledFile(std::string path) : path_(std::move(path)) { Reopen(); }
  void Reopen() { fd_ = Open(path_, O_CREAT | O_RDWR); }
  void Close() { fd_.Close(); }
  int fd() const { return fd_.get(); }
  const std::string& model() const { return model_; }

  void Write(off_t off, const std::string& data) {
    PwriteAll(fd(), data.data(), data.size(), off);
    if (model_.size() < off + data.size()) model_.resize(off + data.size(), '\0');
    model_.replace(off, data.size(), data);
  }
  void Truncate(off_t size) {
    ASSERT_SYS_OK(ftruncate(fd(), size));
    model_.resize(size, '\0');
  }
  // fallocate; on success the model follows. Returns errno (0 on success).
  int Fallocate(int mode, off_t off, off_t len) {
    if (fallocate(fd(), mode, off, len) != 0) return errno;
    ApplyToModel(mode, off, len, &model_);
    return 0;
  }
  // The file reads exactly as the model, and stat agrees on the size.
  void Check(const std::string& when) const {
    struct stat st;
    ASSERT_SYS_OK(fstat(fd(), &st));
    ASSERT_EQ(size_t(st.st_size), model_.size()) << when;
    const std::string got = ReadAt(fd(), model_.size() + kBlock, 0);
    ASSERT_EQ(got.size(), model_.size()) << when;
    ASSERT_EQ(FirstDifference(got, model_), -1) << when;
  }

 private:
  std::string path_;
  UniqueFd fd_;
  std::string model_;
};

// Blocks 0-3 written back, 4-5 a hole, 6-9 preallocated, 10-13 dirty in the
// daemon's cache, 14 a partial last block (dirty).
void BuildMixedLayout(ModeledFile& f) {
  f.Write(0, MakeBlock(1, 0, 4 * kBlock));
  ASSERT_SYS_OK(fsync(f.fd()));
  ASSERT_EQ(f.Fallocate(0, 6 * kBlock, 4 * kBlock), 0);
  f.Write(10 * kBlock, MakeBlock(1, 1, 4 * kBlock + 100));
}

TEST_F(FallocateModesTest, ZeroRangeOverMixedStateMatchesModel) {
  struct Case {
    off_t off, len;
    bool keep;
  };
  const Case cases[] = {
      {1000, 13 * kBlock + 7, false},            // from written-back data through all states
      {5 * kBlock, 6 * kBlock, false},           // hole, preallocated, one dirty block
      {3 * kBlock + 1, kBlock - 2, true},        // inside one written-back block
      {12 * kBlock + 3000, 8 * kBlock, false},   // dirty data and past EOF: grows
      {13 * kBlock, 10 * kBlock, true},          // past EOF, size kept
      {20 * kBlock, kBlock, false},              // wholly past EOF: grows over a gap
  };
  std::vector<std::string> models;
  for (const Case& c : cases) {
    const std::string name = "z" + std::to_string(models.size());
    SCOPED_TRACE(name);
    ModeledFile f(Path(name));
    ASSERT_NO_FATAL_FAILURE(BuildMixedLayout(f));
    const int mode = FALLOC_FL_ZERO_RANGE | (c.keep ? FALLOC_FL_KEEP_SIZE : 0);
    ASSERT_EQ(f.Fallocate(mode, c.off, c.len), Expected(mode));
    ASSERT_NO_FATAL_FAILURE(f.Check("after zeroing"));
    if (Forwards(mode)) {
      // Every block the range touches is allocated, and those outside stay.
      struct stat st;
      ASSERT_SYS_OK(fstat(f.fd(), &st));
      std::vector<bool> allocated(64, false);
      for (int b = 0; b < 15; ++b) allocated[b] = b < 4 || b >= 6;
      for (off_t b = c.off / kBlock; b < (c.off + c.len + kBlock - 1) / kBlock; ++b) allocated[b] = true;
      const long blocks = std::count(allocated.begin(), allocated.end(), true);
      EXPECT_GE(st.st_blocks, blocks * (kBlock / 512)) << "zeroed range not allocated";
      EXPECT_LE(st.st_blocks, 64 * (kBlock / 512));
    }
    ASSERT_SYS_OK(fsync(f.fd()));
    ASSERT_NO_FATAL_FAILURE(f.Check("after fsync"));
    models.push_back(f.model());
  }
  Remount();
  for (size_t i = 0; i < models.size(); ++i) {
    const std::string got = ReadFile(Path("z" + std::to_string(i)));
    ASSERT_EQ(got.size(), models[i].size()) << "case " << i << " after remount";
    EXPECT_EQ(FirstDifference(got, models[i]), -1) << "case " << i << " after remount";
  }
}

TEST_F(FallocateModesTest, CollapseAndInsertOverMixedStateMatchModel) {
  ModeledFile f(Path("f"));
  ASSERT_NO_FATAL_FAILURE(BuildMixedLayout(f));
  // Written-back data, the hole and the preallocated blocks go; the dirty
  // blocks move down.
  ASSERT_EQ(f.Fallocate(FALLOC_FL_COLLAPSE_RANGE, 2 * kBlock, 6 * kBlock), Expected(FALLOC_FL_COLLAPSE_RANGE));
  ASSERT_NO_FATAL_FAILURE(f.Check("after collapse"));
  f.Write(3 * kBlock + 5, MakeBlock(9, 0, 2 * kBlock));  // dirty pages across the next offset
  ASSERT_EQ(f.Fallocate(FALLOC_FL_INSERT_RANGE, 4 * kBlock, 3 * kBlock), Expected(FALLOC_FL_INSERT_RANGE));
  ASSERT_NO_FATAL_FAILURE(f.Check("after insert"));
  ASSERT_EQ(f.Fallocate(FALLOC_FL_INSERT_RANGE, 0, kBlock), Expected(FALLOC_FL_INSERT_RANGE));
  ASSERT_NO_FATAL_FAILURE(f.Check("after insert at 0"));
  f.Close();
  Remount();
  f.Reopen();
  ASSERT_NO_FATAL_FAILURE(f.Check("after remount"));
}

// A few hundred random operations on one file, each checked against the
// model at random points, with a remount halfway and at the end.
TEST_F(FallocateModesTest, RandomSequenceMatchesModel) {
  const int modes[] = {FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE,
                       FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, FALLOC_FL_KEEP_SIZE,
                       FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE};
  std::mt19937_64 rng(4242);
  auto below = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  ModeledFile f(Path("r"));
  constexpr int kOps = 400;
  int done = 0;
  for (int step = 0; step < kOps; ++step) {
    const std::string what = "step " + std::to_string(step);
    if (step == kOps / 2) {
      f.Close();
      Remount();
      f.Reopen();
      ASSERT_NO_FATAL_FAILURE(f.Check("after the remount halfway"));
    }
    const off_t size = f.model().size();
    switch (below(6)) {
      case 0:
      case 1: {
        const off_t off = below(size + 2 * kBlock), len = 1 + below(3 * kBlock);
        f.Write(off, MakeBlock(step, 0, len));
        break;
      }
      case 2:
        f.Truncate(below(size + 2 * kBlock));
        break;
      case 3: {
        const int mode = modes[below(std::size(modes))];
        off_t off = below(size + kBlock), len = 1 + below(4 * kBlock);
        if (mode == FALLOC_FL_COLLAPSE_RANGE || mode == FALLOC_FL_INSERT_RANGE) {
          const off_t blocks = size / kBlock;  // aligned, inside the file
          if (blocks < 2) break;
          off = below(blocks - 1) * kBlock;
          len = (1 + below(std::min<off_t>(4, blocks - 1 - off / kBlock))) * kBlock;
        }
        ASSERT_EQ(f.Fallocate(mode, off, len), Expected(mode))
            << what << " mode " << mode << " " << off << "+" << len;
        done += Forwards(mode);
        break;
      }
      case 4:
        ASSERT_NO_FATAL_FAILURE(f.Check(what));
        break;
      case 5:
        if (below(4) == 0) ASSERT_SYS_OK(fsync(f.fd()));
        break;
    }
  }
  EXPECT_GT(done, 20) << "too few fallocate calls reached the daemon";
  ASSERT_NO_FATAL_FAILURE(f.Check("at the end"));
  f.Close();
  Remount();
  f.Reopen();
  ASSERT_NO_FATAL_FAILURE(f.Check("after the last remount"));
}

// After kill -9 a fsync'd zeroing or shift is there; fsck is clean.
TEST_F(FallocateModesTest, FsyncedResultSurvivesKill9) {
  ModeledFile f(Path("k"));
  f.Write(0, MakeBlock(3, 0, 16 * kBlock));
  ASSERT_SYS_OK(fsync(f.fd()));
  ASSERT_EQ(f.Fallocate(FALLOC_FL_ZERO_RANGE, 2 * kBlock + 10, 8 * kBlock), Expected(FALLOC_FL_ZERO_RANGE));
  ASSERT_EQ(f.Fallocate(FALLOC_FL_COLLAPSE_RANGE, kBlock, 2 * kBlock), Expected(FALLOC_FL_COLLAPSE_RANGE));
  ASSERT_EQ(f.Fallocate(FALLOC_FL_INSERT_RANGE, 3 * kBlock, kBlock), Expected(FALLOC_FL_INSERT_RANGE));
  ASSERT_SYS_OK(fsync(f.fd()));
  const std::string after = f.model();
  f.Close();
  KillDaemon9();
  ExpectFsckClean("after kill -9");
  Mount();
  const std::string got = ReadFile(Path("k"));
  ASSERT_EQ(got.size(), after.size());
  EXPECT_EQ(FirstDifference(got, after), -1) << "fsync'd result lost after kill -9";
}

TEST_F(FallocateModesTest, Errors) {
  ModeledFile f(Path("e"));
  f.Write(0, MakeBlock(5, 0, 8 * kBlock));
  // Misaligned or reaching EOF: EINVAL from the daemon, when it is asked.
  const int collapse = Forwards(FALLOC_FL_COLLAPSE_RANGE) ? EINVAL : EOPNOTSUPP;
  const int insert = Forwards(FALLOC_FL_INSERT_RANGE) ? EINVAL : EOPNOTSUPP;
  EXPECT_EQ(f.Fallocate(FALLOC_FL_COLLAPSE_RANGE, 100, kBlock), collapse);
  EXPECT_EQ(f.Fallocate(FALLOC_FL_COLLAPSE_RANGE, 0, 100), collapse);
  EXPECT_EQ(f.Fallocate(FALLOC_FL_COLLAPSE_RANGE, 4 * kBlock, 4 * kBlock), collapse) << "collapse reaching EOF";
  EXPECT_EQ(f.Fallocate(FALLOC_FL_INSERT_RANGE, kBlock, 100), insert);
  EXPECT_EQ(f.Fallocate(FALLOC_FL_INSERT_RANGE, 8 * kBlock, kBlock), insert) << "insert at EOF";
  // Combinations the VFS refuses.
  EXPECT_EQ(f.Fallocate(FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_KEEP_SIZE, 0, kBlock), EOPNOTSUPP);
  EXPECT_EQ(f.Fallocate(FALLOC_FL_INSERT_RANGE | FALLOC_FL_KEEP_SIZE, 0, kBlock), EOPNOTSUPP);
  EXPECT_EQ(f.Fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, kBlock), EOPNOTSUPP);
  EXPECT_EQ(f.Fallocate(FALLOC_FL_ZERO_RANGE, 0, 0), EINVAL);
  EXPECT_EQ(f.Fallocate(FALLOC_FL_ZERO_RANGE, -1, kBlock), EINVAL);
  ASSERT_NO_FATAL_FAILURE(f.Check("after the refused requests"));

  // A directory can only be opened read-only: EBADF comes first; a FIFO is
  // ESPIPE, as on any Linux filesystem.
  ASSERT_SYS_OK(mkdir(Path("d").c_str(), 0755));
  UniqueFd d = Open(Path("d"), O_RDONLY | O_DIRECTORY);
  EXPECT_ERRNO(EBADF, fallocate(d.get(), FALLOC_FL_ZERO_RANGE, 0, kBlock));
  ASSERT_SYS_OK(mkfifo(Path("p").c_str(), 0644));
  UniqueFd p = Open(Path("p"), O_RDWR | O_NONBLOCK);
  EXPECT_ERRNO(ESPIPE, fallocate(p.get(), FALLOC_FL_ZERO_RANGE, 0, kBlock));
  UniqueFd ro = Open(Path("e"), O_RDONLY);
  EXPECT_ERRNO(EBADF, fallocate(ro.get(), FALLOC_FL_ZERO_RANGE, 0, kBlock));
}

}  // namespace
}  // namespace reclaimfs::itest

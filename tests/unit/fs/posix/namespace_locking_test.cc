// Namespace operations racing on the POSIX layer directly, with no kernel in
// front to serialise them: links, unlinks, renames of files and directories
// across directories, creates and rmdirs, from four threads, while reclaim
// drops inode bodies. Each operation takes only the namespace locks of what
// it changes (namespace_ops.cc), so these checks are about those locks: no
// lost link-count update, no name left pointing at a freed inode, no hang.
#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fs/cache/errno_status.h"
#include "fs/posix/filesystem.h"
#include "store_fixture.h"
#include "gtest/gtest.h"
#include "reclaim/memory_manager.h"
#include "storage/meta_store.h"
#include "tools/fsck_checks.h"

namespace reclaimfs::fs {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kRoot = 1;

class NamespaceLockingTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    root_.umask = 0;
    Mount();
  }

  uint64_t MakeDir(uint64_t parent, const std::string& name) {
    auto r = fs_->Mkdir(root_, parent, name, 0755);
    EXPECT_TRUE(r.ok()) << name << ": " << r.status();
    if (!r.ok()) return 0;
    fs_->Forget(r->ino, 1);
    return r->ino;
  }

  // (name, ino, is a directory) of every entry, without "." and "..".
  struct Entry {
    std::string name;
    uint64_t ino;
    bool dir;
  };
  std::vector<Entry> List(uint64_t dir) {
    std::vector<Entry> out;
    auto fh = fs_->OpenDir(root_, dir, O_RDONLY);
    EXPECT_TRUE(fh.ok()) << fh.status();
    if (!fh.ok()) return out;
    EXPECT_TRUE(fs_->ReadDir(root_, dir, *fh, 0, false, [&](const DirListEntry& e) {
                     if (e.name != "." && e.name != "..") out.push_back({e.name, e.ino, S_ISDIR(e.type)});
                     return true;
                   }).ok());
    EXPECT_TRUE(fs_->ReleaseDir(dir, *fh).ok());
    return out;
  }

  RequestContext root_;
};

// Aborts the test binary if `done` is not set within the bound: a deadlock
// among the namespace locks must fail the run, not stall it.
class HangGuard {
 public:
  explicit HangGuard(std::chrono::seconds bound)
      : thread_([this, bound] {
          std::unique_lock l(mu_);
          if (!cv_.wait_for(l, bound, [this] { return done_; })) {
            std::fprintf(stderr, "namespace operations still running after %llds: deadlock\n",
                         static_cast<long long>(bound.count()));
            std::abort();
          }
        }) {}
  ~HangGuard() {
    {
      std::lock_guard l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

TEST_F(NamespaceLockingTest, RacingLinksUnlinksAndRenamesKeepTheTreeConsistent) {
  constexpr int kThreads = 4;
  constexpr int kOps = 400;
  constexpr int kSharedFiles = 16;
  // Plain directories, and directories that move (each owned, i.e. moved,
  // by one thread, into any directory, each other included).
  std::vector<uint64_t> dirs = {kRoot};
  for (const char* n : {"a", "b", "c", "d"}) dirs.push_back(MakeDir(kRoot, n));
  constexpr int kMoving = 6;
  struct Moving {
    uint64_t ino, parent;
    std::string name;
  };
  std::vector<Moving> moving;
  for (int i = 0; i < kMoving; ++i) {
    const std::string name = "x" + std::to_string(i);
    moving.push_back({MakeDir(kRoot, name), kRoot, name});
    dirs.push_back(moving.back().ino);
  }
  // Files every thread links, unlinks and renames; slot i keeps an inode
  // number (it may lose its last name, and Link then fails with ENOENT).
  std::vector<std::atomic<uint64_t>> shared(kSharedFiles);
  for (int i = 0; i < kSharedFiles; ++i) {
    auto c = fs_->Create(root_, dirs[1], "f" + std::to_string(i), 0644, O_CREAT | O_EXCL | O_RDWR);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(fs_->Release(c->first.ino, c->second.fh).ok());
    fs_->Forget(c->first.ino, 1);
    shared[i] = c->first.ino;
  }

  std::atomic<bool> stop{false};
  std::thread reclaimer([&] {
    while (!stop) {
      fs_->memory().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
      std::this_thread::sleep_for(1ms);
    }
  });
  std::atomic<int> failures{0};
  std::mutex log_mu;
  auto fail = [&](const char* op, const absl::Status& s) {
    ++failures;
    std::lock_guard l(log_mu);
    ADD_FAILURE() << op << ": " << s;
  };
  {
    HangGuard guard(120s);
    std::vector<std::thread> workers;
    for (int t = 0; t < kThreads; ++t) {
      workers.emplace_back([&, t] {
        std::mt19937 rng(1234 + t);
        auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
        std::vector<std::pair<uint64_t, std::string>> names;  // this thread's names: (dir, name)
        int serial = 0;
        auto fresh = [&] { return "t" + std::to_string(t) + "_" + std::to_string(serial++); };
        for (int op = 0; op < kOps; ++op) {
          const uint64_t dir = dirs[pick(dirs.size())];
          switch (pick(7)) {
            case 0: {  // create a file, sometimes into the shared pool
              const std::string n = fresh();
              auto c = fs_->Create(root_, dir, n, 0644, O_CREAT | O_EXCL | O_RDWR);
              if (!c.ok()) {
                fail("create", c.status());
                break;
              }
              (void)fs_->Release(c->first.ino, c->second.fh);
              fs_->Forget(c->first.ino, 1);
              names.emplace_back(dir, n);
              if (pick(2) == 0) shared[pick(kSharedFiles)] = c->first.ino;
              break;
            }
            case 1:
            case 2: {  // link a shared file (other threads unlink its names)
              const std::string n = fresh();
              auto l = fs_->Link(root_, shared[pick(kSharedFiles)], dir, n);
              if (l.ok()) {
                fs_->Forget(l->ino, 1);
                names.emplace_back(dir, n);
              } else if (ToErrno(l.status()) != ENOENT) {
                fail("link", l.status());
              }
              break;
            }
            case 3: {  // unlink one of this thread's names
              if (names.empty()) break;
              const size_t i = pick(names.size());
              if (absl::Status s = fs_->Unlink(root_, names[i].first, names[i].second); !s.ok()) fail("unlink", s);
              names.erase(names.begin() + i);
              break;
            }
            case 4: {  // move one of this thread's names to another directory
              if (names.empty()) break;
              auto& [from, n] = names[pick(names.size())];
              const std::string to_name = fresh();
              if (absl::Status s = fs_->Rename(root_, from, n, dir, to_name, 0); !s.ok()) {
                fail("rename", s);
                break;
              }
              from = dir;
              n = to_name;
              break;
            }
            case 5: {  // move a directory this thread owns into any directory
              if (t >= 2) break;
              Moving& m = moving[t * (kMoving / 2) + pick(kMoving / 2)];
              const std::string to_name = fresh();
              absl::Status s = fs_->Rename(root_, m.parent, m.name, dir, to_name, 0);
              if (s.ok()) {
                m.parent = dir;
                m.name = to_name;
              } else if (ToErrno(s) != EINVAL) {  // into its own subtree
                fail("rename dir", s);
              }
              break;
            }
            case 6: {  // rmdir: refused while not empty, then done
              const std::string d = fresh();
              auto m = fs_->Mkdir(root_, dir, d, 0755);
              if (!m.ok()) {
                fail("mkdir", m.status());
                break;
              }
              fs_->Forget(m->ino, 1);
              auto c = fs_->Create(root_, m->ino, "inner", 0644, O_CREAT | O_EXCL | O_RDWR);
              if (!c.ok()) {
                fail("create inner", c.status());
                break;
              }
              (void)fs_->Release(c->first.ino, c->second.fh);
              fs_->Forget(c->first.ino, 1);
              if (ToErrno(fs_->Rmdir(root_, dir, d)) != ENOTEMPTY) fail("rmdir", absl::InternalError("not ENOTEMPTY"));
              if (absl::Status s = fs_->Unlink(root_, m->ino, "inner"); !s.ok()) fail("unlink inner", s);
              if (absl::Status s = fs_->Rmdir(root_, dir, d); !s.ok()) fail("rmdir", s);
              break;
            }
          }
        }
      });
    }
    for (auto& w : workers) w.join();
  }
  stop = true;
  reclaimer.join();
  EXPECT_EQ(failures.load(), 0);

  // Every name leads to a live inode whose link count is its number of
  // names, after a remount (orphans replayed) too, and fsck agrees.
  auto check_tree = [&] {
    std::map<uint64_t, uint32_t> names_of;   // file -> names found
    std::map<uint64_t, uint32_t> subdirs_of;  // directory -> subdirectories
    std::vector<uint64_t> walk = {kRoot};
    while (!walk.empty()) {
      const uint64_t d = walk.back();
      walk.pop_back();
      subdirs_of[d];
      for (const Entry& e : List(d)) {
        auto l = fs_->Lookup(root_, d, e.name);
        ASSERT_TRUE(l.ok()) << e.name << ": " << l.status();
        fs_->Forget(l->ino, 1);
        ASSERT_EQ(l->ino, e.ino);
        if (e.dir) {
          ++subdirs_of[d];
          walk.push_back(e.ino);
        } else {
          ++names_of[e.ino];
        }
      }
    }
    for (const auto& [ino, n] : names_of) {
      auto a = fs_->GetAttr(ino);
      ASSERT_TRUE(a.ok()) << ino << ": " << a.status();
      EXPECT_EQ(a->nlink, n) << "file " << ino;
    }
    for (const auto& [ino, n] : subdirs_of) {
      auto a = fs_->GetAttr(ino);
      ASSERT_TRUE(a.ok()) << ino << ": " << a.status();
      EXPECT_EQ(a->nlink, 2 + n) << "directory " << ino;
    }
    EXPECT_EQ(subdirs_of.size(), 1 + 4 + kMoving);  // every moving directory still reachable
  };
  check_tree();
  Unmount();
  auto report = tools::CheckStore(store_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->clean()) << report->Summary() << "\n" << (report->problems.empty() ? "" : report->problems[0]);
  Mount();
  check_tree();
}

// A link of a file racing the unlink of its only name: the link either
// finds the file gone (ENOENT) or keeps it alive. Without the file's own
// namespace lock the link could read nlink 1, the unlink drop it to 0 and
// mark the file for deallocation, and the link then give the freed file a
// name.
TEST_F(NamespaceLockingTest, LinkRacingTheLastUnlinkNeverNamesAFreedFile) {
  constexpr int kRounds = 1500;
  const uint64_t a = MakeDir(kRoot, "a");
  const uint64_t b = MakeDir(kRoot, "b");
  std::atomic<int> round{-1};
  std::atomic<int> finished{0};
  std::atomic<uint64_t> victim{0};
  std::vector<int> link_errno(kRounds, -1);
  std::atomic<int> failures{0};
  auto wait_round = [&](int r) {
    while (round.load(std::memory_order_acquire) < r) std::this_thread::yield();
  };
  {
    HangGuard guard(120s);
    std::thread unlinker([&] {
      for (int r = 0; r < kRounds; ++r) {
        wait_round(r);
        if (!fs_->Unlink(root_, a, "v" + std::to_string(r)).ok()) ++failures;
        finished.fetch_add(1, std::memory_order_acq_rel);
      }
    });
    std::thread linker([&] {
      for (int r = 0; r < kRounds; ++r) {
        wait_round(r);
        auto l = fs_->Link(root_, victim.load(), b, "l" + std::to_string(r));
        link_errno[r] = l.ok() ? 0 : ToErrno(l.status());
        if (l.ok()) fs_->Forget(l->ino, 1);
        finished.fetch_add(1, std::memory_order_acq_rel);
      }
    });
    for (int r = 0; r < kRounds; ++r) {
      auto c = fs_->Create(root_, a, "v" + std::to_string(r), 0644, O_CREAT | O_EXCL | O_RDWR);
      ASSERT_TRUE(c.ok()) << c.status();
      (void)fs_->Release(c->first.ino, c->second.fh);
      fs_->Forget(c->first.ino, 1);
      victim = c->first.ino;
      round.store(r, std::memory_order_release);
      while (finished.load(std::memory_order_acquire) < 2 * (r + 1)) std::this_thread::yield();
    }
    unlinker.join();
    linker.join();
  }
  EXPECT_EQ(failures.load(), 0);
  auto check_links = [&] {
    int linked = 0;
    for (int r = 0; r < kRounds; ++r) {
      if (link_errno[r] != 0) {
        EXPECT_EQ(link_errno[r], ENOENT) << "round " << r;
        continue;
      }
      ++linked;
      auto l = fs_->Lookup(root_, b, "l" + std::to_string(r));
      EXPECT_TRUE(l.ok()) << "round " << r << ": " << l.status();
      if (!l.ok()) continue;
      fs_->Forget(l->ino, 1);
      EXPECT_EQ(l->nlink, 1u) << "round " << r;
    }
    return linked;
  };
  const int linked = check_links();
  Unmount();
  auto report = tools::CheckStore(store_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->clean()) << report->Summary() << "\n" << (report->problems.empty() ? "" : report->problems[0]);
  Mount();
  EXPECT_EQ(check_links(), linked);
}

// Creates in two directories and in a third that a fourth thread keeps
// moving between them: every create lands once, in the directory it named,
// and the link counts of the two parents follow the moves.
TEST_F(NamespaceLockingTest, CreatesInTwoDirectoriesWhileTheirSubdirectoryMoves) {
  const uint64_t a = MakeDir(kRoot, "a");
  const uint64_t b = MakeDir(kRoot, "b");
  const uint64_t mover = MakeDir(a, "m");
  std::atomic<int> failures{0};
  {
    HangGuard guard(120s);
    std::vector<std::thread> workers;
    for (uint64_t parent : {a, b, mover}) {
      workers.emplace_back([&, parent] {
        for (int i = 0; i < 300; ++i) {
          auto c = fs_->Create(root_, parent, "f" + std::to_string(i), 0644, O_CREAT | O_EXCL | O_RDWR);
          if (!c.ok()) {
            ++failures;
            continue;
          }
          (void)fs_->Release(c->first.ino, c->second.fh);
          fs_->Forget(c->first.ino, 1);
        }
      });
    }
    workers.emplace_back([&] {
      uint64_t from = a, to = b;
      for (int i = 0; i < 300; ++i) {
        if (!fs_->Rename(root_, from, "m", to, "m", 0).ok()) ++failures;
        std::swap(from, to);
      }
    });
    for (auto& w : workers) w.join();
  }
  EXPECT_EQ(failures.load(), 0);
  for (uint64_t parent : {a, b, mover}) {
    size_t files = 0;
    for (const Entry& e : List(parent)) files += e.dir ? 0 : 1;
    EXPECT_EQ(files, 300u) << parent;
  }
  EXPECT_EQ(fs_->GetAttr(a)->nlink + fs_->GetAttr(b)->nlink, 2u + 2u + 1u);
}

}  // namespace
}  // namespace reclaimfs::fs

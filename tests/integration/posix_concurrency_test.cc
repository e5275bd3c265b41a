// Concurrent namespace changes on a mounted reclaimfs: 8 threads create,
// rename (also onto shared contended names), unlink, mkdir and rmdir in four
// shared directories. Afterwards every listing is exactly the expected set
// with the expected contents, fsck is clean after unmount, and the same
// holds after remount.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

class PosixConcurrencyTest : public ReclaimfsTest {};

constexpr int kThreads = 8;
constexpr int kDirs = 4;
constexpr int kOpsPerThread = 400;
constexpr int kHotNames = 4;

struct OwnFile {
  int dir;
  std::string name;
  std::string content;
};

TEST_F(PosixConcurrencyTest, CreatesRenamesUnlinksFromEightThreads) {
  auto dir_path = [&](int d) { return Path("shared" + std::to_string(d)); };
  for (int d = 0; d < kDirs; ++d) ASSERT_SYS_OK(mkdir(dir_path(d).c_str(), 0755));

  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<std::vector<OwnFile>> files(kThreads);
  std::vector<std::vector<std::pair<int, std::string>>> dirs(kThreads);

  auto worker = [&](int tid) {
    std::mt19937 rng(1234 + tid);
    auto fail = [&](const std::string& what) {
      std::lock_guard<std::mutex> l(mu);
      errors.push_back("thread " + std::to_string(tid) + ": " + what + ": " + strerrorname_np(errno));
    };
    auto& mine = files[tid];
    auto& my_dirs = dirs[tid];
    int seq = 0;
    for (int op = 0; op < kOpsPerThread; ++op) {
      const int kind = rng() % 10;
      const int d = rng() % kDirs;
      const std::string name = "t" + std::to_string(tid) + "-" + std::to_string(seq++);
      if (kind < 4 || mine.empty()) {  // create
        const std::string p = dir_path(d) + "/" + name;
        int fd = open(p.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) {
          fail("create " + p);
          continue;
        }
        if (write(fd, name.data(), name.size()) != static_cast<ssize_t>(name.size())) fail("write " + p);
        close(fd);
        mine.push_back({d, name, name});
      } else if (kind < 7) {  // rename to another directory and name
        const size_t i = rng() % mine.size();
        const std::string from = dir_path(mine[i].dir) + "/" + mine[i].name;
        const std::string to = dir_path(d) + "/" + name;
        if (rename(from.c_str(), to.c_str()) != 0) {
          fail("rename " + from + " -> " + to);
          continue;
        }
        mine[i].dir = d;
        mine[i].name = name;
      } else if (kind < 8) {  // rename onto a contended name (replacing whatever is there)
        const size_t i = rng() % mine.size();
        const std::string from = dir_path(mine[i].dir) + "/" + mine[i].name;
        const std::string to = dir_path(0) + "/hot-" + std::to_string(rng() % kHotNames);
        if (rename(from.c_str(), to.c_str()) != 0) {
          fail("rename " + from + " -> " + to);
          continue;
        }
        mine.erase(mine.begin() + i);
      } else if (kind < 9) {  // unlink
        const size_t i = rng() % mine.size();
        const std::string p = dir_path(mine[i].dir) + "/" + mine[i].name;
        if (unlink(p.c_str()) != 0) {
          fail("unlink " + p);
          continue;
        }
        mine.erase(mine.begin() + i);
      } else if (my_dirs.empty() || rng() % 2 == 0) {  // mkdir
        const std::string p = dir_path(d) + "/dir-" + name;
        if (mkdir(p.c_str(), 0755) != 0) {
          fail("mkdir " + p);
          continue;
        }
        my_dirs.emplace_back(d, "dir-" + name);
      } else {  // rmdir
        const size_t i = rng() % my_dirs.size();
        const std::string p = dir_path(my_dirs[i].first) + "/" + my_dirs[i].second;
        if (rmdir(p.c_str()) != 0) {
          fail("rmdir " + p);
          continue;
        }
        my_dirs.erase(my_dirs.begin() + i);
      }
    }
  };
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
    for (auto& t : threads) t.join();
  }
  EXPECT_TRUE(errors.empty()) << errors.size() << " failed operations, first: " << errors.front();

  // Expected contents per directory: name -> content ("" for directories,
  // "*" for a contended name whose last writer is unknown).
  std::vector<std::map<std::string, std::string>> expect(kDirs);
  for (int t = 0; t < kThreads; ++t) {
    for (const auto& f : files[t]) expect[f.dir][f.name] = f.content;
    for (const auto& [d, name] : dirs[t]) expect[d][name] = "";
  }
  auto check = [&](const std::string& when) {
    SCOPED_TRACE(when);
    for (int d = 0; d < kDirs; ++d) {
      std::vector<std::string> listed = ListDir(dir_path(d));
      std::multiset<std::string> seen(listed.begin(), listed.end());
      for (const auto& name : seen) {
        EXPECT_EQ(seen.count(name), 1u) << "listed twice: shared" << d << "/" << name;
      }
      for (const auto& [name, content] : expect[d]) {
        EXPECT_TRUE(seen.contains(name)) << "missing shared" << d << "/" << name;
      }
      for (const auto& name : std::set<std::string>(seen.begin(), seen.end())) {
        const std::string p = dir_path(d) + "/" + name;
        if (name.rfind("hot-", 0) == 0 && d == 0) {
          const std::string c = ReadFile(p);  // some thread's file, intact
          EXPECT_TRUE(c.size() > 1 && c[0] == 't') << p << " holds '" << c << "'";
          continue;
        }
        auto it = expect[d].find(name);
        if (it == expect[d].end()) {
          ADD_FAILURE() << "unexpected entry " << p;
          continue;
        }
        if (it->second.empty()) {
          EXPECT_TRUE(S_ISDIR(Lstat(p).st_mode)) << p;
        } else {
          EXPECT_EQ(ReadFile(p), it->second) << p;
        }
      }
    }
  };
  check("after the run");
  Unmount();
  ExpectFsckClean("after concurrent namespace changes");
  Mount();
  check("after remount");
}

}  // namespace
}  // namespace reclaimfs::itest

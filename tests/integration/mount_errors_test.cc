// Startup errors of reclaimfs and the store tools: a missing store path, an
// empty directory, corrupt stores and a directory that is not a store must
// be refused with a clear "reclaimfs: ..." message and a non-zero exit,
// without mounting and without changing the store; bad configuration names
// the key; mkfs refuses an existing store unless --force; fsck exit codes.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

class MountErrorsTest : public ReclaimfsTest {
 protected:
  MountErrorsTest() : ReclaimfsTest(FixtureConfig().Size("64M").Budget(240s).NoMkfs()) {}

  // Runs the daemon on `store` in both the daemonizing and the foreground
  // form, expecting a startup failure; returns the outputs. A daemon that
  // mounts anyway is a failure and is cleaned up.
  std::vector<RunResult> ExpectStartupFailure(const std::string& store, const std::vector<std::string>& extra) {
    std::vector<RunResult> results;
    for (bool foreground : {false, true}) {
      std::vector<std::string> argv{Tools().reclaimfs, store, mnt()};
      argv.insert(argv.end(), extra.begin(), extra.end());
      if (foreground) argv.push_back("-f");
      RunResult r = Run(argv, std::chrono::seconds(30));
      const std::string form = foreground ? "with -f" : "daemonized";
      EXPECT_FALSE(r.timed_out) << form << ": did not exit";
      EXPECT_NE(r.exit_code, 0) << form << ": startup should fail: " << r.Describe();
      EXPECT_EQ(r.signal, 0) << form << ": crashed instead of reporting an error: " << r.Describe();
      if (IsMounted(mnt())) {
        ADD_FAILURE() << form << ": mounted " << store << " although it should have refused";
        for (pid_t pid : FindProcesses(Tools().reclaimfs, mnt())) TrackForeignMount(pid);
        Run({Tools().umount, "-l", mnt()});
      }
      results.push_back(r);
    }
    return results;
  }

  void ExpectStoreMessage(const std::vector<RunResult>& results) {
    for (const auto& r : results) {
      EXPECT_NE(r.output.find("reclaimfs: "), std::string::npos)
          << "no \"reclaimfs: ...\" message: " << r.Describe();
    }
  }

  // A store made by mkfs at `path`, with one file written through a
  // daemonized mount that has fully exited again.
  void MakeStoreWithFile(const std::string& path) {
    RunResult r = Run({Tools().mkfs, path, "--size", "64M"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    r = Run({Tools().reclaimfs, path, mnt()}, std::chrono::seconds(30));
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    ASSERT_TRUE(IsMounted(mnt()));
    const std::vector<pid_t> pids = FindProcesses(Tools().reclaimfs, mnt());
    for (pid_t pid : pids) TrackForeignMount(pid);
    ASSERT_EQ(pids.size(), 1u) << "cannot find the daemon serving " << mnt();
    WriteFile(Path("file"), "content");
    ASSERT_EQ(Run({Tools().fusermount, "-u", mnt()}).exit_code, 0);
    for (pid_t pid : pids) {
      std::optional<int> st = WaitPid(pid, std::chrono::seconds(30));
      ASSERT_TRUE(st.has_value()) << "daemon did not exit after unmount";
    }
  }
};

TEST_F(MountErrorsTest, MissingStorePath) {
  const std::string missing = dir() + "/no-such-store";
  ExpectStoreMessage(ExpectStartupFailure(missing, {}));
  EXPECT_FALSE(Exists(missing)) << "a failed mount created the store directory";
  ExpectStoreMessage(ExpectStartupFailure("store:" + missing, {}));
}

TEST_F(MountErrorsTest, EmptyDirectory) {
  const std::string empty = dir() + "/empty";
  ASSERT_SYS_OK(mkdir(empty.c_str(), 0755));
  const TreeSnapshot before = SnapshotTree(empty);
  ExpectStoreMessage(ExpectStartupFailure(empty, {}));
  EXPECT_EQ(DiffSnapshots(before, SnapshotTree(empty)), "");
  EXPECT_TRUE(ListDir(empty).empty());
}

TEST_F(MountErrorsTest, DirectoryThatIsNotAStore) {
  const std::string other = dir() + "/other";
  ASSERT_SYS_OK(mkdir(other.c_str(), 0755));
  ASSERT_SYS_OK(mkdir((other + "/meta").c_str(), 0755));  // looks like one at a glance
  WriteFile(other + "/notes.txt", "not a store\n");
  WriteFile(other + "/data", std::string(8192, 'd'));
  const TreeSnapshot before = SnapshotTree(other);
  ExpectStoreMessage(ExpectStartupFailure(other, {}));
  EXPECT_EQ(DiffSnapshots(before, SnapshotTree(other)), "");
}

// Each corruption is applied to a fresh store holding one file.
TEST_F(MountErrorsTest, CorruptStores) {
  struct Case {
    const char* name;
    void (*corrupt)(const std::string& meta_dir, const std::string& store);
  };
  const Case cases[] = {
      {"CURRENT truncated",
       [](const std::string& meta, const std::string&) { std::filesystem::resize_file(meta + "/CURRENT", 0); }},
      {"MANIFEST overwritten with garbage",
       [](const std::string& meta, const std::string&) {
         for (const auto& e : std::filesystem::directory_iterator(meta)) {
           if (e.path().filename().string().rfind("MANIFEST-", 0) != 0) continue;
           const auto size = std::filesystem::file_size(e.path());
           std::ofstream(e.path(), std::ios::binary | std::ios::trunc) << MakeBlock(50, 0, size);
         }
       }},
      {"every metadata file overwritten with garbage",
       [](const std::string& meta, const std::string&) {
         uint64_t i = 0;
         for (const auto& e : std::filesystem::directory_iterator(meta)) {
           if (!e.is_regular_file()) continue;
           const auto size = std::max<uintmax_t>(std::filesystem::file_size(e.path()), 64);
           std::ofstream(e.path(), std::ios::binary | std::ios::trunc) << MakeBlock(51, i++, size);
         }
       }},
      {"data file removed",
       [](const std::string&, const std::string& store) { std::filesystem::remove(store + "/data"); }},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string s = dir() + "/corrupt" + std::to_string(n++);
    ASSERT_NO_FATAL_FAILURE(MakeStoreWithFile(s));
    ASSERT_TRUE(std::filesystem::is_directory(s + "/meta")) << "store layout changed: no meta/ in " << s;
    c.corrupt(s + "/meta", s);
    const TreeSnapshot before = SnapshotTree(s);
    ExpectStoreMessage(ExpectStartupFailure(s, {}));
    EXPECT_EQ(DiffSnapshots(before, SnapshotTree(s)), "") << "a refused mount changed the store";
    RunResult f = Run({Tools().fsck, s});
    EXPECT_TRUE(f.exit_code == 1 || f.exit_code == 2) << "fsck of a corrupt store: " << f.Describe();
  }
}

TEST_F(MountErrorsTest, BadConfiguration) {
  ASSERT_EQ(Mkfs().exit_code, 0);
  const TreeSnapshot before = SnapshotTree(store());
  struct Case {
    std::vector<std::string> args;
    std::string must_name;
  };
  const std::string unknown_key_file = dir() + "/unknown.toml";
  std::ofstream(unknown_key_file) << "cache_budget = \"32M\"\nbogus_key = 3\n";
  const std::string bad_value_file = dir() + "/badvalue.toml";
  std::ofstream(bad_value_file) << "dirty_ratio = \"lots\"\n";
  const Case cases[] = {
      {{"-o", "no_such_key=1"}, "no_such_key"},
      {{"-o", "cache_budget=banana"}, "cache_budget"},
      {{"-o", "shrinker_mode=sometimes"}, "shrinker_mode"},
      {{"-o", "flusher_threads=-3"}, "flusher_threads"},
      {{"-o", "frobnicate"}, "frobnicate"},
      {{"-o", "config=" + unknown_key_file}, "bogus_key"},
      {{"-o", "config=" + bad_value_file}, "dirty_ratio"},
      {{"-o", "config=" + dir() + "/missing.toml"}, "missing.toml"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args.back());
    for (const RunResult& r : ExpectStartupFailure(store(), c.args)) {
      EXPECT_NE(r.output.find(c.must_name), std::string::npos)
          << "the error does not name '" << c.must_name << "': " << r.Describe();
    }
  }
  EXPECT_EQ(DiffSnapshots(before, SnapshotTree(store())), "") << "a refused mount changed the store";
  // The same store mounts fine with good options afterwards.
  Mount("cache_budget=32M");
  WriteFile(Path("ok"), "ok");
}

TEST_F(MountErrorsTest, MkfsRefusesAnExistingStoreWithoutForce) {
  ASSERT_EQ(Mkfs().exit_code, 0);
  Mount();
  WriteFile(Path("file"), "content");
  Unmount();
  const TreeSnapshot before = SnapshotTree(store());
  RunResult r = Mkfs();
  EXPECT_EQ(r.exit_code, 1) << "mkfs over an existing store: " << r.Describe();
  EXPECT_FALSE(r.output.empty()) << "mkfs refused silently";
  EXPECT_EQ(DiffSnapshots(before, SnapshotTree(store())), "") << "a refused mkfs changed the store";
  Mount();
  EXPECT_EQ(ReadFile(Path("file")), "content") << "data gone after a refused mkfs";
  Unmount();

  r = Mkfs({"--force"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(Fsck().exit_code, 0);
  Mount();
  EXPECT_TRUE(ListDir(mnt()).empty()) << "mkfs --force left the old files";
}

TEST_F(MountErrorsTest, MkfsAndFsckArguments) {
  RunResult r = Mkfs({}, "banana");
  EXPECT_NE(r.exit_code, 0) << "mkfs --size banana: " << r.Describe();
  r = Mkfs({}, "64M");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(Fsck().exit_code, 0) << "fsck of a fresh store";
  EXPECT_EQ(Run({Tools().fsck, dir() + "/no-such-store"}).exit_code, 2) << "fsck of a missing store";
  const std::string empty = dir() + "/empty";
  ASSERT_SYS_OK(mkdir(empty.c_str(), 0755));
  EXPECT_EQ(Run({Tools().fsck, empty}).exit_code, 2) << "fsck of an empty directory";
  // The size suffixes are honored.
  ASSERT_EQ(Mkfs({"--force"}, "96M").exit_code, 0);
  Mount();
  struct statvfs vfs{};
  ASSERT_SYS_OK(statvfs(mnt().c_str(), &vfs));
  EXPECT_EQ(uint64_t{vfs.f_blocks} * vfs.f_frsize, 96ull << 20);
}

}  // namespace
}  // namespace reclaimfs::itest

// Directory listing on a mounted reclaimfs: 1000 entries each exactly once
// with the right d_type, telldir/seekdir, and getdents64 in small chunks
// while the directory changes (entries present throughout appear exactly
// once) or while every listed entry is renamed (the listing ends).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

class PosixReaddirTest : public ReclaimfsTest {};

struct Entry {
  std::string name;
  ino_t ino;
  unsigned char type;
};

// Reads one getdents64 batch of at most `bytes`; empty at end of directory.
std::vector<Entry> GetdentsChunk(int fd, size_t bytes) {
  std::vector<char> buf(bytes);
  long n = syscall(SYS_getdents64, fd, buf.data(), buf.size());
  if (n < 0) ThrowErrno("getdents64", "fd");
  std::vector<Entry> out;
  for (long pos = 0; pos < n;) {
    auto* d = reinterpret_cast<struct dirent64*>(buf.data() + pos);
    out.push_back({d->d_name, d->d_ino, d->d_type});
    pos += d->d_reclen;
  }
  return out;
}

TEST_F(PosixReaddirTest, ThousandEntriesEachExactlyOnce) {
  const std::string d = Path("big");
  ASSERT_SYS_OK(mkdir(d.c_str(), 0755));
  std::set<std::string> expect;
  for (int i = 0; i < 1000; ++i) {
    std::string name = "entry-" + std::to_string(i) + std::string(i % 50, 'p');
    if (i % 10 == 0) {
      ASSERT_SYS_OK(mkdir((d + "/" + name).c_str(), 0755));
    } else {
      WriteFile(d + "/" + name, "");
    }
    expect.insert(name);
  }

  std::map<std::string, int> seen;
  DIR* dir = opendir(d.c_str());
  ASSERT_NE(dir, nullptr);
  int dots = 0;
  errno = 0;
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") {
      ++dots;
      EXPECT_EQ(e->d_type, DT_DIR);
      continue;
    }
    ++seen[name];
    const bool is_dir = name.size() >= 7 && std::stoi(name.substr(6)) % 10 == 0;
    if (e->d_type != DT_UNKNOWN) {
      EXPECT_EQ(e->d_type, is_dir ? DT_DIR : DT_REG) << name;
    }
    EXPECT_EQ(e->d_ino, Stat(d + "/" + name).st_ino) << name;
  }
  EXPECT_EQ(errno, 0) << "readdir failed: " << strerror(errno);
  closedir(dir);
  EXPECT_EQ(dots, 2) << "\".\" and \"..\" each once";
  EXPECT_EQ(seen.size(), expect.size());
  for (const auto& name : expect) EXPECT_EQ(seen[name], 1) << name;
  for (const auto& [name, count] : seen) EXPECT_TRUE(expect.contains(name)) << "unexpected " << name;
}

TEST_F(PosixReaddirTest, TelldirSeekdirResumesAtTheSameEntry) {
  const std::string d = Path("d");
  ASSERT_SYS_OK(mkdir(d.c_str(), 0755));
  for (int i = 0; i < 300; ++i) WriteFile(d + "/f" + std::to_string(i), "");
  DIR* dir = opendir(d.c_str());
  ASSERT_NE(dir, nullptr);
  for (int i = 0; i < 100; ++i) ASSERT_NE(readdir(dir), nullptr);
  const long pos = telldir(dir);
  std::vector<std::string> after;
  while (dirent* e = readdir(dir)) after.push_back(e->d_name);
  seekdir(dir, pos);
  std::vector<std::string> again;
  while (dirent* e = readdir(dir)) again.push_back(e->d_name);
  EXPECT_EQ(after, again);
  EXPECT_EQ(after.size(), 302u - 100u);
  rewinddir(dir);
  int total = 0;
  while (readdir(dir) != nullptr) ++total;
  EXPECT_EQ(total, 302);
  closedir(dir);
}

// POSIX leaves entries added or removed during a listing unspecified, but
// every entry present throughout must be returned exactly once.
TEST_F(PosixReaddirTest, ListingWhileTheDirectoryChanges) {
  const std::string d = Path("d");
  ASSERT_SYS_OK(mkdir(d.c_str(), 0755));
  for (int i = 0; i < 400; ++i) {
    WriteFile(d + "/keep-" + std::to_string(i), "");
    WriteFile(d + "/churn-" + std::to_string(i), "");
  }
  UniqueFd fd = Open(d, O_RDONLY | O_DIRECTORY);
  std::map<std::string, int> seen;
  int round = 0;
  for (;;) {
    std::vector<Entry> chunk = GetdentsChunk(fd.get(), 512);
    if (chunk.empty()) break;
    for (const auto& e : chunk) ++seen[e.name];
    // Between chunks: remove some churn entries, add new ones; only during
    // the first rounds, since new entries may legitimately be returned and
    // adding them forever would make the listing endless.
    for (int k = 0; k < 8 && round < 40; ++k) {
      const int i = (round * 8 + k) * 7 % 400;
      unlink((d + "/churn-" + std::to_string(i)).c_str());
      WriteFile(d + "/new-" + std::to_string(round) + "-" + std::to_string(k), "");
    }
    ++round;
    ASSERT_LT(round, 2000) << "listing does not terminate";
  }
  EXPECT_GT(round, 10) << "the buffer was meant to take many rounds";
  for (int i = 0; i < 400; ++i) {
    EXPECT_EQ(seen["keep-" + std::to_string(i)], 1) << "keep-" << i;
  }
  for (const auto& [name, count] : seen) EXPECT_EQ(count, 1) << name << " returned twice";

  // Afterwards a fresh listing is exactly the current contents.
  std::vector<std::string> now = ListDir(d);
  std::set<std::string> unique(now.begin(), now.end());
  EXPECT_EQ(unique.size(), now.size());
  for (const auto& name : now) EXPECT_TRUE(Exists(d + "/" + name)) << name;
}

// What xfstests' readdir-while-renames does: each entry is renamed within
// the directory as soon as it is listed. A rename gives the entry a new
// position at the end; the listing must still return each file once and end.
TEST_F(PosixReaddirTest, RenamingEveryEntryDuringTheListing) {
  const std::string d = Path("d");
  ASSERT_SYS_OK(mkdir(d.c_str(), 0755));
  constexpr int kFiles = 2000;
  for (int i = 0; i < kFiles; ++i) WriteFile(d + "/" + std::to_string(i), "");
  UniqueFd fd = Open(d, O_RDONLY | O_DIRECTORY);
  std::map<std::string, int> seen;
  int listed = 0;
  for (;;) {
    std::vector<Entry> chunk = GetdentsChunk(fd.get(), 1024);
    if (chunk.empty()) break;
    for (const auto& e : chunk) {
      if (e.name == "." || e.name == "..") continue;
      ++listed;
      ++seen[e.name];
      ASSERT_SYS_OK(rename((d + "/" + e.name).c_str(), (d + "/" + e.name + "_r").c_str()));
    }
    ASSERT_LE(listed, 3 * kFiles) << "listing does not terminate";
  }
  EXPECT_EQ(listed, kFiles);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kFiles));
  for (const auto& [name, count] : seen) {
    EXPECT_EQ(count, 1) << name << " returned twice";
    EXPECT_EQ(name.find("_r"), std::string::npos) << "renamed entry " << name << " returned again";
  }
  EXPECT_EQ(ListDir(d).size(), static_cast<size_t>(kFiles));
}

TEST_F(PosixReaddirTest, EmptyDirectoryHasOnlyDotEntries) {
  ASSERT_SYS_OK(mkdir(Path("e").c_str(), 0755));
  UniqueFd fd = Open(Path("e"), O_RDONLY | O_DIRECTORY);
  std::vector<Entry> all = GetdentsChunk(fd.get(), 4096);
  std::set<std::string> names;
  for (const auto& e : all) names.insert(e.name);
  EXPECT_EQ(names, (std::set<std::string>{".", ".."}));
  EXPECT_TRUE(GetdentsChunk(fd.get(), 4096).empty());
}

}  // namespace
}  // namespace reclaimfs::itest

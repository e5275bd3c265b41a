// File handles (name_to_handle_at / open_by_handle_at, what NFS export
// uses): a handle opens its file or directory again after the kernel has
// dropped the inode, after a remount, and is stale once the file is gone,
// also when its inode number is reused. Needs root (CAP_DAC_READ_SEARCH).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

class FileHandleTest : public ReclaimfsTest {
 protected:
  // An encoded handle of `path` (as name_to_handle_at gives it).
  std::vector<char> HandleOf(const std::string& path) {
    std::vector<char> buf(sizeof(file_handle) + MAX_HANDLE_SZ);
    auto* fh = reinterpret_cast<file_handle*>(buf.data());
    fh->handle_bytes = MAX_HANDLE_SZ;
    int mount_id = 0;
    if (name_to_handle_at(AT_FDCWD, path.c_str(), fh, &mount_id, 0) != 0) ThrowErrno("name_to_handle_at", path);
    return buf;
  }

  // open_by_handle_at on the current mount: the fd, or -1 with errno.
  int OpenByHandle(std::vector<char>& handle, int flags) {
    UniqueFd mount_fd = Open(mnt(), O_RDONLY | O_DIRECTORY);
    return open_by_handle_at(mount_fd.get(), reinterpret_cast<file_handle*>(handle.data()), flags);
  }

  // The handle must be stale. Right after the last close and unlink the
  // kernel may still hold the inode (a RELEASE reply it waits for pins it)
  // and opens it from its own cache; dropping caches lets it go, after which
  // decoding asks the filesystem, which must say the node is gone.
  void ExpectStale(std::vector<char>& handle, int flags, const std::string& when) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      const int fd = OpenByHandle(handle, flags);
      if (fd < 0) {
        EXPECT_EQ(errno, ESTALE) << when << ": " << std::strerror(errno);
        return;
      }
      close(fd);
      DropCaches();
      usleep(50'000);
    }
    ADD_FAILURE() << when << ": the handle still opens after dropping caches";
  }

  // Reads the whole file behind `fd` from offset 0.
  static std::string ReadAll(int fd) {
    std::string out;
    char buf[4096];
    for (off_t off = 0;;) {
      const ssize_t n = pread(fd, buf, sizeof(buf), off);
      if (n < 0) ThrowErrno("pread", "handle fd");
      if (n == 0) return out;
      out.append(buf, static_cast<size_t>(n));
      off += n;
    }
  }

  // Makes the kernel drop unused dentries and inodes: it sends FORGET, and
  // decoding a handle then has to ask the filesystem.
  static void DropCaches() {
    UniqueFd f = Open("/proc/sys/vm/drop_caches", O_WRONLY);
    PwriteAll(f.get(), "2", 1, 0);
  }

  // The handle opens a regular file with `content` and inode `ino`.
  void ExpectFileHandleReads(std::vector<char>& handle, ino_t ino, const std::string& content,
                             const std::string& when) {
    UniqueFd fd(OpenByHandle(handle, O_RDONLY));
    ASSERT_TRUE(fd) << when << ": open_by_handle_at: " << std::strerror(errno);
    struct stat st;
    ASSERT_SYS_OK(fstat(fd.get(), &st));
    EXPECT_EQ(st.st_ino, ino) << when;
    EXPECT_EQ(ReadAll(fd.get()), content) << when;
  }

  // The handle opens directory `ino`, whose entry `name` holds `content`,
  // and whose ".." is directory `parent_ino`.
  void ExpectDirHandleWorks(std::vector<char>& handle, ino_t ino, ino_t parent_ino, const std::string& name,
                            const std::string& content, const std::string& when) {
    UniqueFd dir(OpenByHandle(handle, O_RDONLY | O_DIRECTORY));
    ASSERT_TRUE(dir) << when << ": open_by_handle_at of a directory: " << std::strerror(errno);
    struct stat st;
    ASSERT_SYS_OK(fstat(dir.get(), &st));
    EXPECT_EQ(st.st_ino, ino) << when;
    UniqueFd f(openat(dir.get(), name.c_str(), O_RDONLY));
    ASSERT_TRUE(f) << when << ": openat in the directory: " << std::strerror(errno);
    EXPECT_EQ(ReadAll(f.get()), content) << when;
    UniqueFd up(openat(dir.get(), "..", O_RDONLY | O_DIRECTORY));
    ASSERT_TRUE(up) << when << ": openat(\"..\"): " << std::strerror(errno);
    ASSERT_SYS_OK(fstat(up.get(), &st));
    EXPECT_EQ(st.st_ino, parent_ino) << when << ": \"..\" of the directory";
  }
};

TEST_F(FileHandleTest, FileAndDirectoryHandlesSurviveCacheDropAndRemount) {
  ASSERT_SYS_OK(mkdir(Path("top").c_str(), 0755));
  ASSERT_SYS_OK(mkdir(Path("top/sub").c_str(), 0755));
  const std::string content = MakeBlock(7, 0, 10000);
  WriteFile(Path("top/sub/file"), content);
  const ino_t top_ino = Stat(Path("top")).st_ino;
  const ino_t sub_ino = Stat(Path("top/sub")).st_ino;
  const ino_t file_ino = Stat(Path("top/sub/file")).st_ino;
  std::vector<char> file_handle = HandleOf(Path("top/sub/file"));
  std::vector<char> dir_handle = HandleOf(Path("top/sub"));

  ExpectFileHandleReads(file_handle, file_ino, content, "while cached");
  ExpectDirHandleWorks(dir_handle, sub_ino, top_ino, "file", content, "while cached");

  DropCaches();
  ExpectFileHandleReads(file_handle, file_ino, content, "after drop_caches");
  DropCaches();
  ExpectDirHandleWorks(dir_handle, sub_ino, top_ino, "file", content, "after drop_caches");

  Remount();
  ExpectFileHandleReads(file_handle, file_ino, content, "after remount");
  Remount();
  ExpectDirHandleWorks(dir_handle, sub_ino, top_ino, "file", content, "after remount");
}

TEST_F(FileHandleTest, HandleOfUnlinkedFileIsStale) {
  WriteFile(Path("keep"), "kept");
  WriteFile(Path("gone"), "gone");
  ASSERT_SYS_OK(mkdir(Path("gonedir").c_str(), 0755));
  std::vector<char> keep = HandleOf(Path("keep"));
  std::vector<char> gone = HandleOf(Path("gone"));
  std::vector<char> gonedir = HandleOf(Path("gonedir"));
  const ino_t keep_ino = Stat(Path("keep")).st_ino;
  ASSERT_SYS_OK(unlink(Path("gone").c_str()));
  ASSERT_SYS_OK(rmdir(Path("gonedir").c_str()));

  ExpectStale(gone, O_RDONLY, "unlinked file");
  ExpectStale(gonedir, O_RDONLY | O_DIRECTORY, "removed directory");
  DropCaches();
  ExpectStale(gone, O_RDONLY, "unlinked file, after drop_caches");
  ExpectFileHandleReads(keep, keep_ino, "kept", "linked file next to it");
  Remount();
  ExpectStale(gone, O_RDONLY, "unlinked file, after remount");
  ExpectStale(gonedir, O_RDONLY | O_DIRECTORY, "removed directory, after remount");
  ExpectFileHandleReads(keep, keep_ino, "kept", "linked file, after remount");
}

TEST_F(FileHandleTest, HandleOfUnlinkedOpenFileStillOpens) {
  WriteFile(Path("open"), "still here");
  std::vector<char> handle = HandleOf(Path("open"));
  const ino_t ino = Stat(Path("open")).st_ino;
  UniqueFd keep = Open(Path("open"), O_RDONLY);
  ASSERT_SYS_OK(unlink(Path("open").c_str()));
  DropCaches();
  ExpectFileHandleReads(handle, ino, "still here", "unlinked but open");
  ASSERT_SYS_OK(keep.Close());
  ExpectStale(handle, O_RDONLY, "after the last close");
}

TEST_F(FileHandleTest, ReusedInodeNumberGetsNewGeneration) {
  WriteFile(Path("old"), "old file");
  const ino_t old_ino = Stat(Path("old")).st_ino;
  std::vector<char> handle = HandleOf(Path("old"));
  ASSERT_SYS_OK(unlink(Path("old").c_str()));
  WriteFile(Path("same-mount"), "new file");
  ExpectStale(handle, O_RDONLY, "after unlink and a new file");

  // The highest inode number is handed out again after a remount: the old
  // handle must not open the file that now has it.
  ASSERT_SYS_OK(unlink(Path("same-mount").c_str()));
  Remount();
  WriteFile(Path("new"), "new file");
  const ino_t new_ino = Stat(Path("new")).st_ino;
  ASSERT_EQ(new_ino, old_ino) << "the test needs the inode number reused";
  ExpectStale(handle, O_RDONLY, "old inode " + std::to_string(old_ino) + ", new " + std::to_string(new_ino));
  DropCaches();
  ExpectStale(handle, O_RDONLY, "after drop_caches");
  Remount();
  ExpectStale(handle, O_RDONLY, "after another remount");
  std::vector<char> new_handle = HandleOf(Path("new"));
  ExpectFileHandleReads(new_handle, new_ino, "new file", "the new file's own handle");
}

}  // namespace
}  // namespace reclaimfs::itest

// POSIX namespace operations on a mounted reclaimfs: mknod of every special
// type, mkdir/rmdir, unlink (also of an open file), symlink/readlink, link
// counts, rename in all its forms, and the 255-byte name limit.
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

class PosixNamespaceTest : public ReclaimfsTest {};

std::string Readlink(const std::string& path) {
  std::string buf(8192, '\0');
  ssize_t n = readlink(path.c_str(), buf.data(), buf.size());
  if (n < 0) ThrowErrno("readlink", path);
  buf.resize(n);
  return buf;
}

TEST_F(PosixNamespaceTest, MknodEveryType) {
  ASSERT_SYS_OK(mknod(Path("fifo").c_str(), S_IFIFO | 0644, 0));
  ASSERT_SYS_OK(mknod(Path("sock").c_str(), S_IFSOCK | 0600, 0));
  ASSERT_SYS_OK(mknod(Path("chr").c_str(), S_IFCHR | 0666, makedev(1, 3)));
  ASSERT_SYS_OK(mknod(Path("blk").c_str(), S_IFBLK | 0660, makedev(8, 17)));
  ASSERT_SYS_OK(mknod(Path("reg").c_str(), S_IFREG | 0640, 0));

  struct stat st = Lstat(Path("fifo"));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  st = Lstat(Path("sock"));
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  st = Lstat(Path("chr"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  st = Lstat(Path("blk"));
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(major(st.st_rdev), 8u);
  EXPECT_EQ(minor(st.st_rdev), 17u);
  st = Lstat(Path("reg"));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 0);

  // A fifo on reclaimfs is a working pipe (served by the kernel).
  {
    UniqueFd fd = Open(Path("fifo"), O_RDWR | O_NONBLOCK);
    ASSERT_EQ(write(fd.get(), "pipe", 4), 4);
    char buf[8];
    EXPECT_EQ(read(fd.get(), buf, sizeof buf), 4);
  }
  EXPECT_ERRNO(EEXIST, mknod(Path("fifo").c_str(), S_IFIFO | 0644, 0));
  EXPECT_ERRNO(ENOENT, mknod(Path("nodir/fifo").c_str(), S_IFIFO | 0644, 0));

  std::vector<std::string> names = ListDir(mnt());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"blk", "chr", "fifo", "reg", "sock"}));
}

TEST_F(PosixNamespaceTest, MkdirRmdirAndLinkCounts) {
  const std::string d = Path("d");
  const nlink_t root_links = Stat(mnt()).st_nlink;
  ASSERT_SYS_OK(mkdir(d.c_str(), 0777));
  struct stat st = Stat(d);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0755u) << "umask 022 not applied";
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(Stat(mnt()).st_nlink, root_links + 1) << "parent nlink counts subdirectories";
  EXPECT_EQ(Stat(d + "/..").st_ino, Stat(mnt()).st_ino);

  ASSERT_SYS_OK(mkdir((d + "/sub").c_str(), 0700));
  EXPECT_EQ(Stat(d).st_nlink, 3u);
  WriteFile(d + "/file", "x");
  EXPECT_EQ(Stat(d).st_nlink, 3u) << "a file counted as a subdirectory";

  EXPECT_ERRNO(EEXIST, mkdir(d.c_str(), 0755));
  EXPECT_ERRNO(EEXIST, mkdir((d + "/file").c_str(), 0755));
  EXPECT_ERRNO(ENOENT, mkdir(Path("missing/x").c_str(), 0755));
  EXPECT_ERRNO(ENOTDIR, mkdir((d + "/file/x").c_str(), 0755));
  EXPECT_ERRNO(ENOTEMPTY, rmdir(d.c_str()));
  EXPECT_ERRNO(ENOTDIR, rmdir((d + "/file").c_str()));
  EXPECT_ERRNO(ENOENT, rmdir(Path("missing").c_str()));
  EXPECT_ERRNO(EINVAL, rmdir((d + "/sub/.").c_str()));

  ASSERT_SYS_OK(rmdir((d + "/sub").c_str()));
  EXPECT_EQ(Stat(d).st_nlink, 2u);
  EXPECT_FALSE(Exists(d + "/sub"));
  ASSERT_SYS_OK(unlink((d + "/file").c_str()));
  ASSERT_SYS_OK(rmdir(d.c_str()));
  EXPECT_FALSE(Exists(d));
  EXPECT_EQ(Stat(mnt()).st_nlink, root_links);
  EXPECT_TRUE(ListDir(mnt()).empty());
}

TEST_F(PosixNamespaceTest, UnlinkIncludingOpenFiles) {
  WriteFile(Path("f"), "x");
  ASSERT_SYS_OK(mkdir(Path("d").c_str(), 0755));
  EXPECT_ERRNO(EISDIR, unlink(Path("d").c_str()));
  EXPECT_ERRNO(ENOENT, unlink(Path("missing").c_str()));
  EXPECT_ERRNO(ENOTDIR, unlink(Path("f/x").c_str()));
  ASSERT_SYS_OK(unlink(Path("f").c_str()));
  EXPECT_FALSE(Exists(Path("f")));
  EXPECT_ERRNO(ENOENT, unlink(Path("f").c_str()));

  // An unlinked file stays readable and writable through an open fd.
  const std::string data = MakeBlock(7, 0, 1 << 20);
  const std::string o = Path("open");
  UniqueFd fd = Open(o, O_CREAT | O_RDWR);
  PwriteAll(fd.get(), data.data(), data.size(), 0);
  ASSERT_SYS_OK(unlink(o.c_str()));
  EXPECT_FALSE(Exists(o));
  struct stat st{};
  ASSERT_SYS_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 0u);
  PwriteAll(fd.get(), "tail", 4, data.size());
  std::string back(data.size() + 4, '\0');
  PreadExact(fd.get(), back.data(), back.size(), 0);
  EXPECT_EQ(FirstDifference(back, data + "tail"), -1);
  // A new file of the same name is a different file.
  WriteFile(o, "new");
  EXPECT_NE(Stat(o).st_ino, st.st_ino);
  EXPECT_EQ(ReadFile(o), "new");
}

TEST_F(PosixNamespaceTest, SymlinkAndReadlink) {
  WriteFile(Path("target"), "content");
  ASSERT_SYS_OK(symlink("target", Path("l").c_str()));
  EXPECT_EQ(Readlink(Path("l")), "target");
  struct stat st = Lstat(Path("l"));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_size, 6);
  EXPECT_EQ(Stat(Path("l")).st_ino, Stat(Path("target")).st_ino);
  EXPECT_EQ(ReadFile(Path("l")), "content");

  ASSERT_SYS_OK(symlink("/nonexistent/elsewhere", Path("dangling").c_str()));
  EXPECT_EQ(Readlink(Path("dangling")), "/nonexistent/elsewhere");
  EXPECT_ERRNO(ENOENT, stat(Path("dangling").c_str(), &st));

  const std::string long_target(4000, 'x');
  ASSERT_SYS_OK(symlink(long_target.c_str(), Path("long").c_str()));
  EXPECT_EQ(Readlink(Path("long")), long_target);

  ASSERT_SYS_OK(mkdir(Path("dir").c_str(), 0755));
  ASSERT_SYS_OK(symlink("dir", Path("dl").c_str()));
  WriteFile(Path("dl/inside"), "i");
  EXPECT_EQ(ReadFile(Path("dir/inside")), "i");

  EXPECT_ERRNO(EEXIST, symlink("x", Path("l").c_str()));
  EXPECT_ERRNO(EEXIST, symlink("x", Path("target").c_str()));
  char buf[64];
  EXPECT_ERRNO(EINVAL, readlink(Path("target").c_str(), buf, sizeof buf));
  EXPECT_ERRNO(ENOENT, readlink(Path("missing").c_str(), buf, sizeof buf));
  // A short buffer truncates silently.
  EXPECT_EQ(readlink(Path("l").c_str(), buf, 3), 3);
  EXPECT_EQ(std::string(buf, 3), "tar");
}

TEST_F(PosixNamespaceTest, HardLinksShareTheInode) {
  const std::string a = Path("a"), b = Path("sub/b");
  WriteFile(a, "first");
  ASSERT_SYS_OK(mkdir(Path("sub").c_str(), 0755));
  ASSERT_SYS_OK(link(a.c_str(), b.c_str()));
  struct stat sa = Stat(a), sb = Stat(b);
  EXPECT_EQ(sa.st_ino, sb.st_ino);
  EXPECT_EQ(sa.st_nlink, 2u);
  EXPECT_EQ(sb.st_nlink, 2u);
  ASSERT_SYS_OK(link(a.c_str(), Path("c").c_str()));
  EXPECT_EQ(Stat(b).st_nlink, 3u);

  {
    UniqueFd fd = Open(b, O_WRONLY | O_TRUNC);
    ASSERT_EQ(write(fd.get(), "second", 6), 6);
  }
  EXPECT_EQ(ReadFile(a), "second");

  ASSERT_SYS_OK(unlink(a.c_str()));
  EXPECT_EQ(Stat(b).st_nlink, 2u);
  ASSERT_SYS_OK(unlink(Path("c").c_str()));
  EXPECT_EQ(Stat(b).st_nlink, 1u);
  EXPECT_EQ(ReadFile(b), "second");

  EXPECT_ERRNO(EEXIST, link(b.c_str(), Path("sub").c_str()));
  EXPECT_ERRNO(EPERM, link(Path("sub").c_str(), Path("dirlink").c_str()));
  EXPECT_ERRNO(ENOENT, link(Path("missing").c_str(), Path("x").c_str()));
}

TEST_F(PosixNamespaceTest, RenameFileOverFile) {
  WriteFile(Path("src"), "source");
  WriteFile(Path("dst"), "destination");
  const ino_t src_ino = Stat(Path("src")).st_ino;
  UniqueFd old_dst = Open(Path("dst"), O_RDONLY);  // replaced but open
  ASSERT_SYS_OK(rename(Path("src").c_str(), Path("dst").c_str()));
  EXPECT_FALSE(Exists(Path("src")));
  EXPECT_EQ(ReadFile(Path("dst")), "source");
  EXPECT_EQ(Stat(Path("dst")).st_ino, src_ino);
  char buf[32];
  EXPECT_EQ(pread(old_dst.get(), buf, sizeof buf, 0), 11) << "replaced file lost its data while open";
  EXPECT_EQ(std::string(buf, 11), "destination");

  // Rename to itself (and to a hard link of itself) is a no-op.
  ASSERT_SYS_OK(rename(Path("dst").c_str(), Path("dst").c_str()));
  ASSERT_SYS_OK(link(Path("dst").c_str(), Path("hl").c_str()));
  ASSERT_SYS_OK(rename(Path("dst").c_str(), Path("hl").c_str()));
  EXPECT_TRUE(Exists(Path("dst")));
  EXPECT_TRUE(Exists(Path("hl")));

  // Across directories.
  ASSERT_SYS_OK(mkdir(Path("d").c_str(), 0755));
  ASSERT_SYS_OK(rename(Path("hl").c_str(), Path("d/moved").c_str()));
  EXPECT_EQ(ReadFile(Path("d/moved")), "source");
  EXPECT_ERRNO(ENOENT, rename(Path("missing").c_str(), Path("x").c_str()));
  EXPECT_ERRNO(ENOENT, rename(Path("dst").c_str(), Path("nodir/x").c_str()));
}

TEST_F(PosixNamespaceTest, RenameDirectories) {
  for (const char* d : {"a", "a/sub", "empty", "full", "b"}) ASSERT_SYS_OK(mkdir(Path(d).c_str(), 0755));
  WriteFile(Path("full/f"), "f");
  WriteFile(Path("file"), "x");

  // Over an empty directory: replaces it.
  ASSERT_SYS_OK(rename(Path("a").c_str(), Path("empty").c_str()));
  EXPECT_FALSE(Exists(Path("a")));
  EXPECT_TRUE(S_ISDIR(Stat(Path("empty/sub")).st_mode));
  // Over a non-empty directory, a file over a directory, a directory over a file.
  EXPECT_ERRNO(ENOTEMPTY, rename(Path("empty").c_str(), Path("full").c_str()));
  EXPECT_ERRNO(EISDIR, rename(Path("file").c_str(), Path("b").c_str()));
  EXPECT_ERRNO(ENOTDIR, rename(Path("b").c_str(), Path("file").c_str()));
  // Into its own subtree.
  EXPECT_ERRNO(EINVAL, rename(Path("empty").c_str(), Path("empty/sub/inside").c_str()));
  EXPECT_TRUE(Exists(Path("empty/sub")));

  // Moving a directory moves ".." and the parents' link counts.
  const nlink_t b_links = Stat(Path("b")).st_nlink;
  const nlink_t empty_links = Stat(Path("empty")).st_nlink;
  ASSERT_SYS_OK(rename(Path("empty/sub").c_str(), Path("b/sub").c_str()));
  EXPECT_EQ(Stat(Path("b/sub/..")).st_ino, Stat(Path("b")).st_ino);
  EXPECT_EQ(Stat(Path("b")).st_nlink, b_links + 1);
  EXPECT_EQ(Stat(Path("empty")).st_nlink, empty_links - 1);
  ASSERT_SYS_OK(rmdir(Path("empty").c_str()));  // empty again
}

TEST_F(PosixNamespaceTest, Renameat2NoreplaceAndExchange) {
  WriteFile(Path("x"), "xx");
  WriteFile(Path("y"), "yy");
  ASSERT_SYS_OK(mkdir(Path("d").c_str(), 0755));
  WriteFile(Path("d/inner"), "i");

  EXPECT_ERRNO(EEXIST, renameat2(AT_FDCWD, Path("x").c_str(), AT_FDCWD, Path("y").c_str(), RENAME_NOREPLACE));
  EXPECT_EQ(ReadFile(Path("y")), "yy");
  ASSERT_SYS_OK(renameat2(AT_FDCWD, Path("x").c_str(), AT_FDCWD, Path("z").c_str(), RENAME_NOREPLACE));
  EXPECT_FALSE(Exists(Path("x")));
  EXPECT_EQ(ReadFile(Path("z")), "xx");

  const ino_t y_ino = Stat(Path("y")).st_ino, d_ino = Stat(Path("d")).st_ino;
  ASSERT_SYS_OK(renameat2(AT_FDCWD, Path("y").c_str(), AT_FDCWD, Path("d").c_str(), RENAME_EXCHANGE));
  EXPECT_TRUE(S_ISREG(Stat(Path("d")).st_mode));
  EXPECT_EQ(Stat(Path("d")).st_ino, y_ino);
  EXPECT_EQ(ReadFile(Path("d")), "yy");
  EXPECT_TRUE(S_ISDIR(Stat(Path("y")).st_mode));
  EXPECT_EQ(Stat(Path("y")).st_ino, d_ino);
  EXPECT_EQ(ReadFile(Path("y/inner")), "i");

  // Exchange across directories, between two files.
  ASSERT_SYS_OK(renameat2(AT_FDCWD, Path("z").c_str(), AT_FDCWD, Path("y/inner").c_str(), RENAME_EXCHANGE));
  EXPECT_EQ(ReadFile(Path("z")), "i");
  EXPECT_EQ(ReadFile(Path("y/inner")), "xx");

  EXPECT_ERRNO(ENOENT, renameat2(AT_FDCWD, Path("z").c_str(), AT_FDCWD, Path("nothing").c_str(), RENAME_EXCHANGE));
  EXPECT_ERRNO(EINVAL, renameat2(AT_FDCWD, Path("z").c_str(), AT_FDCWD, Path("w").c_str(),
                                 RENAME_EXCHANGE | RENAME_NOREPLACE));
  std::vector<std::string> names = ListDir(mnt());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"d", "y", "z"}));
}

TEST_F(PosixNamespaceTest, NameLengthLimit) {
  const std::string ok(255, 'n'), too_long(256, 'n');
  WriteFile(Path(ok), "fits");
  EXPECT_EQ(ReadFile(Path(ok)), "fits");
  EXPECT_EQ(ListDir(mnt()), std::vector<std::string>{ok});
  ASSERT_SYS_OK(mkdir(Path(std::string(255, 'd')).c_str(), 0755));

  EXPECT_ERRNO(ENAMETOOLONG, open(Path(too_long).c_str(), O_CREAT | O_WRONLY, 0644));
  EXPECT_ERRNO(ENAMETOOLONG, mkdir(Path(too_long).c_str(), 0755));
  EXPECT_ERRNO(ENAMETOOLONG, symlink("t", Path(too_long).c_str()));
  EXPECT_ERRNO(ENAMETOOLONG, mknod(Path(too_long).c_str(), S_IFIFO | 0644, 0));
  EXPECT_ERRNO(ENAMETOOLONG, link(Path(ok).c_str(), Path(too_long).c_str()));
  EXPECT_ERRNO(ENAMETOOLONG, rename(Path(ok).c_str(), Path(too_long).c_str()));
  struct stat st{};
  EXPECT_ERRNO(ENAMETOOLONG, stat(Path(too_long).c_str(), &st));
  EXPECT_TRUE(Exists(Path(ok)));
  EXPECT_EQ(ListDir(mnt()).size(), 2u);
}

}  // namespace
}  // namespace reclaimfs::itest

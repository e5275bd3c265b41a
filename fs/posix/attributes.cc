// Attributes: from inode records, and to struct stat.
#include "fs/posix/attributes.h"

#include <cstring>

namespace reclaimfs::fs {

Attributes AttributesOf(const storage::InodeRecord& rec, uint64_t sectors, uint32_t blksize) {
  Attributes a;
  a.ino = rec.ino;
  a.mode = rec.mode;
  a.nlink = rec.nlink;
  a.uid = rec.uid;
  a.gid = rec.gid;
  a.rdev = rec.rdev;
  a.size = rec.size;
  a.blocks = sectors;
  a.blksize = blksize;
  a.generation = rec.generation;
  a.atime = rec.atime;
  a.mtime = rec.mtime;
  a.ctime = rec.ctime;
  a.btime = rec.btime;
  return a;
}

void Attributes::ToStat(struct stat* st) const {
  std::memset(st, 0, sizeof(*st));
  st->st_ino = ino;
  st->st_mode = mode;
  st->st_nlink = nlink;
  st->st_uid = uid;
  st->st_gid = gid;
  st->st_rdev = rdev;
  st->st_size = static_cast<off_t>(size);
  st->st_blocks = static_cast<blkcnt_t>(blocks);
  st->st_blksize = blksize;
  st->st_atim.tv_sec = atime.sec;
  st->st_atim.tv_nsec = atime.nsec;
  st->st_mtim.tv_sec = mtime.sec;
  st->st_mtim.tv_nsec = mtime.nsec;
  st->st_ctim.tv_sec = ctime.sec;
  st->st_ctim.tv_nsec = ctime.nsec;
}

}  // namespace reclaimfs::fs

#include "tests/integration/user_process.h"

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tests/integration/file_util.h"
#include "tests/integration/process_util.h"

namespace reclaimfs::itest {

void Report::ExpectErrno(long r, int err, const std::string& what) {
  const int e = errno;
  if (r != -1) {
    text_ += what + ": succeeded, expected " + strerrorname_np(err) + "\n";
  } else if (e != err) {
    text_ += what + ": " + strerrorname_np(e) + ", expected " + strerrorname_np(err) + "\n";
  }
}

void Report::ExpectOk(long r, const std::string& what) {
  if (r == -1) text_ += what + ": " + strerrorname_np(errno) + "\n";
}

std::string RunAsUser(mode_t mask, const std::function<void(Report&)>& fn) {
  return RunAs(UserIdentity{}, mask, fn);
}

std::string RunAs(const UserIdentity& who, mode_t mask, const std::function<void(Report&)>& fn) {
  int fds[2];
  if (pipe(fds) != 0) ThrowErrno("pipe", "");
  pid_t pid = fork();
  if (pid < 0) ThrowErrno("fork", "");
  if (pid == 0) {
    close(fds[0]);
    Report r;
    if (setgroups(who.groups.size(), who.groups.data()) != 0 || setgid(who.gid) != 0 || setuid(who.uid) != 0) {
      r.Expect(false, "cannot drop privileges");
    } else {
      umask(mask);
      fn(r);
    }
    const std::string& t = r.text();
    ssize_t ignored = write(fds[1], t.data(), t.size());
    (void)ignored;
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, n);
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) out += "child " + DescribeWaitStatus(st) + "\n";
  return out;
}

}  // namespace reclaimfs::itest

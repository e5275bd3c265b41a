// Running checks as an unprivileged user: a forked child drops to a test
// uid/gid, runs the checks and reports what it found wrong back over a pipe.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace reclaimfs::itest {

inline constexpr uid_t kTestUser = 1000;
inline constexpr gid_t kTestGroup = 1000;

// What the child found wrong, one line per failed check.
class Report {
 public:
  void Expect(bool ok, const std::string& what) {
    if (!ok) text_ += what + "\n";
  }
  // call returned -1 with errno == err.
  void ExpectErrno(long r, int err, const std::string& what);
  void ExpectOk(long r, const std::string& what);
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

struct UserIdentity {
  uid_t uid = kTestUser;
  gid_t gid = kTestGroup;
  std::vector<gid_t> groups;  // supplementary groups
};

// Runs fn in a child as `who` with the given umask; returns the child's
// report, empty when everything held.
std::string RunAsUser(mode_t mask, const std::function<void(Report&)>& fn);
std::string RunAs(const UserIdentity& who, mode_t mask, const std::function<void(Report&)>& fn);

}  // namespace reclaimfs::itest

// reclaimfs-ctl: talks to a running reclaimfs daemon over its control socket.
//   reclaimfs-ctl COMMAND MOUNTPOINT [ARGS...]
//   reclaimfs-ctl --socket PATH COMMAND [ARGS...]
// Commands are the daemon's (stat, config, set, drop-caches, metrics, help,
// ...); the reply is printed as is. Exit 1 if no daemon serves the mount
// point, or if the daemon answers with an error (an unknown command, a bad
// or extra argument).
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "fs/daemon/control_client.h"
#include "fs/daemon/mount_options.h"
#include "tools/ctl_top.h"

namespace {

void Usage(const char* program, FILE* out) {
  std::fprintf(out,
               "usage: %s COMMAND MOUNTPOINT [ARGS...]\n"
               "       %s --socket PATH COMMAND [ARGS...]\n"
               "commands: stat, config, set KEY=VALUE..., drop-caches [pages|inodes|all],\n"
               "          metrics, top [-n COUNT], ping, help (the daemon lists all)\n",
               program, program);
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<std::string> socket;
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      Usage(argv[0], stdout);
      return 0;
    } else if (arg == "--socket" || arg == "-S") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "reclaimfs-ctl: %s needs a path\n", arg.c_str());
        return 1;
      }
      socket = argv[++i];
    } else if (absl::StartsWith(arg, "--socket=")) {
      socket = arg.substr(std::strlen("--socket="));
    } else {
      words.push_back(arg);
    }
  }
  if (words.empty() || (!socket && words.size() < 2)) {
    Usage(argv[0], stderr);
    return 1;
  }
  const std::string command = words[0];
  std::vector<std::string> args(words.begin() + 1, words.end());
  std::string where;
  if (!socket) {
    const std::string mountpoint = reclaimfs::fs::AbsoluteMountPath(args.front());
    args.erase(args.begin());
    socket = reclaimfs::fs::DefaultControlSocketPath(mountpoint);
    where = mountpoint;
  } else {
    where = *socket;
  }
  if (command == "top") return reclaimfs::ctl::RunTop(*socket, where, args);
  std::string line = command;
  if (!args.empty()) line += " " + absl::StrJoin(args, " ");
  auto reply = reclaimfs::fs::SendControlCommand(*socket, line);
  if (!reply.ok()) {
    std::fprintf(stderr, "reclaimfs-ctl: no reclaimfs daemon serves %s (%s)\n", where.c_str(),
                 std::string(reply.status().message()).c_str());
    return 1;
  }
  std::fputs(reply->c_str(), stdout);
  return absl::StartsWith(*reply, "error:") ? 1 : 0;
}

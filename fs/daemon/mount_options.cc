// Command-line parsing for the daemon. mount.fuse3 runs us as
// `reclaimfs STORE MOUNTPOINT -o opts` (possibly several -o), and mount(8)
// and fstab add options of their own, so anything they may pass is accepted;
// only options nobody could mean are errors.
#include "fs/daemon/mount_options.h"

#include <sys/mount.h>

#include <cstring>
#include <filesystem>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "fs/daemon/config.h"

namespace reclaimfs::fs {
namespace {

// Prefixes a STORE argument may carry so that it is not an existing path
// (xfstests unmounts by source string). "reclaimfs#PATH" is also the form
// mount.fuse3 understands without a type, so a plain `mount -o remount,ro
// reclaimfs#PATH` finds this program.
constexpr std::string_view kStorePrefixes[] = {"store:", "reclaimfs#"};

// Splits "a,b\,c" into {"a", "b,c"}: a backslash escapes the next character.
std::vector<std::string> SplitOptionList(std::string_view list) {
  std::vector<std::string> out;
  std::string current;
  for (size_t i = 0; i < list.size(); ++i) {
    const char c = list[i];
    if (c == '\\' && i + 1 < list.size()) {
      current.push_back(list[++i]);
    } else if (c == ',') {
      out.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  out.push_back(std::move(current));
  return out;
}

std::string EscapeOptionValue(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == ',' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// A mount flag: its name, the MS_* bit, and whether naming it sets the bit.
struct FlagOption {
  std::string_view name;
  unsigned long bit;
  bool set;
};

// Flags the kernel applies to the mount; libfuse 3.14 knows these names.
constexpr FlagOption kKernelFlags[] = {
    {"ro", MS_RDONLY, true},         {"rw", MS_RDONLY, false},          {"nosuid", MS_NOSUID, true},
    {"suid", MS_NOSUID, false},      {"nodev", MS_NODEV, true},         {"dev", MS_NODEV, false},
    {"noexec", MS_NOEXEC, true},     {"exec", MS_NOEXEC, false},        {"sync", MS_SYNCHRONOUS, true},
    {"async", MS_SYNCHRONOUS, false}, {"dirsync", MS_DIRSYNC, true},    {"noatime", MS_NOATIME, true},
    {"atime", MS_NOATIME, false},
};

// Options mount(8), fstab or the fuse helpers may pass that have no meaning
// for this filesystem (or that libfuse 3.14 does not know and the kernel
// defaults already cover). Accepted and ignored so such a mount never fails.
constexpr std::string_view kIgnoredOptions[] = {
    "",       "defaults", "auto",     "noauto",      "user",       "nouser",  "users",   "owner",
    "group",  "_netdev",  "nofail",   "lazytime",    "nolazytime", "diratime", "nodiratime",
    "iversion", "noiversion", "mand", "nomand",      "silent",     "loud",    "norelatime",
    "nostrictatime", "nosymfollow", "symfollow",
};
// The kernel's own FUSE mount parameters show in the mount table, and
// mount(8) hands them back on `mount -o remount,...`; libfuse sets them itself.
constexpr std::string_view kIgnoredPrefixes[] = {"x-",       "comment=",  "user=",     "helper=",
                                                 "uhelper=", "fsname=",   "subtype=",  "user_id=",
                                                 "group_id=", "rootmode=", "fd=",      "blksize="};

// Options libfuse itself understands and passes to the kernel verbatim.
constexpr std::string_view kPassThrough[] = {"allow_other", "allow_root", "auto_unmount"};
constexpr std::string_view kPassThroughPrefixes[] = {"context=", "fscontext=", "defcontext=",
                                                     "rootcontext="};

bool HasAnyPrefix(std::string_view opt, const auto& prefixes) {
  for (std::string_view p : prefixes) {
    if (opt.starts_with(p)) return true;
  }
  return false;
}

bool IsOneOf(std::string_view opt, const auto& names) {
  for (std::string_view n : names) {
    if (opt == n) return true;
  }
  return false;
}

absl::Status ApplyOption(const std::string& opt, MountRequest* r) {
  for (const FlagOption& flag : kKernelFlags) {
    if (opt != flag.name) continue;
    r->kernel_options.push_back(opt);
    if (flag.set) {
      r->remount_set |= flag.bit;
      r->remount_clear &= ~flag.bit;
    } else {
      r->remount_clear |= flag.bit;
      r->remount_set &= ~flag.bit;
    }
    if (flag.bit == MS_RDONLY) r->read_only = flag.set;
    if (flag.bit == MS_NOATIME) r->atime = !flag.set;
    return absl::OkStatus();
  }
  // ext4's names for a read-only mount that repairs nothing: no orphan
  // replay, no trim of blocks past EOF, so the store is not written.
  if (opt == "norecovery" || opt == "noload") {
    r->no_recovery = true;
    return absl::OkStatus();
  }
  // atime policy is the filesystem's: FUSE leaves atime updates to it.
  if (opt == "relatime") {
    r->relatime = true;
    r->atime = true;
    return absl::OkStatus();
  }
  if (opt == "strictatime") {
    r->relatime = false;
    r->atime = true;
    return absl::OkStatus();
  }
  if (opt == "remount") {
    r->remount = true;
    return absl::OkStatus();
  }
  if (opt == "default_permissions") {
    r->default_permissions = true;
    return absl::OkStatus();
  }
  if (opt == "no_default_permissions") {
    r->default_permissions = false;
    return absl::OkStatus();
  }
  if (opt == "acl" || opt == "noacl") {
    r->acl = opt == "acl";
    return absl::OkStatus();
  }
  if (opt == "debug") {
    r->debug = true;
    return absl::OkStatus();
  }
  if (opt.starts_with("max_read=")) {
    uint32_t n = 0;
    const std::string value = opt.substr(std::strlen("max_read="));
    if (!absl::SimpleAtoi(absl::string_view(value.data(), value.size()), &n)) {
      return absl::InvalidArgumentError(absl::StrCat("option 'max_read' needs a number, got '", value, "'"));
    }
    r->max_read = n;
    r->kernel_options.push_back(opt);
    return absl::OkStatus();
  }
  if (IsOneOf(opt, kPassThrough) || HasAnyPrefix(opt, kPassThroughPrefixes)) {
    r->kernel_options.push_back(opt);
    return absl::OkStatus();
  }
  if (IsOneOf(opt, kIgnoredOptions) || HasAnyPrefix(opt, kIgnoredPrefixes)) {
    if (!opt.empty()) r->ignored.push_back(opt);
    return absl::OkStatus();
  }

  const size_t eq = opt.find('=');
  const std::string key = opt.substr(0, eq);
  if (key == "config" || key == "control_socket") {
    if (eq == std::string::npos || eq + 1 == opt.size()) {
      return absl::InvalidArgumentError(absl::StrCat("option '", key, "' needs a path (", key, "=PATH)"));
    }
    (key == "config" ? r->config_path : r->control_socket) = opt.substr(eq + 1);
    return absl::OkStatus();
  }
  if (IsConfigKey(key)) {
    if (eq == std::string::npos) {
      if (!IsBooleanConfigKey(key)) {
        return absl::InvalidArgumentError(absl::StrCat("option '", key, "' needs a value (", key, "=VALUE)"));
      }
      r->config_overrides.emplace_back(key, "true");
    } else {
      r->config_overrides.emplace_back(key, opt.substr(eq + 1));
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown option '", opt, "'"));
}

}  // namespace

std::string StoreDirFromSource(const std::string& source) {
  std::string path = source;
  for (std::string_view prefix : kStorePrefixes) {
    if (source.starts_with(prefix)) path = source.substr(prefix.size());
  }
  // "/path/to/reclaimfs#STORE": mount.fuse3's program#source form with the
  // program's full path, for systems where it is not on mount(8)'s PATH.
  if (const size_t hash = source.find('#'); hash != std::string::npos && path == source &&
                                            std::string_view(source).substr(0, hash).ends_with("/reclaimfs")) {
    path = source.substr(hash + 1);
  }
  if (path.empty()) return path;
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) return path;
  return abs.lexically_normal().string();
}

std::string AbsoluteMountPath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) return path;
  abs = abs.lexically_normal();
  std::string s = abs.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  abs = s;
  if (!abs.has_parent_path() || abs == abs.root_path()) return s;
  // Resolve symlinks in the parent only: stat of the mount point itself
  // would go to the filesystem, which may be the one being looked for.
  std::filesystem::path parent = std::filesystem::canonical(abs.parent_path(), ec);
  if (ec) return s;
  return (parent / abs.filename()).string();
}

absl::StatusOr<MountRequest> ParseMountCommandLine(int argc, const char* const* argv) {
  MountRequest r;
  std::vector<std::string> positional;
  std::vector<std::string> option_lists;
  bool only_positional = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (only_positional || arg.empty() || arg[0] != '-' || arg == "-") {
      positional.push_back(arg);
    } else if (arg == "--") {
      only_positional = true;
    } else if (arg == "-o") {
      if (i + 1 >= argc) return absl::InvalidArgumentError("option '-o' needs an argument");
      option_lists.push_back(argv[++i]);
    } else if (arg.starts_with("-o")) {
      option_lists.push_back(arg.substr(2));
    } else if (arg == "-f") {
      r.foreground = true;
    } else if (arg == "-d" || arg == "--debug") {
      r.debug = true;
    } else if (arg == "-s") {
      r.single_threaded = true;
    } else if (arg == "-h" || arg == "--help") {
      r.help = true;
    } else if (arg == "-V" || arg == "--version") {
      r.version = true;
    } else if (arg == "-n" || arg == "-v") {
      // mount(8) helper conventions (no mtab, verbose): nothing to do.
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown option '", arg, "'"));
    }
  }
  if (r.help || r.version) return r;

  for (const std::string& list : option_lists) {
    for (const std::string& opt : SplitOptionList(list)) {
      if (absl::Status s = ApplyOption(opt, &r); !s.ok()) return s;
    }
  }
  if (r.debug) r.foreground = true;
  if (r.no_recovery && !r.read_only && !r.remount) {
    return absl::InvalidArgumentError("option 'norecovery' needs 'ro': a writable mount must recover the store");
  }

  if (positional.empty()) return absl::InvalidArgumentError("missing STORE and MOUNTPOINT");
  if (positional.size() == 1) return absl::InvalidArgumentError("missing MOUNTPOINT");
  if (positional.size() > 2) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", positional[2], "'"));
  }
  r.source = positional[0];
  r.store_dir = StoreDirFromSource(r.source);
  if (r.store_dir.empty()) return absl::InvalidArgumentError(absl::StrCat("empty store path in '", r.source, "'"));
  r.mountpoint = AbsoluteMountPath(positional[1]);
  return r;
}

std::string FuseMountOptionString(const MountRequest& r) {
  std::string out = absl::StrCat("fsname=", EscapeOptionValue(r.source));
  if (r.default_permissions) out += ",default_permissions";
  for (const std::string& opt : r.kernel_options) absl::StrAppend(&out, ",", EscapeOptionValue(opt));
  return out;
}

std::string MountUsage(const char* program) {
  return absl::StrCat(
      "usage: ", program, " STORE MOUNTPOINT [-o opt[,opt...]]... [-f] [-d] [-s]\n",
      "\n"
      "STORE is a store directory made by mkfs.reclaimfs, as a path, store:/abs/path\n"
      "or reclaimfs#/abs/path.\n"
      "\n"
      "  -f                  stay in the foreground\n"
      "  -d                  debug output (implies -f)\n"
      "  -s                  single-threaded request loop\n"
      "  -o ro|rw            read-only / read-write mount\n"
      "  -o ro,norecovery    read-only, without the repairs a mount after a crash makes\n"
      "  -o remount          change ro/rw of an existing mount (no daemon is started)\n"
      "  -o allow_other      let other users access the mount\n"
      "  -o no_default_permissions\n"
      "                      let the filesystem, not the kernel, check permissions\n"
      "  -o noatime|relatime|strictatime\n"
      "  -o acl|noacl        POSIX ACLs on (default) or off\n"
      "  -o config=PATH      TOML configuration (default ", std::string(kDefaultConfigPath), " if present)\n",
      "  -o control_socket=PATH\n"
      "                      control socket (default /run/reclaimfs/<mountpoint>.sock)\n"
      "  -o KEY=VALUE        any configuration key, overriding the file:\n"
      "                      ",
      [] {
        std::string keys;
        size_t line = 0;
        for (std::string_view k : ConfigKeys()) {
          if (line + k.size() > 56) {
            keys += "\n                      ";
            line = 0;
          }
          absl::StrAppend(&keys, absl::string_view(k.data(), k.size()), " ");
          line += k.size() + 1;
        }
        return keys;
      }(),
      "\n");
}

}  // namespace reclaimfs::fs

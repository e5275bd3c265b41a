// reclaimfs: the FUSE daemon. `reclaimfs STORE MOUNTPOINT [-o opts]... [-f] [-d] [-s]`.
// Startup: parse, load config, (fork), open the filesystem, mount, take over
// the channel, start the helpers, report ready, serve. Shutdown (unmount,
// SIGINT/SIGTERM/SIGHUP): stop the helpers, unmount, Filesystem::Shutdown.
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fs/config.h"
#include "fs/control_client.h"
#include "fs/control_server.h"
#include "fs/filesystem.h"
#include "fs/fuse_adapter.h"
#include "fs/fuse_api.h"
#include "fs/mount_daemon.h"
#include "fs/mount_options.h"
#include "fs/mount_remount.h"
#include "fs/mount_watcher.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::fs {
namespace {

constexpr char kVersion[] = "0.1.0";
// Request threads: bounded, and kept once started (libfuse's default of
// unlimited idle threads) since creating threads per burst costs more than
// idle ones do.
constexpr unsigned kMaxRequestThreads = 32;

int Fail(const std::string& message) {
  std::fprintf(stderr, "reclaimfs: %s\n", message.c_str());
  return 1;
}

void LibfuseLog(enum fuse_log_level level, const char* fmt, va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string_view text(buf);
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  switch (level) {
    case FUSE_LOG_EMERG:
    case FUSE_LOG_ALERT:
    case FUSE_LOG_CRIT:
    case FUSE_LOG_ERR:
      spdlog::error("{}", text);
      break;
    case FUSE_LOG_WARNING:
      spdlog::warn("{}", text);
      break;
    case FUSE_LOG_NOTICE:
    case FUSE_LOG_INFO:
      spdlog::info("{}", text);
      break;
    default:
      spdlog::debug("{}", text);
      break;
  }
}

void SetUpLogging(const Config& config, bool debug) {
  auto logger = std::make_shared<spdlog::logger>("reclaimfs", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  spdlog::level::level_enum level = spdlog::level::from_str(config.log_level);
  if (debug && level > spdlog::level::debug) level = spdlog::level::debug;
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  fuse_set_log_func(LibfuseLog);
}

// Termination signals are blocked in every thread but the main one while it
// runs the session loop: libfuse's handler only ends the loop if the signal
// interrupts the main thread's wait, and the filesystem's threads (created
// while blocked) inherit the mask.
void SetTerminationSignalsBlocked(bool blocked) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
}

absl::StatusOr<Config> LoadConfig(const MountRequest& request) {
  Config config;
  std::string path;
  if (request.config_path) {
    path = *request.config_path;
  } else if (std::error_code ec; std::filesystem::exists(std::string(kDefaultConfigPath), ec)) {
    path = std::string(kDefaultConfigPath);
  }
  if (!path.empty()) {
    if (absl::Status s = ApplyConfigFile(&config, path); !s.ok()) return s;
  }
  for (const auto& [key, value] : request.config_overrides) {
    if (absl::Status s = SetConfigValue(&config, key, value); !s.ok()) return s;
  }
  if (absl::Status s = ValidateConfig(config); !s.ok()) return s;
  return config;
}

// Checks that are cheap and give clearer messages than the layers below.
absl::Status Preflight(const MountRequest& request) {
  struct stat st;
  if (::stat(request.mountpoint.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("mount point ", request.mountpoint, ": ", std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("mount point ", request.mountpoint, " is not a directory"));
  }
  if (::stat(request.store_dir.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("store ", request.store_dir, ": ", std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("store ", request.store_dir, " is not a directory"));
  }
  return absl::OkStatus();
}

// Owns a libfuse session: unmounts (if mounted) and destroys it.
class Session {
 public:
  explicit Session(fuse_session* se) : se_(se) {}
  ~Session() {
    Unmount();
    fuse_session_destroy(se_);
  }
  fuse_session* get() const { return se_; }
  absl::Status Mount(const std::string& mountpoint) {
    if (fuse_session_mount(se_, mountpoint.c_str()) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot mount on ", mountpoint));
    }
    mounted_ = true;
    return absl::OkStatus();
  }
  void Unmount() {
    if (!mounted_) return;
    mounted_ = false;
    fuse_session_unmount(se_);
  }

 private:
  fuse_session* const se_;
  bool mounted_ = false;
};

int Serve(const MountRequest& request, const Config& config) {
  MountDaemon daemon = MountDaemon::Begin(request.foreground);
  auto fail = [&daemon](const std::string& message) {
    Fail(message);
    daemon.Failed();
    return 1;
  };
  SetTerminationSignalsBlocked(true);

  FilesystemOptions options;
  options.store_dir = request.store_dir;
  options.read_only = request.read_only;
  options.atime = request.atime;
  options.relatime = request.relatime;
  ApplyConfigToOptions(config, &options);
  auto fs_or = Filesystem::Open(options);
  if (!fs_or.ok()) return fail(std::string(fs_or.status().message()));
  std::unique_ptr<Filesystem> fs = std::move(*fs_or);

  FuseAdapterOptions adapter_options;
  adapter_options.kernel_cache = config.kernel_cache;
  adapter_options.max_background = config.max_background;
  adapter_options.readahead = config.readahead;
  adapter_options.default_permissions = request.default_permissions;
  FuseAdapter adapter(fs.get(), adapter_options);

  const std::string mount_options = FuseMountOptionString(request);
  std::vector<std::string> arg_strings = {"reclaimfs", "-o", mount_options};
  if (request.debug) arg_strings.push_back("-d");
  std::vector<char*> argv;
  for (std::string& a : arg_strings) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse_session* raw = fuse_session_new(&args, &FuseAdapter::Operations(), sizeof(fuse_lowlevel_ops), &adapter);
  fuse_opt_free_args(&args);
  if (raw == nullptr) {
    (void)fs->Shutdown();
    return fail(absl::StrCat("cannot create the FUSE session (options: ", mount_options, ")"));
  }
  std::optional<Session> session(std::in_place, raw);
  // libfuse installs its handlers only over default dispositions; a shell
  // may have started us with SIGINT ignored, yet SIGINT must unmount cleanly.
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  if (fuse_set_signal_handlers(raw) != 0) {
    session.reset();
    (void)fs->Shutdown();
    return fail("cannot install signal handlers");
  }
  if (absl::Status s = session->Mount(request.mountpoint); !s.ok()) {
    fuse_remove_signal_handlers(raw);
    session.reset();
    (void)fs->Shutdown();
    return fail(std::string(s.message()));
  }
  if (absl::Status s = adapter.AttachChannel(raw); !s.ok()) {
    fuse_remove_signal_handlers(raw);
    session.reset();
    (void)fs->Shutdown();
    return fail(std::string(s.message()));
  }
  adapter.StartInvalidator(raw);

  MountWatcher watcher(request.mountpoint, request.source, request.read_only, [&fs](bool read_only) {
    if (absl::Status s = fs->SetReadOnly(read_only); !s.ok()) {
      spdlog::error("switching to {}: {}", read_only ? "read-only" : "read-write", std::string(s.message()));
    }
  });
  watcher.Start();

  ControlServer control(request.control_socket ? *request.control_socket
                                               : DefaultControlSocketPath(request.mountpoint));
  control.AddCommand("stat", "filesystem, cache and reclaim statistics",
                     [&fs, &adapter, &watcher](const std::vector<std::string>&) {
                       return absl::StrCat(fs->StatsText(), adapter.StatsText(), "mount_read_only ",
                                           watcher.read_only() ? 1 : 0, "\n");
                     });
  control.AddCommand("config", "the configuration in effect",
                     [&config](const std::vector<std::string>&) { return ConfigText(config); });
  if (absl::Status s = control.Start(); !s.ok()) {
    watcher.Stop();
    adapter.StopInvalidator();
    fuse_remove_signal_handlers(raw);
    session.reset();
    (void)fs->Shutdown();
    return fail(std::string(s.message()));
  }

  daemon.Ready();
  // After Ready: a background daemon's stderr is gone, and mount(8) users
  // expect a silent success.
  spdlog::info("mounted {} on {} ({}, cache_budget {}, control socket {})", request.source, request.mountpoint,
               request.read_only ? "ro" : "rw", config.cache_budget, control.socket_path());

  SetTerminationSignalsBlocked(false);
  int loop_result = 0;
  if (request.single_threaded) {
    loop_result = fuse_session_loop(raw);
  } else {
    fuse_loop_config* loop_config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(loop_config, 0);
    fuse_loop_cfg_set_max_threads(loop_config, kMaxRequestThreads);
    loop_result = fuse_session_loop_mt(raw, loop_config);
    fuse_loop_cfg_destroy(loop_config);
  }
  SetTerminationSignalsBlocked(true);
  if (loop_result > 0) {
    spdlog::info("signal {}: unmounting {}", loop_result, request.mountpoint);
  } else {
    spdlog::info("unmounting {}", request.mountpoint);
  }

  control.Stop();
  watcher.Stop();
  adapter.StopInvalidator();
  fuse_remove_signal_handlers(raw);
  // Unmount before the (possibly long) final flush: once the connection is
  // gone nobody can block on a request we will no longer answer. The data
  // is in our cache, not the kernel's, so nothing is lost by detaching first.
  session->Unmount();
  const absl::Status shutdown = fs->Shutdown();
  session.reset();
  if (!shutdown.ok()) {
    spdlog::error("shutdown: {}", std::string(shutdown.message()));
    return 1;
  }
  // libfuse reports a signal-triggered exit as the (positive) signal number:
  // that is a clean stop. Negative values are errors.
  if (loop_result < 0) {
    spdlog::error("session loop failed: {}", std::strerror(-loop_result));
    return 1;
  }
  return 0;
}

int Main(int argc, char** argv) {
  auto request = ParseMountCommandLine(argc, argv);
  if (!request.ok()) {
    Fail(std::string(request.status().message()));
    std::fprintf(stderr, "Try '%s --help'.\n", argv[0]);
    return 1;
  }
  if (request->help) {
    std::fputs(MountUsage(argv[0]).c_str(), stdout);
    return 0;
  }
  if (request->version) {
    std::printf("reclaimfs %s (libfuse %s)\n", kVersion, fuse_pkgversion());
    return 0;
  }
  if (request->remount) {
    if (absl::Status s = RemountExisting(*request); !s.ok()) return Fail(std::string(s.message()));
    return 0;
  }
  auto config = LoadConfig(*request);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  SetUpLogging(*config, request->debug);
  for (const std::string& opt : request->ignored) spdlog::debug("ignoring mount option '{}'", opt);
  if (absl::Status s = Preflight(*request); !s.ok()) return Fail(std::string(s.message()));
  return Serve(*request, *config);
}

}  // namespace
}  // namespace reclaimfs::fs

int main(int argc, char** argv) { return reclaimfs::fs::Main(argc, argv); }

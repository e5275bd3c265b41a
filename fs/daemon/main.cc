// reclaimfs: the FUSE daemon. `reclaimfs STORE MOUNTPOINT [-o opts]... [-f] [-d] [-s]`.
// Startup: parse, load config, (fork), open the filesystem, mount, take over
// the channel, start the helpers, report ready, serve. Shutdown (unmount,
// SIGINT/SIGTERM): stop the helpers, unmount, Filesystem::Shutdown. SIGHUP
// re-reads the config file (live_config.h).
#include <malloc.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fs/daemon/cgroup_memory.h"
#include "fs/daemon/config.h"
#include "fs/daemon/control_client.h"
#include "fs/daemon/control_server.h"
#include "fs/daemon/live_config.h"
#include "fs/daemon/metrics_http.h"
#include "fs/daemon/mount_table.h"
#include "fs/daemon/store_attach.h"
#include "fs/daemon/mount_daemon.h"
#include "fs/daemon/mount_options.h"
#include "fs/daemon/mount_remount.h"
#include "fs/daemon/mount_watcher.h"
#include "fs/daemon/prometheus_text.h"
#include "fs/daemon/reload_signal.h"
#include "fs/fuse/fuse_adapter.h"
#include "fs/fuse/fuse_api.h"
#include "fs/posix/filesystem.h"
#include "reclaim/host_pressure.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::fs {
namespace {

constexpr char kVersion[] = "0.1.0";

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

spdlog::level::level_enum LogLevel(const Config& config, bool debug) {
  spdlog::level::level_enum level = spdlog::level::from_str(config.log_level);
  if (debug && level > spdlog::level::debug) level = spdlog::level::debug;
  return level;
}

void SetUpLogging(const Config& config, bool debug) {
  auto logger = std::make_shared<spdlog::logger>("reclaimfs", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  logger->set_level(LogLevel(config, debug));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  fuse_set_log_func(LibfuseLog);
}

// Termination signals are blocked in every thread but the main one while it
// runs the session loop: libfuse's handler only ends the loop if the signal
// interrupts the main thread's wait, and the filesystem's threads (created
// while blocked) inherit the mask. SIGHUP is blocked everywhere, always: it
// means "re-read the config" and one thread takes it (reload_signal.h).
void SetTerminationSignalsBlocked(bool blocked) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
  sigset_t hup;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hup, nullptr);
}

// Wraps a control command that takes no arguments: extra words are an error.
ControlServer::Handler NoArgs(std::string name, std::function<std::string()> handler) {
  return [name = std::move(name), handler = std::move(handler)](const std::vector<std::string>& args) {
    if (!args.empty()) return absl::StrCat("error: ", name, " takes no arguments (got '", args.front(), "')\n");
    return handler();
  };
}

// How long `set` waits for a lowered budget to be met before answering.
constexpr std::chrono::milliseconds kBudgetWait{2000};

// The config file given with config=, else the default one if it exists.
std::optional<std::string> ConfigFilePath(const MountRequest& request) {
  if (request.config_path) return *request.config_path;
  if (std::error_code ec; std::filesystem::exists(std::string(kDefaultConfigPath), ec)) {
    return std::string(kDefaultConfigPath);
  }
  return std::nullopt;
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

// Owns a libfuse session: its signal handlers, its mount, its lifetime.
class Session {
 public:
  // Null if libfuse rejected the options (it has printed why).
  static std::unique_ptr<Session> Create(const std::string& mount_options, bool debug, FuseAdapter* adapter) {
    std::vector<std::string> arg_strings = {"reclaimfs", "-o", mount_options};
    if (debug) arg_strings.push_back("-d");
    std::vector<char*> argv;
    for (std::string& a : arg_strings) argv.push_back(a.data());
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
    fuse_session* se = fuse_session_new(&args, &FuseAdapter::Operations(), sizeof(fuse_lowlevel_ops), adapter);
    fuse_opt_free_args(&args);
    return se != nullptr ? std::unique_ptr<Session>(new Session(se)) : nullptr;
  }

  ~Session() {
    Unmount();
    fuse_session_destroy(se_);
  }

  fuse_session* get() const { return se_; }

  absl::Status InstallSignalHandlers() {
    // libfuse installs its handlers only over default dispositions; a shell
    // may have started us with SIGINT ignored, yet SIGINT must unmount
    // cleanly.
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    if (fuse_set_signal_handlers(se_) != 0) return absl::InternalError("cannot install signal handlers");
    handlers_ = true;
    return absl::OkStatus();
  }

  absl::Status Mount(const std::string& mountpoint) {
    if (fuse_session_mount(se_, mountpoint.c_str()) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot mount on ", mountpoint));
    }
    mounted_ = true;
    return absl::OkStatus();
  }

  // Reads and answers the kernel's INIT (always the first request, sent at
  // mount time), so a failed negotiation is a startup error reported before
  // detaching rather than a daemon that quietly exits afterwards.
  absl::Status ServeInit() {
    fuse_buf buf;
    std::memset(&buf, 0, sizeof(buf));
    int res;
    do {
      res = fuse_session_receive_buf(se_, &buf);
    } while (res == -EINTR);
    if (res > 0) fuse_session_process_buf(se_, &buf);
    std::free(buf.mem);
    if (res <= 0) return absl::UnavailableError("the kernel sent no FUSE INIT");
    if (fuse_session_exited(se_)) return absl::UnavailableError("FUSE INIT negotiation failed");
    return absl::OkStatus();
  }

  // Runs the request loop until unmount or a termination signal. Returns 0,
  // -errno, or the (positive) number of the signal that ended it. Request
  // threads are bounded (request_threads) and kept once started (libfuse's
  // default of unlimited idle threads): creating threads per burst costs
  // more than idle ones do.
  int Loop(bool single_threaded, unsigned max_threads) {
    if (single_threaded) return fuse_session_loop(se_);
    fuse_loop_config* config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(config, 0);
    fuse_loop_cfg_set_max_threads(config, max_threads);
    const int result = fuse_session_loop_mt(se_, config);
    fuse_loop_cfg_destroy(config);
    return result;
  }

  // Detaches the mount (lazily, if still mounted) and closes the channel,
  // which makes the kernel fail any request still pending.
  void Unmount() {
    if (handlers_) fuse_remove_signal_handlers(se_);
    handlers_ = false;
    if (mounted_) fuse_session_unmount(se_);
    mounted_ = false;
  }

 private:
  explicit Session(fuse_session* se) : se_(se) {}

  fuse_session* const se_;
  bool handlers_ = false;
  bool mounted_ = false;
};

// Startup after the fork. On an early return, destructors undo what was
// done, in reverse: control socket, watcher, invalidator (adapter), mount
// (session), filesystem (~Filesystem shuts it down).
int Serve(const MountRequest& request, LiveConfig& live) {
  const Config config = live.current();
  // Declared first so it is destroyed last: an unreported daemon reports
  // failure to the waiting parent only after everything is undone.
  MountDaemon daemon = MountDaemon::Begin(request.foreground);
  auto fail = [](const absl::Status& status) { return Fail(std::string(status.message())); };
  SetTerminationSignalsBlocked(true);

  if (config.fuse_transport == "uring" && !FuseUring::KernelEnabled()) {
    return Fail(absl::StrCat("fuse_transport=uring: this kernel's FUSE does not serve requests through io_uring; ",
                             FuseUring::kEnableHint, ", or use fuse_transport=auto"));
  }

  FilesystemOptions options;
  options.store_dir = request.store_dir;
  options.read_only = request.read_only;
  options.no_recovery = request.no_recovery;
  options.acl = request.acl;
  options.atime = request.atime;
  options.relatime = request.relatime;
  ApplyConfigToOptions(config, &options);
  auto opened = Filesystem::Open(options);
  if (!opened.ok()) return fail(opened.status());
  std::unique_ptr<Filesystem> fs = std::move(*opened);

  // Declared after the filesystem, so it stops (and lifts its cap) first.
  std::unique_ptr<reclaim::HostPressure> host_pressure;
  if (config.host_pressure) {
    std::vector<std::string> files = config.host_pressure_file.empty()
                                         ? DefaultPressureFiles()
                                         : std::vector<std::string>{config.host_pressure_file};
    if (files.empty()) {
      spdlog::warn("host_pressure: no pressure stall information here (no /proc/pressure/memory); off");
    } else {
      reclaim::HostPressureOptions hp;
      hp.floor_bytes = config.host_pressure_floor;
      hp.threshold = config.host_pressure_threshold;
      auto source = std::make_unique<reclaim::PsiFileSource>(std::move(files));
      // Triggers only on the kernel's files: writing one is how they are armed.
      const int armed = config.host_pressure_file.empty() ? source->ArmTriggers(config.host_pressure_threshold) : 0;
      spdlog::info("host_pressure: watching {} ({} PSI trigger(s) armed)", source->Describe(), armed);
      host_pressure = std::make_unique<reclaim::HostPressure>(&fs->memory().budget(), std::move(source), hp);
      host_pressure->Start();
    }
  }

  // Declared before the adapter so the adapter (and its invalidation
  // worker, which uses the session) goes first.
  std::unique_ptr<Session> session;
  FuseAdapterOptions adapter_options;
  adapter_options.kernel_cache = config.kernel_cache;
  adapter_options.max_background = config.max_background;
  adapter_options.readahead = config.readahead;
  adapter_options.default_permissions = request.default_permissions;
  adapter_options.acl = request.acl;
  adapter_options.max_read = request.max_read;
  adapter_options.blocking_threads = config.blocking_threads;
  adapter_options.transport = config.fuse_transport == "uring" ? FuseTransport::kUring
                              : config.fuse_transport == "dev" ? FuseTransport::kDev
                                                               : FuseTransport::kAuto;
  adapter_options.uring_depth = config.fuse_uring_depth;
  FuseAdapter adapter(fs.get(), adapter_options);

  const std::string mount_options = FuseMountOptionString(request);
  session = Session::Create(mount_options, request.debug, &adapter);
  if (session == nullptr) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("cannot create the FUSE session (options: ", mount_options, ")")));
  }
  if (absl::Status s = session->InstallSignalHandlers(); !s.ok()) return fail(s);
  if (absl::Status s = session->Mount(request.mountpoint); !s.ok()) return fail(s);
  if (absl::Status s = adapter.AttachChannel(session->get()); !s.ok()) return fail(s);
  // umount -f makes the kernel abort the connection (umount_begin), failing
  // every pending request; the unmount itself may then fail as busy.
  auto abort_connection = [mountpoint = request.mountpoint] { ::umount2(mountpoint.c_str(), MNT_FORCE); };
  adapter.SetAbortConnection(abort_connection);
  if (absl::Status s = session->ServeInit(); !s.ok()) return fail(s);
  adapter.StartInvalidator(session->get(), abort_connection);

  MountWatcher watcher(request.mountpoint, request.source, request.read_only, [&fs](bool read_only) {
    if (absl::Status s = fs->SetReadOnly(read_only); !s.ok()) {
      spdlog::error("switching to {}: {}", read_only ? "read-only" : "read-write", std::string(s.message()));
    }
  });
  watcher.Start();

  ControlServer control(request.control_socket ? *request.control_socket
                                               : DefaultControlSocketPath(request.mountpoint));
  auto stats_text = [&fs, &adapter, &watcher, &host_pressure] {
    return absl::StrCat(fs->StatsText(), adapter.StatsText(), host_pressure ? host_pressure->StatsText() : "",
                        "mount_read_only ", watcher.read_only() ? 1 : 0, "\n");
  };
  control.AddCommand("stat", "filesystem, cache and reclaim statistics", NoArgs("stat", stats_text));
  control.AddCommand("remounted", "re-read the mount's read-only flag now (sent by `-o remount`)",
                     NoArgs("remounted", [&watcher] {
                       watcher.CheckNow();
                       return std::string(watcher.read_only() ? "ro\n" : "rw\n");
                     }));
  control.AddCommand("fault", "set fault-injection rules (with fault_injection=true): fault RULE[;RULE...] | fault clear",
                     [&fs](const std::vector<std::string>& args) {
                       if (args.size() != 1) return std::string("error: fault takes one argument: RULES or clear\n");
                       absl::Status s = fs->SetFaultRules(args[0] == "clear" ? "" : args[0]);
                       return s.ok() ? std::string("ok\n") : absl::StrCat("error: ", s.message(), "\n");
                     });
  // Live changes: the applier runs under LiveConfig's change lock, so
  // Retune calls never overlap.
  live.SetApplier([&fs, &host_pressure, base = options, debug = request.debug](const Config& before,
                                                                               const Config& after) {
    FilesystemOptions next = base;
    ApplyConfigToOptions(after, &next);
    fs->Retune(next);
    if (host_pressure) host_pressure->SetOptions(after.host_pressure_floor, after.host_pressure_threshold);
    if (after.log_level != before.log_level) spdlog::set_level(LogLevel(after, debug));
    for (std::string_view key : ConfigKeys()) {
      const std::string was = ConfigValueText(before, key), now = ConfigValueText(after, key);
      if (was != now) spdlog::info("config: {} = {} (was {})", key, now, was);
    }
  });
  control.AddCommand("config", "the configuration in effect, each value with its origin (default, file, -o, live)",
                     NoArgs("config", [&live] { return live.Text(); }));
  control.AddCommand("set", "set key=value ...: change keys that may change while mounted",
                     [&live, &fs](const std::vector<std::string>& args) {
                       const uint64_t old_budget = live.current().cache_budget;
                       if (absl::Status s = live.Set(args); !s.ok()) {
                         return absl::StrCat("error: ", s.message(), "\n");
                       }
                       const uint64_t budget = live.current().cache_budget;
                       if (budget >= old_budget) return std::string("ok\n");
                       const auto start = std::chrono::steady_clock::now();
                       const bool fits = fs->WaitWithinBudget(kBudgetWait);
                       const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - start).count();
                       const uint64_t used = fs->memory().budget().used();
                       if (fits) return absl::StrCat("ok: cache within its budget after ", ms, " ms (used ", used, " of ", budget, ")\n");
                       return absl::StrCat("ok: cache still over its budget after ", ms, " ms (used ", used, " of ",
                                           budget, "); reclaim goes on\n");
                     });
  auto metrics_text = [&fs, &request, stats_text] {
    return PrometheusText(stats_text(), fs->memory().stats(), request.mountpoint);
  };
  control.AddCommand("metrics", "statistics in the Prometheus text format", NoArgs("metrics", metrics_text));
  control.AddCommand("drop-caches", "drop-caches [pages|inodes|all]: free clean pages and idle inodes (dirty data stays)",
                     [&fs](const std::vector<std::string>& args) {
                       if (args.size() > 1) return std::string("error: drop-caches takes at most one argument: pages, inodes or all\n");
                       const std::string what = args.empty() ? "all" : args[0];
                       if (what != "pages" && what != "inodes" && what != "all") {
                         return absl::StrCat("error: drop-caches: expected pages, inodes or all, got '", what, "'\n");
                       }
                       const Filesystem::DropCounts n = fs->DropCaches(what != "inodes", what != "pages");
                       return absl::StrCat("dropped_pages ", n.pages, "\ndropped_inodes ", n.inodes, "\n");
                     });
  // Our superblock, as the mount table names it: a second mount of the
  // store binds a mount of it (store_attach.h). Read now, while the mount
  // point is certainly ours.
  std::string device;
  if (auto table = ReadMountTable(); table.ok()) {
    if (auto mount = FindTopMount(*table, request.mountpoint)) device = mount->device;
  }
  control.AddCommand(kServedCommand, "the store and the superblock (major:minor) this daemon serves",
                     NoArgs(std::string(kServedCommand), [&request, device] {
                       return ServedReply(request.store_dir, device);
                     }));
  if (absl::Status s = control.Start(); !s.ok()) return fail(s);
  MetricsHttpServer metrics_http(metrics_text);
  if (!config.metrics_listen.empty()) {
    absl::StatusOr<ListenAddress> address = ParseListenAddress(config.metrics_listen);  // checked by the config
    if (!address.ok()) return fail(address.status());
    if (absl::Status s = metrics_http.Start(*address); !s.ok()) return fail(s);
  }
  if (absl::Status s = RecordServingDaemon(request.store_dir, control.socket_path()); !s.ok()) {
    spdlog::warn("{}: a second mount of this store will not find this daemon", std::string(s.message()));
  }

  ReloadSignal reload([&live] {
    std::vector<std::string> kept;
    if (absl::Status s = live.Reload(&kept); !s.ok()) {
      spdlog::error("SIGHUP: config not reloaded, nothing changed: {}", std::string(s.message()));
      return;
    }
    spdlog::info("SIGHUP: config reloaded");
    for (const std::string& key : kept) spdlog::warn("SIGHUP: {} changed in the file but needs a remount; kept", key);
  });
  reload.Start();

  daemon.Ready();
  // After Ready: a background daemon's stderr is gone, and mount(8) users
  // expect a silent success.
  spdlog::info("mounted {} on {} ({}, cache_budget {}, control socket {})", request.source, request.mountpoint,
               request.read_only ? "ro" : "rw", config.cache_budget, control.socket_path());
  if (!adapter.transport_note().empty()) spdlog::info("{}", adapter.transport_note());

  SetTerminationSignalsBlocked(false);
  const int loop_result = session->Loop(request.single_threaded, config.request_threads);
  SetTerminationSignalsBlocked(true);
  if (loop_result > 0) {
    spdlog::info("signal {}: unmounting {}", loop_result, request.mountpoint);
  } else {
    spdlog::info("unmounting {}", request.mountpoint);
  }

  ForgetServingDaemon(request.store_dir, control.socket_path());
  reload.Stop();
  metrics_http.Stop();
  control.Stop();
  watcher.Stop();
  adapter.StopInvalidator();
  adapter.StopBlockingWorkers();  // their last replies, while the channel is open
  // Unmount before the (possibly long) final flush: once the channel is
  // closed nobody can block on a request we will no longer answer. The data
  // is in our cache, not the kernel's, so nothing is lost by detaching first.
  session->Unmount();
  // The rings hold /dev/fuse open too: closing them ends the connection.
  adapter.StopTransport();
  if (host_pressure) host_pressure->Stop();
  const absl::Status shutdown = fs->Shutdown();
  if (!shutdown.ok()) {
    spdlog::error("shutdown: {}", std::string(shutdown.message()));
    return 1;
  }
  // libfuse reports a signal-triggered exit as the signal number: a clean
  // stop. Negative values are errors.
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
    // Tell the daemon now rather than when its watcher next looks, so the
    // new state holds as soon as this command returns. No daemon answering
    // is not an error: the kernel already enforces the new flags.
    const std::string socket = request->control_socket ? *request->control_socket
                                                       : DefaultControlSocketPath(request->mountpoint);
    (void)SendControlCommand(socket, "remounted");
    return 0;
  }
  LiveConfig live(ConfigFilePath(*request), request->config_overrides);
  if (absl::Status s = live.Load(); !s.ok()) return Fail(std::string(s.message()));
  SetUpLogging(live.current(), request->debug);
  if (const std::optional<uint64_t> limit = CgroupMemoryLimit()) {
    const Config c = live.current();
    if (*limit < c.cache_budget + c.meta_budget) {
      spdlog::warn("this cgroup's memory limit ({} bytes) is below cache_budget + meta_budget ({} bytes): "
                   "the kernel may reclaim or kill the daemon before its own reclaim starts",
                   *limit, c.cache_budget + c.meta_budget);
    }
  }
  for (const std::string& opt : request->ignored) spdlog::debug("ignoring mount option '{}'", opt);
  if (absl::Status s = Preflight(*request); !s.ok()) return Fail(std::string(s.message()));
  auto attached = AttachToServingDaemon(*request);
  if (!attached.ok()) return Fail(std::string(attached.status().message()));
  if (*attached) {
    spdlog::debug("{} attached to the daemon already serving {}", request->mountpoint, request->store_dir);
    return 0;
  }
  return Serve(*request, live);
}

}  // namespace
}  // namespace reclaimfs::fs

int main(int argc, char** argv) {
  // Bound what the C heap keeps outside the budget: few arenas (dozens of
  // request threads would otherwise each keep freed memory in their own
  // arena), and a fixed mmap threshold so large request buffers go back to
  // the system when freed instead of raising the threshold and staying.
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  return reclaimfs::fs::Main(argc, argv);
}

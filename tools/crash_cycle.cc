// crash_cycle: kills the reclaimfs daemon (kill -9) over and over in the
// middle of a churn of fsync'd changes, and checks after each kill that
// fsck finds the store clean and that every file recorded as durable is
// there, byte-exact, on the next mount.
//
//   crash_cycle [--cycles 100] [--space fill|rotate] [--store-size 2G] ...
//
// A cycle: the churn runs on the mount (writers in threads, see
// crash_cycle_workload.h) until kill -9 at a random moment; the daemon is
// reaped, the dead mount detached, fsck.reclaimfs must exit 0, the store is
// mounted again and verified (crash_cycle_verify.h). At the end the store is
// unmounted cleanly (the daemon must exit 0) and checked once more. The
// summary line says how many durable files were verified and how many were
// lost; the exit status is 0 only if none was lost, every fsck was clean and
// nothing hung.
//
// Every wait is bounded: the supervisor thread kills the daemon when a phase
// overruns (a hung FUSE request then returns ENOTCONN) or on SIGINT, and the
// mount is always detached before the tool exits.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "tools/crash_cycle_model.h"
#include "tools/crash_cycle_process.h"
#include "tools/crash_cycle_verify.h"
#include "tools/crash_cycle_workload.h"

namespace crash_cycle {
namespace {

namespace fs = std::filesystem;

constexpr auto kReapWait = 30s;        // after kill -9
constexpr auto kWriterStopWait = 30s;  // writers returning once the daemon is dead
constexpr auto kFsckWait = 600s;
constexpr auto kExitWait = 60s;        // clean unmount until the daemon has exited
constexpr uint64_t kVerifyBytesPerSecond = 10ull << 20;  // slowest verification we accept

struct Options {
  unsigned cycles = 100;
  unsigned writers = 4;
  std::vector<std::string> variants{"tmp-rename", "append", "truncate", "punch", "link", "xattr", "junk"};
  std::string space = "rotate";
  std::string store_size = "2G";
  std::string workdir;
  bool keep = false;
  std::string options;
  std::optional<uint64_t> seed;
  std::string bin_dir;
  unsigned min_kill_ms = 300;
  unsigned max_kill_ms = 2500;
  bool stop_on_loss = false;
};

struct Binaries {
  std::string reclaimfs, mkfs, fsck;
};

// `name` on PATH, as a full path, or "".
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const fs::path candidate = fs::path(dirs.substr(start, end - start)) / name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

// The programs under test: in --bin-dir if given; else where the build tree
// puts them relative to this tool (../fs/reclaimfs, ./mkfs.reclaimfs,
// ./fsck.reclaimfs); else on PATH.
std::optional<Binaries> FindBinaries(const std::string& bin_dir) {
  const fs::path self = fs::canonical("/proc/self/exe").parent_path();
  auto find = [&](const std::string& name, const fs::path& in_build) -> std::string {
    if (!bin_dir.empty()) {
      const fs::path p = fs::path(bin_dir) / name;
      return access(p.c_str(), X_OK) == 0 ? fs::absolute(p).string() : "";
    }
    if (access(in_build.c_str(), X_OK) == 0) return fs::weakly_canonical(in_build);
    return FindOnPath(name);
  };
  Binaries b{find("reclaimfs", self / ".." / "fs" / "reclaimfs"), find("mkfs.reclaimfs", self / "mkfs.reclaimfs"),
             find("fsck.reclaimfs", self / "fsck.reclaimfs")};
  for (const auto& [name, path] : {std::pair{"reclaimfs", b.reclaimfs}, {"mkfs.reclaimfs", b.mkfs},
                                   {"fsck.reclaimfs", b.fsck}}) {
    if (path.empty()) {
      std::fprintf(stderr, "crash_cycle: cannot find %s%s\n", name,
                   bin_dir.empty() ? " (build tree or PATH)" : (" in " + bin_dir).c_str());
      return std::nullopt;
    }
  }
  return b;
}

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / double(1 << 20));
  return buf;
}

class CrashCycle {
 public:
  CrashCycle(Options opt, Binaries bin, WorkloadConfig workload)
      : opt_(std::move(opt)), bin_(std::move(bin)), workload_(std::move(workload)), rng_(*opt_.seed) {}
  int Run();
  // After an exception: clean up, report, exit status 1.
  int Abort(const std::string& why);

 private:
  bool MakeWorkdir();
  bool Prepare();
  bool Mount(const std::string& why);
  bool MakeDirectories();
  bool Churn(unsigned cycle);
  std::string CycleLine(unsigned cycle, unsigned kill_ms, const CycleCounters& counters) const;
  bool Fsck(const std::string& when);
  bool VerifyAfterKill(unsigned cycle);
  bool FinalUnmount();
  void Teardown();
  void Failure(const std::string& what);
  int Finish();
  std::string StoreUse() const;

  Options opt_;
  Binaries bin_;
  WorkloadConfig workload_;
  std::mt19937_64 rng_;
  std::string workdir_, store_, mnt_, log_;
  bool made_workdir_ = false;
  Daemon daemon_;
  std::unique_ptr<Supervisor> supervisor_;
  std::unique_ptr<Model> model_;
  std::vector<std::unique_ptr<Writer>> writers_;
  int root_fd_ = -1;
  unsigned mounts_ = 0;

  // What the summary reports.
  unsigned cycles_done_ = 0, kills_ = 0, fsck_failures_ = 0, hangs_ = 0;
  uint64_t lost_ = 0, checks_ = 0, unexpected_ = 0, torn_ = 0;
  std::set<std::string> verified_;  // names verified intact at least once
  std::vector<std::string> failures_;
  std::string cycle_line_;  // the current cycle's progress line
};

void CrashCycle::Failure(const std::string& what) {
  std::printf("FAILURE: %s\n", what.c_str());
  std::fflush(stdout);
  failures_.push_back(what);
}

int CrashCycle::Run() {
  if (!MakeWorkdir()) return 1;
  supervisor_ = std::make_unique<Supervisor>(daemon_, mnt_);  // before any other thread
  if (!Prepare()) return Finish();
  for (unsigned cycle = 1; cycle <= opt_.cycles; ++cycle) {
    if (supervisor_->cancelled()) break;
    if (!Churn(cycle)) break;
    if (!Fsck("after kill " + std::to_string(cycle)) && opt_.stop_on_loss) break;
    if (!Mount("after kill " + std::to_string(cycle))) break;
    const uint64_t lost_before = lost_;
    if (!VerifyAfterKill(cycle)) break;
    cycles_done_ = cycle;
    if (lost_ > lost_before && opt_.stop_on_loss) break;
  }
  if (!supervisor_->cancelled() && daemon_.running() && FinalUnmount()) Fsck("at the end");
  return Finish();
}

int CrashCycle::Abort(const std::string& why) {
  Failure(why);
  return Finish();
}

bool CrashCycle::MakeWorkdir() {
  if (opt_.workdir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "crash-cycle-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      Failure("mkdtemp: " + std::string(strerror(errno)));
      return false;
    }
    workdir_ = tmpl;
    made_workdir_ = true;
  } else {
    workdir_ = fs::absolute(opt_.workdir).lexically_normal().string();
    std::error_code ec;
    made_workdir_ = fs::create_directories(workdir_, ec);
    if (fs::exists(workdir_ + "/store")) {
      Failure(workdir_ + " already holds a store; give a new --workdir");
      workdir_.clear();
      return false;
    }
  }
  store_ = workdir_ + "/store";
  mnt_ = workdir_ + "/mnt";
  log_ = workdir_ + "/daemon.log";
  return true;
}

bool CrashCycle::Prepare() {
  fs::create_directories(mnt_);
  model_ = std::make_unique<Model>(workdir_ + "/journal");
  std::printf("crash_cycle: work directory %s (store, mnt, journal, daemon.log)\n", workdir_.c_str());

  const ProgramResult mkfs = RunProgram({bin_.mkfs, store_, "--size", opt_.store_size}, 300s,
                                        &supervisor_->cancelled());
  if (mkfs.exit_code != 0) {
    Failure("mkfs.reclaimfs: " + mkfs.Describe());
    return false;
  }
  for (unsigned w = 0; w < opt_.writers; ++w) {
    writers_.push_back(std::make_unique<Writer>(w, *opt_.seed ^ (0x9e3779b97f4a7c15ull * (w + 1)), workload_,
                                                *model_));
  }
  return Mount("first mount") && MakeDirectories();
}

bool CrashCycle::Mount(const std::string& why) {
  if (supervisor_->cancelled()) return false;
  {
    std::ofstream log(log_, std::ios::app);
    log << "==== crash_cycle: mount " << ++mounts_ << " (" << why << ") ====" << std::endl;
  }
  std::vector<std::string> argv{bin_.reclaimfs, store_, mnt_, "-f"};
  if (!opt_.options.empty()) {
    argv.push_back("-o");
    argv.push_back(opt_.options);
  }
  std::string error;
  if (!daemon_.Start(argv, mnt_, log_, &error)) {
    Failure("mount " + why + ": " + error);
    return false;
  }
  supervisor_->Arm("opening the mount's root " + why, 30s);
  root_fd_ = open(mnt_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  supervisor_->Disarm();
  if (root_fd_ < 0) {
    Failure("open " + mnt_ + " " + why + ": " + strerror(errno));
    return false;
  }
  return true;
}

bool CrashCycle::MakeDirectories() {
  supervisor_->Arm("creating the directories", 60s);
  bool ok = true;
  for (unsigned d = 0; d < workload_.dirs && ok; ++d) {
    const std::string dir = DirName(d);
    const int fd = mkdirat(root_fd_, dir.c_str(), 0755) == 0
                       ? openat(root_fd_, dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                       : -1;
    ok = fd >= 0 && fsync(fd) == 0;
    if (fd >= 0) close(fd);
    if (!ok) Failure("mkdir+fsync " + dir + ": " + strerror(errno));
  }
  if (ok && fsync(root_fd_) != 0) {
    Failure("fsync of the root directory: " + std::string(strerror(errno)));
    ok = false;
  }
  supervisor_->Disarm();
  if (ok) model_->Note("directories d0..d" + std::to_string(workload_.dirs - 1) + " made and synced");
  return ok;
}

// Runs the writers until kill -9 at a random moment; reaps the daemon, stops
// the writers, detaches the dead mount. False when the tool cannot go on.
bool CrashCycle::Churn(unsigned cycle) {
  model_->set_cycle(cycle);
  CycleCounters counters;
  std::atomic<bool> killed = false;
  std::mutex rotate_mu;
  const CycleContext ctx{cycle, root_fd_, &killed, &supervisor_->cancelled(), &counters, &rotate_mu};
  std::optional<int> st;
  const unsigned at = std::uniform_int_distribution<unsigned>(opt_.min_kill_ms, opt_.max_kill_ms)(rng_);
  {
    ChurnThreads threads(writers_, ctx);
    const auto kill_time = Clock::now() + std::chrono::milliseconds(at);
    while (Clock::now() < kill_time && !supervisor_->cancelled()) std::this_thread::sleep_for(2ms);
    killed = true;
    if (!supervisor_->cancelled()) {
      daemon_.Kill9();
      ++kills_;
    }
    st = daemon_.Reap(kReapWait);
    if (!st) {
      ++hangs_;
      Failure("hang: the daemon survived kill -9 for 30 s in cycle " + std::to_string(cycle));
      AbortConnection(mnt_);
    } else if (!(WIFSIGNALED(*st) && WTERMSIG(*st) == SIGKILL)) {
      Failure("the daemon " + DescribeWaitStatus(*st) + " before the kill in cycle " + std::to_string(cycle) +
              " (see " + log_ + ")");
    }
    if (!threads.WaitStopped(kWriterStopWait)) {
      // A writer is stuck in a syscall although the daemon is gone: nothing
      // can be joined, so clean the mount up and leave without destructors.
      ++hangs_;
      Failure("hang: writers still blocked 30 s after the kill in cycle " + std::to_string(cycle));
      threads.Abandon();
      Finish();
      std::_Exit(1);
    }
  }
  close(root_fd_);
  root_fd_ = -1;
  if (!DetachMount(mnt_)) {
    Failure("cannot detach the dead mount " + mnt_);
    return false;
  }
  cycle_line_ = CycleLine(cycle, at, counters);
  for (const std::string& e : counters.unexpected) std::printf("unexpected error in cycle %u: %s\n", cycle, e.c_str());
  unexpected_ += counters.unexpected.size();
  return st.has_value() && !supervisor_->cancelled();
}

std::string CrashCycle::CycleLine(unsigned cycle, unsigned kill_ms, const CycleCounters& counters) const {
  uint64_t changes = 0;
  std::string by_variant;
  for (int v = 0; v <= static_cast<int>(Variant::kRotate); ++v) {
    const uint64_t n = counters.committed[v];
    changes += n;
    if (n == 0) continue;
    by_variant += std::string(by_variant.empty() ? "" : ", ") + VariantName(static_cast<Variant>(v)) + " " +
                  std::to_string(n);
  }
  return "cycle " + std::to_string(cycle) + "/" + std::to_string(opt_.cycles) + ": kill at " +
         std::to_string(kill_ms) + " ms after " + std::to_string(changes) + " changes (" + by_variant + "), " +
         std::to_string(counters.enospc.load()) + " ENOSPC, " + Mib(counters.bytes_written) + " written";
}

bool CrashCycle::Fsck(const std::string& when) {
  const ProgramResult r = RunProgram({bin_.fsck, store_}, kFsckWait, &supervisor_->cancelled());
  if (r.exit_code == 0) {
    if (!cycle_line_.empty()) cycle_line_ += "; fsck clean";
    return true;
  }
  if (supervisor_->interrupted()) return false;
  ++fsck_failures_;
  std::string file = "fsck-" + when + ".txt";
  std::replace(file.begin(), file.end(), ' ', '-');
  std::ofstream(workdir_ + "/" + file) << r.output;
  std::string head = r.output.substr(0, 4000);
  Failure("fsck.reclaimfs " + when + ": " + (r.timed_out ? "timed out" : "exit " + std::to_string(r.exit_code)) +
          " (whole output in " + workdir_ + "/" + file + "):\n" + head);
  if (!cycle_line_.empty()) cycle_line_ += "; FSCK FAILED";
  return false;
}

std::string CrashCycle::StoreUse() const {
  struct statvfs vfs{};
  if (root_fd_ < 0 || fstatvfs(root_fd_, &vfs) != 0 || vfs.f_blocks == 0) return "?";
  return std::to_string(100 - 100 * vfs.f_bfree / vfs.f_blocks) + "%";
}

bool CrashCycle::VerifyAfterKill(unsigned cycle) {
  const uint64_t bytes = model_->committed_bytes();
  supervisor_->Arm("verification after kill " + std::to_string(cycle),
                   120s + std::chrono::seconds(bytes / kVerifyBytesPerSecond));
  const VerifyResult v = Verify(*model_, root_fd_, cycle, opt_.writers, supervisor_->cancelled());
  supervisor_->Disarm();
  if (supervisor_->fired()) {
    ++hangs_;
    Failure("hang: " + supervisor_->fired_what());
    return false;
  }
  if (supervisor_->cancelled()) return false;
  for (const std::string& note : v.notes) std::printf("NOTE %s\n", note.c_str());
  for (const std::string& loss : v.losses) std::printf("%s\n", loss.c_str());
  lost_ += v.losses.size();
  torn_ += v.partial;
  checks_ += v.ok_names.size();
  verified_.insert(v.ok_names.begin(), v.ok_names.end());
  std::printf("%s; store %s used; verified %" PRIu64 " files (%s; pending: %" PRIu64 " done, %" PRIu64
              " torn, %" PRIu64 " not done), %zu lost\n",
              cycle_line_.c_str(), StoreUse().c_str(), v.files, Mib(v.bytes).c_str(), v.applied, v.partial,
              v.not_applied, v.losses.size());
  std::fflush(stdout);
  cycle_line_.clear();
  return true;
}

bool CrashCycle::FinalUnmount() {
  close(root_fd_);
  root_fd_ = -1;
  if (!UnmountClean(mnt_, 60s)) {
    Failure("cannot unmount " + mnt_ + " at the end (busy?)");
    return false;
  }
  const std::optional<int> st = daemon_.Reap(kExitWait);
  if (!st) {
    ++hangs_;
    Failure("hang: the daemon did not exit within 60 s of the final unmount");
    return false;
  }
  if (!(WIFEXITED(*st) && WEXITSTATUS(*st) == 0)) {
    Failure("the daemon " + DescribeWaitStatus(*st) + " after the final unmount (see " + log_ + ")");
    return false;
  }
  return true;
}

// Whatever is left: the daemon killed and reaped, the mount detached.
void CrashCycle::Teardown() {
  if (root_fd_ >= 0) close(root_fd_);
  root_fd_ = -1;
  if (daemon_.running()) {
    daemon_.Kill9();
    if (!daemon_.Reap(kReapWait)) AbortConnection(mnt_);
  }
  if (!mnt_.empty() && IsMounted(mnt_) && !DetachMount(mnt_)) {
    std::fprintf(stderr, "crash_cycle: could not detach %s\n", mnt_.c_str());
  }
}

int CrashCycle::Finish() {
  Teardown();
  const bool interrupted = supervisor_ && supervisor_->interrupted();
  const bool ok = lost_ == 0 && fsck_failures_ == 0 && hangs_ == 0 && failures_.empty() && !interrupted;
  std::string line = "crash_cycle: " + std::to_string(cycles_done_) + " cycles, " + std::to_string(kills_) +
                     " kills, " + std::to_string(verified_.size()) + " durable files verified (" +
                     std::to_string(checks_) + " checks), " + std::to_string(lost_) + " lost, " +
                     (fsck_failures_ ? std::to_string(fsck_failures_) + " fsck failures" : "fsck clean");
  if (torn_) line += ", " + std::to_string(torn_) + " torn unsynced change(s) accepted";
  if (hangs_) line += ", " + std::to_string(hangs_) + " hang(s)";
  if (failures_.size() > fsck_failures_ + hangs_) {
    line += ", " + std::to_string(failures_.size() - fsck_failures_ - hangs_) + " other failure(s)";
  }
  if (unexpected_) line += ", " + std::to_string(unexpected_) + " unexpected error(s)";
  if (interrupted) line += ", interrupted";
  std::printf("%s\n", line.c_str());
  if (workdir_.empty()) return ok ? 0 : 1;
  if (ok && !opt_.keep) {
    std::error_code ec;
    if (made_workdir_) {
      fs::remove_all(workdir_, ec);
    } else {
      for (const char* p : {"store", "mnt", "journal", "daemon.log"}) fs::remove_all(fs::path(workdir_) / p, ec);
    }
  } else {
    std::printf("crash_cycle: kept %s (store %s, journal, daemon.log)\n", workdir_.c_str(), store_.c_str());
  }
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace crash_cycle

int main(int argc, char** argv) {
  using namespace crash_cycle;
  setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines in order with stderr, also into a file or pipe
  Options opt;
  uint64_t seed = 0;
  CLI::App app{"Kill -9 the reclaimfs daemon during a churn of fsync'd changes, again and again; "
               "fsck and verify every durable file after each kill", "crash_cycle"};
  app.add_option("--cycles", opt.cycles, "kill/verify cycles")->capture_default_str()->check(CLI::Range(1u, 65535u));
  app.add_option("--writers", opt.writers, "writer threads")->capture_default_str()->check(CLI::Range(1u, 64u));
  app.add_option("--variants", opt.variants, "workload variants")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"tmp-rename", "append", "truncate", "punch", "link", "xattr", "junk"}));
  app.add_option("--space", opt.space, "fill: never delete durable files (the store fills up); rotate: delete "
                                       "the oldest to stay between 60% and 87% full")
      ->capture_default_str()
      ->check(CLI::IsMember({"fill", "rotate"}));
  app.add_option("--store-size", opt.store_size, "mkfs --size of the new store")->capture_default_str();
  app.add_option("--workdir", opt.workdir, "work directory (default: a new one under /tmp)");
  app.add_flag("--keep", opt.keep, "keep the work directory even on success");
  app.add_option("--options,-o", opt.options, "the daemon's -o options");
  app.add_option("--seed", seed, "random seed (printed at the start; repeats a run's choices)");
  app.add_option("--bin-dir", opt.bin_dir, "directory holding reclaimfs, mkfs.reclaimfs and fsck.reclaimfs");
  app.add_option("--min-kill-ms", opt.min_kill_ms, "earliest kill after the churn starts")->capture_default_str();
  app.add_option("--max-kill-ms", opt.max_kill_ms, "latest kill after the churn starts")->capture_default_str();
  app.add_flag("--stop-on-loss", opt.stop_on_loss, "stop at the first loss or fsck failure, keeping the store");
  CLI11_PARSE(app, argc, argv);
  if (opt.min_kill_ms > opt.max_kill_ms) {
    std::fprintf(stderr, "crash_cycle: --min-kill-ms is above --max-kill-ms\n");
    return 2;
  }
  opt.seed = app.count("--seed") ? seed : std::random_device{}() * 0x100000001ull ^ std::random_device{}();

  WorkloadConfig workload;
  for (const std::string& v : opt.variants) workload.variants.push_back(*ParseVariant(v));
  workload.space = opt.space == "fill" ? SpacePolicy::kFill : SpacePolicy::kRotate;
  const std::optional<Binaries> bin = FindBinaries(opt.bin_dir);
  if (!bin) return 2;

  std::string variants;
  for (const auto& v : opt.variants) variants += (variants.empty() ? "" : ",") + v;
  std::printf("crash_cycle: seed %" PRIu64 " (repeat with --seed %" PRIu64 "); %u cycles, %u writers, space %s, "
              "store %s, variants %s, kill after %u..%u ms, options '%s'\n",
              *opt.seed, *opt.seed, opt.cycles, opt.writers, opt.space.c_str(), opt.store_size.c_str(),
              variants.c_str(), opt.min_kill_ms, opt.max_kill_ms, opt.options.c_str());
  std::printf("crash_cycle: %s, %s, %s\n", bin->reclaimfs.c_str(), bin->mkfs.c_str(), bin->fsck.c_str());
  std::fflush(stdout);
  CrashCycle run(opt, *bin, workload);
  try {
    return run.Run();
  } catch (const std::exception& e) {
    return run.Abort(e.what());
  }
}

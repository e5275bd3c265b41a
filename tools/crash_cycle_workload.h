// crash_cycle: the churn one writer thread runs on the mount until the
// daemon is killed. Every change to a durable file is recorded as pending
// before it starts and committed after its fsync (and directory fsync)
// returned. ENOSPC is normal (the temp file is removed, the writer goes on);
// any other error ends the writer's cycle, and is reported as unexpected if
// the daemon had not been killed yet.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "tools/crash_cycle_model.h"

namespace crash_cycle {

enum class SpacePolicy { kFill, kRotate };

struct WorkloadConfig {
  std::vector<Variant> variants;  // those enabled (kRotate is not one: --space decides)
  SpacePolicy space = SpacePolicy::kRotate;
  unsigned dirs = 8;              // d0 .. d7
  double rotate_high = 0.87;      // rotate: start deleting the oldest files above this use
  double rotate_low = 0.60;       // ... and stop below this
};

std::string DirName(unsigned d);

// Counts of one cycle, shared by its writers.
struct CycleCounters {
  std::array<std::atomic<uint64_t>, 8> committed{};  // per Variant
  std::atomic<uint64_t> enospc = 0;
  std::atomic<uint64_t> bytes_written = 0;
  std::mutex mu;
  std::vector<std::string> unexpected;  // errors while the daemon was alive
  void Unexpected(std::string what);
};

// What the writers of one cycle share.
struct CycleContext {
  unsigned cycle = 0;
  int root_fd = -1;  // the mount's root; every path is relative to it, so nothing
                     // can land in the directory under a detached mount
  const std::atomic<bool>* killed = nullptr;     // set right before kill -9
  const std::atomic<bool>* cancelled = nullptr;  // SIGINT or a watchdog
  CycleCounters* counters = nullptr;
  std::mutex* rotate_mu = nullptr;  // one writer rotates at a time
};

class Writer {
 public:
  Writer(unsigned id, uint64_t seed, const WorkloadConfig& config, Model& model);
  // Churns until the daemon is killed (or an error ends this writer's cycle).
  void Run(const CycleContext& ctx);

 private:
  enum class Outcome { kDone, kNoSpace, kOver };

  Outcome RunVariant(Variant v);
  Outcome TmpRename();
  Outcome Append();
  Outcome Truncate();
  Outcome Punch();
  Outcome Link();
  Outcome SetXattr();
  Outcome Junk();
  Outcome Rotate();
  Outcome Delete(const Lease& lease);

  Variant PickVariant();
  // ENOSPC counts and continues; anything else ends the cycle.
  Outcome Fail(int err, const std::string& op, const std::string& path);
  bool Stopping() const;
  // How a file's data is cut into write() calls: whole pages, small odd
  // pieces (1..8 KiB), or anything up to 256 KiB.
  enum class Chunks { kPages, kSmall, kAny };
  Chunks PickChunks();
  static const char* ChunksName(Chunks c);
  // Writes `len` bytes of stream `seed`; 0 or errno.
  int WriteStream(int fd, uint64_t seed, uint64_t len, Chunks chunks);
  int FsyncDir(const std::string& dir);
  uint64_t RandomFileSize();
  std::string RandomDir();
  std::string NewName(char prefix, const std::string& dir);
  uint64_t NewSeed(StreamKind kind);
  Pending Change(Variant v, const FileState& state) const;  // a pending change of this cycle

  const unsigned id_;
  const WorkloadConfig& config_;
  Model& model_;
  std::mt19937_64 rng_;
  uint32_t counter_ = 0;    // makes names and seeds unique across the run
  std::string leftover_tmp_;  // a unique temp name a kill may have left behind
  const CycleContext* ctx_ = nullptr;
  std::vector<char> buf_;
};

// Every writer in its own thread for one cycle; the destructor joins them.
class ChurnThreads {
 public:
  ChurnThreads(const std::vector<std::unique_ptr<Writer>>& writers, const CycleContext& ctx);
  ~ChurnThreads();
  ChurnThreads(const ChurnThreads&) = delete;
  ChurnThreads& operator=(const ChurnThreads&) = delete;

  // Waits until every writer has returned; false if one is still running
  // after `timeout`.
  bool WaitStopped(std::chrono::milliseconds timeout);
  // Detaches threads that cannot be joined (the process is about to _exit).
  void Abandon();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t running_;
  std::vector<std::thread> threads_;
};

}  // namespace crash_cycle

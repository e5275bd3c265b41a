// Cooperation with the host's memory: under memory pressure (the kernel's
// pressure stall information, PSI) the cache budget is capped below its
// configured size, toward a floor, as the ZFS ARC shrinks when the kernel
// asks; when pressure is gone the cap grows back slowly.
//
// Each period (1 s) the governor reads its source: "some avg10" (percent of
// time some task stalled on memory) at or above the threshold lowers the cap
// by a quarter of the configured budget, not below the floor; below half
// the threshold it grows by 1/32 of the budget per period (about 30 s from
// floor to full); in between it holds. The cap goes to MemoryBudget::SetCap,
// which lowers the limit at once and wakes kswapd. On the kernel's own PSI
// files a trigger is armed too (stall of threshold% of a 2 s window), so a
// pressure spike wakes the governor before its period ends.
//
// Owns one thread (Start/Stop on the main thread). Source reads happen only
// on it; SetOptions and the accessors may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "reclaim/memory_budget.h"

namespace reclaimfs::reclaim {

// One reading of memory pressure, in percent (PSI "some avg10").
class PressureSource {
 public:
  virtual ~PressureSource() = default;
  virtual absl::StatusOr<double> SomeAvg10() = 0;
  virtual std::string Describe() const = 0;
  // Descriptors that become readable with POLLPRI when pressure rises (PSI
  // triggers); none by default.
  virtual std::vector<int> EventFds() { return {}; }
};

// Files in the PSI format ("some avg10=1.23 avg60=... total=..."): the
// highest "some avg10" of them. Tests point it at a file they write.
class PsiFileSource : public PressureSource {
 public:
  explicit PsiFileSource(std::vector<std::string> paths) : paths_(std::move(paths)) {}
  ~PsiFileSource() override;
  absl::StatusOr<double> SomeAvg10() override;
  std::string Describe() const override;
  std::vector<int> EventFds() override { return trigger_fds_; }
  // Only for the kernel's files (a write to any other file would change
  // it): arms "some <threshold% of 2 s> 2000000" on each. Returns how many
  // took; a kernel or sandbox that refuses leaves polling alone.
  int ArmTriggers(double threshold_percent);

 private:
  std::vector<std::string> paths_;
  std::vector<int> trigger_fds_;
};

// "some avg10=..." of one PSI text; InvalidArgument if it has none.
absl::StatusOr<double> ParsePsiSomeAvg10(std::string_view text);

struct HostPressureOptions {
  uint64_t floor_bytes = 32ull << 20;  // the cap never goes below this
  double threshold = 10.0;             // some avg10, percent
  std::chrono::milliseconds period{1000};
};

class HostPressure {
 public:
  HostPressure(MemoryBudget* budget, std::unique_ptr<PressureSource> source, HostPressureOptions options);
  ~HostPressure();  // Stop()

  void Start();
  void Stop();  // removes the cap
  void SetOptions(uint64_t floor_bytes, double threshold);

  // One step, as the thread does each period (exposed for tests).
  void Step();

  uint64_t cap() const { return cap_.load(std::memory_order_relaxed); }  // UINT64_MAX: none
  double last_avg10() const { return last_avg10_.load(std::memory_order_relaxed); }
  bool under_pressure() const { return under_pressure_.load(std::memory_order_relaxed); }
  uint64_t floor_bytes() const { return floor_.load(std::memory_order_relaxed); }
  uint64_t shrinks() const { return shrinks_.load(std::memory_order_relaxed); }
  uint64_t read_errors() const { return read_errors_.load(std::memory_order_relaxed); }
  std::string StatsText() const;

 private:
  void Run();

  MemoryBudget* const budget_;
  const std::unique_ptr<PressureSource> source_;
  const std::chrono::milliseconds period_;
  std::atomic<uint64_t> floor_;
  std::atomic<double> threshold_;

  std::atomic<uint64_t> cap_{UINT64_MAX};
  std::atomic<double> last_avg10_{0};
  std::atomic<bool> under_pressure_{false};
  std::atomic<uint64_t> shrinks_{0}, grows_{0}, read_errors_{0};

  // Sleeps up to the period, or until a PSI trigger fires or wake_fd_ is
  // written (Stop, SetOptions).
  void Sleep();
  void Wake();

  std::mutex thread_mu_;  // Start/Stop
  std::thread thread_;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;  // eventfd
};

}  // namespace reclaimfs::reclaim

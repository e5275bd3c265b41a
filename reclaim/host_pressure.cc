// HostPressure: reads PSI once a period and moves the budget's cap.
#include "reclaim/host_pressure.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace reclaimfs::reclaim {

absl::StatusOr<double> ParsePsiSomeAvg10(std::string_view text) {
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words.size() < 2 || words[0] != "some") continue;
    for (absl::string_view w : words) {
      if (!absl::ConsumePrefix(&w, "avg10=")) continue;
      double v = 0;
      if (absl::SimpleAtod(w, &v) && v >= 0) return v;
    }
  }
  return absl::InvalidArgumentError("no 'some avg10=' in the pressure file");
}

absl::StatusOr<double> PsiFileSource::SomeAvg10() {
  double highest = 0;
  for (const std::string& path : paths_) {
    std::ifstream in(path);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
    std::ostringstream text;
    text << in.rdbuf();
    absl::StatusOr<double> v = ParsePsiSomeAvg10(text.str());
    if (!v.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", v.status().message()));
    highest = std::max(highest, *v);
  }
  return highest;
}

std::string PsiFileSource::Describe() const { return absl::StrJoin(paths_, ", "); }

PsiFileSource::~PsiFileSource() {
  for (int fd : trigger_fds_) ::close(fd);
}

int PsiFileSource::ArmTriggers(double threshold_percent) {
  constexpr uint64_t kWindowUs = 2'000'000;  // the smallest window every kernel accepts
  const uint64_t stall_us = std::clamp<uint64_t>(static_cast<uint64_t>(threshold_percent / 100 * kWindowUs),
                                                 500, kWindowUs - 1);
  const std::string trigger = absl::StrCat("some ", stall_us, " ", kWindowUs);
  int armed = 0;
  for (const std::string& path : paths_) {
    const int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    // The kernel takes the trigger with its terminating NUL.
    if (::write(fd, trigger.c_str(), trigger.size() + 1) < 0) {
      ::close(fd);
      continue;
    }
    trigger_fds_.push_back(fd);
    ++armed;
  }
  return armed;
}

HostPressure::HostPressure(MemoryBudget* budget, std::unique_ptr<PressureSource> source,
                           HostPressureOptions options)
    : budget_(budget),
      source_(std::move(source)),
      period_(options.period),
      floor_(options.floor_bytes),
      threshold_(options.threshold),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

HostPressure::~HostPressure() {
  Stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void HostPressure::Sleep() {
  std::vector<pollfd> fds;
  if (wake_fd_ >= 0) fds.push_back({wake_fd_, POLLIN, 0});
  for (int fd : source_->EventFds()) fds.push_back({fd, POLLPRI, 0});
  if (fds.empty()) {
    std::this_thread::sleep_for(period_);
    return;
  }
  if (::poll(fds.data(), fds.size(), static_cast<int>(period_.count())) <= 0) return;
  if (fds[0].revents & POLLIN) {
    uint64_t n;
    (void)!::read(wake_fd_, &n, sizeof(n));
    return;
  }
  // A trigger fired: look now, but never more often than every 100 ms,
  // whatever the kernel's file keeps reporting.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

void HostPressure::SetOptions(uint64_t floor_bytes, double threshold) {
  floor_.store(floor_bytes, std::memory_order_relaxed);
  threshold_.store(threshold, std::memory_order_relaxed);
  Wake();  // apply now
}

void HostPressure::Step() {
  absl::StatusOr<double> avg10 = source_->SomeAvg10();
  if (!avg10.ok()) {
    read_errors_.fetch_add(1, std::memory_order_relaxed);
    return;  // hold: no reading is no reason to move
  }
  last_avg10_.store(*avg10, std::memory_order_relaxed);
  const uint64_t configured = budget_->configured_limit();
  const uint64_t floor = std::min(floor_.load(std::memory_order_relaxed), configured);
  const double threshold = threshold_.load(std::memory_order_relaxed);
  const uint64_t current = std::min(cap_.load(std::memory_order_relaxed), configured);
  uint64_t next = current;
  if (*avg10 >= threshold) {
    const uint64_t step = std::max<uint64_t>(configured / 4, 1);
    next = current > floor + step ? current - step : floor;
    if (next < current) shrinks_.fetch_add(1, std::memory_order_relaxed);
    under_pressure_.store(true, std::memory_order_relaxed);
  } else if (*avg10 < threshold / 2) {
    const uint64_t step = std::max<uint64_t>(configured / 32, 1);
    next = std::min(configured, current + step);
    if (next > current) grows_.fetch_add(1, std::memory_order_relaxed);
    under_pressure_.store(false, std::memory_order_relaxed);
  }
  next = std::max(next, floor);
  // Back at the configured size: no cap, so a later raise of the budget
  // applies in full.
  const uint64_t cap = next >= configured ? UINT64_MAX : next;
  if (cap != cap_.load(std::memory_order_relaxed)) {
    cap_.store(cap, std::memory_order_relaxed);
    budget_->SetCap(cap);
  }
}

void HostPressure::Start() {
  std::lock_guard<std::mutex> l(thread_mu_);
  if (thread_.joinable()) return;
  stop_.store(false);
  thread_ = std::thread([this] { Run(); });
}

void HostPressure::Stop() {
  std::thread t;
  {
    std::lock_guard<std::mutex> l(thread_mu_);
    stop_.store(true);
    t = std::move(thread_);
  }
  Wake();
  if (t.joinable()) t.join();
  if (cap_.exchange(UINT64_MAX) != UINT64_MAX) budget_->SetCap(UINT64_MAX);
}

void HostPressure::Wake() {
  const uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof(one));
}

void HostPressure::Run() {
  while (!stop_.load()) {
    Step();
    if (stop_.load()) break;
    Sleep();
  }
}

std::string HostPressure::StatsText() const {
  std::string out;
  absl::StrAppendFormat(&out, "host_pressure_some_avg10 %.2f\n", last_avg10());
  absl::StrAppendFormat(&out, "host_pressure_active %d\n", under_pressure() ? 1 : 0);
  absl::StrAppendFormat(&out, "budget_floor %d\n", floor_bytes());
  absl::StrAppendFormat(&out, "host_pressure_shrinks %d\n", shrinks());
  absl::StrAppendFormat(&out, "host_pressure_grows %d\n", grows_.load(std::memory_order_relaxed));
  absl::StrAppendFormat(&out, "host_pressure_read_errors %d\n", read_errors());
  return out;
}

}  // namespace reclaimfs::reclaim

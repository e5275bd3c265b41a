// HostPressure: reads PSI once a period and moves the budget's cap.
#include "reclaim/host_pressure.h"

#include <algorithm>
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

HostPressure::HostPressure(MemoryBudget* budget, std::unique_ptr<PressureSource> source,
                           HostPressureOptions options)
    : budget_(budget),
      source_(std::move(source)),
      period_(options.period),
      floor_(options.floor_bytes),
      threshold_(options.threshold) {}

HostPressure::~HostPressure() { Stop(); }

void HostPressure::SetOptions(uint64_t floor_bytes, double threshold) {
  floor_.store(floor_bytes, std::memory_order_relaxed);
  threshold_.store(threshold, std::memory_order_relaxed);
  wake_.Bump();  // apply now
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
  wake_.Bump();
  if (t.joinable()) t.join();
  if (cap_.exchange(UINT64_MAX) != UINT64_MAX) budget_->SetCap(UINT64_MAX);
}

void HostPressure::Run() {
  while (!stop_.load()) {
    const uint32_t seen = wake_.Load();
    Step();
    wake_.WaitWhileEquals(seen, std::chrono::duration_cast<std::chrono::microseconds>(period_));
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

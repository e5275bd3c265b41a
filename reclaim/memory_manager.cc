// MemoryManager: wires budget, stats, progress event, reclaim core and kswapd.
#include "reclaim/memory_manager.h"

#include "absl/strings/str_format.h"

namespace reclaimfs::reclaim {

MemoryManager::MemoryManager(MemoryOptions options)
    : budget_(options.budget_bytes, options.watermarks),
      core_(&budget_, &progress_, &stats_, options.reclaim),
      kswapd_(&core_) {
  budget_.SetStats(&stats_);
  core_.SetKswapdWaker([this] { kswapd_.Wake(); });
  budget_.SetPressureHandler(&core_);
  if (options.start_kswapd) kswapd_.Start();
}

MemoryManager::~MemoryManager() {
  kswapd_.Stop();
  budget_.SetPressureHandler(nullptr);
}

std::string MemoryManager::StatsText() const {
  const Watermarks w = budget_.watermarks();
  std::string out;
  absl::StrAppendFormat(&out, "budget_limit %d\n", budget_.limit());
  absl::StrAppendFormat(&out, "budget_configured %d\n", budget_.configured_limit());
  absl::StrAppendFormat(&out, "budget_used %d\n", budget_.used());
  absl::StrAppendFormat(&out, "budget_free %d\n", budget_.free());
  absl::StrAppendFormat(&out, "budget_peak_used %d\n", budget_.peak_used());
  absl::StrAppendFormat(&out, "watermark_min %d\n", w.min);
  absl::StrAppendFormat(&out, "watermark_low %d\n", w.low);
  absl::StrAppendFormat(&out, "watermark_high %d\n", w.high);
  absl::StrAppendFormat(&out, "budget_failed_charges %d\n", budget_.failed_charges());
  absl::StrAppendFormat(&out, "budget_uncharge_underflows %d\n",
                        budget_.uncharge_underflows());
  out += stats_.Format();
  return out;
}

}  // namespace reclaimfs::reclaim

// The shrinker API, modelled on Linux's struct shrinker. A cache registers a
// Shrinker with the ReclaimCore; reclaim asks it how much it could free (Count)
// and asks it to free some (Scan). Scan never blocks on IO or on a lock held
// across IO: dirty or busy objects are handed to async workers and skipped.
#pragma once

#include <cstdint>
#include <string>

namespace reclaimfs::reclaim {

enum class Reclaimer { kKswapd, kDirect };

// What the shrinker tells the core to do next.
enum class ShrinkHint {
  kNone,     // carry on
  kBackoff,  // progress needs IO to complete: wait for the progress event
  kStop,     // nothing more to gain from this shrinker in this pass
};

struct ShrinkControl {
  Reclaimer who = Reclaimer::kKswapd;
  uint32_t scope = 0;        // caller's ScopeFlag bits (kScopeNoFs etc.)
  uint64_t nr_to_scan = 0;   // objects to look at in this call
  int priority = 12;         // 12 = gentle ... 0 = desperate
};

struct ShrinkResult {
  uint64_t scanned = 0;  // objects looked at
  uint64_t freed = 0;    // objects freed (their memory uncharged)
  ShrinkHint hint = ShrinkHint::kNone;
};

class Shrinker {
 public:
  virtual ~Shrinker() = default;
  virtual std::string Name() const = 0;
  // Cheap estimate of objects that could be freed now or after writeback.
  virtual uint64_t Count() = 0;
  virtual ShrinkResult Scan(const ShrinkControl& sc) = 0;
  // Relative cost of recreating an object (Linux DEFAULT_SEEKS = 2).
  virtual int Seeks() const { return 2; }
  // True if Scan takes filesystem locks (skipped under kScopeNoFs).
  virtual bool NeedsFs() const { return true; }
};

}  // namespace reclaimfs::reclaim

// crash_cycle: after a kill and a fresh mount, checks every durable file
// against the model. A file must hold its committed state, or the state of
// its pending change (then adopted). A pending change that was not fsync'd
// may also have landed in part ("torn"): an append (the old content intact,
// the new part a prefix, 4 KiB blocks of it possibly zeros) or a punch (each
// 4 KiB block old or punched); such a state is adopted and noted, not a loss.
// Anything else is a loss: the report names the file, what made it, the
// sizes, the first differing offset and what was found there.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/crash_cycle_model.h"

namespace crash_cycle {

struct VerifyResult {
  uint64_t files = 0;          // inodes looked at
  uint64_t bytes = 0;          // bytes read and compared
  uint64_t applied = 0;        // pending changes found done (adopted)
  uint64_t partial = 0;        // ... found partly done (a torn append or punch, adopted)
  uint64_t not_applied = 0;    // ... found not done
  std::vector<std::string> ok_names;  // names whose file verified intact
  std::vector<std::string> losses;    // one report per lost file
  std::vector<std::string> notes;     // one per torn change
};

// Reads through the mount whose root is `root_fd`, with `threads` readers,
// and updates the model (adopted states; lost files are forgotten after
// being reported). Stops early when `cancelled` becomes true.
VerifyResult Verify(Model& model, int root_fd, unsigned cycle, unsigned threads,
                    const std::atomic<bool>& cancelled);

}  // namespace crash_cycle

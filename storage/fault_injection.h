// FaultInjectingDevice: a BlockDevice that decorates a real one and, by rules
// that may be changed at any time from any thread, makes requests fail, come
// back short, or complete late, and makes Flush fail. For tests now; the text
// form of the rules (ParseFaultRules) is there for a daemon option or a
// control command later.
//
// Ownership: it owns its rules, its counters, one timer thread, and the
// requests that thread holds (delayed ones, and injected failures waiting to
// be completed). It does not own the real device, which must outlive it.
//
// Threads: Submit, Flush and the rule and counter accessors may be called from
// any thread, completion callbacks included. Callbacks never run inside
// Submit: requests that reach the real device complete on its completion
// thread as usual; injected failures, and short requests left with nothing to
// transfer, complete on the timer thread; delayed requests wait on the timer
// thread and are then handed to the real device.
//
// Blocking: Submit waits for nothing of its own (a short mutex); it passes the
// requests that are not held to the real Submit, which may wait for queue
// space as the real device documents. Delays are served by the timer thread,
// never by sleeping in Submit or on the real completion thread; the timer
// thread itself may wait in the real Submit for queue space (bounded by IO
// completing). Flush blocks only as long as the real Flush (an injected
// failure returns at once). The destructor completes the delayed requests
// still held with -ECANCELED (they never reach the device), waits up to 30 s
// for every request submitted through it to complete, and joins the timer
// thread; no callback is dropped.
//
// Rules. Each rule counts the requests it matches from when it is added;
// when several rules match one request, each counts it and the first in order
// whose turn it is applies (one rule per request). A rule that has applied
// `count` times expires and is removed.
//
// Text form, rules separated by ';' (',' already separates mount options):
//
//   RULE    = OP { ':' PARAM }
//   OP      = read | write | any | flush        (any: reads and writes)
//   PARAM   = nth=N          only the Nth matching request from now (N >= 1)
//           | range=OFF+LEN  only requests touching bytes [OFF, OFF+LEN);
//                            sizes take K, M, G, T suffixes (binary)
//           | count=N        apply N times, then expire (default: 1 with nth,
//                            otherwise forever)
//           | errno=E        error to report: a name (EIO) or a number;
//                            default EIO
//           | torn           write (or read) the data, then report the error
//           | short          transfer half, rounded down to the block
//           | delay_ms=N     hand to the device N ms late
//
// Without torn, short or delay_ms a rule fails requests without passing them
// to the device. Flush rules only fail (errno, nth, count). Examples:
//   write:nth=3:errno=EIO     read:range=0+1M     write:short
//   any:delay_ms=200:count=10     flush:errno=EIO     write:torn;read:nth=2
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/block_device.h"

namespace reclaimfs::storage {

struct FaultRule {
  enum class Op { kRead, kWrite, kAny, kFlush };
  enum class Kind {
    kFail,   // complete with -error; the device never sees the request
    kTorn,   // do the IO, then complete with -error (unless it failed anyway)
    kShort,  // transfer only half, rounded down to the block (maybe nothing)
    kDelay,  // hand to the device `delay` late
  };
  Op op = Op::kAny;
  Kind kind = Kind::kFail;
  uint64_t nth = 0;           // 0: from the first matching request; N: from the Nth
  uint64_t range_offset = 0;  // with range_length > 0: only requests touching
  uint64_t range_length = 0;  //   [range_offset, range_offset + range_length)
  std::optional<uint64_t> count = std::nullopt;  // unset: 1 with nth, otherwise unlimited
  int error = EIO;                // kFail, kTorn
  std::chrono::milliseconds delay{0};  // kDelay
};

// OK, or InvalidArgument saying what is wrong (e.g. a flush rule that delays).
absl::Status ValidateFaultRule(const FaultRule& rule);

// Parses the text form above. An empty (or blank) text is no rules. Errors are
// InvalidArgument naming the rule and the part of it that is wrong.
absl::StatusOr<std::vector<FaultRule>> ParseFaultRules(std::string_view text);

// Counters since construction.
struct FaultStats {
  uint64_t reads = 0;      // requests seen
  uint64_t writes = 0;
  uint64_t flushes = 0;
  uint64_t failed = 0;     // faults injected, by kind (failed includes flushes)
  uint64_t torn = 0;
  uint64_t shortened = 0;
  uint64_t delayed = 0;
};

class FaultInjectingDevice : public BlockDevice {
 public:
  explicit FaultInjectingDevice(BlockDevice* real);
  ~FaultInjectingDevice() override;
  FaultInjectingDevice(const FaultInjectingDevice&) = delete;
  FaultInjectingDevice& operator=(const FaultInjectingDevice&) = delete;

  // Appends a rule (validated; nothing changes on error).
  absl::Status AddRule(const FaultRule& rule);
  // Replaces all rules; their counting starts now.
  absl::Status SetRules(const std::vector<FaultRule>& rules);
  void ClearRules();
  // Rules not yet expired.
  size_t rule_count() const;
  FaultStats stats() const;

  void Submit(std::vector<IoRequest> requests) override;
  absl::Status Flush() override;
  absl::Status Discard(uint64_t offset, uint64_t length) override;
  uint64_t size_bytes() const override;
  uint32_t block_size() const override;
  // Requests submitted through this device whose callback has not returned.
  uint64_t inflight() const override;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the callbacks it wraps
  std::thread timer_;
};

}  // namespace reclaimfs::storage

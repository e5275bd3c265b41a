// FaultInjectingDevice and the text form of its rules; see fault_injection.h.
//
// One mutex guards the rules, the counters, the requests held by the timer
// thread and the count of requests in flight. Every request passing through
// gets its callback wrapped: the wrapper turns a torn request's result into
// its error and counts the request out after the caller's callback returned,
// which is what the destructor waits for. The wrappers share the state, so a
// completion arriving after a timed-out drain still finds it alive.
#include "storage/fault_injection.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::storage {

namespace {

using Clock = std::chrono::steady_clock;
using Op = FaultRule::Op;
using Kind = FaultRule::Kind;

constexpr auto kDrainTimeout = std::chrono::seconds(30);
constexpr auto kMaxDelay = std::chrono::hours(1);
constexpr int kMaxErrno = 4095;

uint64_t Bytes(const std::vector<iovec>& iov) {
  uint64_t n = 0;
  for (const iovec& v : iov) n += v.iov_len;
  return n;
}

// Cuts the buffers down to their first n bytes.
void KeepFirst(std::vector<iovec>& iov, uint64_t n) {
  size_t i = 0;
  for (; i < iov.size() && n > 0; ++i) {
    iov[i].iov_len = std::min<uint64_t>(iov[i].iov_len, n);
    n -= iov[i].iov_len;
  }
  iov.resize(i);
}

bool Matches(const FaultRule& rule, Op op, uint64_t offset, uint64_t length) {
  if (rule.op == Op::kFlush || op == Op::kFlush) return rule.op == op;
  if (rule.op != Op::kAny && rule.op != op) return false;
  if (rule.range_length == 0) return true;
  return offset < rule.range_offset + rule.range_length && rule.range_offset < offset + length;
}

}  // namespace

struct FaultInjectingDevice::State {
  struct ActiveRule {
    FaultRule rule;
    uint64_t limit = 0;  // applications before it expires
    uint64_t seen = 0;   // matching requests since it was added
    uint64_t applied = 0;
  };
  // A request the timer thread completes with `result`, or hands to the real
  // device when `forward`.
  struct Held {
    IoRequest req;
    bool forward = false;
    int64_t result = 0;
  };

  explicit State(BlockDevice* r) : real(r) {}

  BlockDevice* const real;
  mutable std::mutex mu;
  std::condition_variable cv;  // held gained a request, stopping, exiting, inflight hit 0
  std::vector<ActiveRule> rules;
  std::multimap<Clock::time_point, Held> held;  // equal times keep their order
  FaultStats stats;
  uint64_t inflight = 0;
  bool stopping = false;  // the destructor runs: delays are cancelled
  bool exiting = false;   // the timer thread returns once nothing is held

  static ActiveRule Activate(const FaultRule& rule) {
    const uint64_t limit = rule.count ? *rule.count
                           : rule.nth > 0 ? 1
                                          : std::numeric_limits<uint64_t>::max();
    return ActiveRule{rule, limit};
  }

  // Counts a request (or a flush) against every rule it matches and returns
  // the first rule whose turn it is. mu held.
  std::optional<FaultRule> Pick(Op op, uint64_t offset, uint64_t length) {
    std::optional<FaultRule> picked;
    for (ActiveRule& a : rules) {
      if (!Matches(a.rule, op, offset, length)) continue;
      ++a.seen;
      if (picked || a.seen < a.rule.nth) continue;
      picked = a.rule;
      ++a.applied;
    }
    if (picked) std::erase_if(rules, [](const ActiveRule& a) { return a.applied >= a.limit; });
    return picked;
  }

  void Hold(Clock::time_point due, IoRequest&& req, bool forward, int64_t result) {
    held.emplace(due, Held{std::move(req), forward, result});
  }

  // The callback every request gets instead of its own; see the file comment.
  static std::function<void(int64_t)> Wrap(std::shared_ptr<State> state,
                                           std::function<void(int64_t)> done, int torn_error) {
    return [state = std::move(state), done = std::move(done), torn_error](int64_t result) {
      if (torn_error != 0 && result >= 0) result = -torn_error;
      if (done) done(result);
      std::lock_guard<std::mutex> lock(state->mu);
      if (--state->inflight == 0) state->cv.notify_all();
    };
  }

  void TimerLoop() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      if (held.empty()) {
        if (exiting) return;
        cv.wait(lock);  // until a request is held or the destructor says so
        continue;
      }
      auto first = held.begin();
      if (!stopping && first->first > Clock::now()) {
        cv.wait_until(lock, first->first);
        continue;
      }
      Held h = std::move(first->second);
      held.erase(first);
      const bool forward = h.forward && !stopping;
      lock.unlock();
      if (forward) {
        std::vector<IoRequest> one;
        one.push_back(std::move(h.req));
        real->Submit(std::move(one));
      } else {
        h.req.done(h.forward ? -ECANCELED : h.result);
      }
      lock.lock();
    }
  }
};

FaultInjectingDevice::FaultInjectingDevice(BlockDevice* real)
    : state_(std::make_shared<State>(real)), timer_([s = state_.get()] { s->TimerLoop(); }) {}

FaultInjectingDevice::~FaultInjectingDevice() {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mu);
  s.stopping = true;
  s.cv.notify_all();
  if (!s.cv.wait_for(lock, kDrainTimeout, [&] { return s.inflight == 0; })) {
    spdlog::error("fault injection: {} requests still in flight after {} s at shutdown", s.inflight,
                  kDrainTimeout.count());
  }
  s.exiting = true;
  s.cv.notify_all();
  lock.unlock();
  timer_.join();
}

absl::Status FaultInjectingDevice::AddRule(const FaultRule& rule) {
  if (absl::Status v = ValidateFaultRule(rule); !v.ok()) return v;
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->rules.push_back(State::Activate(rule));
  return absl::OkStatus();
}

absl::Status FaultInjectingDevice::SetRules(const std::vector<FaultRule>& rules) {
  std::vector<State::ActiveRule> active;
  for (const FaultRule& rule : rules) {
    if (absl::Status v = ValidateFaultRule(rule); !v.ok()) return v;
    active.push_back(State::Activate(rule));
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->rules = std::move(active);
  return absl::OkStatus();
}

void FaultInjectingDevice::ClearRules() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->rules.clear();
}

size_t FaultInjectingDevice::rule_count() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->rules.size();
}

FaultStats FaultInjectingDevice::stats() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->stats;
}

void FaultInjectingDevice::Submit(std::vector<IoRequest> requests) {
  State& s = *state_;
  std::vector<IoRequest> forward;
  bool held = false;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    const auto now = Clock::now();
    for (IoRequest& r : requests) {
      const bool read = r.op == IoRequest::Op::kRead;
      ++(read ? s.stats.reads : s.stats.writes);
      const uint64_t bytes = Bytes(r.iov);
      const std::optional<FaultRule> rule = s.Pick(read ? Op::kRead : Op::kWrite, r.offset, bytes);
      const int torn_error = rule && rule->kind == Kind::kTorn ? rule->error : 0;
      r.done = State::Wrap(state_, std::move(r.done), torn_error);
      ++s.inflight;
      if (!rule) {
        forward.push_back(std::move(r));
        continue;
      }
      switch (rule->kind) {
        case Kind::kFail:
          ++s.stats.failed;
          s.Hold(now, std::move(r), /*forward=*/false, -rule->error);
          held = true;
          break;
        case Kind::kTorn:
          ++s.stats.torn;
          forward.push_back(std::move(r));
          break;
        case Kind::kShort: {
          ++s.stats.shortened;
          const uint64_t block = s.real->block_size();
          const uint64_t keep = bytes / 2 / block * block;
          if (keep == 0) {
            s.Hold(now, std::move(r), /*forward=*/false, 0);
            held = true;
          } else {
            KeepFirst(r.iov, keep);
            forward.push_back(std::move(r));
          }
          break;
        }
        case Kind::kDelay:
          ++s.stats.delayed;
          s.Hold(now + rule->delay, std::move(r), /*forward=*/true, 0);
          held = true;
          break;
      }
    }
  }
  if (held) s.cv.notify_all();
  if (!forward.empty()) s.real->Submit(std::move(forward));
}

absl::Status FaultInjectingDevice::Flush() {
  std::optional<FaultRule> rule;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    ++state_->stats.flushes;
    rule = state_->Pick(Op::kFlush, 0, 0);
    if (rule) ++state_->stats.failed;
  }
  if (rule) return absl::ErrnoToStatus(rule->error, "injected flush failure");
  return state_->real->Flush();
}

absl::Status FaultInjectingDevice::Discard(uint64_t offset, uint64_t length) {
  return state_->real->Discard(offset, length);
}

uint64_t FaultInjectingDevice::size_bytes() const { return state_->real->size_bytes(); }
uint32_t FaultInjectingDevice::block_size() const { return state_->real->block_size(); }

uint64_t FaultInjectingDevice::inflight() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->inflight;
}

absl::Status ValidateFaultRule(const FaultRule& rule) {
  if (rule.op == Op::kFlush && rule.kind != Kind::kFail) {
    return absl::InvalidArgumentError("flush rules can only fail");
  }
  if (rule.op == Op::kFlush && rule.range_length != 0) {
    return absl::InvalidArgumentError("flush rules take no range");
  }
  if ((rule.kind == Kind::kFail || rule.kind == Kind::kTorn) &&
      (rule.error <= 0 || rule.error > kMaxErrno)) {
    return absl::InvalidArgumentError(absl::StrCat("error ", rule.error, " is not an errno"));
  }
  if (rule.kind == Kind::kDelay &&
      (rule.delay <= std::chrono::milliseconds(0) || rule.delay > kMaxDelay)) {
    return absl::InvalidArgumentError(
        absl::StrCat("delay must be 1 to ", std::chrono::milliseconds(kMaxDelay).count(), " ms"));
  }
  if (rule.count && *rule.count == 0) return absl::InvalidArgumentError("count must be at least 1");
  if (rule.range_offset > std::numeric_limits<uint64_t>::max() - rule.range_length) {
    return absl::InvalidArgumentError("range ends past 2^64 bytes");
  }
  return absl::OkStatus();
}

namespace {

bool ParseCount(absl::string_view text, uint64_t* out) {
  return !text.empty() && std::all_of(text.begin(), text.end(), absl::ascii_isdigit) &&
         absl::SimpleAtoi(text, out);
}

// Digits with an optional binary K, M, G or T suffix.
bool ParseSize(absl::string_view text, uint64_t* out) {
  int shift = 0;
  if (!text.empty() && !absl::ascii_isdigit(text.back())) {
    const size_t at = std::string_view("KMGT").find(absl::ascii_toupper(text.back()));
    if (at == std::string_view::npos) return false;
    shift = 10 * static_cast<int>(at + 1);
    text.remove_suffix(1);
  }
  uint64_t n = 0;
  if (!ParseCount(text, &n) || n > (std::numeric_limits<uint64_t>::max() >> shift)) return false;
  *out = n << shift;
  return true;
}

bool ParseErrno(absl::string_view text, int* out) {
  uint64_t n = 0;
  if (ParseCount(text, &n)) {
    if (n == 0 || n > kMaxErrno) return false;
    *out = static_cast<int>(n);
    return true;
  }
  const std::string name = absl::AsciiStrToUpper(text);
  for (int e = 1; e <= kMaxErrno; ++e) {
    const char* known = ::strerrorname_np(e);
    if (known != nullptr && name == known) {
      *out = e;
      return true;
    }
  }
  return false;
}

absl::StatusOr<FaultRule> ParseRule(absl::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("fault rule '", text, "': ", why));
  };
  if (text.empty()) return bad("empty rule");
  const std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  FaultRule rule;
  if (parts[0] == "read") {
    rule.op = Op::kRead;
  } else if (parts[0] == "write") {
    rule.op = Op::kWrite;
  } else if (parts[0] == "any") {
    rule.op = Op::kAny;
  } else if (parts[0] == "flush") {
    rule.op = Op::kFlush;
  } else {
    return bad(absl::StrCat("unknown operation '", parts[0], "' (read, write, any or flush)"));
  }

  std::set<absl::string_view> given;
  int kinds = 0;
  bool has_errno = false;
  for (size_t i = 1; i < parts.size(); ++i) {
    const absl::string_view part = parts[i];
    const std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    const absl::string_view key = kv.first, value = kv.second;
    const bool has_value = part.find('=') != absl::string_view::npos;
    auto bad_part = [&](absl::string_view why) { return bad(absl::StrCat("'", part, "' ", why)); };
    if (!given.insert(key).second) return bad_part("repeats a parameter");
    const bool flag = key == "torn" || key == "short";
    if (flag && has_value) return bad_part("takes no value");
    if (!flag && !has_value) {
      return key.empty() ? bad_part("is empty") : bad_part("needs a value (key=value)");
    }
    uint64_t n = 0;
    if (key == "nth" || key == "count" || key == "delay_ms") {
      if (!ParseCount(value, &n) || n == 0) return bad_part("needs a positive integer");
      if (key == "nth") {
        rule.nth = n;
      } else if (key == "count") {
        rule.count = n;
      } else {
        if (n > static_cast<uint64_t>(std::chrono::milliseconds(kMaxDelay).count())) {
          return bad_part("is longer than an hour");
        }
        rule.kind = Kind::kDelay;
        rule.delay = std::chrono::milliseconds(n);
        ++kinds;
      }
    } else if (key == "range") {
      const std::pair<absl::string_view, absl::string_view> ol =
          absl::StrSplit(value, absl::MaxSplits('+', 1));
      if (!ParseSize(ol.first, &rule.range_offset) || !ParseSize(ol.second, &rule.range_length) ||
          rule.range_length == 0) {
        return bad_part("needs OFFSET+LENGTH, sizes with an optional K, M, G or T, length > 0");
      }
    } else if (key == "errno") {
      if (!ParseErrno(value, &rule.error)) return bad_part("is not an errno name or number");
      has_errno = true;
    } else if (key == "torn") {
      rule.kind = Kind::kTorn;
      ++kinds;
    } else if (key == "short") {
      rule.kind = Kind::kShort;
      ++kinds;
    } else {
      return bad_part("is not a parameter (nth, range, count, errno, torn, short, delay_ms)");
    }
  }
  if (kinds > 1) return bad("torn, short and delay_ms exclude each other");
  if (has_errno && rule.kind != Kind::kFail && rule.kind != Kind::kTorn) {
    return bad("errno applies only to failing and torn rules");
  }
  if (absl::Status v = ValidateFaultRule(rule); !v.ok()) return bad(v.message());
  return rule;
}

}  // namespace

absl::StatusOr<std::vector<FaultRule>> ParseFaultRules(std::string_view text) {
  std::vector<FaultRule> rules;
  const absl::string_view all(text.data(), text.size());
  if (absl::StripAsciiWhitespace(all).empty()) return rules;
  for (absl::string_view part : absl::StrSplit(all, ';')) {
    absl::StatusOr<FaultRule> rule = ParseRule(absl::StripAsciiWhitespace(part));
    if (!rule.ok()) return rule.status();
    rules.push_back(*rule);
  }
  return rules;
}

}  // namespace reclaimfs::storage

// FUSE over io_uring: ring entries, the queue threads, reply routing.
#include "fs/fuse/fuse_uring.h"

#include <liburing.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fs/fuse/fuse_protocol_ext.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::fs {
namespace {

using fuse_ext::UringCmdReq;
using fuse_ext::UringReqHeader;

constexpr size_t kPage = 4096;
// How long a queue thread waits for completions before it looks at stop_.
constexpr long kPollIntervalNs = 200'000'000;
// Room before the payload for the request's fuse_in_header and first
// argument, so that header + argument + payload are one contiguous request.
constexpr size_t kPrefix = sizeof(fuse_in_header) + fuse_ext::kUringOpInOutSize;
static_assert(sizeof(UringReqHeader) + kPrefix <= kPage);

// The kernel ends an entry with one of these when the connection goes away
// or the ring is closed; anything else is worth a warning.
bool IsTeardown(int res) {
  return res == -ENOTCONN || res == -ECANCELED || res == -ENODEV || res == -ECONNABORTED;
}

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

thread_local void* current_queue = nullptr;  // the queue whose thread this is

}  // namespace

struct FuseUring::Entry {
  Queue* queue = nullptr;
  // One mapping: the header at its start, the payload from the next page.
  char* block = nullptr;
  size_t block_size = 0;
  UringReqHeader* header = nullptr;
  char* payload = nullptr;
  struct iovec iov[fuse_ext::kUringIovSegments] = {};
  // The request being served (its unique); 0 while the entry is in the kernel.
  std::atomic<uint64_t> unique{0};
  uint64_t commit_id = 0;  // queue thread only
};

struct FuseUring::Queue {
  uint16_t qid = 0;
  struct io_uring ring {};
  bool ring_ready = false;
  int event_fd = -1;
  uint64_t event_value = 0;  // the wakeup poll's read target
  std::thread thread;
  std::vector<std::unique_ptr<Entry>> entries;
  std::mutex mu;
  std::vector<Entry*> foreign;  // replies taken on other threads (under mu)
  std::vector<Entry*> draining;  // foreign replies being committed (queue thread)
  std::vector<Entry*> own;      // replies taken on this queue's thread
  unsigned live = 0;            // entries the kernel still holds or we serve (queue thread)
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> foreign_replies{0};
  std::atomic<uint64_t> entry_errors{0};
  std::atomic<unsigned> live_entries{0};
};

FuseUring::FuseUring(Options options, Dispatch dispatch)
    : options_(options), dispatch_(std::move(dispatch)) {}

FuseUring::~FuseUring() {
  Stop();
  for (auto& q : queues_) {
    if (q->ring_ready) io_uring_queue_exit(&q->ring);
    if (q->event_fd >= 0) ::close(q->event_fd);
    for (auto& e : q->entries) {
      if (e->block != nullptr) ::munmap(e->block, e->block_size);
    }
  }
}

bool FuseUring::KernelEnabled() {
  std::ifstream in("/sys/module/fuse/parameters/enable_uring");
  std::string value;
  return static_cast<bool>(in >> value) && (value == "Y" || value == "y" || value == "1");
}

unsigned FuseUring::PossibleCpus() {
  // "0-1" or "0,2-3": the highest CPU number + 1, as nr_cpu_ids.
  std::ifstream in("/sys/devices/system/cpu/possible");
  std::string text;
  std::getline(in, text);
  unsigned highest = 0;
  bool any = false;
  for (absl::string_view range : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    const size_t dash = range.find('-');
    absl::string_view last = range.substr(dash == absl::string_view::npos ? 0 : dash + 1);
    unsigned cpu = 0;
    if (absl::SimpleAtoi(last, &cpu)) {
      highest = std::max(highest, cpu);
      any = true;
    }
  }
  if (any) return highest + 1;
  const long online = ::sysconf(_SC_NPROCESSORS_CONF);
  return online > 0 ? static_cast<unsigned>(online) : 1;
}

absl::Status FuseUring::Prepare() {
  if (options_.queues == 0 || options_.depth == 0 || options_.payload_size == 0) {
    return absl::InvalidArgumentError("FUSE io_uring: queues, depth and payload size must be positive");
  }
  const size_t payload = RoundUp(options_.payload_size, kPage);
  for (unsigned qid = 0; qid < options_.queues; ++qid) {
    auto q = std::make_unique<Queue>();
    q->qid = static_cast<uint16_t>(qid);
    // One SQE per entry at most is ever pending, plus the wakeup poll.
    const int err = io_uring_queue_init(options_.depth + 2, &q->ring, IORING_SETUP_SQE128);
    if (err < 0) {
      queues_.push_back(std::move(q));
      return absl::UnavailableError(absl::StrCat("FUSE io_uring: cannot set up queue ", qid, "'s ring: ",
                                                 std::strerror(-err)));
    }
    q->ring_ready = true;
    q->event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->event_fd < 0) {
      const int e = errno;
      queues_.push_back(std::move(q));
      return absl::UnavailableError(absl::StrCat("FUSE io_uring: eventfd: ", std::strerror(e)));
    }
    for (unsigned i = 0; i < options_.depth; ++i) {
      auto e = std::make_unique<Entry>();
      e->queue = q.get();
      e->block_size = kPage + payload;
      void* m = ::mmap(nullptr, e->block_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) {
        const int err2 = errno;
        queues_.push_back(std::move(q));
        return absl::ResourceExhaustedError(absl::StrCat("FUSE io_uring: buffers: ", std::strerror(err2)));
      }
      e->block = static_cast<char*>(m);
      e->header = new (e->block) UringReqHeader{};
      e->payload = e->block + kPage;
      e->iov[0] = {e->header, sizeof(UringReqHeader)};
      e->iov[1] = {e->payload, payload};
      q->entries.push_back(std::move(e));
    }
    queues_.push_back(std::move(q));
  }
  return absl::OkStatus();
}

void FuseUring::Start(std::function<void(const std::string& why)> fatal) {
  fatal_ = std::move(fatal);
  started_ = true;
  for (auto& q : queues_) {
    Queue* raw = q.get();
    raw->thread = std::thread([this, raw] { Run(raw); });
  }
}

void FuseUring::ReportFatal(const std::string& why) {
  if (stop_.load(std::memory_order_acquire) || fatal_reported_.exchange(true)) return;
  spdlog::critical("FUSE io_uring: {}; the kernel would hold requests for the ring forever, so the "
                   "connection is aborted",
                   why);
  if (fatal_) fatal_(why);
}

void FuseUring::Stop() {
  if (!started_ || stop_.exchange(true)) return;
  for (auto& q : queues_) {
    const uint64_t one = 1;
    if (::write(q->event_fd, &one, sizeof(one)) < 0) {
      // The thread still sees stop_ within its poll interval.
    }
  }
  for (auto& q : queues_) {
    if (q->thread.joinable()) q->thread.join();
  }
  // Closing a ring cancels the entries it still has in the kernel and lets
  // go of its reference to /dev/fuse.
  for (auto& q : queues_) {
    if (q->ring_ready) io_uring_queue_exit(&q->ring);
    q->ring_ready = false;
  }
}

namespace {

io_uring_sqe* GetSqe(struct io_uring* ring) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  if (sqe == nullptr) {
    // Cannot happen with one pending SQE per entry, but never lose one.
    io_uring_submit(ring);
    sqe = io_uring_get_sqe(ring);
  }
  return sqe;
}

// A FUSE command SQE: the fixed part as io_uring_prep_rw leaves it, the
// command area cleared, then our command.
void PrepCommand(io_uring_sqe* sqe, int fd, uint32_t op, const void* addr, unsigned len, uint16_t qid,
                 uint64_t commit_id) {
  io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, addr, len, 0);
  sqe->cmd_op = op;
  std::memset(sqe->cmd, 0, 80);
  UringCmdReq cmd{};
  cmd.qid = qid;
  cmd.commit_id = commit_id;
  std::memcpy(sqe->cmd, &cmd, sizeof(cmd));
}

}  // namespace

void FuseUring::RegisterEntries(Queue* q) {
  for (auto& e : q->entries) {
    io_uring_sqe* sqe = GetSqe(&q->ring);
    if (sqe == nullptr) break;
    PrepCommand(sqe, options_.fuse_fd, fuse_ext::kUringCmdRegister, e->iov, fuse_ext::kUringIovSegments, q->qid, 0);
    io_uring_sqe_set_data(sqe, e.get());
    ++q->live;
  }
  q->live_entries.store(q->live, std::memory_order_relaxed);
}

void FuseUring::ArmWakeup(Queue* q) {
  io_uring_sqe* sqe = GetSqe(&q->ring);
  if (sqe == nullptr) return;
  io_uring_prep_poll_add(sqe, q->event_fd, POLLIN);
  io_uring_sqe_set_data(sqe, nullptr);
}

void FuseUring::SubmitCommit(Queue* q, Entry* e) {
  io_uring_sqe* sqe = GetSqe(&q->ring);
  if (sqe == nullptr) return;
  PrepCommand(sqe, options_.fuse_fd, fuse_ext::kUringCmdCommitAndFetch, nullptr, 0, q->qid, e->commit_id);
  io_uring_sqe_set_data(sqe, e);
  q->commits.fetch_add(1, std::memory_order_relaxed);
}

void FuseUring::DrainForeignReplies(Queue* q) {
  {
    std::lock_guard<std::mutex> l(q->mu);
    q->draining.swap(q->foreign);  // both keep their capacity: no allocation
  }
  for (Entry* e : q->draining) SubmitCommit(q, e);
  q->draining.clear();
}

void FuseUring::Run(Queue* q) {
  current_queue = q;
  // Serve on the CPU whose requests this queue gets (best effort: an
  // offline or forbidden CPU leaves the thread unpinned).
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(q->qid, &cpus);
  pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);

  RegisterEntries(q);
  ArmWakeup(q);
  bool warned = false;
  std::vector<std::pair<void*, int>> done;
  done.reserve(options_.depth + 1);
  while (!stop_.load(std::memory_order_acquire)) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{0, kPollIntervalNs};
    const int r = io_uring_submit_and_wait_timeout(&q->ring, &cqe, 1, &ts, nullptr);
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
      ReportFatal(absl::StrCat("queue ", q->qid, ": waiting for requests failed: ", std::strerror(-r)));
      break;
    }
    unsigned head;
    unsigned seen = 0;
    done.clear();
    io_uring_for_each_cqe(&q->ring, head, cqe) {
      done.emplace_back(io_uring_cqe_get_data(cqe), cqe->res);
      ++seen;
    }
    io_uring_cq_advance(&q->ring, seen);
    for (auto [tag, res] : done) {
      if (tag == nullptr) {  // the wakeup poll
        uint64_t v;
        while (::read(q->event_fd, &v, sizeof(v)) > 0) {
        }
        ArmWakeup(q);
        continue;
      }
      Entry* e = static_cast<Entry*>(tag);
      if (res < 0) {
        // The entry is gone: the connection ended, or the kernel refused it.
        --q->live;
        q->live_entries.store(q->live, std::memory_order_relaxed);
        if (!IsTeardown(res)) {
          q->entry_errors.fetch_add(1, std::memory_order_relaxed);
          if (!warned) {
            spdlog::warn("FUSE io_uring queue {}: the kernel ended a ring entry: {}", q->qid, std::strerror(-res));
            warned = true;
          }
          if (q->live == 0) {
            ReportFatal(absl::StrCat("queue ", q->qid, " has no ring entry left (", std::strerror(-res), ")"));
          }
        }
        continue;
      }
      Serve(q, e);
      for (Entry* own : q->own) SubmitCommit(q, own);
      q->own.clear();
    }
    DrainForeignReplies(q);
    if (q->live == 0) break;  // every entry ended: the connection is gone
  }
  current_queue = nullptr;
}

void FuseUring::Serve(Queue* q, Entry* e) {
  fuse_in_header in;
  std::memcpy(&in, e->header->in_out, sizeof(in));
  const fuse_ext::UringEntInOut ent = e->header->ring_ent_in_out;
  e->commit_id = ent.commit_id;
  const size_t payload = ent.payload_sz;
  if (in.len < sizeof(in) + payload || in.len - sizeof(in) - payload > fuse_ext::kUringOpInOutSize ||
      payload > e->iov[1].iov_len) {
    // Not a layout we know: answer it EIO rather than guess.
    spdlog::warn("FUSE io_uring queue {}: malformed request (opcode {}, len {}, payload {})", q->qid, in.opcode,
                 in.len, payload);
    fuse_out_header out{};
    out.unique = in.unique;
    out.error = -EIO;
    out.len = sizeof(out);
    std::memcpy(e->header->in_out, &out, sizeof(out));
    e->header->ring_ent_in_out.payload_sz = 0;
    q->own.push_back(e);
    return;
  }
  // header + first argument just before the payload: one contiguous request.
  const size_t op_len = in.len - sizeof(in) - payload;
  char* start = e->payload - sizeof(in) - op_len;
  std::memcpy(start, &in, sizeof(in));
  std::memcpy(start + sizeof(in), e->header->op_in, op_len);
  q->requests.fetch_add(1, std::memory_order_relaxed);
  e->unique.store(in.unique, std::memory_order_release);
  dispatch_(start, in.len);
}

bool FuseUring::TakeReply(const struct iovec* iov, int count, ssize_t* written) {
  if (count < 1 || iov[0].iov_len < sizeof(fuse_out_header)) return false;
  fuse_out_header out;
  std::memcpy(&out, iov[0].iov_base, sizeof(out));
  if (out.unique == 0) return false;  // a notification
  Entry* entry = nullptr;
  for (auto& q : queues_) {
    for (auto& e : q->entries) {
      uint64_t expected = out.unique;
      if (e->unique.load(std::memory_order_acquire) == expected &&
          e->unique.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) {
        entry = e.get();
        break;
      }
    }
    if (entry != nullptr) break;
  }
  if (entry == nullptr) return false;

  // The body: whatever follows the header, gathered into the payload.
  size_t body = 0;
  for (int i = 0; i < count; ++i) body += iov[i].iov_len;
  body -= sizeof(out);
  const size_t total = sizeof(out) + body;
  if (body > entry->iov[1].iov_len) {
    spdlog::error("FUSE io_uring: a reply of {} bytes does not fit the ring's payload buffer", body);
    out.error = -EIO;
    body = 0;
  } else {
    char* dst = entry->payload;
    size_t skip = sizeof(out);
    for (int i = 0; i < count; ++i) {
      const char* src = static_cast<const char*>(iov[i].iov_base);
      size_t len = iov[i].iov_len;
      const size_t s = std::min(skip, len);
      src += s;
      len -= s;
      skip -= s;
      if (len > 0) std::memcpy(dst, src, len);
      dst += len;
    }
  }
  out.len = static_cast<uint32_t>(sizeof(out) + body);
  std::memcpy(entry->header->in_out, &out, sizeof(out));
  entry->header->ring_ent_in_out.payload_sz = static_cast<uint32_t>(body);
  *written = static_cast<ssize_t>(total);
  QueueCommit(entry->queue, entry);
  return true;
}

void FuseUring::QueueCommit(Queue* q, Entry* e) {
  if (current_queue == q) {
    q->own.push_back(e);
    return;
  }
  if (stop_.load(std::memory_order_acquire)) return;  // nobody commits any more
  {
    std::lock_guard<std::mutex> l(q->mu);
    q->foreign.push_back(e);
  }
  q->foreign_replies.fetch_add(1, std::memory_order_relaxed);
  const uint64_t one = 1;
  if (::write(q->event_fd, &one, sizeof(one)) < 0) {
    // EAGAIN: the counter is saturated, so a wakeup is already pending.
  }
}

uint64_t FuseUring::buffer_bytes() const {
  uint64_t n = 0;
  for (const auto& q : queues_) {
    for (const auto& e : q->entries) n += e->block_size;
  }
  return n;
}

uint64_t FuseUring::requests() const {
  uint64_t n = 0;
  for (const auto& q : queues_) n += q->requests.load(std::memory_order_relaxed);
  return n;
}

std::string FuseUring::StatsText() const {
  uint64_t commits = 0, foreign = 0, errors = 0, live = 0;
  std::string per_queue;
  for (const auto& q : queues_) {
    commits += q->commits.load(std::memory_order_relaxed);
    foreign += q->foreign_replies.load(std::memory_order_relaxed);
    errors += q->entry_errors.load(std::memory_order_relaxed);
    live += q->live_entries.load(std::memory_order_relaxed);
    absl::StrAppend(&per_queue, "fuse_uring_queue", q->qid, "_requests ", q->requests.load(std::memory_order_relaxed),
                    "\n", "fuse_uring_queue", q->qid, "_entries ", q->live_entries.load(std::memory_order_relaxed),
                    "\n");
  }
  return absl::StrCat("fuse_uring_queues ", queues_.size(), "\n", "fuse_uring_depth ", options_.depth, "\n",
                      "fuse_uring_payload_bytes ", RoundUp(options_.payload_size, kPage), "\n",
                      "fuse_uring_buffer_bytes ", buffer_bytes(), "\n", "fuse_uring_requests ", requests(), "\n",
                      "fuse_uring_commits ", commits, "\n", "fuse_uring_foreign_replies ", foreign, "\n",
                      "fuse_uring_entry_errors ", errors, "\n", "fuse_uring_entries ", live, "\n", per_queue);
}

}  // namespace reclaimfs::fs

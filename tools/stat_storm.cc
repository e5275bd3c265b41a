// stat_storm: a metadata request rate benchmark. THREADS threads call
// statx(AT_STATX_FORCE_SYNC) on FILES files of DIR for SECONDS seconds; the
// flag makes every call a round trip to the filesystem instead of an answer
// from the kernel's attribute cache. Prints one JSON line with the calls per
// second and the 50th/99th percentile latency. Measures; asserts nothing.
//
//   stat_storm DIR [--threads 4] [--files 1000] [--seconds 5]
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// Latencies in 1 µs buckets up to 10 ms, the rest in the last bucket.
constexpr size_t kBuckets = 10'000;

double Percentile(const std::vector<uint64_t>& hist, double p) {
  uint64_t total = 0;
  for (uint64_t n : hist) total += n;
  const auto want = static_cast<uint64_t>(p * static_cast<double>(total));
  uint64_t seen = 0;
  for (size_t i = 0; i < hist.size(); ++i) {
    seen += hist[i];
    if (seen > want) return static_cast<double>(i + 1) / 1000.0;  // ms
  }
  return static_cast<double>(hist.size()) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"statx(AT_STATX_FORCE_SYNC) storm on a directory's files"};
  std::string dir;
  unsigned threads = 4, files = 1000, seconds = 5;
  app.add_option("dir", dir, "directory to create the files in")->required();
  app.add_option("--threads", threads)->check(CLI::Range(1u, 256u));
  app.add_option("--files", files)->check(CLI::Range(1u, 1000000u));
  app.add_option("--seconds", seconds)->check(CLI::Range(1u, 3600u));
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> paths;
  for (unsigned i = 0; i < files; ++i) {
    paths.push_back(dir + "/stat-" + std::to_string(i));
    const int fd = ::open(paths.back().c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
      std::perror(paths.back().c_str());
      return 1;
    }
    ::close(fd);
  }

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> errors{0};
  std::vector<std::vector<uint64_t>> hists(threads, std::vector<uint64_t>(kBuckets, 0));
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::vector<uint64_t>& hist = hists[t];
      for (size_t i = t; !stop.load(std::memory_order_relaxed); i += threads) {
        struct statx sx;
        const auto start = Clock::now();
        if (::statx(AT_FDCWD, paths[i % paths.size()].c_str(), AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &sx) != 0) {
          errors.fetch_add(1, std::memory_order_relaxed);
        }
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
        ++hist[std::min<size_t>(static_cast<size_t>(us), kBuckets - 1)];
      }
    });
  }
  const auto began = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& th : pool) th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - began).count();

  std::vector<uint64_t> all(kBuckets, 0);
  uint64_t calls = 0;
  for (const auto& h : hists) {
    for (size_t i = 0; i < kBuckets; ++i) {
      all[i] += h[i];
      calls += h[i];
    }
  }
  std::printf("{\"calls\": %llu, \"calls_per_s\": %.0f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"errors\": %llu}\n",
              static_cast<unsigned long long>(calls), static_cast<double>(calls) / elapsed, Percentile(all, 0.50),
              Percentile(all, 0.99), static_cast<unsigned long long>(errors.load()));
  return errors.load() == 0 ? 0 : 1;
}

// Zero-copy reads (FileData::ReadPinned): the reply sees iovecs into the
// cached pages themselves, the pages stay pinned against reclaim and
// eviction until the reply returns, and readers racing writers (which the
// POSIX layer keeps out with the io lock, as here) and reclaim always see
// whole, consistent pages. Run under a thread sanitizer too.
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "data_env.h"
#include "gtest/gtest.h"

namespace reclaimfs::fs::testing {
namespace {

constexpr uint64_t kPage = 4096;

EnvOptions NoKswapd() {
  EnvOptions o;
  o.kswapd = false;
  return o;
}

// Readahead completes on the IO thread: a hit on a page read ahead may take
// a moment.
template <typename Pred>
bool WaitFor(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

std::string Join(const iovec* iov, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  return out;
}

TEST(DataReadPinned, RepliesWithTheCachedPagesThemselves) {
  DataEnv env(NoKswapd());
  const std::string content = Pattern(7, 0, 4 * kPage);
  ASSERT_TRUE(env.Write(1, 0, content).ok());
  ASSERT_TRUE(env.data().Sync(1, false).ok());

  // An unaligned read over three pages: three iovecs, one per page.
  std::vector<const void*> first_bases;
  int calls = 0;
  auto n = env.data().ReadPinned(1, env.records().Get(1), 100, 2 * kPage + 10,
                                 [&](const iovec* iov, int count) {
                                   ++calls;
                                   EXPECT_EQ(count, 3);
                                   EXPECT_EQ(Join(iov, count), content.substr(100, 2 * kPage + 10));
                                   for (int i = 0; i < count; ++i) first_bases.push_back(iov[i].iov_base);
                                 });
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2 * kPage + 10);
  EXPECT_EQ(calls, 1);

  // The same page again: the same buffer, not a copy of it.
  ASSERT_TRUE(env.data()
                  .ReadPinned(1, env.records().Get(1), kPage, kPage,
                              [&](const iovec* iov, int count) {
                                ASSERT_EQ(count, 1);
                                EXPECT_EQ(iov[0].iov_base, first_bases[1]);
                              })
                  .ok());
}

TEST(DataReadPinned, EndOfFileRepliesEmptyAndShortReadsStopThere) {
  DataEnv env(NoKswapd());
  ASSERT_TRUE(env.Write(1, 0, Pattern(1, 0, kPage + 5)).ok());
  int count_seen = -1;
  auto n = env.data().ReadPinned(1, env.records().Get(1), kPage + 5, kPage,
                                 [&](const iovec*, int count) { count_seen = count; });
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(count_seen, 0);

  std::string got;
  n = env.data().ReadPinned(1, env.records().Get(1), kPage, 3 * kPage,
                            [&](const iovec* iov, int count) { got = Join(iov, count); });
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(got, Pattern(1, kPage, 5));
}

// Over one window, all cached: the windows are pinned together and the
// reply points at every page (91 of them for 90 pages from offset 10);
// eviction cannot take them until the reply returned.
TEST(DataReadPinned, CachedReadsOverOneWindowAreRepliedInPlace) {
  DataEnv env(NoKswapd());
  const std::string content = Pattern(3, 0, 100 * kPage);
  ASSERT_TRUE(env.Write(1, 0, content).ok());
  ASSERT_TRUE(env.data().Sync(1, false).ok());
  std::string got;
  int count_seen = 0;
  auto n = env.data().ReadPinned(1, env.records().Get(1), 10, 90 * kPage,
                                 [&](const iovec* iov, int count) {
                                   count_seen = count;
                                   got = Join(iov, count);
                                   EXPECT_TRUE(absl::IsUnavailable(env.data().Evict(1, /*nonblocking=*/true)));
                                 });
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(count_seen, 91);
  EXPECT_EQ(got, content.substr(10, 90 * kPage));
  EXPECT_TRUE(env.data().Evict(1, /*nonblocking=*/true).ok());
}

// Over one window with a page missing, or more than a sixteenth of the
// budget: copied window by window into one buffer, which is one iovec.
TEST(DataReadPinned, ReadsOverOneWindowAreCopiedWhenAPageIsMissingOrTheyAreLarge) {
  EnvOptions o = NoKswapd();
  o.budget_bytes = 8ull << 20;
  DataEnv env(o);
  const std::string content = Pattern(3, 0, 256 * kPage);
  ASSERT_TRUE(env.Write(1, 0, content).ok());
  ASSERT_TRUE(env.data().Sync(1, false).ok());
  auto read = [&](uint64_t off, uint64_t len, int* count_seen) {
    std::string got;
    auto n = env.data().ReadPinned(1, env.records().Get(1), off, len, [&](const iovec* iov, int count) {
      *count_seen = count;
      got = Join(iov, count);
    });
    EXPECT_TRUE(n.ok()) << n.status();
    return got;
  };
  int count = 0;
  // 1 MiB of an 8 MiB budget: too much to pin, even though it is cached.
  EXPECT_EQ(read(0, 256 * kPage, &count), content);
  EXPECT_EQ(count, 1);
  // 100 pages (400 KiB) fit: pinned in place.
  EXPECT_EQ(read(0, 100 * kPage, &count), content.substr(0, 100 * kPage));
  EXPECT_EQ(count, 100);
  env.Reopen();  // nothing cached: read from the store and copied
  env.records().Set(1, content.size());
  EXPECT_EQ(read(kPage, 100 * kPage, &count), content.substr(kPage, 100 * kPage));
  EXPECT_EQ(count, 1);
}

TEST(DataReadPinned, MissesAreReadFromTheStore) {
  DataEnv env(NoKswapd());
  const std::string content = Pattern(5, 0, 8 * kPage);
  ASSERT_TRUE(env.Write(1, 0, content).ok());
  ASSERT_TRUE(env.data().Sync(1, false).ok());
  env.Reopen();  // nothing cached
  env.records().Set(1, content.size());
  std::string got;
  auto n = env.data().ReadPinned(1, content.size(), 3 * kPage, 2 * kPage,
                                 [&](const iovec* iov, int count) { got = Join(iov, count); });
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(got, content.substr(3 * kPage, 2 * kPage));
  EXPECT_GE(env.Stat("pagecache_misses"), 2);
}

// Without may_wait a read answers only hits; anything else is Unavailable
// with nothing done: no reply, no page created or charged, no IO, and the
// readahead state as it was (a later sequential read still reads ahead).
TEST(DataReadPinned, WithoutWaitingOnlyHitsAreAnsweredAndAMissChangesNothing) {
  DataEnv env(NoKswapd());
  const std::string content = Pattern(11, 0, 80 * kPage);
  ASSERT_TRUE(env.Write(1, 0, content).ok());
  ASSERT_TRUE(env.data().Sync(1, false).ok());
  env.Reopen();
  env.records().Set(1, content.size());
  const uint64_t used_before = env.mm().budget().used();

  int calls = 0;
  auto n = env.data().ReadPinned(1, content.size(), 0, kPage, [&](const iovec*, int) { ++calls; },
                                 /*may_wait=*/false);
  EXPECT_TRUE(absl::IsUnavailable(n.status())) << n.status();
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(env.Stat("pagecache_pages"), 0);
  EXPECT_EQ(env.Stat("pagecache_misses"), 0);
  EXPECT_EQ(env.mm().budget().used(), used_before);

  // The same read where it may wait: read, and read ahead (sequential from 0).
  std::string got;
  n = env.data().ReadPinned(1, content.size(), 0, kPage,
                            [&](const iovec* iov, int count) { got = Join(iov, count); });
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(got, content.substr(0, kPage));
  EXPECT_GT(env.Stat("pagecache_readahead_pages"), 0);

  // Now a hit: answered without waiting, from the cache.
  ASSERT_TRUE(WaitFor([&] {
    got.clear();
    auto r = env.data().ReadPinned(1, content.size(), kPage, kPage,
                                   [&](const iovec* iov, int count) { got = Join(iov, count); }, false);
    return r.ok();
  }));
  EXPECT_EQ(got, content.substr(kPage, kPage));
  // Over one window (copied): without waiting only when all of it is cached.
  EXPECT_TRUE(absl::IsUnavailable(
      env.data().ReadPinned(1, content.size(), 0, 64 * kPage + 1, [](const iovec*, int) {}, false).status()));
  std::string big;
  ASSERT_TRUE(env.data().ReadPinned(1, content.size(), 0, 80 * kPage, [](const iovec*, int) {}).ok());
  ASSERT_TRUE(WaitFor([&] {
    return env.data()
        .ReadPinned(1, content.size(), 10, 80 * kPage - 10,
                    [&](const iovec* iov, int count) { big = Join(iov, count); }, false)
        .ok();
  }));
  EXPECT_EQ(big, content.substr(10, 80 * kPage - 10));
}

// While the reply runs, neither eviction nor reclaim may free the pages it
// points at; once it returned, both can.
TEST(DataReadPinned, PagesStayPinnedUntilTheReplyReturns) {
  DataEnv env(NoKswapd());
  const std::string content = Pattern(9, 0, 4 * kPage);
  ASSERT_TRUE(env.Write(1, 0, content).ok());
  ASSERT_TRUE(env.data().Sync(1, false).ok());
  auto n = env.data().ReadPinned(1, content.size(), 0, content.size(), [&](const iovec* iov, int count) {
    EXPECT_TRUE(absl::IsUnavailable(env.data().Evict(1, /*nonblocking=*/true)));
    for (int pass = 0; pass < 8; ++pass) env.mm().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
    EXPECT_EQ(env.Stat("pagecache_pages"), 4);
    EXPECT_EQ(Join(iov, count), content);
  });
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(env.data().Evict(1, /*nonblocking=*/true).ok());
  EXPECT_EQ(env.Stat("pagecache_pages"), 0);
}

// Readers (shared io lock; one of them never waits) against a writer that rewrites the whole file
// with one byte value per version (exclusive io lock) and a reclaimer that
// keeps scanning (paging out dirty pages, dropping clean idle ones): every
// reply holds one version throughout.
TEST(DataReadPinned, ConcurrentReadersSeeWholeVersionsUnderWritesAndReclaim) {
  EnvOptions o = NoKswapd();
  o.budget_bytes = 8ull << 20;
  DataEnv env(o);
  constexpr uint64_t kPages = 16;
  std::shared_mutex io_mu;  // the inode's io lock, as the POSIX layer holds it
  ASSERT_TRUE(env.Write(1, 0, std::string(kPages * kPage, 'a')).ok());

  // glibc's rwlock prefers readers: a writer waiting raises a gate that
  // new readers wait at, so the writer gets its turns.
  std::atomic<bool> writer_waiting{false};
  std::atomic<int> readers_left{3};
  std::atomic<uint64_t> replies{0}, torn{0}, errors{0}, versions{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      // The third reader is a request thread's first try: hits only.
      const bool may_wait = r != 2;
      uint64_t seed = r + 1;
      // Until both have done enough: the writer's versions count too.
      for (int i = 0; i < 1500 || versions.load() < 20; ++i) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const uint64_t off = (seed >> 33) % (kPages * kPage);
        const size_t len = 1 + (seed >> 13) % (4 * kPage);
        while (writer_waiting.load()) std::this_thread::yield();
        std::shared_lock l(io_mu);
        auto n = env.data().ReadPinned(1, kPages * kPage, off, len, [&](const iovec* iov, int count) {
          const char v = count > 0 ? static_cast<const char*>(iov[0].iov_base)[0] : 0;
          for (int i = 0; i < count; ++i) {
            const char* b = static_cast<const char*>(iov[i].iov_base);
            for (size_t j = 0; j < iov[i].iov_len; ++j) {
              if (b[j] != v) {
                torn.fetch_add(1);
                return;
              }
            }
          }
          replies.fetch_add(1);
        }, may_wait);
        if (!n.ok() && !(may_wait == false && absl::IsUnavailable(n.status()))) errors.fetch_add(1);
      }
      readers_left.fetch_sub(1);
    });
  }
  threads.emplace_back([&] {
    char v = 'a';
    while (readers_left.load() > 0) {
      v = v == 'z' ? 'a' : static_cast<char>(v + 1);
      writer_waiting.store(true);
      std::unique_lock l(io_mu);
      writer_waiting.store(false);
      if (!env.Write(1, 0, std::string(kPages * kPage, v)).ok()) errors.fetch_add(1);
      versions.fetch_add(1);
    }
  });
  threads.emplace_back([&] {
    while (readers_left.load() > 0) {
      // (Not Evict: the inode cache evicts only inodes nobody uses.)
      env.mm().core().ShrinkAll(reclaim::Reclaimer::kKswapd, 0, 0);
      std::this_thread::yield();
    }
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_EQ(errors.load(), 0u);
  EXPECT_GE(replies.load(), 2u * 1500);
  EXPECT_GE(versions.load(), 20u);
}

}  // namespace
}  // namespace reclaimfs::fs::testing

// PagePool: aligned slots, reuse before growth, trimming idle chunks.
#include "fs/cache/page_pool.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace reclaimfs::fs {
namespace {

TEST(PagePoolTest, SlotsAreAlignedDistinctAndWritable) {
  PagePool pool(4096);
  std::set<void*> seen;
  for (int i = 0; i < 1500; ++i) {  // spans several 2 MiB chunks
    void* p = pool.Allocate();
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 4096, 0u);
    std::memset(p, i & 0xff, 4096);
    EXPECT_TRUE(seen.insert(p).second) << "slot handed out twice";
  }
  EXPECT_EQ(pool.slots_in_use(), 1500u);
  EXPECT_EQ(pool.chunks(), 3u);  // 512 slots per chunk
  for (void* p : seen) pool.Free(p);
  EXPECT_EQ(pool.slots_in_use(), 0u);
}

// A new chunk is faulted in whole when its first slot is handed out, so
// writing a slot takes no page fault; the accounting says so.
TEST(PagePoolTest, NewChunkIsResidentBeforeItsSlotsAreWritten) {
  constexpr size_t kChunk = 2u << 20;
  PagePool pool(4096);
  void* first = pool.Allocate();
  ASSERT_NE(first, nullptr);
  void* base = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(first) & ~(kChunk - 1));
  std::vector<unsigned char> present(kChunk / 4096);
  ASSERT_EQ(::mincore(base, kChunk, present.data()), 0);
  size_t resident = 0;
  for (unsigned char v : present) resident += v & 1;
  EXPECT_EQ(resident, present.size()) << "pages of the new chunk not yet faulted in";
  EXPECT_EQ(pool.resident_bytes(), kChunk);
  pool.Free(first);
}

TEST(PagePoolTest, FreedSlotsAreReusedBeforeTheNextChunk) {
  PagePool pool(4096);
  std::vector<void*> first;
  for (int i = 0; i < 512; ++i) first.push_back(pool.Allocate());
  EXPECT_EQ(pool.chunks(), 1u);
  // Churn far more pages than a chunk holds with at most 512 live at once:
  // the pool must not grow, so its memory tracks the peak in use.
  for (int round = 0; round < 20; ++round) {
    for (void* p : first) pool.Free(p);
    first.clear();
    for (int i = 0; i < 512; ++i) first.push_back(pool.Allocate());
  }
  EXPECT_EQ(pool.chunks(), 1u);
  for (void* p : first) pool.Free(p);
}

// Free slots scattered over chunks still in use go back to the system too:
// resident bytes follow the slots in use, and the slots are reused.
TEST(PagePoolTest, TrimReleasesFreeSlotsOfChunksInUse) {
  PagePool pool(4096);
  std::vector<void*> slots;
  for (int i = 0; i < 1024; ++i) slots.push_back(pool.Allocate());  // two full chunks
  for (void* p : slots) std::memset(p, 0x5a, 4096);
  EXPECT_EQ(pool.resident_bytes(), 1024u * 4096);
  std::vector<void*> kept;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (i % 8 == 0) {
      kept.push_back(slots[i]);
    } else {
      pool.Free(slots[i]);
    }
  }
  EXPECT_EQ(pool.TrimIfSlack(100000), 0u);  // not enough slack: nothing done
  EXPECT_EQ(pool.resident_bytes(), 1024u * 4096);
  EXPECT_EQ(pool.Trim(), 0u);  // every chunk still has a slot in use
  EXPECT_EQ(pool.chunks(), 2u);
  EXPECT_EQ(pool.resident_bytes(), kept.size() * 4096);
  for (void* p : kept) EXPECT_EQ(static_cast<unsigned char*>(p)[100], 0x5a);  // untouched
  // Reused: no new chunk until the released slots are taken again.
  std::set<void*> live(kept.begin(), kept.end());
  for (int i = 0; i < 896; ++i) {
    void* p = pool.Allocate();
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x11, 4096);
    EXPECT_TRUE(live.insert(p).second);
  }
  EXPECT_EQ(pool.chunks(), 2u);
  EXPECT_EQ(pool.resident_bytes(), 1024u * 4096);
  // Idle chunks still go, released slots included.
  for (void* p : live) pool.Free(p);
  EXPECT_EQ(pool.Trim(), 1u);  // the chunk the bump pointer is in stays
  for (int i = 0; i < 600; ++i) {
    void* p = pool.Allocate();
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x22, 4096);
  }
}

TEST(PagePoolTest, TrimUnmapsOnlyIdleChunks) {
  PagePool pool(4096);
  std::vector<void*> a, b;
  for (int i = 0; i < 512; ++i) a.push_back(pool.Allocate());  // chunk 1, full
  for (int i = 0; i < 10; ++i) b.push_back(pool.Allocate());   // chunk 2, partly
  EXPECT_EQ(pool.chunks(), 2u);
  EXPECT_EQ(pool.Trim(), 0u);  // nothing idle
  for (void* p : a) pool.Free(p);
  EXPECT_EQ(pool.Trim(), 1u);
  EXPECT_EQ(pool.chunks(), 1u);
  // The trimmed chunk's slots are gone from the free list: new slots still
  // work and never alias the live ones.
  std::set<void*> live(b.begin(), b.end());
  for (int i = 0; i < 600; ++i) {
    void* p = pool.Allocate();
    ASSERT_NE(p, nullptr);
    std::memset(p, 0xab, 4096);
    EXPECT_TRUE(live.insert(p).second);
  }
  for (void* p : live) pool.Free(p);
}

}  // namespace
}  // namespace reclaimfs::fs

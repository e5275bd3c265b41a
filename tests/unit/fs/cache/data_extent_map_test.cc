// ExtentMap: lookups, merging of adjacent runs, unwritten conversion and
// unmapping with splits, and the records the delta puts into a batch.
#include "fs/cache/extent_map.h"

#include "gtest/gtest.h"

namespace reclaimfs::fs {
namespace {

using storage::BlockRun;
using storage::Extent;

TEST(DataExtentMap, LookupAndGoal) {
  ExtentMap m;
  m.Assign({{0, 100, 4, false}, {10, 200, 2, true}});
  EXPECT_FALSE(m.Lookup(4).mapped);
  auto a = m.Lookup(3);
  EXPECT_TRUE(a.mapped);
  EXPECT_EQ(a.disk_block, 103u);
  EXPECT_FALSE(a.unwritten);
  EXPECT_TRUE(m.Lookup(11).unwritten);
  EXPECT_EQ(m.GoalFor(4), 104u);  // right after the previous extent
  EXPECT_EQ(m.GoalFor(6), 106u);  // where the file would continue
  EXPECT_EQ(m.GoalFor(0), 0u);
  EXPECT_EQ(*m.NextMapped(5), 10u);
  EXPECT_EQ(*m.NextMapped(2), 2u);
  EXPECT_FALSE(m.NextMapped(12).has_value());
  EXPECT_EQ(m.MappedEnd(1), 4u);
  EXPECT_EQ(m.MappedEnd(5), 5u);
  EXPECT_EQ(m.BlockCount(), 6u);
}

TEST(DataExtentMap, AppendMergesIntoOneExtent) {
  ExtentMap m;
  ExtentDelta d;
  std::vector<BlockRun> displaced;
  m.MapWritten(0, 50, 8, &d, &displaced);
  m.MapWritten(8, 58, 8, &d, &displaced);
  m.MapWritten(16, 66, 4, &d, &displaced);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m.Extents()[0], (Extent{0, 50, 20, false}));
  EXPECT_TRUE(displaced.empty());
  // Not disk-contiguous: a second extent.
  m.MapWritten(20, 500, 1, &d, &displaced);
  EXPECT_EQ(m.size(), 2u);
}

TEST(DataExtentMap, ConvertUnwrittenSplits) {
  ExtentMap m;
  m.Assign({{0, 100, 10, true}});
  ExtentDelta d;
  std::vector<BlockRun> displaced;
  m.MapWritten(3, 103, 2, &d, &displaced);  // write blocks 3-4 in place
  EXPECT_TRUE(displaced.empty());
  auto ex = m.Extents();
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0], (Extent{0, 100, 3, true}));
  EXPECT_EQ(ex[1], (Extent{3, 103, 2, false}));
  EXPECT_EQ(ex[2], (Extent{5, 105, 5, true}));
  // Converting the rest merges everything back into one written extent.
  m.MapWritten(0, 100, 3, &d, &displaced);
  m.MapWritten(5, 105, 5, &d, &displaced);
  ex = m.Extents();
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0], (Extent{0, 100, 10, false}));
}

TEST(DataExtentMap, UnmapSplitsAndReturnsFreedRuns) {
  ExtentMap m;
  m.Assign({{0, 100, 10, false}, {20, 300, 5, false}});
  ExtentDelta d;
  std::vector<BlockRun> freed;
  m.Unmap(4, 22, &d, &freed);
  auto ex = m.Extents();
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0], (Extent{0, 100, 4, false}));
  EXPECT_EQ(ex[1], (Extent{22, 302, 3, false}));
  ASSERT_EQ(freed.size(), 2u);
  EXPECT_EQ(freed[0], (BlockRun{104, 6}));
  EXPECT_EQ(freed[1], (BlockRun{300, 2}));
  // Hole in the middle of one extent.
  ExtentMap m2;
  m2.Assign({{0, 100, 10, false}});
  freed.clear();
  m2.Unmap(3, 5, &d, &freed);
  EXPECT_EQ(m2.Extents().size(), 2u);
  EXPECT_EQ(freed[0], (BlockRun{103, 2}));
  freed.clear();
  m2.Unmap(0, UINT64_MAX, &d, &freed);
  EXPECT_EQ(m2.size(), 0u);
  EXPECT_EQ(freed.size(), 2u);
}

TEST(DataExtentMap, OverwriteElsewhereReportsDisplacedBlocks) {
  ExtentMap m;
  m.Assign({{0, 100, 4, false}});
  ExtentDelta d;
  std::vector<BlockRun> displaced;
  m.MapWritten(2, 900, 2, &d, &displaced);
  ASSERT_EQ(displaced.size(), 1u);
  EXPECT_EQ(displaced[0], (BlockRun{102, 2}));
}

TEST(DataExtentMap, MemoryIsChargedPerRecordAndReleased) {
  reclaim::MemoryBudget budget(1 << 20, {});
  {
    ExtentMap m(&budget);
    ExtentDelta d;
    std::vector<BlockRun> displaced;
    // Every other block, each somewhere else: 10 records.
    for (uint64_t i = 0; i < 10; ++i) m.MapWritten(2 * i, 1000 + 7 * i, 1, &d, &displaced);
    EXPECT_EQ(m.size(), 10u);
    EXPECT_EQ(budget.used(), 10 * ExtentMap::kRecordBytes);
    EXPECT_EQ(m.charged(), budget.used());
    // Filling the gaps contiguously with the neighbours merges records.
    m.Unmap(0, UINT64_MAX, &d, &displaced);
    EXPECT_EQ(budget.used(), 0u);
    m.MapWritten(0, 1000, 20, &d, &displaced);
    EXPECT_EQ(budget.used(), ExtentMap::kRecordBytes);
  }
  EXPECT_EQ(budget.used(), 0u);  // destroyed: nothing left charged
}

}  // namespace
}  // namespace reclaimfs::fs

// ExtentMap: lookups, merging of adjacent runs, unwritten conversion and
// unmapping with splits, and the records the delta puts into a batch;
// marking unwritten, collapsing and inserting ranges (fallocate).
#include "fs/cache/extent_map.h"

#include <map>
#include <random>

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

// The store's extent records after `delta` is applied to `records`.
void Apply(const ExtentDelta& delta, std::map<uint64_t, Extent>* records) {
  for (const auto& [fb, e] : delta.changes()) {
    if (e) {
      (*records)[fb] = *e;
    } else {
      records->erase(fb);
    }
  }
}

// The store holds exactly what the map holds.
void ExpectStoreMatches(const ExtentMap& m, const std::map<uint64_t, Extent>& records) {
  std::vector<Extent> stored;
  for (const auto& [fb, e] : records) {
    EXPECT_EQ(fb, e.file_block);
    stored.push_back(e);
  }
  EXPECT_EQ(stored, m.Extents());
}

std::map<uint64_t, Extent> Records(const std::vector<Extent>& extents) {
  std::map<uint64_t, Extent> r;
  for (const Extent& e : extents) r[e.file_block] = e;
  return r;
}

TEST(DataExtentMap, MarkUnwrittenKeepsBlocksAndSplits) {
  const std::vector<Extent> start = {{0, 100, 10, false}, {10, 300, 4, true}};
  ExtentMap m;
  m.Assign(start);
  auto records = Records(start);
  ExtentDelta d;
  m.MarkUnwritten(3, 12, &d);
  Apply(d, &records);
  // Blocks 3-9 become unwritten in place; they do not continue block 300
  // on disk, so they stay a record of their own.
  const std::vector<Extent> want = {{0, 100, 3, false}, {3, 103, 7, true}, {10, 300, 4, true}};
  EXPECT_EQ(m.Extents(), want);
  ExpectStoreMatches(m, records);
  EXPECT_EQ(m.BlockCount(), 14u);  // nothing freed
}

TEST(DataExtentMap, CollapseShiftsDownFreesTheRangeAndMergesTheSeam) {
  // Blocks 4-7 live elsewhere; removing them joins 0-3 and 8-11 on disk.
  const std::vector<Extent> start = {{0, 100, 4, false}, {4, 500, 4, false}, {8, 104, 4, false},
                                     {20, 700, 2, true}};
  ExtentMap m;
  m.Assign(start);
  auto records = Records(start);
  ExtentDelta d;
  std::vector<BlockRun> freed;
  m.Collapse(4, 4, &d, &freed);
  Apply(d, &records);
  const std::vector<Extent> want = {{0, 100, 8, false}, {16, 700, 2, true}};
  EXPECT_EQ(m.Extents(), want);
  ExpectStoreMatches(m, records);
  ASSERT_EQ(freed.size(), 1u);
  EXPECT_EQ(freed[0], (BlockRun{500, 4}));
}

TEST(DataExtentMap, CollapseInsideExtentsSplitsThem) {
  const std::vector<Extent> start = {{0, 100, 10, false}, {12, 300, 3, true}, {20, 400, 5, false}};
  ExtentMap m;
  m.Assign(start);
  auto records = Records(start);
  ExtentDelta d;
  std::vector<BlockRun> freed;
  m.Collapse(5, 10, &d, &freed);  // [5, 15): the tail of the first, all of the second
  Apply(d, &records);
  const std::vector<Extent> want = {{0, 100, 5, false}, {10, 400, 5, false}};
  EXPECT_EQ(m.Extents(), want);
  ExpectStoreMatches(m, records);
  const std::vector<BlockRun> want_freed = {{105, 5}, {300, 3}};
  EXPECT_EQ(freed, want_freed);

  // A range ending inside an extent: its right part moves down, not merged
  // (its disk blocks do not continue the left part's).
  ExtentMap m2;
  m2.Assign({{0, 100, 10, false}});
  records = Records(m2.Extents());
  ExtentDelta d2;
  freed.clear();
  m2.Collapse(2, 3, &d2, &freed);
  Apply(d2, &records);
  const std::vector<Extent> want2 = {{0, 100, 2, false}, {2, 105, 5, false}};
  EXPECT_EQ(m2.Extents(), want2);
  ExpectStoreMatches(m2, records);
}

TEST(DataExtentMap, InsertHoleSplitsAndShiftsUp) {
  const std::vector<Extent> start = {{0, 100, 10, false}, {10, 200, 5, true}, {30, 300, 1, false}};
  ExtentMap m;
  m.Assign(start);
  auto records = Records(start);
  ExtentDelta d;
  m.InsertHole(4, 6, &d);
  Apply(d, &records);
  const std::vector<Extent> want = {{0, 100, 4, false}, {10, 104, 6, false}, {16, 200, 5, true},
                                    {36, 300, 1, false}};
  EXPECT_EQ(m.Extents(), want);
  ExpectStoreMatches(m, records);
  EXPECT_FALSE(m.Lookup(4).mapped);
  EXPECT_FALSE(m.Lookup(9).mapped);
  // At an extent boundary nothing is split; by exactly the distance to the
  // next record, keys land on keys just vacated.
  ExtentDelta d2;
  m.InsertHole(10, 6, &d2);
  Apply(d2, &records);
  const std::vector<Extent> want2 = {{0, 100, 4, false}, {16, 104, 6, false}, {22, 200, 5, true},
                                     {42, 300, 1, false}};
  EXPECT_EQ(m.Extents(), want2);
  ExpectStoreMatches(m, records);
  // Collapsing the hole back restores the first layout's tail and merges.
  ExtentDelta d3;
  std::vector<BlockRun> freed;
  m.Collapse(4, 12, &d3, &freed);
  Apply(d3, &records);
  EXPECT_TRUE(freed.empty());
  const std::vector<Extent> want3 = {{0, 100, 10, false}, {10, 200, 5, true}, {30, 300, 1, false}};
  EXPECT_EQ(m.Extents(), want3);
  ExpectStoreMatches(m, records);
}

TEST(DataExtentMap, ShiftsAreChargedPerRecord) {
  reclaim::MemoryBudget budget(1 << 20, {});
  ExtentMap m(&budget);
  m.Assign({{0, 100, 10, false}});
  EXPECT_EQ(budget.used(), ExtentMap::kRecordBytes);
  ExtentDelta d;
  m.InsertHole(5, 1, &d);  // split: two records
  EXPECT_EQ(budget.used(), 2 * ExtentMap::kRecordBytes);
  std::vector<BlockRun> freed;
  m.Collapse(5, 1, &d, &freed);  // merged again
  EXPECT_EQ(budget.used(), ExtentMap::kRecordBytes);
}

// Random operations against a block-by-block model of the mapping, with the
// store's records replayed from each delta.
TEST(DataExtentMap, RandomShiftsMatchABlockModel) {
  struct B {
    bool mapped = false;
    uint64_t disk = 0;
    bool unwritten = false;
    bool operator==(const B&) const = default;
  };
  constexpr uint64_t kBlocks = 64;
  std::mt19937_64 rng(12345);
  auto below = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  ExtentMap m;
  std::map<uint64_t, Extent> records;
  std::vector<B> model(4 * kBlocks);  // room for inserts
  uint64_t next_disk = 1000;
  for (int step = 0; step < 3000; ++step) {
    const uint64_t fb = below(kBlocks), n = 1 + below(8);
    ExtentDelta d;
    std::vector<BlockRun> runs;
    switch (below(5)) {
      case 0: {  // write somewhere new (sometimes continuing the disk run)
        const uint64_t db = below(2) ? next_disk : next_disk + 3;
        next_disk = db + n;
        m.MapWritten(fb, db, n, &d, &runs);
        for (uint64_t i = 0; i < n; ++i) model[fb + i] = {true, db + i, false};
        break;
      }
      case 1:
        m.Unmap(fb, fb + n, &d, &runs);
        for (uint64_t i = 0; i < n; ++i) model[fb + i] = {};
        break;
      case 2:
        m.MarkUnwritten(fb, fb + n, &d);
        for (uint64_t i = 0; i < n; ++i) model[fb + i].unwritten = model[fb + i].mapped;
        break;
      case 3: {
        uint64_t freed_blocks = 0;
        uint64_t want_freed = 0;
        for (uint64_t i = 0; i < n; ++i) want_freed += model[fb + i].mapped;
        m.Collapse(fb, n, &d, &runs);
        for (const BlockRun& r : runs) freed_blocks += r.length;
        EXPECT_EQ(freed_blocks, want_freed);
        model.erase(model.begin() + fb, model.begin() + fb + n);
        model.resize(4 * kBlocks);
        break;
      }
      case 4:
        // Keep the model bounded: only insert when its tail is empty.
        bool tail_empty = true;
        for (uint64_t i = 2 * kBlocks; i < model.size(); ++i) tail_empty &= !model[i].mapped;
        if (!tail_empty) continue;
        m.InsertHole(fb, n, &d);
        model.insert(model.begin() + fb, n, B{});
        model.resize(4 * kBlocks);
        break;
    }
    Apply(d, &records);
    for (uint64_t b = 0; b < model.size(); ++b) {
      const ExtentMap::Mapping got = m.Lookup(b);
      const B have{got.mapped, got.mapped ? got.disk_block : 0, got.mapped && got.unwritten};
      const B want{model[b].mapped, model[b].mapped ? model[b].disk : 0, model[b].mapped && model[b].unwritten};
      ASSERT_EQ(have, want) << "step " << step << " block " << b;
    }
    ASSERT_NO_FATAL_FAILURE(ExpectStoreMatches(m, records)) << "step " << step;
    // Records never overlap.
    const std::vector<Extent> ex = m.Extents();
    for (size_t i = 1; i < ex.size(); ++i) {
      ASSERT_LE(ex[i - 1].file_end(), ex[i].file_block) << "step " << step;
    }
  }
}

}  // namespace
}  // namespace reclaimfs::fs

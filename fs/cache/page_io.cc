// SubmitPageReads / ReadPageSync.
#include "fs/cache/page_io.h"

#include <cstring>
#include <memory>

#include "fs/cache/errno_status.h"

namespace reclaimfs::fs {

namespace {
constexpr size_t kMaxIovPerRequest = 256;
}  // namespace

void SubmitPageReads(storage::BlockDevice* dev, PageCache* cache, std::vector<PageRead> reads,
                     bool drop_refs) {
  const uint32_t ps = cache->page_size();
  auto finish = [cache, drop_refs](Page* p, bool ok) {
    if (ok) {
      p->Clear(kPageError);
      p->Set(kPageUptodate);
    } else {
      p->Set(kPageError);
    }
    p->Unlock();
    if (drop_refs) cache->Put(p);
  };
  std::vector<Page*> io;
  std::vector<uint64_t> blocks;
  for (const PageRead& r : reads) {
    if (!r.map.mapped || r.map.unwritten) {
      std::memset(r.page->data, 0, ps);  // a hole: zeros, no IO
      finish(r.page, true);
      continue;
    }
    io.push_back(r.page);
    blocks.push_back(r.map.disk_block);
  }
  if (io.empty()) return;
  std::vector<storage::IoRequest> reqs;
  for (size_t i = 0; i < io.size();) {
    size_t j = i + 1;
    while (j < io.size() && j - i < kMaxIovPerRequest && io[j]->index == io[j - 1]->index + 1 &&
           blocks[j] == blocks[j - 1] + 1) {
      ++j;
    }
    storage::IoRequest req;
    req.op = storage::IoRequest::Op::kRead;
    req.offset = blocks[i] * ps;
    auto pages = std::make_shared<std::vector<Page*>>(io.begin() + i, io.begin() + j);
    for (Page* p : *pages) req.iov.push_back({p->data, ps});
    const int64_t expected = static_cast<int64_t>(pages->size()) * ps;
    req.done = [pages, expected, finish](int64_t res) {
      for (Page* p : *pages) finish(p, res == expected);
    };
    reqs.push_back(std::move(req));
    i = j;
  }
  cache->stats().read_ios.fetch_add(reqs.size(), std::memory_order_relaxed);
  dev->Submit(std::move(reqs));
}

absl::Status ReadPageSync(storage::BlockDevice* dev, PageCache* cache, Page* p,
                          const ExtentMap::Mapping& map) {
  const uint32_t ps = cache->page_size();
  if (!map.mapped || map.unwritten) {
    std::memset(p->data, 0, ps);
  } else {
    cache->stats().read_ios.fetch_add(1, std::memory_order_relaxed);
    absl::Status s = dev->Read(map.disk_block * ps, p->data, ps);
    if (!s.ok()) {
      p->Set(kPageError);
      return ErrnoStatus(EIO, "read error: " + std::string(s.message()));
    }
  }
  p->Clear(kPageError);
  p->Set(kPageUptodate);
  return absl::OkStatus();
}

}  // namespace reclaimfs::fs

// crash_cycle: seeded streams and file content recipes; see crash_cycle_content.h.
#include "tools/crash_cycle_content.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace crash_cycle {
namespace {

constexpr uint64_t kTagBlock = 4096;
constexpr uint64_t kWordsPerBlock = kTagBlock / 8;
constexpr uint64_t kMagic = 0x21656c6379637263ull;  // "crcycle!" in little-endian bytes
constexpr size_t kTagBytes = 24;                    // magic, seed, block index

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Word `word` of the stream whose mixed key is `key`.
uint64_t StreamWord(uint64_t seed, uint64_t key, uint64_t word) {
  switch (word % kWordsPerBlock) {
    case 0: return kMagic;
    case 1: return seed;
    case 2: return word / kWordsPerBlock;
    default: return Mix(key + word * 0x9e3779b97f4a7c15ull);
  }
}

const char* KindName(uint64_t kind) {
  switch (static_cast<StreamKind>(kind)) {
    case StreamKind::kFile: return "file data";
    case StreamKind::kAppend: return "append data";
    case StreamKind::kJunk: return "junk data";
    case StreamKind::kXattr: return "xattr value";
  }
  return nullptr;
}

}  // namespace

uint64_t MakeSeed(StreamKind kind, unsigned writer, unsigned cycle, uint32_t counter) {
  return (uint64_t{static_cast<uint8_t>(kind)} << 56) | (uint64_t{writer & 0xff} << 48) |
         (uint64_t{cycle & 0xffff} << 32) | counter;
}

std::string DescribeSeed(uint64_t seed) {
  char buf[128];
  const char* kind = KindName(seed >> 56);
  if (kind == nullptr) {
    std::snprintf(buf, sizeof buf, "seed 0x%016" PRIx64 " (not written by crash_cycle)", seed);
  } else {
    std::snprintf(buf, sizeof buf, "%s of writer %u in cycle %u (#%u)", kind,
                  static_cast<unsigned>((seed >> 48) & 0xff), static_cast<unsigned>((seed >> 32) & 0xffff),
                  static_cast<unsigned>(seed & 0xffffffff));
  }
  return buf;
}

void FillStream(uint64_t seed, uint64_t pos, std::span<char> out) {
  const uint64_t key = Mix(seed);
  size_t i = 0;
  auto byte_at = [&](uint64_t p) {  // little-endian, like the memcpy of whole words below
    return static_cast<char>(StreamWord(seed, key, p / 8) >> (8 * (p % 8)));
  };
  for (; i < out.size() && (pos + i) % 8 != 0; ++i) out[i] = byte_at(pos + i);
  for (; i + 8 <= out.size(); i += 8) {
    const uint64_t w = StreamWord(seed, key, (pos + i) / 8);
    std::memcpy(out.data() + i, &w, 8);
  }
  for (; i < out.size(); ++i) out[i] = byte_at(pos + i);
}

std::optional<FoundTag> FindTagBefore(std::string_view data, size_t at) {
  const size_t from = at > kTagBlock ? at - kTagBlock : 0;
  const size_t to = std::min(data.size(), at + 1);
  std::optional<FoundTag> last;
  const std::string_view magic(reinterpret_cast<const char*>(&kMagic), 8);
  for (size_t p = data.find(magic, from); p != std::string_view::npos && p < to; p = data.find(magic, p + 1)) {
    if (p + kTagBytes > data.size()) break;
    FoundTag t;
    t.offset = p;
    uint64_t block = 0;
    std::memcpy(&t.seed, data.data() + p + 8, 8);
    std::memcpy(&block, data.data() + p + 16, 8);
    t.pos = block * kTagBlock;
    last = t;
  }
  return last;
}

void Content::Push(Segment s) {
  if (s.len == 0) return;
  if (!segs_.empty()) {
    Segment& b = segs_.back();
    const bool continues = b.seed == s.seed && (s.zeros() || b.pos + b.len == s.pos);
    if (continues) {
      b.len += s.len;
      size_ += s.len;
      return;
    }
  }
  segs_.push_back(s);
  size_ += s.len;
}

void Content::AppendStream(uint64_t seed, uint64_t pos, uint64_t len) { Push({len, seed, pos}); }

void Content::AppendZeros(uint64_t len) { Push({len, 0, 0}); }

void Content::Resize(uint64_t size) {
  if (size >= size_) {
    AppendZeros(size - size_);
    return;
  }
  std::vector<Segment> old;
  old.swap(segs_);
  size_ = 0;
  for (const Segment& s : old) {
    if (size_ >= size) break;
    Segment cut = s;
    cut.len = std::min(s.len, size - size_);
    Push(cut);
  }
}

void Content::Zero(uint64_t off, uint64_t len) {
  const uint64_t end = std::min(size_, off + len);
  if (off >= end) return;
  std::vector<Segment> old;
  old.swap(segs_);
  size_ = 0;
  uint64_t start = 0;
  for (const Segment& s : old) {
    const uint64_t s_end = start + s.len;
    if (start < off) {  // the part before the hole
      Segment head = s;
      head.len = std::min(s_end, off) - start;
      Push(head);
    }
    if (start < end && s_end > off) AppendZeros(std::min(s_end, end) - std::max(start, off));
    if (s_end > end) {  // the part after the hole
      const uint64_t skip = std::max(start, end) - start;
      Segment tail = s;
      tail.len = s.len - skip;
      if (!s.zeros()) tail.pos = s.pos + skip;
      Push(tail);
    }
    start = s_end;
  }
}

void Content::AppendFrom(const Content& src, uint64_t off, uint64_t len) {
  const uint64_t end = off + len;
  uint64_t start = 0;
  for (const Segment& s : src.segs_) {
    const uint64_t s_end = start + s.len;
    if (s_end > off && start < end) {
      const uint64_t from = std::max(start, off);
      Push({std::min(s_end, end) - from, s.seed, s.zeros() ? 0 : s.pos + (from - start)});
    }
    start = s_end;
  }
}

void Content::Render(uint64_t off, std::span<char> out) const {
  uint64_t start = 0;
  size_t done = 0;
  for (const Segment& s : segs_) {
    if (done == out.size()) break;
    const uint64_t s_end = start + s.len;
    const uint64_t at = off + done;
    if (at < s_end) {
      const uint64_t n = std::min<uint64_t>(s_end - at, out.size() - done);
      std::span<char> piece = out.subspan(done, n);
      if (s.zeros()) {
        std::fill(piece.begin(), piece.end(), '\0');
      } else {
        FillStream(s.seed, s.pos + (at - start), piece);
      }
      done += n;
    }
    start = s_end;
  }
}

Segment Content::At(uint64_t off) const {
  uint64_t start = 0;
  for (const Segment& s : segs_) {
    if (off < start + s.len) {
      const uint64_t skip = off - start;
      return {s.len - skip, s.seed, s.zeros() ? 0 : s.pos + skip};
    }
    start += s.len;
  }
  return {};
}

std::string Content::Encode() const {
  std::string out = "size=" + std::to_string(size_) + " segs=";
  char buf[80];
  for (size_t i = 0; i < segs_.size(); ++i) {
    const Segment& s = segs_[i];
    if (s.zeros()) {
      std::snprintf(buf, sizeof buf, "%szero+%" PRIu64, i ? "," : "", s.len);
    } else {
      std::snprintf(buf, sizeof buf, "%s%016" PRIx64 "@%" PRIu64 "+%" PRIu64, i ? "," : "", s.seed, s.pos, s.len);
    }
    out += buf;
  }
  if (segs_.empty()) out += "-";
  return out;
}

}  // namespace crash_cycle

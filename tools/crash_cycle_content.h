// crash_cycle: the expected content of files, kept as a recipe instead of
// bytes. Every byte the tool writes comes from a seeded stream that can be
// regenerated at any position; a file's content is a list of segments, each a
// piece of one stream or a run of zeros. Every 4 KiB of a stream starts with
// a tag (magic, seed, block index), so data found in the wrong place can be
// traced to what wrote it; the seed itself says which writer, cycle and kind
// of write produced it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace crash_cycle {

// What a stream was written for; the top byte of its seed.
enum class StreamKind : uint8_t { kFile = 1, kAppend = 2, kJunk = 3, kXattr = 4 };

uint64_t MakeSeed(StreamKind kind, unsigned writer, unsigned cycle, uint32_t counter);
// "append data of writer 2 in cycle 7 (#1234)", or "seed 0x... (not ours)".
std::string DescribeSeed(uint64_t seed);

// Fills `out` with stream `seed` from stream position `pos` on.
void FillStream(uint64_t seed, uint64_t pos, std::span<char> out);

// A tag found in data: the stream and the stream position of `offset`.
struct FoundTag {
  size_t offset = 0;   // where in the searched data the tag starts
  uint64_t seed = 0;
  uint64_t pos = 0;    // the stream position at `offset`
};
// The last tag that starts at or before `at` within `data`, looking back at
// most one tag block.
std::optional<FoundTag> FindTagBefore(std::string_view data, size_t at);

// A piece of a file: `len` bytes of stream `seed` from position `pos`, or
// `len` zeros when seed is 0.
struct Segment {
  uint64_t len = 0;
  uint64_t seed = 0;
  uint64_t pos = 0;
  bool zeros() const { return seed == 0; }
  bool operator==(const Segment&) const = default;
};

class Content {
 public:
  uint64_t size() const { return size_; }
  const std::vector<Segment>& segments() const { return segs_; }

  void AppendStream(uint64_t seed, uint64_t pos, uint64_t len);
  void AppendZeros(uint64_t len);
  void Resize(uint64_t size);                 // cuts, or extends with zeros
  void Zero(uint64_t off, uint64_t len);      // a punched hole, clipped to the size
  // Appends the bytes [off, off + len) of `src` (which must cover them).
  void AppendFrom(const Content& src, uint64_t off, uint64_t len);
  // The bytes [off, off + out.size()), which must lie within the size.
  void Render(uint64_t off, std::span<char> out) const;
  // The segment covering `off`, trimmed to start there.
  Segment At(uint64_t off) const;
  // "size=N segs=seed@pos+len,zero+len,..." for the journal and reports.
  std::string Encode() const;

  bool operator==(const Content&) const = default;

 private:
  void Push(Segment s);  // appends, merging with the last segment where it continues it

  std::vector<Segment> segs_;
  uint64_t size_ = 0;
};

}  // namespace crash_cycle

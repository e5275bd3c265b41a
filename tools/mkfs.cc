// mkfs.reclaimfs STORE [--size N] [--force]: creates a new, empty store.
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "storage/meta_store.h"

namespace {

// "4096", "512K", "64M", "1G", "2T" (binary multiples; a trailing "B" or
// "iB" is accepted). Empty on anything else or on overflow.
std::optional<uint64_t> ParseSize(const std::string& text) {
  size_t i = 0;
  uint64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
    ++i;
  }
  if (i == 0) return std::nullopt;
  std::string unit = text.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit == "IB" || unit.empty() || unit == "B") return value;
  int shift = 0;
  switch (unit[0]) {
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: return std::nullopt;
  }
  const std::string rest = unit.substr(1);
  if (!rest.empty() && rest != "B" && rest != "IB") return std::nullopt;
  if (value > (UINT64_MAX >> shift)) return std::nullopt;
  return value << shift;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Create a reclaimfs store: a directory holding the metadata and the data file",
               "mkfs.reclaimfs"};
  std::string store;
  std::string size_text = "1G";
  bool force = false;
  app.add_option("STORE", store, "store directory (created if missing)")->required();
  app.add_option("--size,-s", size_text, "data file size, with an optional K/M/G/T suffix")
      ->capture_default_str();
  app.add_flag("--force,-f", force, "overwrite an existing store");
  CLI11_PARSE(app, argc, argv);

  auto size = ParseSize(size_text);
  if (!size) {
    std::fprintf(stderr, "mkfs.reclaimfs: invalid size '%s' (examples: 512M, 1G, 2T)\n",
                 size_text.c_str());
    return 1;
  }
  reclaimfs::storage::MkfsOptions options;
  options.size_bytes = *size;
  options.force = force;
  absl::Status s = reclaimfs::storage::MakeStore(store, options);
  if (!s.ok()) {
    std::fprintf(stderr, "mkfs.reclaimfs: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  const uint64_t bytes = *size / options.block_size * options.block_size;
  std::printf("created reclaimfs store %s: %llu bytes, %llu blocks of %u bytes\n", store.c_str(),
              static_cast<unsigned long long>(bytes),
              static_cast<unsigned long long>(bytes / options.block_size), options.block_size);
  return 0;
}

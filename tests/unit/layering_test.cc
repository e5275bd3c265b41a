// The layering of the source tree, checked on the sources themselves (the
// static libraries keep the links in order, but every header is reachable
// from the one include root). Lowest layer first:
//
//   reclaim/             includes nothing of storage/ or fs/
//   storage/             includes nothing of fs/
//   fs/cache/            fs/cache only (plus reclaim/, storage/)
//   fs/posix/            fs/cache, fs/posix
//   fs/fuse/             fs/cache, fs/posix, fs/fuse
//   fs/daemon/           everything
//
// and <fuse*.h> (libfuse) only in fs/fuse/ and fs/daemon/. Every source
// file under fs/ must sit in one of the layer folders. A violation is
// reported as file:line and the include that breaks the rule.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace {

namespace stdfs = std::filesystem;

#ifndef RECLAIMFS_SOURCE_ROOT
#error "RECLAIMFS_SOURCE_ROOT must name the source tree"
#endif

const stdfs::path& SourceRoot() {
  static const stdfs::path root(RECLAIMFS_SOURCE_ROOT);
  return root;
}

struct Include {
  int line = 0;
  std::string target;  // as written
  bool angled = false;
};

std::vector<Include> ParseIncludes(std::istream& in) {
  static const std::regex kInclude(R"(^\s*#\s*include\s*([<"])([^">]+)[">])");
  std::vector<Include> out;
  std::string text;
  for (int n = 1; std::getline(in, text); ++n) {
    std::smatch m;
    if (std::regex_search(text, m, kInclude)) out.push_back({n, m[2].str(), m[1].str() == "<"});
  }
  return out;
}

// The layer a path (relative to the source root) belongs to: "reclaim",
// "storage", "fs/cache", "fs/posix", "fs/fuse", "fs/daemon", "fs" for a
// file directly in fs/ or an unknown folder of it, "" outside all of them.
std::string LayerOf(const std::string& rel) {
  for (const char* l : {"fs/cache/", "fs/posix/", "fs/fuse/", "fs/daemon/"}) {
    if (rel.rfind(l, 0) == 0) return std::string(l, std::char_traits<char>::length(l) - 1);
  }
  if (rel.rfind("fs/", 0) == 0) return "fs";
  if (rel.rfind("reclaim/", 0) == 0) return "reclaim";
  if (rel.rfind("storage/", 0) == 0) return "storage";
  return "";
}

// The layers of fs/ that `layer` may include.
std::vector<std::string> AllowedFsLayers(const std::string& layer) {
  if (layer == "reclaim" || layer == "storage") return {};
  if (layer == "fs/cache") return {"fs/cache"};
  if (layer == "fs/posix") return {"fs/cache", "fs/posix"};
  if (layer == "fs/fuse") return {"fs/cache", "fs/posix", "fs/fuse"};
  return {"fs/cache", "fs/posix", "fs/fuse", "fs/daemon", "fs"};
}

bool MayIncludeLibfuse(const std::string& layer) { return layer == "fs/fuse" || layer == "fs/daemon"; }

// Where `inc` in the file `rel` resolves, relative to the source root: a
// quoted include next to the including file first (as the compiler looks),
// then from the root. Angled includes and names not found are taken as
// written from the root.
std::string Resolve(const std::string& rel, const Include& inc, const stdfs::path& root) {
  if (!inc.angled) {
    const stdfs::path beside = (stdfs::path(rel).parent_path() / inc.target).lexically_normal();
    if (stdfs::exists(root / beside)) return beside.generic_string();
  }
  return stdfs::path(inc.target).lexically_normal().generic_string();
}

// Violations of the rules by the includes of the file `rel`.
std::vector<std::string> Check(const std::string& rel, const std::vector<Include>& includes,
                               const stdfs::path& root) {
  std::vector<std::string> out;
  const std::string layer = LayerOf(rel);
  if (layer.empty()) return out;
  const std::vector<std::string> allowed = AllowedFsLayers(layer);
  for (const Include& inc : includes) {
    const std::string where = rel + ":" + std::to_string(inc.line) + ": #include " +
                              (inc.angled ? "<" : "\"") + inc.target + (inc.angled ? ">" : "\"");
    const std::string target = Resolve(rel, inc, root);
    const std::string target_layer = LayerOf(target);
    if (layer == "reclaim" && target_layer == "storage") {
      out.push_back(where + ": reclaim/ may not include storage/");
    }
    if (target_layer.rfind("fs", 0) == 0 &&
        std::find(allowed.begin(), allowed.end(), target_layer) == allowed.end()) {
      out.push_back(where + ": " + layer + "/ may not include " +
                    (target_layer == "fs" ? "fs/ outside the layer folders" : target_layer + "/"));
    }
    const std::string base = stdfs::path(inc.target).filename().string();
    if (inc.angled && base.rfind("fuse", 0) == 0 && !MayIncludeLibfuse(layer)) {
      out.push_back(where + ": " + layer + "/ may not include libfuse");
    }
  }
  return out;
}

bool IsSource(const stdfs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".h" || ext == ".cc" || ext == ".cpp" || ext == ".hpp" || ext == ".inc";
}

// Source files under `dir` (relative to the root), sorted.
std::vector<std::string> SourcesUnder(const std::string& dir) {
  std::vector<std::string> out;
  const stdfs::path base = SourceRoot() / dir;
  if (!stdfs::is_directory(base)) return out;
  for (const auto& e : stdfs::recursive_directory_iterator(base)) {
    if (e.is_regular_file() && IsSource(e.path())) {
      out.push_back(e.path().lexically_relative(SourceRoot()).generic_string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> CheckTree(const std::string& dir) {
  std::vector<std::string> out;
  for (const std::string& rel : SourcesUnder(dir)) {
    std::ifstream in(SourceRoot() / rel);
    if (!in) {
      out.push_back(rel + ": cannot read");
      continue;
    }
    for (std::string& v : Check(rel, ParseIncludes(in), SourceRoot())) out.push_back(std::move(v));
  }
  return out;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += "  " + x + "\n";
  return s;
}

std::vector<std::string> CheckText(const std::string& rel, const std::string& text) {
  std::istringstream in(text);
  return Check(rel, ParseIncludes(in), SourceRoot());
}

TEST(Layering, SourceTreeIsThere) {
  ASSERT_TRUE(stdfs::is_directory(SourceRoot() / "fs")) << SourceRoot();
  // Each layer folder has sources, so an empty walk cannot pass for a clean one.
  for (const char* l : {"reclaim", "storage", "fs/cache", "fs/posix", "fs/fuse", "fs/daemon"}) {
    EXPECT_FALSE(SourcesUnder(l).empty()) << l;
  }
}

TEST(Layering, ReclaimAndStorageIncludeNothingAbove) {
  std::vector<std::string> v = CheckTree("reclaim");
  for (std::string& x : CheckTree("storage")) v.push_back(std::move(x));
  EXPECT_TRUE(v.empty()) << "\n" << Join(v);
}

TEST(Layering, CacheIncludesOnlyCache) {
  const std::vector<std::string> v = CheckTree("fs/cache");
  EXPECT_TRUE(v.empty()) << "\n" << Join(v);
}

TEST(Layering, PosixIncludesNeitherFuseNorDaemon) {
  const std::vector<std::string> v = CheckTree("fs/posix");
  EXPECT_TRUE(v.empty()) << "\n" << Join(v);
}

TEST(Layering, FuseDoesNotIncludeDaemon) {
  const std::vector<std::string> v = CheckTree("fs/fuse");
  EXPECT_TRUE(v.empty()) << "\n" << Join(v);
}

TEST(Layering, EveryFsSourceIsInALayerFolder) {
  std::vector<std::string> stray;
  for (const std::string& rel : SourcesUnder("fs")) {
    if (LayerOf(rel) == "fs") stray.push_back(rel);
  }
  EXPECT_TRUE(stray.empty()) << "not in fs/cache, fs/posix, fs/fuse or fs/daemon:\n" << Join(stray);
}

// The checker itself: each rule fires on a violation, with file and line.
TEST(Layering, CheckerReportsViolations) {
  EXPECT_EQ(CheckText("storage/x.cc", "#include \"fs/cache/page.h\"\n"),
            std::vector<std::string>{
                "storage/x.cc:1: #include \"fs/cache/page.h\": storage/ may not include fs/cache/"});
  EXPECT_EQ(CheckText("reclaim/x.h", "\n#include \"fs/posix/filesystem.h\"\n").size(), 1u);
  EXPECT_EQ(CheckText("reclaim/x.cc", "#include \"storage/format.h\"\n"),
            std::vector<std::string>{
                "reclaim/x.cc:1: #include \"storage/format.h\": reclaim/ may not include storage/"});
  for (const char* up : {"fs/posix/filesystem.h", "fs/fuse/fuse_adapter.h", "fs/daemon/config.h"}) {
    const auto v = CheckText("fs/cache/x.cc", std::string("#include \"") + up + "\"\n");
    ASSERT_EQ(v.size(), 1u) << up;
    EXPECT_EQ(v[0].rfind("fs/cache/x.cc:1: ", 0), 0u) << v[0];
  }
  EXPECT_EQ(CheckText("fs/posix/x.cc", "#include \"fs/fuse/fuse_api.h\"\n").size(), 1u);
  EXPECT_EQ(CheckText("fs/posix/x.cc", "#include \"fs/daemon/config.h\"\n").size(), 1u);
  EXPECT_EQ(CheckText("fs/posix/x.cc", "#include <fuse_lowlevel.h>\n").size(), 1u);
  EXPECT_EQ(CheckText("fs/fuse/x.cc", "  #  include \"fs/daemon/mount_table.h\"\n").size(), 1u);
  // Relative to the including file, as the compiler resolves it.
  EXPECT_EQ(CheckText("fs/posix/x.cc", "#include \"../fuse/fuse_api.h\"\n").size(), 1u);
  // A header left directly in fs/.
  EXPECT_EQ(CheckText("fs/cache/x.cc", "#include \"fs/page.h\"\n").size(), 1u);

  // Allowed includes are not reported.
  EXPECT_TRUE(CheckText("fs/cache/x.cc",
                        "#include \"fs/cache/page.h\"\n#include \"reclaim/shrinker.h\"\n"
                        "#include \"storage/format.h\"\n#include <vector>\n")
                  .empty());
  EXPECT_TRUE(CheckText("fs/posix/x.cc", "#include \"fs/cache/page.h\"\n").empty());
  EXPECT_TRUE(CheckText("fs/fuse/x.cc", "#include \"fs/posix/filesystem.h\"\n#include <fuse_lowlevel.h>\n")
                  .empty());
  EXPECT_TRUE(CheckText("fs/daemon/x.cc", "#include \"fs/fuse/fuse_adapter.h\"\n").empty());
}

}  // namespace

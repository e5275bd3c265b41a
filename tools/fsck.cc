// fsck.reclaimfs STORE: checks a store's consistency without changing it.
// Exit status: 0 clean, 1 inconsistent, 2 the store cannot be opened.
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "tools/fsck_checks.h"

int main(int argc, char** argv) {
  CLI::App app{"Check a reclaimfs store for consistency (read-only)", "fsck.reclaimfs"};
  std::string store;
  app.add_option("STORE", store, "store directory (made by mkfs.reclaimfs)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors are "cannot check" too, but --help is success.
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  auto report = reclaimfs::tools::CheckStore(store);
  if (!report.ok()) {
    std::fprintf(stderr, "fsck.reclaimfs: cannot open %s: %s\n", store.c_str(),
                 std::string(report.status().message()).c_str());
    return 2;
  }
  for (const auto& p : report->problems) std::printf("problem: %s\n", p.c_str());
  if (report->problem_count > report->problems.size()) {
    std::printf("... and %llu more problems\n",
                static_cast<unsigned long long>(report->problem_count - report->problems.size()));
  }
  std::printf("%s: %s\n", store.c_str(), report->Summary().c_str());
  return report->clean() ? 0 : 1;
}

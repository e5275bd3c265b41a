// fio on a reclaimfs mount: the job files tools/fio/seq.fio (1 MiB
// sequential) and tools/fio/rand.fio (4 KiB random), both verifying every
// block with crc32c. fio must exit 0, every job must report error 0 (JSON)
// and err= 0 (text), and each job must have moved data.
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace reclaimfs::itest {
namespace {

class FioTest : public ReclaimfsTest,
                public ::testing::WithParamInterface<const char*> {
 protected:
  FioTest() : ReclaimfsTest(FixtureConfig().Size("1G").Budget(400s)) {}
};

// fio's --output-format=normal,json prints the JSON document as lines from
// "{" to "}" at column 0; the rest is the human-readable report.
void SplitOutput(const std::string& out, std::string* json, std::string* text) {
  const size_t start = out.find("\n{\n");
  const size_t end = start == std::string::npos ? std::string::npos : out.find("\n}\n", start);
  if (start == std::string::npos || end == std::string::npos) {
    *text = out;
    return;
  }
  *json = out.substr(start + 1, end + 2 - start);
  *text = out.substr(0, start) + out.substr(end + 2);
}

std::vector<long> AllNumbers(const std::string& s, const std::regex& re) {
  std::vector<long> out;
  for (auto it = std::sregex_iterator(s.begin(), s.end(), re); it != std::sregex_iterator(); ++it) {
    out.push_back(std::stol((*it)[1]));
  }
  return out;
}

TEST_P(FioTest, JobVerifiesWithoutErrors) {
  if (Tools().fio.empty()) GTEST_SKIP() << "fio not found (FIO_BIN unset)";
  const std::string job = Tools().fio_jobs + "/" + GetParam();
  ASSERT_TRUE(std::filesystem::exists(job)) << job;
  RunResult r = Run({Tools().fio, "--directory=" + mnt(), "--output-format=normal,json", job},
                    std::chrono::seconds(300));
  EXPECT_EQ(r.exit_code, 0) << "fio " << GetParam() << ": " << r.Describe();

  std::string json, text;
  SplitOutput(r.output, &json, &text);
  ASSERT_FALSE(json.empty()) << "no JSON in fio output:\n" << r.output;
  const std::vector<long> json_errors = AllNumbers(json, std::regex(R"re("error"\s*:\s*(\d+))re"));
  const std::vector<long> text_errors = AllNumbers(text, std::regex(R"re(err=\s*(\d+))re"));
  EXPECT_EQ(json_errors.size(), 2u) << "expected two jobs in:\n" << json;
  EXPECT_EQ(text_errors.size(), 2u) << "expected two err= fields in:\n" << text;
  for (long e : json_errors) EXPECT_EQ(e, 0) << "a job failed (JSON error field):\n" << r.output;
  for (long e : text_errors) EXPECT_EQ(e, 0) << "a job failed (err= field):\n" << text;
  EXPECT_EQ(r.output.find("verify:"), std::string::npos) << "verification messages:\n" << r.output;
  EXPECT_EQ(r.output.find("bad magic"), std::string::npos) << r.output;
  // Every job moved data: the write job writes and reads back, the read job reads.
  const std::vector<long> bytes = AllNumbers(json, std::regex(R"re("io_bytes"\s*:\s*(\d+))re"));
  long total = 0;
  for (long b : bytes) total += b;
  EXPECT_GE(total, 3l * (128 << 20)) << "less IO than write + verify + read of 128 MiB";
  RecordProperty("fio_output", text);
}

INSTANTIATE_TEST_SUITE_P(Jobs, FioTest, ::testing::Values("seq.fio", "rand.fio"),
                         [](const auto& info) { return std::string(info.param).substr(0, 3); });

}  // namespace
}  // namespace reclaimfs::itest

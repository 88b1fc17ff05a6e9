#include "qlake/ingest/ingest.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <arrow/array.h>
#include <arrow/io/file.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>
#include <zlib.h>

#include "qlake/catalog/datasets.h"

namespace qlake::ingest {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            fmt::format("qlake_ingest_test_{}_{}", ::getpid(),
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "mirror");
  }
  void TearDown() override { fs::remove_all(root_); }

  // Writes a gzipped flat file for `dataset` on `day` into the mirror.
  void WriteFile(const char* dataset, const char* day, const std::string& csv) {
    auto key = catalog::KeyFor(**catalog::FindDataset(dataset), *ParseDate(day));
    fs::path p = root_ / "mirror" / key;
    fs::create_directories(p.parent_path());
    gzFile f = gzopen(p.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, csv.data(), static_cast<unsigned>(csv.size())),
              static_cast<int>(csv.size()));
    gzclose(f);
  }

  static std::string DayCsv(const char* day, double aaa_close, double bbb_close) {
    int64_t midnight = FromNewYork(*ParseDate(day), 0);
    std::string csv = "ticker,volume,open,close,high,low,window_start,transactions\n";
    csv += fmt::format("AAA,100,{0},{0},{0},{0},{1},3\n", aaa_close, midnight);
    csv += fmt::format("BBB,100,{0},{0},{0},{0},{1},3\n", bbb_close, midnight);
    return csv;
  }

  IngestOptions Options(const char* dataset, const char* from, const char* to) {
    IngestOptions o;
    o.dataset = dataset;
    o.from = *ParseDate(from);
    o.to = *ParseDate(to);
    o.source = (root_ / "mirror").string();
    o.lake = (root_ / "lake").string();
    o.fsync = false;
    return o;
  }

  std::shared_ptr<arrow::Table> ReadLakeFile(const std::string& rel) {
    auto file = *arrow::io::ReadableFile::Open((root_ / "lake" / rel).string());
    auto reader = *parquet::arrow::OpenFile(file, arrow::default_memory_pool());
    return *reader->ReadTable();
  }

  static std::string Slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  fs::path root_;
};

TEST_F(IngestTest, DayBarsAreComparedWithThePreviousTradingDaysClose) {
  // 2025-01-08 -> 2025-01-10: the 9th is a closure (Carter), so the 10th follows the 8th.
  WriteFile("stocks_daily", "2025-01-08", DayCsv("2025-01-08", 10, 20));
  WriteFile("stocks_daily", "2025-01-10", DayCsv("2025-01-10", 16, 21));  // AAA +60 %
  auto report = Ingest(Options("stocks_daily", "2025-01-08", "2025-01-10"));
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_TRUE(report->Summary().ok()) << report->Summary();
  ASSERT_EQ(report->days.size(), 2u);
  EXPECT_EQ(report->skipped.size(), 1u);  // the closure
  EXPECT_EQ(report->days[0].counts.flagged, 0);
  EXPECT_EQ(report->days[1].counts.flagged, 1);
  auto t = ReadLakeFile("stocks_daily/year=2025/month=01/2025-01-10.parquet");
  auto flags =
      std::static_pointer_cast<arrow::UInt8Array>(t->GetColumnByName("flags")->chunk(0));
  EXPECT_EQ(flags->Value(0), kFlagBigMove);  // AAA
  EXPECT_EQ(flags->Value(1), 0);             // BBB

  // Without the previous source file, the lake's commit of that day is used.
  fs::remove(
      root_ / "mirror" /
      catalog::KeyFor(**catalog::FindDataset("stocks_daily"), *ParseDate("2025-01-08")));
  auto again = Ingest(Options("stocks_daily", "2025-01-10", "2025-01-10"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->days[0].counts.flagged, 1);
}

TEST_F(IngestTest, ReingestIsByteIdenticalAndAFailedDayKeepsItsCommit) {
  WriteFile("stocks_daily", "2025-01-08", DayCsv("2025-01-08", 10, 20));
  auto first = Ingest(Options("stocks_daily", "2025-01-08", "2025-01-08"));
  ASSERT_TRUE(first.ok() && first->Summary().ok());
  const fs::path file = root_ / "lake/stocks_daily/year=2025/month=01/2025-01-08.parquet";
  std::string bytes = Slurp(file);
  ASSERT_FALSE(bytes.empty());
  auto second = Ingest(Options("stocks_daily", "2025-01-08", "2025-01-08"));
  ASSERT_TRUE(second.ok() && second->Summary().ok());
  EXPECT_EQ(Slurp(file), bytes);

  // A changed header fails the day; the committed file stays as it was.
  WriteFile("stocks_daily", "2025-01-08",
            "ticker,volume,open,close,high,low,window_start,transactions,otc\nAAA,1,1,1,"
            "1,1,1,1,x\n");
  auto bad = Ingest(Options("stocks_daily", "2025-01-08", "2025-01-08"));
  ASSERT_TRUE(bad.ok());
  ASSERT_FALSE(bad->Summary().ok());
  EXPECT_THAT(bad->days[0].status.message(), HasSubstr("unknown: otc"));
  EXPECT_EQ(Slurp(file), bytes);

  // A missing file fails its day with a message naming the key.
  auto missing = Ingest(Options("stocks_daily", "2025-01-10", "2025-01-10"));
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->days[0].status.IsKeyError());
  EXPECT_THAT(missing->days[0].status.message(),
              HasSubstr("us_stocks_sip/day_aggs_v1/2025/01/2025-01-10.csv.gz"));
}

TEST_F(IngestTest, BadOptionsAreRejected) {
  auto o = Options("stocks_trades", "2025-01-08", "2025-01-08");
  EXPECT_THAT(Ingest(o).status().message(), HasSubstr("cannot be ingested yet"));
  o = Options("stocks_daily", "2025-01-09", "2025-01-08");
  EXPECT_THAT(Ingest(o).status().message(), HasSubstr("is after"));
  o = Options("stocks_daily", "2025-01-08", "2025-01-08");
  o.reader.chunk_rows = 5;
  EXPECT_THAT(Ingest(o).status().message(), HasSubstr("chunk rows"));
  o = Options("stocks_daily", "2025-01-08", "2025-01-08");
  o.source = (root_ / "nope").string();
  EXPECT_FALSE(Ingest(o).ok());
}

}  // namespace
}  // namespace qlake::ingest

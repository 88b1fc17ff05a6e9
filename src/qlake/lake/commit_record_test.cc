#include "qlake/lake/commit_record.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "qlake/lake/test_util.h"

namespace qlake::lake {
namespace {

using testing::D;
using ::testing::HasSubstr;

CommitRecord SampleRecord() {
  CommitRecord r;
  r.dataset = "stocks_minute";
  r.day = D("2025-01-02");
  r.txn = "20250102T120000.000Z-42-deadbeef";
  r.committed_at = "2025-01-02T12:00:01.234Z";
  r.qlake_version = "0.1.0";
  r.source = {"us_stocks_sip/minute_aggs_v1/2025/01/2025-01-02.csv.gz", "\"abc\"", 123,
              "2025-01-03T10:00:00Z"};
  r.rows = {100, 90, 4, 6};
  r.files = {{"year=2025/month=01/2025-01-02.parquet", 5000, 90, 0xcbf43926u}};
  r.quarantine = FileEntry{"_quarantine/stocks_minute/2025-01-02.parquet", 300, 4, 7u};
  r.validation = {{"null_prices", 1}, {"reasons", {{"negative volume", 4}}}};
  return r;
}

TEST(RowCountsTest, MustReconcileAndBeNonNegative) {
  QLAKE_EXPECT_OK((RowCounts{10, 7, 2, 1}.Validate()));
  QLAKE_EXPECT_OK((RowCounts{}.Validate()));
  auto st = RowCounts{10, 7, 2, 0}.Validate();
  EXPECT_TRUE(st.IsInvalid());
  EXPECT_THAT(st.message(),
              HasSubstr("read 10 != written 7 + quarantined 2 + filtered 0"));
  EXPECT_TRUE((RowCounts{-1, -1, 0, 0}.Validate().IsInvalid()));
}

TEST(CommitRecordTest, RoundTripsThroughJson) {
  const CommitRecord r = SampleRecord();
  const std::string text = SerializeCommitRecord(r);
  EXPECT_THAT(text, HasSubstr("\"format\": \"qlake.commit.v1\""));
  EXPECT_THAT(text, HasSubstr("\"crc32\": \"cbf43926\""));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto back, ParseCommitRecord(text, "rec.json"));
  EXPECT_EQ(back, r);

  CommitRecord no_quarantine = r;
  no_quarantine.quarantine.reset();
  no_quarantine.files.clear();
  no_quarantine.rows = {10, 0, 0, 10};
  QLAKE_ASSERT_OK_AND_ASSIGN(
      auto back2, ParseCommitRecord(SerializeCommitRecord(no_quarantine), "rec.json"));
  EXPECT_EQ(back2, no_quarantine);
}

TEST(CommitRecordTest, DamagedRecordsAreInvalidAndNameTheFileAndField) {
  const std::string text = SerializeCommitRecord(SampleRecord());
  auto truncated =
      ParseCommitRecord(text.substr(0, text.size() / 2), "x/2025-01-02.json");
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr("x/2025-01-02.json"));
  EXPECT_THAT(truncated.status().message(), HasSubstr("not valid JSON"));

  auto j = CommitRecordToJson(SampleRecord());
  j["format"] = "qlake.commit.v9";
  EXPECT_THAT(CommitRecordFromJson(j, "r").status().message(), HasSubstr("v9"));

  j = CommitRecordToJson(SampleRecord());
  j["rows"].erase("filtered");
  EXPECT_THAT(CommitRecordFromJson(j, "r").status().message(),
              HasSubstr("'rows.filtered'"));

  j = CommitRecordToJson(SampleRecord());
  j["files"][0]["crc32"] = "xyz";
  EXPECT_THAT(CommitRecordFromJson(j, "r").status().message(), HasSubstr("crc32"));

  j = CommitRecordToJson(SampleRecord());
  j["rows"]["written"] = 91;  // no longer reconciles
  EXPECT_THAT(CommitRecordFromJson(j, "r").status().message(),
              HasSubstr("do not reconcile"));

  j = CommitRecordToJson(SampleRecord());
  j["day"] = "2025-02-30";
  EXPECT_THAT(CommitRecordFromJson(j, "r").status().message(), HasSubstr("'day'"));

  EXPECT_FALSE(ParseCommitRecord("[]", "r").ok());
}

TEST(IntentRecordTest, RoundTrips) {
  IntentRecord intent;
  intent.record = SampleRecord();
  intent.moves = {
      {"0.parquet.tmp", "stocks_minute/year=2025/month=01/2025-01-02.parquet"},
      {"quarantine.parquet.tmp", "_quarantine/stocks_minute/2025-01-02.parquet"}};
  intent.previous_files = {"stocks_minute/old.parquet"};
  intent.previous_txn = "20250101T000000.000Z-1-00000000";
  QLAKE_ASSERT_OK_AND_ASSIGN(
      auto back, ParseIntentRecord(SerializeIntentRecord(intent), "_intent.json"));
  EXPECT_EQ(back, intent);
  EXPECT_FALSE(ParseIntentRecord("{\"format\":\"qlake.intent.v1\"}", "i").ok());
}

TEST(NamesTest, DatasetNames) {
  for (const char* good : {"stocks_minute", "a", "x1", "1min", "features/stocks_daily"}) {
    QLAKE_EXPECT_OK(ValidateDatasetName(good));
  }
  for (const char* bad : {"", "_qlake", "Stocks", "a-b", "a/b", "..", "a b", "features",
                          "features/", "features/_x", "features/a/b", "x/features"}) {
    auto st = ValidateDatasetName(bad);
    EXPECT_TRUE(st.IsInvalid()) << bad;
  }
  EXPECT_TRUE(ValidateDatasetName(std::string(65, 'a')).IsInvalid());
}

TEST(NamesTest, DataPaths) {
  for (const char* good : {"2025-01-02.parquet", "year=2025/month=01/2025-01-02.parquet",
                           "symbol=BRK%2EB/year=2025/month=01/2025-01-02.parquet",
                           "symbol=%43ON/date=2025-01-02/part-0.parquet"}) {
    QLAKE_EXPECT_OK(ValidateDataPath(good));
  }
  struct Case {
    const char* path;
    const char* why;
  } cases[] = {
      {"", "empty"},
      {"/abs/x.parquet", "absolute"},
      {"../x.parquet", "'..'"},
      {"a/../b.parquet", "'..'"},
      {"a/./b.parquet", "'..'"},
      {"a//b.parquet", "empty component"},
      {"_x/a.parquet", "starting with '.' or '_'"},
      {"a/.hidden.parquet", "starting with '.' or '_'"},
      {"a.csv", "does not end in .parquet"},
      {"a.parquet.tmp", "does not end in .parquet"},
      {".parquet", "does not end in .parquet"},
      {"a\\b.parquet", "backslash"},
      {"a\nb.parquet", "control character"},
      {"a./b.parquet", "not portable"},
  };
  for (const auto& c : cases) {
    auto st = ValidateDataPath(c.path);
    EXPECT_TRUE(st.IsInvalid()) << c.path;
    EXPECT_THAT(st.message(), HasSubstr(c.why)) << c.path;
  }
  EXPECT_TRUE(ValidateDataPath(std::string(1100, 'a') + ".parquet").IsInvalid());
}

}  // namespace
}  // namespace qlake::lake

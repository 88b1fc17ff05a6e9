#include "qlake/ingest/layout.h"

#include <arrow/array.h>
#include <arrow/io/memory.h>
#include <arrow/table.h>
#include <arrow/util/key_value_metadata.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>
#include <parquet/file_reader.h>

#include "qlake/catalog/datasets.h"
#include "qlake/catalog/nyse_calendar.h"
#include "qlake/ingest/agg_reader.h"
#include "qlake/ingest/parquet_out.h"

namespace qlake::ingest {
namespace {

AggDay MakeDay(const char* dataset, const char* day,
               const std::vector<std::string>& tickers) {
  DayContext ctx;
  ctx.spec = *catalog::FindDataset(dataset);
  ctx.session = **catalog::NyseCalendar::Get().SessionOn(*ParseDate(day));
  ctx.source = "test";
  std::string csv = "ticker,volume,open,close,high,low,window_start,transactions\n";
  bool minute = ctx.spec->granularity == catalog::Granularity::kMinute;
  for (const auto& t : tickers) {
    for (int m = 0; m < (minute ? 3 : 1); ++m) {
      csv += fmt::format("{},10,1.5,1.5,1.5,1.5,{},1\n", t,
                         FromNewYork(*ParseDate(day), minute ? 600 + m : 0));
    }
  }
  auto in = std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString(csv));
  return *ReadAggDay(in, ctx);
}

TEST(LayoutTest, DailyLayoutIsOneFilePerDay) {
  auto day = MakeDay("stocks_minute", "2025-01-02", {"AAPL", "MSFT"});
  auto files = PartitionDay(**catalog::FindDataset("stocks_minute"), LayoutKind::kDaily,
                            *ParseDate("2025-01-02"), day.table);
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].relative_path, "year=2025/month=01/2025-01-02.parquet");
  EXPECT_EQ((*files)[0].table->num_rows(), 6);
}

TEST(LayoutTest, OriginalLayoutEscapesSymbolsAndCompactsDictionaries) {
  auto day = MakeDay("stocks_minute", "2025-01-02", {"AAPL", "BRK.B", "CON", "../x"});
  auto files = PartitionDay(**catalog::FindDataset("stocks_minute"),
                            LayoutKind::kOriginal, *ParseDate("2025-01-02"), day.table);
  ASSERT_TRUE(files.ok()) << files.status();
  std::vector<std::string> paths;
  for (const auto& f : *files) {
    paths.push_back(f.relative_path);
    EXPECT_EQ(f.table->num_rows(), 3);
    auto dict = std::static_pointer_cast<arrow::DictionaryArray>(
        f.table->GetColumnByName("ticker")->chunk(0));
    EXPECT_EQ(dict->dictionary()->length(), 1) << f.relative_path;
  }
  EXPECT_EQ(paths, (std::vector<std::string>{
                       "symbol=%2E%2E%2F%78/year=2025/month=01/2025-01-02.parquet",
                       "symbol=AAPL/year=2025/month=01/2025-01-02.parquet",
                       "symbol=BRK%2EB/year=2025/month=01/2025-01-02.parquet",
                       "symbol=%43ON/year=2025/month=01/2025-01-02.parquet"}));
}

TEST(LayoutTest, OriginalOptionsLayoutsGroupByUnderlying) {
  const char* d = "2025-01-10";
  auto day = MakeDay("options_minute", d,
                     {"O:SPY250117C00590000", "O:SPY1250117C00590000",
                      "O:SPY250620P00500000", "O:QQQ250117C00500000"});
  auto files = PartitionDay(**catalog::FindDataset("options_minute"),
                            LayoutKind::kOriginal, *ParseDate(d), day.table);
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ((*files)[0].relative_path,
            "underlying=QQQ/date=2025-01-10/2025-01-10.parquet");
  EXPECT_EQ((*files)[1].relative_path,
            "underlying=SPY/date=2025-01-10/2025-01-10.parquet");
  EXPECT_EQ((*files)[1].table->num_rows(), 6);  // two SPY contracts, not interleaved SPY1
  EXPECT_EQ((*files)[2].relative_path,
            "underlying=SPY1/date=2025-01-10/2025-01-10.parquet");

  auto daily = MakeDay("options_daily", d, {"O:SPY250117C00590000"});
  auto dfiles = PartitionDay(**catalog::FindDataset("options_daily"),
                             LayoutKind::kOriginal, *ParseDate(d), daily.table);
  ASSERT_TRUE(dfiles.ok());
  EXPECT_EQ((*dfiles)[0].relative_path,
            "underlying=SPY/year=2025/month=01/2025-01-10.parquet");
}

TEST(ParquetOutTest, RoundTripsSchemaValuesAndMetadataDeterministically) {
  auto day = MakeDay("stocks_minute", "2025-01-02", {"AAPL", "BRK.B"});
  ParquetOutOptions o;
  o.row_group_rows = 1000;
  std::shared_ptr<arrow::Buffer> bytes[2];
  for (auto& b : bytes) {
    auto sink = *arrow::io::BufferOutputStream::Create();
    ASSERT_TRUE(WriteParquet(*day.table, sink, o, {{"qlake.source.key", "k"}}).ok());
    b = *sink->Finish();
  }
  EXPECT_TRUE(bytes[0]->Equals(*bytes[1])) << "same table, same bytes";
  auto reader = parquet::ParquetFileReader::Open(
      std::make_shared<arrow::io::BufferReader>(bytes[0]));
  auto md = reader->metadata();
  EXPECT_EQ(md->key_value_metadata()->Get("qlake.source.key").ValueOrDie(), "k");
  auto arrow_reader =
      parquet::arrow::FileReader::Make(arrow::default_memory_pool(), std::move(reader));
  ASSERT_TRUE(arrow_reader.ok()) << arrow_reader.status();
  auto read = (*arrow_reader)->ReadTable();
  ASSERT_TRUE(read.ok()) << read.status();
  std::shared_ptr<arrow::Table> back = *read;
  EXPECT_TRUE(back->schema()->field(6)->type()->Equals(
      arrow::timestamp(arrow::TimeUnit::NANO, "America/New_York")));
  // Row groups hold only the dictionary values they use: compare with the compacted day.
  auto expected = *CompactDictionaries(day.table);
  EXPECT_TRUE(back->Equals(*expected, /*check_metadata=*/false))
      << back->ToString() << "\n"
      << expected->ToString();
  ParquetOutOptions bad;
  bad.compression = "brotli9";
  EXPECT_FALSE(bad.Validate().ok());
}

}  // namespace
}  // namespace qlake::ingest

#include "qlake/features/features.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include <arrow/array.h>
#include <arrow/io/file.h>
#include <arrow/scalar.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>
#include <zlib.h>

#include "qlake/catalog/datasets.h"
#include "qlake/ingest/ingest.h"
#include "qlake/lake/lake.h"

namespace qlake::features {
namespace {

namespace fs = std::filesystem;

struct Bar {
  const char* ticker;
  double open, close, high, low;
  int64_t volume;
};

class FeaturesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            fmt::format("qlake_features_test_{}_{}", ::getpid(),
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "mirror");
  }
  void TearDown() override { fs::remove_all(root_); }

  // Writes a stocks_daily flat file with the given bars and ingests it.
  void IngestDay(const char* day, const std::vector<Bar>& bars) {
    std::vector<std::pair<Bar, int>> at;
    for (const auto& b : bars) at.push_back({b, 0});
    IngestBars("stocks_daily", day, at);
  }
  // Bars at New York minutes of the day (0 = midnight, the day bars' stamp).
  void IngestBars(const char* dataset, const char* day,
                  const std::vector<std::pair<Bar, int>>& bars) {
    std::string csv = "ticker,volume,open,close,high,low,window_start,transactions\n";
    for (const auto& [b, minute] : bars) {
      csv += fmt::format("{},{},{},{},{},{},{},1\n", b.ticker, b.volume, b.open, b.close,
                         b.high, b.low, FromNewYork(*ParseDate(day), minute));
    }
    const auto& spec = **catalog::FindDataset(dataset);
    fs::path p = root_ / "mirror" / catalog::KeyFor(spec, *ParseDate(day));
    fs::create_directories(p.parent_path());
    gzFile f = gzopen(p.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, csv.data(), static_cast<unsigned>(csv.size())),
              static_cast<int>(csv.size()));
    gzclose(f);
    ingest::IngestOptions o;
    o.dataset = dataset;
    o.from = o.to = *ParseDate(day);
    o.source = (root_ / "mirror").string();
    o.lake = (root_ / "lake").string();
    o.fsync = false;
    auto report = ingest::Ingest(o);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_TRUE(report->Summary().ok()) << report->Summary().ToString();
  }

  FeatureOptions Options(const char* from, const char* to) {
    FeatureOptions o;
    o.set = FeatureSet::kStocksDaily;
    o.from = *ParseDate(from);
    o.to = *ParseDate(to);
    o.lake = (root_ / "lake").string();
    o.fsync = false;
    o.params.relative_volume_window = 2;
    o.params.relative_volume_min_periods = 1;
    o.params.liquid_dollar_volume = 1000;
    return o;
  }

  // Values of one feature column of a day, in row order, as double (null -> NaN).
  std::vector<double> Values(const char* set, const char* day, const char* column) {
    std::string ymd(day);
    fs::path p = root_ / "lake" / "features" / set /
                 fmt::format("year={}/month={}/{}.parquet", ymd.substr(0, 4),
                             ymd.substr(5, 2), ymd);
    auto file = *arrow::io::ReadableFile::Open(p.string());
    auto reader = *parquet::arrow::OpenFile(file, arrow::default_memory_pool());
    auto t = *reader->ReadTable();
    auto batch = *t->CombineChunksToBatch();
    auto col = batch->GetColumnByName(column);
    std::vector<double> out;
    for (int64_t i = 0; i < col->length(); ++i) {
      auto scalar = *col->GetScalar(i);
      if (!scalar->is_valid) {
        out.push_back(std::nan(""));
      } else if (col->type()->id() == arrow::Type::INT32) {
        out.push_back(std::static_pointer_cast<arrow::Int32Scalar>(scalar)->value);
      } else {
        out.push_back(std::static_pointer_cast<arrow::DoubleScalar>(scalar)->value);
      }
    }
    return out;
  }

  // (ticker -> column value) of one feature day.
  std::map<std::string, double> Column(const char* day, const char* column) {
    std::string ymd(day);
    fs::path p = root_ / "lake" / "features" / "stocks_daily" /
                 fmt::format("year={}/month={}/{}.parquet", ymd.substr(0, 4),
                             ymd.substr(5, 2), ymd);
    auto file = *arrow::io::ReadableFile::Open(p.string());
    auto reader = *parquet::arrow::OpenFile(file, arrow::default_memory_pool());
    auto t = *reader->ReadTable();
    auto batch = *t->CombineChunksToBatch();
    auto tick = std::static_pointer_cast<arrow::DictionaryArray>(
        batch->GetColumnByName("ticker"));
    auto names = std::static_pointer_cast<arrow::StringArray>(tick->dictionary());
    auto values =
        std::static_pointer_cast<arrow::DoubleArray>(batch->GetColumnByName(column));
    std::map<std::string, double> out;
    for (int64_t i = 0; i < batch->num_rows(); ++i) {
      out[std::string(names->GetView(tick->GetValueIndex(i)))] = values->Value(i);
    }
    return out;
  }

  fs::path root_;
};

TEST(FeatureTableTest, EverySetHasItsFeaturesAndNamesAreUnique) {
  for (auto s : {FeatureSet::kStocksDaily, FeatureSet::kStocksMinute,
                 FeatureSet::kOptionsDaily, FeatureSet::kOptionsMinute}) {
    auto defs = FeaturesOf(s);
    EXPECT_FALSE(defs.empty()) << FeatureSetName(s);
    std::set<std::string_view> names;
    for (const auto* d : defs) EXPECT_TRUE(names.insert(d->name).second) << d->name;
    EXPECT_EQ(*ParseFeatureSet(FeatureSetName(s)), s);
    EXPECT_EQ(*ParseFeatureSet(FeatureDatasetName(s)), s);
  }
  EXPECT_EQ(FeatureDatasetName(FeatureSet::kOptionsMinute), "features/options_minute");
  EXPECT_TRUE(ParseFeatureSet("stocks_trades").status().IsInvalid());
  FeatureParams p;
  EXPECT_TRUE(p.Validate().ok());
  p.relative_volume_min_periods = 21;
  EXPECT_TRUE(p.Validate().IsInvalid());
}

// 2024-01-02..05 are sessions; 2024-01-01 is a holiday.
TEST_F(FeaturesTest, DailyFeaturesLookBackAcrossDaysAndRecomputeDependents) {
  IngestDay("2024-01-02", {{"AAA", 10, 11, 12, 9, 1000}});
  IngestDay("2024-01-03", {{"AAA", 11, 12, 13, 10, 2000}, {"BBB", 5, 5.5, 6, 5, 10}});
  IngestDay("2024-01-04", {{"AAA", 12, 10, 12, 9, 3000}, {"BBB", 5.5, 6, 6, 5, 30}});

  auto report = ComputeFeatures(Options("2024-01-01", "2024-01-04"));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->days.size(), 3u);
  for (const auto& d : report->days) EXPECT_EQ(d.action, "computed") << d.status;

  auto ret = Column("2024-01-03", "daily_return");
  EXPECT_DOUBLE_EQ(ret["AAA"], 12.0 / 11.0 - 1);
  EXPECT_TRUE(std::isnan(ret["BBB"]));                                   // no bar on t-1
  EXPECT_TRUE(std::isnan(Column("2024-01-02", "daily_return")["AAA"]));  // first day
  // AAA's dollar volume is >= 1000, BBB's is not: the market mean is AAA's log return.
  auto alpha = Column("2024-01-04", "alpha_daily");
  EXPECT_NEAR(alpha["AAA"], 0, 1e-12);
  EXPECT_NEAR(alpha["BBB"], std::log(6 / 5.5) - std::log(10.0 / 12.0), 1e-7);
  // Window of 2 days, min periods 1: AAA 3000 / mean(2000, 1000), BBB 30 / 10.
  auto rv = Column("2024-01-04", "relative_volume");
  EXPECT_DOUBLE_EQ(rv["AAA"], 2.0);
  EXPECT_DOUBLE_EQ(rv["BBB"], 3.0);
  EXPECT_NEAR(Column("2024-01-04", "vwap")["AAA"], (12 + 9 + 10) / 3.0, 1e-6);
  EXPECT_NEAR(Column("2024-01-04", "price_range")["AAA"], 3.0 / 10.0, 1e-7);

  // Nothing changed: every day is up to date.
  report = ComputeFeatures(Options("2024-01-02", "2024-01-04"));
  ASSERT_TRUE(report.ok());
  for (const auto& d : report->days) EXPECT_EQ(d.action, "up_to_date");

  // Re-commit 2024-01-02 with another close; features for that day alone also refresh
  // 01-03 (t-1) and 01-04 (relative volume window), which are committed already.
  IngestDay("2024-01-02", {{"AAA", 10, 8, 12, 8, 4000}});
  report = ComputeFeatures(Options("2024-01-02", "2024-01-02"));
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->days.size(), 3u);
  EXPECT_EQ(report->days[1].action, "computed");
  EXPECT_TRUE(report->days[1].dependent);
  EXPECT_EQ(report->days[2].action, "computed");
  EXPECT_DOUBLE_EQ(Column("2024-01-03", "daily_return")["AAA"], 12.0 / 8.0 - 1);
  EXPECT_DOUBLE_EQ(Column("2024-01-04", "relative_volume")["AAA"], 3000.0 / 3000.0);

  // The feature dataset is a lake dataset of the features group.
  auto lake = *lake::Lake::Open((root_ / "lake").string());
  auto datasets = *lake->ListDatasets();
  EXPECT_THAT(datasets, ::testing::Contains("features/stocks_daily"));
  auto rec = *lake->GetCommit("features/stocks_daily", *ParseDate("2024-01-04"));
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->rows.written, 2);
  EXPECT_TRUE(rec->validation["inputs"].contains("stocks_daily/2024-01-03"));
  EXPECT_TRUE(rec->validation["inputs"]["stocks_minute/2024-01-04"].is_null());
}

TEST_F(FeaturesTest, MinuteFeaturesAreTimeAwareWithinTheDay) {
  const int open = 9 * 60 + 30;
  std::vector<std::pair<Bar, int>> bars;
  // AAA: 6 bars with gaps; dollar volume >= $1000 (liquid). BBB: illiquid, 2 bars.
  const int minutes[] = {0, 1, 5, 6, 10, 30};
  const double closes[] = {10, 11, 12, 11, 13, 15};
  for (int k = 0; k < 6; ++k) {
    bars.push_back(
        {{"AAA", closes[k], closes[k], closes[k], closes[k], 100}, open + minutes[k]});
  }
  bars.push_back({{"BBB", 2, 2, 2, 2, 1}, open + 1});
  bars.push_back({{"BBB", 3, 3, 3, 3, 1}, open + 5});
  IngestBars("stocks_minute", "2024-11-29", bars);
  auto o = Options("2024-11-29", "2024-11-29");
  o.set = FeatureSet::kStocksMinute;
  auto report = ComputeFeatures(o);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->days.at(0).action, "computed") << report->days[0].status;
  auto ret = Values("stocks_minute", "2024-11-29", "minute_return");
  ASSERT_EQ(ret.size(), 8u);
  EXPECT_TRUE(std::isnan(ret[0]));
  EXPECT_DOUBLE_EQ(ret[2], 12.0 / 11.0 - 1);  // previous bar 4 minutes earlier
  EXPECT_TRUE(std::isnan(ret[6]));            // BBB's first bar
  auto vel = Values("stocks_minute", "2024-11-29", "price_velocity");
  for (int k = 0; k < 5; ++k) EXPECT_TRUE(std::isnan(vel[k])) << k;
  EXPECT_DOUBLE_EQ(vel[5], (15.0 - 10.0) / 30.0);  // 5 bars back, 30 minutes elapsed
  auto alpha = Values("stocks_minute", "2024-11-29", "alpha_minute");
  // At 09:35 the only liquid return is AAA's: its alpha is 0, BBB's is measured against
  // it.
  EXPECT_NEAR(alpha[2], 0, 1e-12);
  EXPECT_NEAR(alpha[7], std::log(3.0 / 2.0) - std::log(12.0 / 11.0), 1e-12);
}

TEST_F(FeaturesTest, OptionsUseTheUnderlyingBarAndTheCalendar) {
  IngestDay("2024-11-27", {{"SPY", 600, 600, 601, 599, 1000}});
  std::vector<std::pair<Bar, int>> opts = {
      {{"O:SPY241129C00500000", 100, 101, 101, 100, 10},
       0},                                             // expires Fri after Thanksgiving
      {{"O:SPY241127P00750000", 1, 1, 1, 1, 10}, 0},   // expires today
      {{"O:QQQ241129C00500000", 1, 1, 1, 1, 10}, 0}};  // no QQQ stock bar
  IngestBars("options_daily", "2024-11-27", opts);
  auto o = Options("2024-11-27", "2024-11-27");
  o.set = FeatureSet::kOptionsDaily;
  auto report = ComputeFeatures(o);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->days.at(0).action, "computed") << report->days[0].status;
  // Rows sorted by ticker: QQQ, SPY 1127 P, SPY 1129 C.
  auto m = Values("options_daily", "2024-11-27", "moneyness");
  EXPECT_TRUE(std::isnan(m[0]));
  EXPECT_DOUBLE_EQ(m[1], 600.0 / 750.0);
  EXPECT_DOUBLE_EQ(m[2], 600.0 / 500.0);
  EXPECT_EQ(Values("options_daily", "2024-11-27", "days_to_expiry"),
            (std::vector<double>{2, 0, 2}));
  // Thanksgiving (11-28) is no session: one session to Friday.
  EXPECT_EQ(Values("options_daily", "2024-11-27", "trading_days_to_expiry"),
            (std::vector<double>{1, 0, 1}));
  auto spread = Values("options_daily", "2024-11-27", "bid_ask_spread");
  for (double v : spread) EXPECT_TRUE(std::isnan(v));
  auto lake = *lake::Lake::Open((root_ / "lake").string());
  auto rec = *lake->GetCommit("features/options_daily", *ParseDate("2024-11-27"));
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->validation["underlying_missing_rows"], 1);
  EXPECT_THAT(rec->validation["nan_reasons"]["bid_ask_spread"].get<std::string>(),
              ::testing::HasSubstr("quotes"));
}

TEST_F(FeaturesTest, MissingRawDayFailsThatDayOnly) {
  IngestDay("2024-01-02", {{"AAA", 10, 11, 12, 9, 1000}});
  auto report = ComputeFeatures(Options("2024-01-02", "2024-01-03"));
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->days[0].action, "computed");
  EXPECT_EQ(report->days[1].action, "failed");
  EXPECT_TRUE(report->days[1].status.IsKeyError());
  EXPECT_THAT(report->days[1].status.message(), ::testing::HasSubstr("qlake ingest"));
  EXPECT_FALSE(report->Summary().ok());
}

}  // namespace
}  // namespace qlake::features

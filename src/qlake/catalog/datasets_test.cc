#include "qlake/catalog/datasets.h"

#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace qlake::catalog {
namespace {

using ::testing::HasSubstr;

TEST(DatasetsTest, NamesAndPrefixesAreUnique) {
  std::set<std::string_view> names;
  std::set<std::string> prefixes;
  for (const auto& d : Datasets()) {
    EXPECT_TRUE(names.insert(d.name).second) << d.name;
    EXPECT_TRUE(prefixes.insert(d.Prefix()).second) << d.Prefix();
    EXPECT_EQ(d.Columns().front(), "ticker") << d.name;
  }
  EXPECT_GE(names.size(), 30u);
}

TEST(DatasetsTest, TheFourAggregatesAreIngestibleWithTheAggHeader) {
  for (auto name : {"stocks_daily", "stocks_minute", "options_daily", "options_minute"}) {
    auto d = FindDataset(name);
    ASSERT_TRUE(d.ok()) << name;
    EXPECT_TRUE((*d)->ingestible);
    EXPECT_EQ((*d)->Columns(),
              (std::vector<std::string_view>{"ticker", "volume", "open", "close", "high",
                                             "low", "window_start", "transactions"}));
  }
  EXPECT_TRUE((*FindDataset("options_minute"))->options);
  EXPECT_FALSE((*FindDataset("stocks_minute"))->options);
  EXPECT_EQ((*FindDataset("indices_minute"))->calendar, FileCalendar::kNysePlusHolidays);
  EXPECT_EQ((*FindDataset("crypto_daily"))->calendar, FileCalendar::kEveryDay);
  EXPECT_EQ((*FindDataset("forex_quotes"))->calendar, FileCalendar::kSundayToFriday);
  EXPECT_EQ((*FindDataset("futures_cme_session"))->feed, "session_aggs_v1");
}

TEST(DatasetsTest, KeyForMatchesTheBucketLayoutAndParsesBack) {
  auto spec = *FindDataset("stocks_minute");
  auto d = *ParseDate("2025-09-29");
  std::string key = KeyFor(*spec, d);
  EXPECT_EQ(key, "us_stocks_sip/minute_aggs_v1/2025/09/2025-09-29.csv.gz");
  auto parsed = ParseKey(key);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec, spec);
  EXPECT_EQ(parsed->date, d);
  EXPECT_EQ(KeyFor(**FindDataset("options_daily"), *ParseDate("2014-06-02")),
            "us_options_opra/day_aggs_v1/2014/06/2014-06-02.csv.gz");
}

TEST(DatasetsTest, ParseKeyRejectsForeignAndInconsistentKeys) {
  for (const char* bad :
       {"us_stocks_sip/minute_aggs_v1/2025/10/2025-09-29.csv.gz",
        "us_stocks_sip/minute_aggs_v1/2025/09/2025-09-31.csv.gz",
        "us_stocks_sip/minute_aggs_v1/2025/09/2025-09-29.csv",
        "nope/minute_aggs_v1/2025/09/2025-09-29.csv.gz", "2025-09-29.csv.gz", ""}) {
    auto p = ParseKey(bad);
    EXPECT_FALSE(p.ok()) << bad;
    if (!p.ok()) {
      EXPECT_THAT(p.status().message(), HasSubstr("is not a flat-file key"));
    }
  }
}

TEST(DatasetsTest, UnknownNamesListTheValidOnes) {
  auto d = FindDataset("stock_minute");
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(d.status().IsKeyError());
  EXPECT_THAT(d.status().message(), HasSubstr("stocks_minute"));
  auto list = ParseDatasetList("stocks_daily,options_minute,stocks_daily");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
  EXPECT_FALSE(ParseDatasetList(",").ok());
  EXPECT_FALSE(ParseDatasetList("stocks_daily,bogus").ok());
}

}  // namespace
}  // namespace qlake::catalog

#include "qlake/lake/watermark.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "qlake/lake/test_util.h"

namespace qlake::lake {
namespace {

using catalog::FileCalendar;
using testing::D;
using ::testing::HasSubstr;

std::optional<Date> Wm(std::vector<Date> days, FileCalendar cal = FileCalendar::kNyse) {
  return ComputeWatermark("stocks_minute", cal, std::move(days)).last_contiguous;
}

TEST(WatermarkTest, EmptyWhenNothingIsCommitted) {
  auto w = ComputeWatermark("stocks_minute", FileCalendar::kNyse, {});
  EXPECT_TRUE(w.empty());
  EXPECT_FALSE(w.first_day.has_value());
}

TEST(WatermarkTest, SkipsWeekendsAndHolidays) {
  // 2025-01-01 is New Year's Day, 01-04/05 a weekend, 01-09 the national day of mourning
  // for President Carter (NYSE closed).
  EXPECT_EQ(Wm({D("2024-12-31"), D("2025-01-02"), D("2025-01-03"), D("2025-01-06"),
                D("2025-01-07"), D("2025-01-08"), D("2025-01-10")}),
            D("2025-01-10"));
  auto w = ComputeWatermark("stocks_minute", FileCalendar::kNyse,
                            {D("2025-01-03"), D("2024-12-31"), D("2025-01-02")});
  EXPECT_EQ(w.first_day, D("2024-12-31"));
  EXPECT_EQ(w.last_contiguous, D("2025-01-03"));
}

TEST(WatermarkTest, AGapStopsItAndFillingTheGapAdvancesIt) {
  std::vector<Date> days = {D("2025-01-02"), D("2025-01-03"), D("2025-01-07"),
                            D("2025-01-08")};
  EXPECT_EQ(Wm(days), D("2025-01-03"));  // 01-06 (Monday) missing
  days.push_back(D("2025-01-06"));
  EXPECT_EQ(Wm(days), D("2025-01-08"));
}

TEST(WatermarkTest, CommittedNonTradingDaysNeitherHelpNorHurt) {
  // A stray Saturday commit does not bridge a missing Monday, nor stop the walk.
  EXPECT_EQ(Wm({D("2025-01-03"), D("2025-01-04")}), D("2025-01-03"));
  EXPECT_EQ(Wm({D("2025-01-03"), D("2025-01-04"), D("2025-01-06")}), D("2025-01-06"));
  // Duplicates are fine.
  EXPECT_EQ(Wm({D("2025-01-03"), D("2025-01-03")}), D("2025-01-03"));
}

TEST(WatermarkTest, BackfillBeforeTheFirstDayRestartsTheRun) {
  EXPECT_EQ(Wm({D("2025-01-06"), D("2025-01-07")}), D("2025-01-07"));
  // A day committed in the past with a gap after it: the run now starts there.
  EXPECT_EQ(Wm({D("2024-12-02"), D("2025-01-06"), D("2025-01-07")}), D("2024-12-02"));
}

TEST(WatermarkTest, OtherCalendars) {
  // Crypto trades every day; forex Sunday to Friday; index minutes on all weekdays.
  EXPECT_EQ(
      Wm({D("2025-01-03"), D("2025-01-04"), D("2025-01-05")}, FileCalendar::kEveryDay),
      D("2025-01-05"));
  EXPECT_EQ(Wm({D("2025-01-03"), D("2025-01-05")}, FileCalendar::kSundayToFriday),
            D("2025-01-05"));
  EXPECT_EQ(Wm({D("2024-12-31"), D("2025-01-01"), D("2025-01-02")},
               FileCalendar::kNysePlusHolidays),
            D("2025-01-02"));
  EXPECT_EQ(Wm({D("2024-12-31"), D("2025-01-02")}, FileCalendar::kNysePlusHolidays),
            D("2024-12-31"));
}

TEST(WatermarkTest, CalendarComesFromTheCatalog) {
  EXPECT_EQ(CalendarForDataset("stocks_minute"), FileCalendar::kNyse);
  EXPECT_EQ(CalendarForDataset("crypto_daily"), FileCalendar::kEveryDay);
  EXPECT_EQ(CalendarForDataset("my_test_dataset"), FileCalendar::kNyse);
}

TEST(WatermarkTest, TheNyseCalendarLimitEndsTheWalk) {
  EXPECT_EQ(Wm({D("2035-12-31")}), D("2035-12-31"));
}

TEST(WatermarkTest, SerializesAndRejectsDamage) {
  Watermark w;
  w.dataset = "stocks_minute";
  w.first_day = D("2025-01-02");
  w.last_contiguous = D("2025-01-08");
  w.updated_at = "2025-01-08T20:00:00.000Z";
  const std::string text = SerializeWatermark(w);
  QLAKE_ASSERT_OK_AND_ASSIGN(auto back, ParseWatermark(text, "stocks_minute", "wm.json"));
  EXPECT_EQ(back, w);
  EXPECT_EQ(back.updated_at, w.updated_at);

  auto other = ParseWatermark(text, "stocks_daily", "wm.json");
  EXPECT_THAT(other.status().message(), HasSubstr("dataset name does not match"));
  auto torn = ParseWatermark(text.substr(0, 20), "stocks_minute", "wm.json");
  EXPECT_THAT(torn.status().message(), HasSubstr("wm.json"));
  w.last_contiguous = D("2024-01-01");  // before first_day
  EXPECT_FALSE(ParseWatermark(SerializeWatermark(w), "stocks_minute", "wm").ok());

  Watermark empty;
  empty.dataset = "x";
  QLAKE_ASSERT_OK_AND_ASSIGN(auto e, ParseWatermark(SerializeWatermark(empty), "x", "w"));
  EXPECT_TRUE(e.empty());
}

}  // namespace
}  // namespace qlake::lake

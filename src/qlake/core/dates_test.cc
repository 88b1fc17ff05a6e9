#include "qlake/core/dates.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace qlake {
namespace {

TEST(DatesTest, ParseAndFormatRoundTrip) {
  auto d = ParseDate("2024-02-29");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(FormatDate(*d), "2024-02-29");
  EXPECT_EQ(ToDate32(*ParseDate("1970-01-02")), 1);
  EXPECT_EQ(FormatDate(FromDate32(19723)), "2024-01-01");
}

TEST(DatesTest, ParseRejectsMalformedAndImpossibleDates) {
  for (const char* bad : {"2023-02-29", "2024-13-01", "2024-1-01", "20240101",
                          "2024/01/01", "2024-01-01x", "", "abcd-ef-gh", "2024-00-10"}) {
    auto d = ParseDate(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_THAT(d.status().message(), ::testing::HasSubstr(bad));
  }
}

TEST(DatesTest, TradingDateIsTheNewYorkDateNotTheUtcDate) {
  // The documented day-bar stamp: 2025-09-29 04:00 UTC = midnight EDT.
  auto t = ToNewYork(1759118400000000000LL);
  EXPECT_EQ(FormatDate(t.date), "2025-09-29");
  EXPECT_EQ(t.minute_of_day, 0);
  // A winter post-market bar at 19:30 EST is 00:30 UTC on the next UTC day.
  int64_t ns = FromNewYork(*ParseDate("2024-01-16"), 19 * 60 + 30);
  EXPECT_EQ(ns, 1705451400000000000LL);  // 2024-01-17T00:30:00Z
  auto back = ToNewYork(ns);
  EXPECT_EQ(FormatDate(back.date), "2024-01-16");
  EXPECT_EQ(back.minute_of_day, 19 * 60 + 30);
}

TEST(DatesTest, DstChangesShiftTheUtcOffset) {
  // 09:30 ET is 14:30 UTC in winter (EST) and 13:30 UTC in summer (EDT).
  int64_t winter = FromNewYork(*ParseDate("2024-03-08"), 570);
  int64_t summer = FromNewYork(*ParseDate("2024-03-11"), 570);
  constexpr int64_t kMin = 60'000'000'000LL;
  EXPECT_EQ((winter / kMin) % (24 * 60), 14 * 60 + 30);
  EXPECT_EQ((summer / kMin) % (24 * 60), 13 * 60 + 30);
}

}  // namespace
}  // namespace qlake

// Behaviour tests for the NYSE calendar. Expected values come from the NYSE's published
// holiday schedules and closure announcements (and, for session counts, agree with
// exchange_calendars' XNYS); they are written out by hand, not derived from the code.
// The day-by-day comparison with exchange_calendars is tests/python/test_calendar.py.

#include "qlake/catalog/nyse_calendar.h"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

namespace qlake::catalog {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

#define ASSERT_OK_AND_ASSIGN(lhs, expr)                               \
  auto lhs##_result = (expr);                                         \
  ASSERT_TRUE(lhs##_result.ok()) << lhs##_result.status().ToString(); \
  auto lhs = std::move(lhs##_result).ValueOrDie()

Date D(int y, unsigned m, unsigned d) {
  return Date{date::year{y} / date::month{m} / date::day{d}};
}

// Parses a literal in the tests ("2024-07-04"); the test fails on a typo.
Date P(std::string_view text) {
  auto r = ParseDate(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Date{};
}

const NyseCalendar& Cal() { return NyseCalendar::Get(); }

bool Trading(std::string_view day) {
  auto r = Cal().IsTradingDay(P(day));
  EXPECT_TRUE(r.ok()) << day << ": " << r.status().ToString();
  return r.ok() && *r;
}

std::string Reason(std::string_view day) {
  auto r = Cal().ClosureReason(P(day));
  EXPECT_TRUE(r.ok()) << day << ": " << r.status().ToString();
  return r.ok() ? std::string(*r) : "<error>";
}

// Close minute of a trading day, or -1 if closed / error.
int CloseMinute(std::string_view day) {
  auto r = Cal().SessionOn(P(day));
  EXPECT_TRUE(r.ok()) << day << ": " << r.status().ToString();
  if (!r.ok() || !r->has_value()) return -1;
  return (*r)->close_minute;
}

bool EarlyClose(std::string_view day) {
  auto r = Cal().SessionOn(P(day));
  EXPECT_TRUE(r.ok()) << day << ": " << r.status().ToString();
  return r.ok() && r->has_value() && (*r)->early_close;
}

int64_t UtcNs(Date d, hours h, minutes m) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             (date::sys_time<minutes>{d} + h + m).time_since_epoch())
      .count();
}

int SessionsInYear(int y) {
  auto r = Cal().Sessions(D(y, 1, 1), D(y, 12, 31));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? static_cast<int>(r->size()) : -1;
}

constexpr int kMin = 60;  // minutes per hour, for readable minute-of-day literals

// ---- Regular holidays -----------------------------------------------------------------

TEST(NyseCalendarTest, HolidaysOf2024MatchTheNyseSchedule) {
  for (auto day :
       {"2024-01-01", "2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27",
        "2024-06-19", "2024-07-04", "2024-09-02", "2024-11-28", "2024-12-25"}) {
    EXPECT_FALSE(Trading(day)) << day;
  }
  EXPECT_EQ(Reason("2024-01-01"), "New Year's Day");
  EXPECT_EQ(Reason("2024-01-15"), "Martin Luther King Jr. Day");
  EXPECT_EQ(Reason("2024-02-19"), "Washington's Birthday");
  EXPECT_EQ(Reason("2024-03-29"), "Good Friday");
  EXPECT_EQ(Reason("2024-05-27"), "Memorial Day");
  EXPECT_EQ(Reason("2024-06-19"), "Juneteenth");
  EXPECT_EQ(Reason("2024-07-04"), "Independence Day");
  EXPECT_EQ(Reason("2024-09-02"), "Labor Day");
  EXPECT_EQ(Reason("2024-11-28"), "Thanksgiving Day");
  EXPECT_EQ(Reason("2024-12-25"), "Christmas Day");
}

TEST(NyseCalendarTest, HolidaysOf2026MatchTheNyseSchedule) {
  for (auto day :
       {"2026-01-01", "2026-01-19", "2026-02-16", "2026-04-03", "2026-05-25",
        "2026-06-19", "2026-07-03", "2026-09-07", "2026-11-26", "2026-12-25"}) {
    EXPECT_FALSE(Trading(day)) << day;
  }
  EXPECT_EQ(SessionsInYear(2026), 251);
}

TEST(NyseCalendarTest, GoodFridayFollowsEaster) {
  // Early (Easter 2008-03-23), late (Easter 2011-04-24) and ordinary Easters.
  for (auto day : {"1990-04-13", "2000-04-21", "2008-03-21", "2011-04-22", "2019-04-19",
                   "2025-04-18", "2035-03-23"}) {
    EXPECT_EQ(Reason(day), "Good Friday") << day;
  }
  // The Thursday before and the Monday after are ordinary trading days.
  EXPECT_TRUE(Trading("2025-04-17"));
  EXPECT_TRUE(Trading("2025-04-21"));
}

TEST(NyseCalendarTest, NewYearOnSaturdayIsNotObservedOnFriday) {
  // Dec 31 closes a yearly accounting period, so it stays a trading day.
  for (auto day :
       {"1993-12-31", "1999-12-31", "2004-12-31", "2010-12-31", "2021-12-31"}) {
    EXPECT_TRUE(Trading(day)) << day;
  }
  EXPECT_EQ(Reason("2022-01-01"), "weekend");
  EXPECT_TRUE(Trading("2022-01-03"));
}

TEST(NyseCalendarTest, NewYearOnSundayIsObservedOnMonday) {
  EXPECT_EQ(Reason("2017-01-02"), "New Year's Day (observed)");
  EXPECT_EQ(Reason("2023-01-02"), "New Year's Day (observed)");
  EXPECT_EQ(Reason("2023-01-01"), "weekend");
  EXPECT_TRUE(Trading("2023-01-03"));
}

TEST(NyseCalendarTest, SaturdayHolidaysMoveToFridaySundayHolidaysToMonday) {
  EXPECT_EQ(Reason("2020-07-03"), "Independence Day (observed)");  // July 4 a Saturday
  EXPECT_EQ(Reason("2021-07-05"), "Independence Day (observed)");  // July 4 a Sunday
  EXPECT_EQ(Reason("2021-12-24"), "Christmas Day (observed)");     // Dec 25 a Saturday
  EXPECT_EQ(Reason("2022-12-26"), "Christmas Day (observed)");     // Dec 25 a Sunday
  EXPECT_EQ(Reason("2022-06-20"), "Juneteenth (observed)");        // June 19 a Sunday
  EXPECT_EQ(Reason("2027-06-18"), "Juneteenth (observed)");        // June 19 a Saturday
  EXPECT_TRUE(Trading("2020-07-06"));
  EXPECT_TRUE(Trading("2021-07-02"));
}

TEST(NyseCalendarTest, MartinLutherKingDayOnlyFrom1998) {
  EXPECT_TRUE(Trading("1997-01-20"));
  EXPECT_EQ(Reason("1998-01-19"), "Martin Luther King Jr. Day");
}

TEST(NyseCalendarTest, JuneteenthOnlyFrom2022) {
  EXPECT_TRUE(
      Trading("2021-06-18"));  // the federal holiday was observed, the NYSE traded
  EXPECT_FALSE(Trading("2023-06-19"));
}

TEST(NyseCalendarTest, FederalHolidaysTheNyseIgnores) {
  EXPECT_TRUE(Trading("2024-10-14"));  // Columbus Day
  EXPECT_TRUE(Trading("2024-11-11"));  // Veterans Day
  EXPECT_TRUE(Trading("2024-11-05"));  // Election Day
}

TEST(NyseCalendarTest, WeekendsAreClosed) {
  EXPECT_EQ(Reason("2024-07-06"), "weekend");
  EXPECT_EQ(Reason("2024-07-07"), "weekend");
  EXPECT_EQ(Reason("2024-07-08"), "");
  auto all = Cal().Sessions(NyseCalendar::FirstDate(), NyseCalendar::LastDate());
  ASSERT_TRUE(all.ok());
  for (const auto& s : *all) {
    auto wd = date::weekday{s.date};
    ASSERT_TRUE(wd != date::Saturday && wd != date::Sunday) << FormatDate(s.date);
  }
}

// ---- One-off closures
// -------------------------------------------------------------------

TEST(NyseCalendarTest, EachOneOffClosure) {
  struct Case {
    const char* day;
    const char* reason;
  };
  const Case cases[] = {
      {"1994-04-27", "Day of mourning for President Nixon"},
      {"2001-09-11", "September 11 attacks"},
      {"2001-09-12", "September 11 attacks"},
      {"2001-09-13", "September 11 attacks"},
      {"2001-09-14", "September 11 attacks"},
      {"2004-06-11", "Day of mourning for President Reagan"},
      {"2007-01-02", "Day of mourning for President Ford"},
      {"2012-10-29", "Hurricane Sandy"},
      {"2012-10-30", "Hurricane Sandy"},
      {"2018-12-05", "Day of mourning for President George H.W. Bush"},
      {"2025-01-09", "Day of mourning for President Carter"},
  };
  for (const auto& c : cases) {
    EXPECT_FALSE(Trading(c.day)) << c.day;
    EXPECT_EQ(Reason(c.day), c.reason) << c.day;
  }
  // The days around them traded.
  for (auto day : {"1994-04-26", "1994-04-28", "2001-09-10", "2001-09-17", "2004-06-10",
                   "2004-06-14", "2007-01-03", "2012-10-26", "2012-10-31", "2018-12-04",
                   "2018-12-06", "2025-01-08", "2025-01-10"}) {
    EXPECT_TRUE(Trading(day)) << day;
  }
}

// ---- Early closes
// -----------------------------------------------------------------------

TEST(NyseCalendarTest, EarlyClosesOf2024) {
  for (auto day : {"2024-07-03", "2024-11-29", "2024-12-24"}) {
    EXPECT_TRUE(EarlyClose(day)) << day;
    EXPECT_EQ(CloseMinute(day), 13 * kMin) << day;
  }
  EXPECT_EQ(CloseMinute("2024-07-02"), 16 * kMin);
  EXPECT_EQ(CloseMinute("2024-12-23"), 16 * kMin);
  EXPECT_EQ(CloseMinute("2024-12-31"), 16 * kMin);  // New Year's Eve is a full day
}

TEST(NyseCalendarTest, ChristmasEveEarlyClose) {
  EXPECT_EQ(CloseMinute("2018-12-24"), 13 * kMin);  // Monday
  EXPECT_EQ(CloseMinute("2019-12-24"), 13 * kMin);  // Tuesday
  EXPECT_EQ(CloseMinute("2025-12-24"), 13 * kMin);  // Wednesday
  EXPECT_EQ(CloseMinute("2026-12-24"), 13 * kMin);  // Thursday
  EXPECT_FALSE(Trading("2027-12-24"));              // Friday: Christmas observed
}

TEST(NyseCalendarTest, IndependenceDayEarlyCloseRules) {
  // July 3 on a Monday, Tuesday or Thursday closes early.
  EXPECT_EQ(CloseMinute("2017-07-03"), 13 * kMin);
  EXPECT_EQ(CloseMinute("2018-07-03"), 13 * kMin);
  EXPECT_EQ(CloseMinute("2025-07-03"), 13 * kMin);
  // July 3 on a Wednesday: Friday July 5 closed early until 2012 ...
  EXPECT_EQ(CloseMinute("2002-07-03"), 16 * kMin);
  EXPECT_EQ(CloseMinute("2002-07-05"), 13 * kMin);
  // ... and Wednesday July 3 from 2013, with a full Friday.
  EXPECT_EQ(CloseMinute("2013-07-03"), 13 * kMin);
  EXPECT_EQ(CloseMinute("2013-07-05"), 16 * kMin);
  EXPECT_EQ(CloseMinute("2019-07-03"), 13 * kMin);
  EXPECT_EQ(CloseMinute("2019-07-05"), 16 * kMin);
  // Years without one: July 4 on a Saturday (the Friday is the holiday) or on a Monday.
  EXPECT_EQ(CloseMinute("2015-07-02"), 16 * kMin);
  EXPECT_EQ(CloseMinute("2020-07-02"), 16 * kMin);
  EXPECT_EQ(CloseMinute("2026-07-02"), 16 * kMin);
  EXPECT_EQ(CloseMinute("2022-07-01"), 16 * kMin);
  // No July 3 early close before 1995.
  EXPECT_EQ(CloseMinute("1991-07-03"), 16 * kMin);
  EXPECT_EQ(CloseMinute("1995-07-03"), 13 * kMin);
}

TEST(NyseCalendarTest, DayAfterThanksgivingEarlyCloseSince1992) {
  EXPECT_EQ(CloseMinute("1991-11-29"), 16 * kMin);
  EXPECT_EQ(CloseMinute("1992-11-27"),
            14 * kMin);  // 14:00 was the early close until 1992
  EXPECT_EQ(CloseMinute("1993-11-26"), 13 * kMin);
  EXPECT_EQ(CloseMinute("2025-11-28"), 13 * kMin);
}

TEST(NyseCalendarTest, EarlyClosesBefore1993WereAt1400) {
  EXPECT_EQ(CloseMinute("1990-12-24"), 14 * kMin);
  EXPECT_EQ(CloseMinute("1992-12-24"), 14 * kMin);
  EXPECT_TRUE(EarlyClose("1990-12-24"));
}

TEST(NyseCalendarTest, OneOffEarlyCloses) {
  EXPECT_EQ(CloseMinute("1997-12-26"), 13 * kMin);
  EXPECT_EQ(CloseMinute("1999-12-31"), 13 * kMin);  // Y2K
  EXPECT_EQ(CloseMinute("2003-12-26"), 13 * kMin);
  // Other Fridays after a Thursday Christmas were full days.
  EXPECT_EQ(CloseMinute("2008-12-26"), 16 * kMin);
  EXPECT_EQ(CloseMinute("2014-12-26"), 16 * kMin);
  EXPECT_EQ(CloseMinute("2025-12-26"), 16 * kMin);
}

// ---- Times in UTC
// -----------------------------------------------------------------------

TEST(NyseCalendarTest, OpenAndCloseInUtcFollowDaylightSaving) {
  // 2024: EDT from March 10 to November 3.
  ASSERT_OK_AND_ASSIGN(winter, Cal().SessionOn(P("2024-03-08")));
  ASSERT_TRUE(winter.has_value());
  EXPECT_EQ(winter->OpenNs(), UtcNs(P("2024-03-08"), hours{14}, minutes{30}));
  EXPECT_EQ(winter->CloseNs(), UtcNs(P("2024-03-08"), hours{21}, minutes{0}));

  ASSERT_OK_AND_ASSIGN(summer, Cal().SessionOn(P("2024-03-11")));
  ASSERT_TRUE(summer.has_value());
  EXPECT_EQ(summer->OpenNs(), UtcNs(P("2024-03-11"), hours{13}, minutes{30}));
  EXPECT_EQ(summer->CloseNs(), UtcNs(P("2024-03-11"), hours{20}, minutes{0}));

  ASSERT_OK_AND_ASSIGN(last_edt, Cal().SessionOn(P("2024-11-01")));
  ASSERT_TRUE(last_edt.has_value());
  EXPECT_EQ(last_edt->CloseNs(), UtcNs(P("2024-11-01"), hours{20}, minutes{0}));
  ASSERT_OK_AND_ASSIGN(first_est, Cal().SessionOn(P("2024-11-04")));
  ASSERT_TRUE(first_est.has_value());
  EXPECT_EQ(first_est->CloseNs(), UtcNs(P("2024-11-04"), hours{21}, minutes{0}));

  // Early closes: 13:00 EDT = 17:00Z, 13:00 EST = 18:00Z.
  ASSERT_OK_AND_ASSIGN(july3, Cal().SessionOn(P("2024-07-03")));
  ASSERT_TRUE(july3.has_value());
  EXPECT_EQ(july3->CloseNs(), UtcNs(P("2024-07-03"), hours{17}, minutes{0}));
  ASSERT_OK_AND_ASSIGN(black_friday, Cal().SessionOn(P("2024-11-29")));
  ASSERT_TRUE(black_friday.has_value());
  EXPECT_EQ(black_friday->CloseNs(), UtcNs(P("2024-11-29"), hours{18}, minutes{0}));

  // Before the 2007 DST rule change, early April was still EST.
  ASSERT_OK_AND_ASSIGN(old_rule, Cal().SessionOn(P("2006-03-31")));
  ASSERT_TRUE(old_rule.has_value());
  EXPECT_EQ(old_rule->OpenNs(), UtcNs(P("2006-03-31"), hours{14}, minutes{30}));
}

// ---- Classify
// ---------------------------------------------------------------------------

TEST(NyseCalendarTest, ClassifyBoundariesOnARegularDay) {
  ASSERT_OK_AND_ASSIGN(s, Cal().SessionOn(P("2024-06-03")));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->Classify(0), SessionPart::kOutside);
  EXPECT_EQ(s->Classify(3 * kMin + 59), SessionPart::kOutside);
  EXPECT_EQ(s->Classify(4 * kMin), SessionPart::kPre);
  EXPECT_EQ(s->Classify(9 * kMin + 29), SessionPart::kPre);
  EXPECT_EQ(s->Classify(9 * kMin + 30), SessionPart::kRegular);
  EXPECT_EQ(s->Classify(13 * kMin), SessionPart::kRegular);
  EXPECT_EQ(s->Classify(15 * kMin + 59), SessionPart::kRegular);
  EXPECT_EQ(s->Classify(16 * kMin), SessionPart::kPost);
  EXPECT_EQ(s->Classify(19 * kMin + 59), SessionPart::kPost);
  EXPECT_EQ(s->Classify(20 * kMin), SessionPart::kOutside);
  EXPECT_EQ(s->Classify(23 * kMin + 59), SessionPart::kOutside);
  EXPECT_EQ(s->Classify(-1), SessionPart::kOutside);
  EXPECT_EQ(s->Classify(24 * kMin), SessionPart::kOutside);
}

TEST(NyseCalendarTest, ClassifyOnAnEarlyClose) {
  ASSERT_OK_AND_ASSIGN(s, Cal().SessionOn(P("2024-12-24")));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->Classify(9 * kMin + 30), SessionPart::kRegular);
  EXPECT_EQ(s->Classify(12 * kMin + 59), SessionPart::kRegular);
  EXPECT_EQ(s->Classify(13 * kMin), SessionPart::kPost);
  EXPECT_EQ(s->Classify(15 * kMin + 59), SessionPart::kPost);
  EXPECT_EQ(s->Classify(19 * kMin + 59), SessionPart::kPost);
  EXPECT_EQ(s->Classify(20 * kMin), SessionPart::kOutside);
}

TEST(NyseCalendarTest, SessionPartNames) {
  EXPECT_EQ(SessionPartName(SessionPart::kPre), "pre");
  EXPECT_EQ(SessionPartName(SessionPart::kRegular), "regular");
  EXPECT_EQ(SessionPartName(SessionPart::kPost), "post");
  EXPECT_EQ(SessionPartName(SessionPart::kOutside), "outside");
}

// ---- Navigation
// -------------------------------------------------------------------------

TEST(NyseCalendarTest, NextAndPreviousSkipHolidaysAndWeekends) {
  struct Case {
    const char* from;
    const char* next;
    const char* previous;
  };
  const Case cases[] = {
      {"2024-07-03", "2024-07-05", "2024-07-02"},  // over Independence Day
      {"2024-07-04", "2024-07-05", "2024-07-03"},  // from a holiday itself
      {"2024-07-05", "2024-07-08", "2024-07-03"},  // over a weekend / a holiday
      {"2024-07-06", "2024-07-08", "2024-07-05"},  // from a Saturday
      {"2024-03-28", "2024-04-01", "2024-03-27"},  // Good Friday + weekend
      {"2024-01-02", "2024-01-03", "2023-12-29"},  // across the year and New Year's Day
      {"2001-09-10", "2001-09-17", "2001-09-07"},  // September 11 closures
      {"2001-09-17", "2001-09-18", "2001-09-10"},
      {"2012-10-26", "2012-10-31", "2012-10-25"},  // Hurricane Sandy
  };
  for (const auto& c : cases) {
    ASSERT_OK_AND_ASSIGN(next, Cal().NextTradingDay(P(c.from)));
    EXPECT_EQ(FormatDate(next), c.next) << "next after " << c.from;
    ASSERT_OK_AND_ASSIGN(prev, Cal().PreviousTradingDay(P(c.from)));
    EXPECT_EQ(FormatDate(prev), c.previous) << "previous before " << c.from;
  }
}

TEST(NyseCalendarTest, NavigationStopsAtTheEdgesOfTheRange) {
  // 2035-12-31 is the last supported day; 1990-01-01 was New Year's Day.
  EXPECT_TRUE(Cal().NextTradingDay(P("2035-12-31")).status().IsInvalid());
  EXPECT_TRUE(Cal().PreviousTradingDay(P("1990-01-02")).status().IsInvalid());
  ASSERT_OK_AND_ASSIGN(first, Cal().NextTradingDay(P("1990-01-01")));
  EXPECT_EQ(FormatDate(first), "1990-01-02");
}

// ---- Range and errors
// -------------------------------------------------------------------

TEST(NyseCalendarTest, SupportedRange) {
  EXPECT_EQ(FormatDate(NyseCalendar::FirstDate()), "1990-01-01");
  EXPECT_EQ(FormatDate(NyseCalendar::LastDate()), "2035-12-31");
}

TEST(NyseCalendarTest, OutOfRangeDatesAreInvalidAndNamed) {
  for (auto day : {"1989-12-29", "2036-01-02"}) {
    const Date d = P(day);
    auto trading = Cal().IsTradingDay(d);
    ASSERT_TRUE(trading.status().IsInvalid()) << day;
    const std::string msg = trading.status().message();
    EXPECT_NE(msg.find(day), std::string::npos) << msg;
    EXPECT_NE(msg.find("1990-01-01..2035-12-31"), std::string::npos) << msg;
    EXPECT_TRUE(Cal().SessionOn(d).status().IsInvalid());
    EXPECT_TRUE(Cal().ClosureReason(d).status().IsInvalid());
    EXPECT_TRUE(Cal().NextTradingDay(d).status().IsInvalid());
    EXPECT_TRUE(Cal().PreviousTradingDay(d).status().IsInvalid());
  }
  EXPECT_TRUE(Cal().Sessions(P("2035-12-01"), P("2036-01-31")).status().IsInvalid());
  EXPECT_TRUE(Cal().Sessions(P("1989-12-01"), P("1990-01-31")).status().IsInvalid());
}

TEST(NyseCalendarTest, SessionsRejectAReversedRange) {
  auto r = Cal().Sessions(P("2024-05-01"), P("2024-04-01"));
  ASSERT_TRUE(r.status().IsInvalid());
  EXPECT_NE(r.status().message().find("2024-05-01"), std::string::npos);
}

TEST(NyseCalendarTest, SessionsAreOrderedAndInclusive) {
  ASSERT_OK_AND_ASSIGN(week, Cal().Sessions(P("2024-07-01"), P("2024-07-05")));
  ASSERT_EQ(week.size(), 4u);  // July 4 is missing
  EXPECT_EQ(FormatDate(week.front().date), "2024-07-01");
  EXPECT_EQ(FormatDate(week.back().date), "2024-07-05");
  EXPECT_TRUE(week[2].early_close);  // July 3
  ASSERT_OK_AND_ASSIGN(holiday, Cal().Sessions(P("2024-07-04"), P("2024-07-04")));
  EXPECT_TRUE(holiday.empty());
}

TEST(NyseCalendarTest, SessionOnAHolidayIsEmpty) {
  ASSERT_OK_AND_ASSIGN(s, Cal().SessionOn(P("2024-12-25")));
  EXPECT_FALSE(s.has_value());
  ASSERT_OK_AND_ASSIGN(t, Cal().SessionOn(P("2024-12-26")));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(FormatDate(t->date), "2024-12-26");
  EXPECT_EQ(t->open_minute, 9 * kMin + 30);
  EXPECT_FALSE(t->early_close);
}

// ---- Session counts
// ---------------------------------------------------------------------

TEST(NyseCalendarTest, SessionsPerYear) {
  EXPECT_EQ(SessionsInYear(1990), 253);
  EXPECT_EQ(SessionsInYear(1994), 252);  // Nixon
  EXPECT_EQ(SessionsInYear(2001), 248);  // four days after September 11
  EXPECT_EQ(SessionsInYear(2007), 251);  // Ford
  EXPECT_EQ(SessionsInYear(2012), 250);  // Sandy
  EXPECT_EQ(SessionsInYear(2018), 251);  // Bush
  EXPECT_EQ(SessionsInYear(2020), 253);
  EXPECT_EQ(SessionsInYear(2021), 252);
  EXPECT_EQ(SessionsInYear(2022), 251);
  EXPECT_EQ(SessionsInYear(2023), 250);
  EXPECT_EQ(SessionsInYear(2024), 252);
  EXPECT_EQ(SessionsInYear(2025), 250);  // Carter
}

TEST(NyseCalendarTest, GetReturnsOneInstance) {
  EXPECT_EQ(&NyseCalendar::Get(), &NyseCalendar::Get());
}

}  // namespace
}  // namespace qlake::catalog

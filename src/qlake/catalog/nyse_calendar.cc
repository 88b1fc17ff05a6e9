#include "qlake/catalog/nyse_calendar.h"

#include <array>

#include <arrow/status.h>

namespace qlake::catalog {

namespace {

using date::Friday;
using date::Monday;
using date::Saturday;
using date::Sunday;
using date::Thursday;
using date::Wednesday;

constexpr int kRegularClose = 16 * 60;
// The NYSE moved its scheduled early close from 14:00 to 13:00 ET in 1993.
constexpr int kEarlyClose = 13 * 60;
constexpr int kEarlyCloseBefore1993 = 14 * 60;

Date Ymd(int y, unsigned m, unsigned d) {
  return Date{date::year{y} / date::month{m} / date::day{d}};
}

// The n-th (1-based) weekday `wd` of month m in year y, e.g. the third Monday of January.
Date NthWeekday(int y, unsigned m, date::weekday wd, unsigned n) {
  return Date{date::year{y} / date::month{m} / wd[n]};
}

Date LastWeekday(int y, unsigned m, date::weekday wd) {
  return Date{date::year{y} / date::month{m} / wd[date::last]};
}

date::weekday WeekdayOf(Date d) { return date::weekday{d}; }

bool IsWeekend(Date d) {
  auto wd = WeekdayOf(d);
  return wd == Saturday || wd == Sunday;
}

// Easter Sunday in the Gregorian calendar (the anonymous "Meeus/Jones/Butcher" computus).
Date EasterSunday(int y) {
  const int a = y % 19;        // position in the 19-year Metonic cycle
  const int b = y / 100;       // century
  const int c = y % 100;       // year within the century
  const int d = b / 4;         // skipped leap centuries...
  const int e = b % 4;         // ...and the remainder
  const int f = (b + 8) / 25;  // lunar correction
  const int g = (b - f + 1) / 3;
  const int h = (19 * a + b - d - g + 15) % 30;  // epact-like: days to the full moon
  const int i = c / 4;
  const int k = c % 4;
  const int l = (32 + 2 * e + 2 * i - h - k) % 7;  // days from the full moon to Sunday
  const int m = (a + 11 * h + 22 * l) / 451;
  const int month = (h + l - 7 * m + 114) / 31;
  const int day = (h + l - 7 * m + 114) % 31 + 1;
  return Ymd(y, static_cast<unsigned>(month), static_cast<unsigned>(day));
}

// A fixed-date holiday as the NYSE observes it (Rule 7.2): on the date itself on a
// weekday, on the Friday before when it falls on a Saturday, on the Monday after when it
// falls on a Sunday.
struct Observed {
  Date date;
  bool moved;
};
Observed NearestWeekday(Date d) {
  auto wd = WeekdayOf(d);
  if (wd == Saturday) return {d - date::days{1}, true};
  if (wd == Sunday) return {d + date::days{1}, true};
  return {d, false};
}

// Unscheduled full-day closures in the supported range.
struct OneOffClosure {
  int y;
  unsigned m;
  unsigned d;
  std::string_view reason;
};
constexpr std::array kOneOffClosures = {
    OneOffClosure{1994, 4, 27, "Day of mourning for President Nixon"},
    OneOffClosure{2001, 9, 11, "September 11 attacks"},
    OneOffClosure{2001, 9, 12, "September 11 attacks"},
    OneOffClosure{2001, 9, 13, "September 11 attacks"},
    OneOffClosure{2001, 9, 14, "September 11 attacks"},
    OneOffClosure{2004, 6, 11, "Day of mourning for President Reagan"},
    OneOffClosure{2007, 1, 2, "Day of mourning for President Ford"},
    OneOffClosure{2012, 10, 29, "Hurricane Sandy"},
    OneOffClosure{2012, 10, 30, "Hurricane Sandy"},
    OneOffClosure{2018, 12, 5, "Day of mourning for President George H.W. Bush"},
    OneOffClosure{2025, 1, 9, "Day of mourning for President Carter"},
};

// Early closes announced for a single day rather than by a standing rule: the Fridays
// after Christmas 1997 and 2003 (but not 2008, 2014 or 2025, which were full days) and
// New Year's Eve 1999, shortened ahead of the Y2K rollover.
struct OneOffEarlyClose {
  int y;
  unsigned m;
  unsigned d;
};
constexpr std::array kOneOffEarlyCloses = {
    OneOffEarlyClose{1997, 12, 26},
    OneOffEarlyClose{1999, 12, 31},
    OneOffEarlyClose{2003, 12, 26},
};

arrow::Status OutOfRange(Date d) {
  return arrow::Status::Invalid(
      "date ", FormatDate(d), " is outside the NYSE calendar's supported range ",
      FormatDate(NyseCalendar::FirstDate()), "..", FormatDate(NyseCalendar::LastDate()));
}

}  // namespace

std::string_view SessionPartName(SessionPart p) {
  switch (p) {
    case SessionPart::kPre:
      return "pre";
    case SessionPart::kRegular:
      return "regular";
    case SessionPart::kPost:
      return "post";
    case SessionPart::kOutside:
      return "outside";
  }
  return "outside";
}

int64_t Session::OpenNs() const { return FromNewYork(date, open_minute); }
int64_t Session::CloseNs() const { return FromNewYork(date, close_minute); }

SessionPart Session::Classify(int minute_of_day) const {
  if (minute_of_day < kExtendedOpenMinute || minute_of_day >= kExtendedCloseMinute) {
    return SessionPart::kOutside;
  }
  if (minute_of_day < open_minute) return SessionPart::kPre;
  if (minute_of_day < close_minute) return SessionPart::kRegular;
  return SessionPart::kPost;
}

Date NyseCalendar::FirstDate() { return Ymd(kFirstYear, 1, 1); }
Date NyseCalendar::LastDate() { return Ymd(kLastYear, 12, 31); }

const NyseCalendar& NyseCalendar::Get() {
  static const NyseCalendar calendar;
  return calendar;
}

NyseCalendar::NyseCalendar() {
  const Date first = FirstDate();
  const auto size = static_cast<std::size_t>((LastDate() - first).count() + 1);
  days_.resize(size);
  auto at = [&](Date d) -> Day& {
    return days_[static_cast<std::size_t>((d - first).count())];
  };

  for (std::size_t i = 0; i < size; ++i) {
    const Date d = first + date::days{static_cast<int>(i)};
    if (IsWeekend(d)) {
      days_[i].reason = "weekend";
    } else {
      days_[i].close_minute = kRegularClose;
    }
  }

  // Closes a weekday. Weekend dates are left as "weekend" (only observed dates get here).
  auto close = [&](Date d, std::string_view reason) {
    Day& day = at(d);
    if (!day.trading()) return;
    day = Day{reason, 0, false};
  };
  auto close_observed = [&](Date actual, std::string_view name,
                            std::string_view observed_name) {
    Observed o = NearestWeekday(actual);
    close(o.date, o.moved ? observed_name : name);
  };
  // Shortens a trading day; a no-op on a day that is closed anyway.
  auto shorten = [&](Date d, int close_minute) {
    Day& day = at(d);
    if (!day.trading()) return;
    day.close_minute = static_cast<int16_t>(close_minute);
    day.early_close = true;
  };

  for (int y = kFirstYear; y <= kLastYear; ++y) {
    // New Year's Day: a Sunday moves to Monday, but a Saturday is not observed at all,
    // because the Friday before is the last day of the year's accounting period
    // (Rule 7.2; e.g. 2010-12-31 and 2021-12-31 were full trading days).
    const Date new_year = Ymd(y, 1, 1);
    if (WeekdayOf(new_year) == Sunday) {
      close(new_year + date::days{1}, "New Year's Day (observed)");
    } else {
      close(new_year, "New Year's Day");
    }
    // Martin Luther King Jr. Day: third Monday of January, a market holiday since 1998.
    if (y >= 1998) close(NthWeekday(y, 1, Monday, 3), "Martin Luther King Jr. Day");
    close(NthWeekday(y, 2, Monday, 3), "Washington's Birthday");
    close(EasterSunday(y) - date::days{2}, "Good Friday");
    close(LastWeekday(y, 5, Monday), "Memorial Day");
    if (y >= 2022) {
      close_observed(Ymd(y, 6, 19), "Juneteenth", "Juneteenth (observed)");
    }
    close_observed(Ymd(y, 7, 4), "Independence Day", "Independence Day (observed)");
    close(NthWeekday(y, 9, Monday, 1), "Labor Day");
    const Date thanksgiving = NthWeekday(y, 11, Thursday, 4);
    close(thanksgiving, "Thanksgiving Day");
    close_observed(Ymd(y, 12, 25), "Christmas Day", "Christmas Day (observed)");
  }

  for (const auto& c : kOneOffClosures) close(Ymd(c.y, c.m, c.d), c.reason);

  for (int y = kFirstYear; y <= kLastYear; ++y) {
    const int early = y >= 1993 ? kEarlyClose : kEarlyCloseBefore1993;
    // Independence Day, since 1995: July 3 closes early when it is a Monday, Tuesday or
    // Thursday. When it is a Wednesday (July 4 a Thursday) the early close was on Friday
    // July 5 until 2012 and on Wednesday July 3 from 2013. When July 4 falls on a weekend
    // the observed holiday takes the place of the early close.
    if (y >= 1995) {
      const Date july3 = Ymd(y, 7, 3);
      const auto wd = WeekdayOf(july3);
      if (wd == Wednesday) {
        shorten(y >= 2013 ? july3 : Ymd(y, 7, 5), early);
      } else if (wd != Friday) {
        shorten(july3, early);  // Saturday/Sunday: a weekend day, shorten() skips it.
      }
    }
    // The day after Thanksgiving, since 1992.
    if (y >= 1992) shorten(NthWeekday(y, 11, Thursday, 4) + date::days{1}, early);
    // Christmas Eve on a Monday..Thursday. On a Friday it is the observed Christmas
    // holiday (Christmas on a Saturday), which shorten() leaves closed.
    shorten(Ymd(y, 12, 24), early);
  }

  for (const auto& e : kOneOffEarlyCloses) shorten(Ymd(e.y, e.m, e.d), kEarlyClose);
}

arrow::Result<std::size_t> NyseCalendar::IndexOf(Date d) const {
  if (d < FirstDate() || d > LastDate()) return OutOfRange(d);
  return static_cast<std::size_t>((d - FirstDate()).count());
}

Session NyseCalendar::MakeSession(std::size_t index) const {
  const Day& day = days_[index];
  Session s;
  s.date = FirstDate() + date::days{static_cast<int>(index)};
  s.close_minute = day.close_minute;
  s.early_close = day.early_close;
  return s;
}

arrow::Result<bool> NyseCalendar::IsTradingDay(Date d) const {
  ARROW_ASSIGN_OR_RAISE(auto i, IndexOf(d));
  return days_[i].trading();
}

arrow::Result<std::optional<Session>> NyseCalendar::SessionOn(Date d) const {
  ARROW_ASSIGN_OR_RAISE(auto i, IndexOf(d));
  if (!days_[i].trading()) return std::optional<Session>{};
  return std::optional<Session>{MakeSession(i)};
}

arrow::Result<std::vector<Session>> NyseCalendar::Sessions(Date from, Date to) const {
  ARROW_ASSIGN_OR_RAISE(auto begin, IndexOf(from));
  ARROW_ASSIGN_OR_RAISE(auto end, IndexOf(to));
  if (begin > end) {
    return arrow::Status::Invalid("session range is empty: from ", FormatDate(from),
                                  " is after to ", FormatDate(to));
  }
  std::vector<Session> out;
  // About 252 sessions per 365 days.
  out.reserve((end - begin + 1) * 5 / 7 + 1);
  for (auto i = begin; i <= end; ++i) {
    if (days_[i].trading()) out.push_back(MakeSession(i));
  }
  return out;
}

arrow::Result<Date> NyseCalendar::NextTradingDay(Date d) const {
  ARROW_ASSIGN_OR_RAISE(auto i, IndexOf(d));
  // Closures never run longer than a few days, so this scans at most about a week.
  for (auto j = i + 1; j < days_.size(); ++j) {
    if (days_[j].trading()) return FirstDate() + date::days{static_cast<int>(j)};
  }
  return arrow::Status::Invalid("no NYSE trading day after ", FormatDate(d),
                                " within the supported range ", FormatDate(FirstDate()),
                                "..", FormatDate(LastDate()));
}

arrow::Result<Date> NyseCalendar::PreviousTradingDay(Date d) const {
  ARROW_ASSIGN_OR_RAISE(auto i, IndexOf(d));
  for (auto j = i; j-- > 0;) {
    if (days_[j].trading()) return FirstDate() + date::days{static_cast<int>(j)};
  }
  return arrow::Status::Invalid("no NYSE trading day before ", FormatDate(d),
                                " within the supported range ", FormatDate(FirstDate()),
                                "..", FormatDate(LastDate()));
}

arrow::Result<std::string_view> NyseCalendar::ClosureReason(Date d) const {
  ARROW_ASSIGN_OR_RAISE(auto i, IndexOf(d));
  return days_[i].reason;
}

}  // namespace qlake::catalog

// File: qlake/catalog/nyse_calendar.h
//
// The NYSE trading calendar, computed by rule (no data files): weekends, the regular
// holidays with their weekend-observance rules as they changed over the years, the
// one-off closures (e.g. 2001-09-11..14, 2012-10-29..30, 2025-01-09) and the scheduled
// early closes (13:00 ET since 1993, 14:00 ET before). It says which days stocks and
// options flat files are expected on, which minutes belong to the pre / regular / post
// session, and where Qlib's calendars start and end. The rules and their sources are in
// docs/calendar.md.
//
// Not modelled: unscheduled intraday events (late opens, weather or system early closes,
// circuit-breaker halts). The calendar describes the schedule, not what happened on the
// floor; the data of such days shows the rest.
//
// Supported years: kFirstYear..kLastYear. Outside that range every query returns
// Invalid (a silent guess would put bars on wrong days). Checked day by day against
// exchange_calendars' XNYS for 2000-2035 (tests/python/test_calendar.py).
//
// Usage:
//   const auto& cal = qlake::catalog::NyseCalendar::Get();
//   ARROW_ASSIGN_OR_RAISE(auto sessions, cal.Sessions(from, to));
//   for (const auto& s : sessions) { ... s.date, s.close_minute ... }
//
// Thread safety: Get() returns an immutable singleton built on first use; all methods are
// const and safe to call concurrently.

#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <arrow/result.h>

#include "qlake/core/dates.h"

namespace qlake::catalog {

/// Part of the trading day a minute bar belongs to.
enum class SessionPart : int8_t {
  kPre = 0,      // 04:00 <= t < 09:30 ET
  kRegular = 1,  // 09:30 <= t < close (16:00, or 13:00 on early-close days)
  kPost = 2,     // close <= t < 20:00 ET
  kOutside = 3,  // before 04:00 or at/after 20:00 ET, or not a trading day
};
std::string_view SessionPartName(SessionPart p);  // "pre", "regular", "post", "outside"

/// One trading session. Minutes are minutes after New York midnight of `date`.
struct Session {
  Date date;
  int open_minute = 9 * 60 + 30;  // 09:30 ET
  int close_minute = 16 * 60;  // 16:00 ET; 13:00 ET on early closes (14:00 before 1993)
  bool early_close = false;

  static constexpr int kExtendedOpenMinute = 4 * 60;    // 04:00 ET, first pre-market bar
  static constexpr int kExtendedCloseMinute = 20 * 60;  // 20:00 ET, end of post-market

  /// Unix ns UTC of the regular open / close (DST handled).
  int64_t OpenNs() const;
  int64_t CloseNs() const;
  /// Which part of this session a bar starting at New York minute `minute_of_day` is in.
  /// Minutes outside 0..1439 are kOutside. On early-close days the post session still
  /// runs to 20:00 ET (bars after the venues' 17:00 early end are rare and harmless).
  SessionPart Classify(int minute_of_day) const;
};

class NyseCalendar {
 public:
  static constexpr int kFirstYear = 1990;
  static constexpr int kLastYear = 2035;

  /// The process-wide calendar.
  static const NyseCalendar& Get();

  /// Invalid if d is outside kFirstYear..kLastYear, else whether NYSE trades on d.
  arrow::Result<bool> IsTradingDay(Date d) const;
  /// The session on d, or nullopt on weekends and holidays. Invalid outside the range.
  arrow::Result<std::optional<Session>> SessionOn(Date d) const;
  /// Every session with from <= date <= to, in order. Invalid if from > to or out of
  /// range.
  arrow::Result<std::vector<Session>> Sessions(Date from, Date to) const;
  /// The first trading day strictly after / before d. Invalid if d is out of range or the
  /// answer would be (e.g. NextTradingDay(LastDate())).
  arrow::Result<Date> NextTradingDay(Date d) const;
  arrow::Result<Date> PreviousTradingDay(Date d) const;
  /// Why d is not a trading day ("weekend", "Good Friday", "Hurricane Sandy", ...), or an
  /// empty view on trading days. The view points at static storage (valid forever).
  /// A holiday moved off a weekend says so: "Independence Day (observed)".
  arrow::Result<std::string_view> ClosureReason(Date d) const;

  /// First and last supported dates.
  static Date FirstDate();
  static Date LastDate();

 private:
  NyseCalendar();
  // One calendar day. `reason` is empty on trading days; `close_minute` is 0 on closed
  // days. Reasons point at string literals.
  struct Day {
    std::string_view reason;
    int16_t close_minute = 0;
    bool early_close = false;
    bool trading() const { return reason.empty(); }
  };
  std::vector<Day> days_;  // one per calendar day from FirstDate() to LastDate()
  arrow::Result<std::size_t> IndexOf(Date d) const;
  Session MakeSession(std::size_t index) const;
};

}  // namespace qlake::catalog

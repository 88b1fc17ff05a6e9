// File: qlake/core/dates.h
//
// Calendar-date and time-zone helpers shared by every stage. Dates are
// date::sys_days (days since 1970-01-01, no time zone); instants are Unix nanoseconds UTC
// as they appear in the flat files. The trading date of an instant is always its
// America/New_York date (shared/docs/flatfiles.md section 4), never the UTC date.
//
// Thread safety: all functions are safe to call concurrently (the tz database is loaded
// once, on first use, by howardhinnant date).

#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <arrow/result.h>
#include <date/date.h>

namespace qlake {

using Date = date::sys_days;

/// Parses "YYYY-MM-DD" strictly (no other separators, no trailing text, a real date).
/// Errors name the text: Invalid("date '2024-02-30' is not a valid YYYY-MM-DD date").
arrow::Result<Date> ParseDate(std::string_view text);

/// Formats as "YYYY-MM-DD".
std::string FormatDate(Date d);

/// Days since 1970-01-01 (the Arrow date32 value).
inline int32_t ToDate32(Date d) {
  return static_cast<int32_t>(d.time_since_epoch().count());
}
inline Date FromDate32(int32_t days) { return Date{date::days{days}}; }

/// Local America/New_York wall time of an instant, split into the NY date and the minute
/// of that day (0..1439).
struct NyTime {
  Date date;
  int minute_of_day;
};
NyTime ToNewYork(int64_t unix_ns);

/// The Unix ns instant of a New York wall-clock time (date + minutes after midnight).
/// Wall times that do not exist or are ambiguous at a DST change resolve to the earlier
/// instant; trading hours never fall in those gaps.
int64_t FromNewYork(Date d, int minute_of_day);

}  // namespace qlake

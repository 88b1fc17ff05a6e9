// qlake calendar: lists NYSE sessions (open and close in ET and UTC, early closes) and,
// with --closed, the weekdays the exchange is shut and why. A thin view of
// qlake/catalog/nyse_calendar.h, meant for checking what the pipeline will expect.

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <date/date.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "qlake/catalog/nyse_calendar.h"
#include "qlake/core/dates.h"

namespace qlake::cli {

namespace {

using catalog::NyseCalendar;

struct CalendarFlags {
  std::string from;
  std::string to;
  bool json = false;
  bool closed = false;
};

// One output line: a session, or (with --closed) a weekday without one.
struct Row {
  Date date;
  std::optional<catalog::Session> session;
  std::string_view reason;  // closed weekdays only
};

std::string HhMm(int minute_of_day) {
  return fmt::format("{:02d}:{:02d}", minute_of_day / 60, minute_of_day % 60);
}

std::string IsoUtc(int64_t unix_ns) {
  using namespace std::chrono;
  date::sys_seconds t = floor<seconds>(date::sys_time<nanoseconds>{nanoseconds{unix_ns}});
  return date::format("%Y-%m-%dT%H:%M:%SZ", t);
}

std::string_view WeekdayName(Date d) {
  static constexpr std::string_view kNames[] = {"Sun", "Mon", "Tue", "Wed",
                                                "Thu", "Fri", "Sat"};
  return kNames[date::weekday{d}.c_encoding()];
}

bool IsWeekend(Date d) {
  auto wd = date::weekday{d};
  return wd == date::Saturday || wd == date::Sunday;
}

arrow::Result<Date> ParseFlagDate(std::string_view flag, const std::string& text) {
  auto parsed = ParseDate(text);
  if (!parsed.ok()) return arrow::Status::Invalid(flag, ": ", parsed.status().message());
  return parsed;
}

int CurrentNewYorkYear() {
  using namespace std::chrono;
  auto now_ns =
      duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
  return static_cast<int>(date::year_month_day{ToNewYork(now_ns).date}.year());
}

Date JanFirst(int y) { return Date{date::year{y} / 1 / 1}; }
Date DecLast(int y) { return Date{date::year{y} / 12 / 31}; }
int YearOf(Date d) { return static_cast<int>(date::year_month_day{d}.year()); }

// Fills in the defaults documented in the --help text: the range is one calendar year
// unless both ends are given.
arrow::Status ResolveRange(const CalendarFlags& flags, Date* from, Date* to) {
  if (!flags.from.empty()) {
    ARROW_ASSIGN_OR_RAISE(*from, ParseFlagDate("--from", flags.from));
  }
  if (!flags.to.empty()) {
    ARROW_ASSIGN_OR_RAISE(*to, ParseFlagDate("--to", flags.to));
  }
  if (flags.from.empty() && flags.to.empty()) {
    const int y = CurrentNewYorkYear();
    *from = JanFirst(y);
    *to = DecLast(y);
  } else if (flags.from.empty()) {
    *from = JanFirst(YearOf(*to));
  } else if (flags.to.empty()) {
    *to = DecLast(YearOf(*from));
  }
  if (*from > *to) {
    return arrow::Status::Invalid("--from ", FormatDate(*from), " is after --to ",
                                  FormatDate(*to));
  }
  return arrow::Status::OK();
}

arrow::Result<std::vector<Row>> CollectRows(Date from, Date to, bool closed) {
  const auto& cal = NyseCalendar::Get();
  // Validates both ends before anything is printed.
  ARROW_RETURN_NOT_OK(cal.IsTradingDay(from));
  ARROW_RETURN_NOT_OK(cal.IsTradingDay(to));
  std::vector<Row> rows;
  for (Date d = from; d <= to; d += date::days{1}) {
    ARROW_ASSIGN_OR_RAISE(auto session, cal.SessionOn(d));
    if (session) {
      rows.push_back(Row{d, session, {}});
    } else if (closed && !IsWeekend(d)) {
      ARROW_ASSIGN_OR_RAISE(auto reason, cal.ClosureReason(d));
      rows.push_back(Row{d, std::nullopt, reason});
    }
  }
  return rows;
}

void PrintJson(const std::vector<Row>& rows) {
  auto out = nlohmann::ordered_json::array();
  for (const auto& r : rows) {
    nlohmann::ordered_json o;
    o["date"] = FormatDate(r.date);
    o["weekday"] = WeekdayName(r.date);
    o["trading"] = r.session.has_value();
    if (r.session) {
      o["open_et"] = HhMm(r.session->open_minute);
      o["close_et"] = HhMm(r.session->close_minute);
      o["open_utc"] = IsoUtc(r.session->OpenNs());
      o["close_utc"] = IsoUtc(r.session->CloseNs());
      o["early_close"] = r.session->early_close;
    } else {
      o["reason"] = r.reason;
    }
    out.push_back(std::move(o));
  }
  std::fputs(out.dump(2).c_str(), stdout);
  std::fputs("\n", stdout);
}

// Prints one aligned row; the note column is last, so rows without a note end early.
template <typename... Cells>
void PrintRow(const Cells&... cells) {
  std::string line =
      fmt::format("{:<10}  {:<3}  {:<7}  {:<8}  {:<20}  {:<20}  {}", cells...);
  line.erase(line.find_last_not_of(' ') + 1);
  line += '\n';
  std::fputs(line.c_str(), stdout);
}

std::string Count(int n, std::string_view noun) {
  return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

void PrintTable(const std::vector<Row>& rows, Date from, Date to, bool closed) {
  PrintRow("date", "day", "open ET", "close ET", "open UTC", "close UTC", "note");
  int sessions = 0, early = 0, closed_days = 0;
  for (const auto& r : rows) {
    const std::string date = FormatDate(r.date);
    if (r.session) {
      ++sessions;
      if (r.session->early_close) ++early;
      PrintRow(date, WeekdayName(r.date), HhMm(r.session->open_minute),
               HhMm(r.session->close_minute), IsoUtc(r.session->OpenNs()),
               IsoUtc(r.session->CloseNs()), r.session->early_close ? "early close" : "");
    } else {
      ++closed_days;
      PrintRow(date, WeekdayName(r.date), "closed", "-", "-", "-", r.reason);
    }
  }
  std::string summary =
      fmt::format("{} ({})", Count(sessions, "session"), Count(early, "early close"));
  if (closed) summary += ", " + Count(closed_days, "closed weekday");
  fmt::print("{} from {} to {}\n", summary, FormatDate(from), FormatDate(to));
}

}  // namespace

Runner SetupCalendar(CLI::App& app) {
  auto flags = std::make_shared<CalendarFlags>();
  app.footer(
      "The range defaults to one calendar year: with neither flag, the current year\n"
      "(New York time); with only --from, through Dec 31 of that year; with only --to,\n"
      "from Jan 1 of that year. Supported dates: " +
      FormatDate(NyseCalendar::FirstDate()) + ".." +
      FormatDate(NyseCalendar::LastDate()) + ".");
  app.add_option("--from", flags->from, "First date, inclusive")->type_name("YYYY-MM-DD");
  app.add_option("--to", flags->to, "Last date, inclusive")->type_name("YYYY-MM-DD");
  app.add_flag(
      "--json", flags->json,
      "Print a JSON array of objects (date, weekday, trading, open_et, close_et, "
      "open_utc, close_utc, early_close; reason on closed days)");
  app.add_flag(
      "--closed", flags->closed,
      "Also list weekdays without a session, with the reason (holiday, closure)");
  return [flags](Context&) -> arrow::Status {
    Date from, to;
    ARROW_RETURN_NOT_OK(ResolveRange(*flags, &from, &to));
    ARROW_ASSIGN_OR_RAISE(auto rows, CollectRows(from, to, flags->closed));
    if (flags->json) {
      PrintJson(rows);
    } else {
      PrintTable(rows, from, to, flags->closed);
    }
    std::fflush(stdout);
    return arrow::Status::OK();
  };
}

}  // namespace qlake::cli

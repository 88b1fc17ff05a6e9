#include "qlake/core/dates.h"

#include <date/tz.h>
#include <fmt/format.h>

namespace qlake {

namespace {
const date::time_zone* NewYork() {
  static const date::time_zone* tz = date::locate_zone("America/New_York");
  return tz;
}

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}
}  // namespace

arrow::Result<Date> ParseDate(std::string_view text) {
  auto bad = [&] {
    return arrow::Status::Invalid("date '", text, "' is not a valid YYYY-MM-DD date");
  };
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return bad();
  std::string_view ys = text.substr(0, 4), ms = text.substr(5, 2), ds = text.substr(8, 2);
  if (!AllDigits(ys) || !AllDigits(ms) || !AllDigits(ds)) return bad();
  int y = std::stoi(std::string(ys));
  unsigned m = static_cast<unsigned>(std::stoi(std::string(ms)));
  unsigned d = static_cast<unsigned>(std::stoi(std::string(ds)));
  date::year_month_day ymd{date::year{y}, date::month{m}, date::day{d}};
  if (!ymd.ok()) return bad();
  return Date{ymd};
}

std::string FormatDate(Date d) {
  date::year_month_day ymd{d};
  return fmt::format("{:04d}-{:02d}-{:02d}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()),
                     static_cast<unsigned>(ymd.day()));
}

NyTime ToNewYork(int64_t unix_ns) {
  using namespace std::chrono;
  date::sys_time<nanoseconds> t{nanoseconds{unix_ns}};
  auto local = NewYork()->to_local(t);
  auto local_day = date::floor<date::days>(local);
  auto minutes = date::floor<std::chrono::minutes>(local - local_day).count();
  return NyTime{Date{local_day.time_since_epoch()}, static_cast<int>(minutes)};
}

int64_t FromNewYork(Date d, int minute_of_day) {
  using namespace std::chrono;
  date::local_time<std::chrono::minutes> local{d.time_since_epoch() +
                                               std::chrono::minutes{minute_of_day}};
  auto sys = NewYork()->to_sys(local, date::choose::earliest);
  return duration_cast<nanoseconds>(sys.time_since_epoch()).count();
}

}  // namespace qlake

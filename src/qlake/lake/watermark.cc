#include "qlake/lake/watermark.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "qlake/catalog/nyse_calendar.h"

namespace qlake::lake {

using nlohmann::json;

catalog::FileCalendar CalendarForDataset(std::string_view dataset) {
  auto spec = catalog::FindDataset(dataset);
  if (!spec.ok()) return catalog::FileCalendar::kNyse;
  return (*spec)->calendar;
}

arrow::Result<Date> NextExpectedDay(catalog::FileCalendar cal, Date d) {
  using catalog::FileCalendar;
  if (cal == FileCalendar::kNyse) {
    return catalog::NyseCalendar::Get().NextTradingDay(d);
  }
  Date next = d + date::days{1};
  for (;; next += date::days{1}) {
    const date::weekday wd{next};
    switch (cal) {
      case FileCalendar::kEveryDay:
        return next;
      case FileCalendar::kSundayToFriday:
        if (wd != date::Saturday) return next;
        break;
      case FileCalendar::kNysePlusHolidays:
      case FileCalendar::kFutures:
      case FileCalendar::kNyse:
        if (wd != date::Saturday && wd != date::Sunday) return next;
        break;
    }
  }
}

Watermark ComputeWatermark(std::string_view dataset, catalog::FileCalendar cal,
                           std::vector<Date> days) {
  Watermark w;
  w.dataset = std::string(dataset);
  if (days.empty()) return w;
  std::sort(days.begin(), days.end());
  days.erase(std::unique(days.begin(), days.end()), days.end());
  w.first_day = days.front();
  Date last = days.front();
  // Days are sorted, so the next expected day is committed iff it is the next element
  // at or after the cursor.
  std::size_t i = 1;
  for (;;) {
    auto next = NextExpectedDay(cal, last);
    if (!next.ok()) break;
    while (i < days.size() && days[i] < *next) ++i;  // committed non-expected days
    if (i >= days.size() || days[i] != *next) break;
    last = *next;
    ++i;
  }
  w.last_contiguous = last;
  return w;
}

std::string SerializeWatermark(const Watermark& w) {
  json j{{"format", Watermark::kFormat},
         {"dataset", w.dataset},
         {"first_day", w.first_day ? json(FormatDate(*w.first_day)) : json(nullptr)},
         {"watermark",
          w.last_contiguous ? json(FormatDate(*w.last_contiguous)) : json(nullptr)},
         {"updated_at", w.updated_at}};
  return j.dump(2) + "\n";
}

arrow::Result<Watermark> ParseWatermark(std::string_view text, std::string_view dataset,
                                        std::string_view where) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  auto bad = [&](std::string_view why) {
    return arrow::Status::Invalid(where, ": not a valid watermark (", why, ")");
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  auto str = [&](const char* key) -> const json* {
    auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
  };
  const json* format = str("format");
  if (format == nullptr || !format->is_string() ||
      format->get<std::string>() != Watermark::kFormat) {
    return bad("format");
  }
  const json* ds = str("dataset");
  if (ds == nullptr || !ds->is_string() || ds->get<std::string>() != dataset) {
    return bad("dataset name does not match");
  }
  Watermark w;
  w.dataset = std::string(dataset);
  auto day = [&](const char* key, std::optional<Date>* out) -> arrow::Status {
    const json* v = str(key);
    if (v == nullptr) return bad(key);
    if (v->is_null()) return arrow::Status::OK();
    if (!v->is_string()) return bad(key);
    auto d = ParseDate(v->get<std::string>());
    if (!d.ok()) return bad(key);
    *out = *d;
    return arrow::Status::OK();
  };
  ARROW_RETURN_NOT_OK(day("first_day", &w.first_day));
  ARROW_RETURN_NOT_OK(day("watermark", &w.last_contiguous));
  if (w.first_day.has_value() != w.last_contiguous.has_value() ||
      (w.first_day && *w.last_contiguous < *w.first_day)) {
    return bad("first_day and watermark disagree");
  }
  if (const json* u = str("updated_at"); u != nullptr && u->is_string()) {
    w.updated_at = u->get<std::string>();
  }
  return w;
}

}  // namespace qlake::lake

#include "qlake/catalog/datasets.h"

#include <fmt/format.h>

#include "qlake/catalog/nyse_calendar.h"

namespace qlake::catalog {

namespace {

using FC = FileCalendar;
using G = Granularity;

constexpr std::string_view kAggHeader =
    "ticker,volume,open,close,high,low,window_start,transactions";
constexpr std::string_view kIndexAggHeader = "ticker,open,close,high,low,window_start";
constexpr std::string_view kFuturesAggHeader =
    "ticker,volume,open,close,high,low,window_start,transactions,dollar_volume,exchange,"
    "session_end_date";

// Headers from shared/docs/flatfiles.md section 3. Files are checked against them by
// name; the option trades header is the one real files carry (8 columns), not the
// documented 7.
constexpr DatasetSpec kDatasets[] = {
    {"stocks_daily", "us_stocks_sip", "day_aggs_v1", kAggHeader, FC::kNyse, G::kDay,
     false, "2003-09-10", true},
    {"stocks_minute", "us_stocks_sip", "minute_aggs_v1", kAggHeader, FC::kNyse,
     G::kMinute, false, "2003-09-10", true},
    {"stocks_trades", "us_stocks_sip", "trades_v1",
     "ticker,conditions,correction,exchange,id,participant_timestamp,price,sequence_"
     "number,"
     "sip_timestamp,size,tape,trf_id,trf_timestamp",
     FC::kNyse, G::kTick, false, "", false},
    {"stocks_quotes", "us_stocks_sip", "quotes_v1",
     "ticker,ask_exchange,ask_price,ask_size,bid_exchange,bid_price,bid_size,conditions,"
     "indicators,participant_timestamp,sequence_number,sip_timestamp,tape,trf_timestamp",
     FC::kNyse, G::kTick, false, "2003-09-10", false},
    {"options_daily", "us_options_opra", "day_aggs_v1", kAggHeader, FC::kNyse, G::kDay,
     true, "2014-06-02", true},
    {"options_minute", "us_options_opra", "minute_aggs_v1", kAggHeader, FC::kNyse,
     G::kMinute, true, "2014-06-02", true},
    {"options_trades", "us_options_opra", "trades_v1",
     "ticker,conditions,correction,exchange,participant_timestamp,price,sip_timestamp,"
     "size",
     FC::kNyse, G::kTick, true, "2014-06-02", false},
    {"options_quotes", "us_options_opra", "quotes_v1",
     "ticker,ask_exchange,ask_price,ask_size,bid_exchange,bid_price,bid_size,"
     "sequence_number,sip_timestamp",
     FC::kNyse, G::kTick, true, "2022-03-07", false},
    {"indices_daily", "us_indices", "day_aggs_v1", kIndexAggHeader, FC::kNyse, G::kDay,
     false, "2023-02-14", false},
    {"indices_minute", "us_indices", "minute_aggs_v1", kIndexAggHeader,
     FC::kNysePlusHolidays, G::kMinute, false, "2023-02-14", false},
    {"indices_values", "us_indices", "values_v1", "ticker,value,timestamp",
     FC::kNysePlusHolidays, G::kTick, false, "2023-02-14", false},
    {"forex_daily", "global_forex", "day_aggs_v1", kAggHeader, FC::kSundayToFriday,
     G::kDay, false, "", false},
    {"forex_minute", "global_forex", "minute_aggs_v1", kAggHeader, FC::kSundayToFriday,
     G::kMinute, false, "", false},
    {"forex_quotes", "global_forex", "quotes_v1",
     "ticker,ask_exchange,ask_price,bid_exchange,bid_price,participant_timestamp",
     FC::kSundayToFriday, G::kTick, false, "", false},
    {"crypto_daily", "global_crypto", "day_aggs_v1", kAggHeader, FC::kEveryDay, G::kDay,
     false, "", false},
    {"crypto_minute", "global_crypto", "minute_aggs_v1", kAggHeader, FC::kEveryDay,
     G::kMinute, false, "", false},
    {"crypto_trades", "global_crypto", "trades_v1",
     "ticker,conditions,exchange,id,participant_timestamp,price,size", FC::kEveryDay,
     G::kTick, false, "", false},
#define QLAKE_FUTURES_EXCHANGE(ex)                                                  \
  {"futures_" #ex "_minute",                                                        \
   "us_futures_" #ex,                                                               \
   "minute_aggs_v1",                                                                \
   kFuturesAggHeader,                                                               \
   FC::kFutures,                                                                    \
   G::kMinute,                                                                      \
   false,                                                                           \
   "2017-04-03",                                                                    \
   false},                                                                          \
      {"futures_" #ex "_session",                                                   \
       "us_futures_" #ex,                                                           \
       "session_aggs_v1",                                                           \
       kFuturesAggHeader,                                                           \
       FC::kFutures,                                                                \
       G::kSession,                                                                 \
       false,                                                                       \
       "2017-04-03",                                                                \
       false},                                                                      \
      {"futures_" #ex "_trades",                                                    \
       "us_futures_" #ex,                                                           \
       "trades_v1",                                                                 \
       "ticker,timestamp,sequence_number,report_sequence,price,size,correction,"    \
       "exchange,"                                                                  \
       "session_end_date",                                                          \
       FC::kFutures,                                                                \
       G::kTick,                                                                    \
       false,                                                                       \
       "2017-04-03",                                                                \
       false},                                                                      \
  {                                                                                 \
    "futures_" #ex "_quotes", "us_futures_" #ex, "quotes_v1",                       \
        "ticker,timestamp,sequence_number,report_sequence,ask_timestamp,ask_price," \
        "ask_size,bid_timestamp,bid_price,bid_size,exchange,session_end_date",      \
        FC::kFutures, G::kTick, false, "2017-04-03", false                          \
  }
    QLAKE_FUTURES_EXCHANGE(cbot),
    QLAKE_FUTURES_EXCHANGE(cme),
    QLAKE_FUTURES_EXCHANGE(comex),
    QLAKE_FUTURES_EXCHANGE(nymex),
#undef QLAKE_FUTURES_EXCHANGE
};

std::string ValidNames() {
  std::string out;
  for (const auto& d : kDatasets) {
    if (!out.empty()) out += ", ";
    out += d.name;
  }
  return out;
}

}  // namespace

std::string_view FileCalendarName(FileCalendar c) {
  switch (c) {
    case FC::kNyse:
      return "nyse";
    case FC::kNysePlusHolidays:
      return "nyse+holidays";
    case FC::kSundayToFriday:
      return "sunday-friday";
    case FC::kEveryDay:
      return "every-day";
    case FC::kFutures:
      return "futures";
  }
  return "?";
}

std::string DatasetSpec::Prefix() const {
  return fmt::format("{}/{}", asset_prefix, feed);
}

std::vector<std::string_view> DatasetSpec::Columns() const {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos <= header.size()) {
    auto comma = header.find(',', pos);
    if (comma == std::string_view::npos) comma = header.size();
    out.push_back(header.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

std::span<const DatasetSpec> Datasets() { return kDatasets; }

arrow::Result<const DatasetSpec*> FindDataset(std::string_view name) {
  for (const auto& d : kDatasets) {
    if (d.name == name) return &d;
  }
  return arrow::Status::KeyError("unknown dataset '", name,
                                 "'; valid datasets: ", ValidNames());
}

arrow::Result<std::vector<const DatasetSpec*>> ParseDatasetList(std::string_view list) {
  std::vector<const DatasetSpec*> out;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    auto comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    auto name = list.substr(pos, comma - pos);
    if (!name.empty()) {
      ARROW_ASSIGN_OR_RAISE(auto spec, FindDataset(name));
      bool dup = false;
      for (auto* s : out) dup |= (s == spec);
      if (!dup) out.push_back(spec);
    }
    pos = comma + 1;
  }
  if (out.empty()) return arrow::Status::Invalid("empty dataset list");
  return out;
}

std::string KeyFor(const DatasetSpec& spec, Date d) {
  std::string day = FormatDate(d);  // YYYY-MM-DD
  return fmt::format("{}/{}/{}/{}/{}.csv.gz", spec.asset_prefix, spec.feed,
                     day.substr(0, 4), day.substr(5, 2), day);
}

arrow::Result<ParsedKey> ParseKey(std::string_view key) {
  auto bad = [&](std::string_view why) {
    return arrow::Status::Invalid("'", key, "' is not a flat-file key (", why,
                                  "); expected <asset>/<feed>/YYYY/MM/YYYY-MM-DD.csv.gz");
  };
  constexpr std::string_view kSuffix = ".csv.gz";
  if (key.size() < kSuffix.size() + 10 + 9 ||
      key.substr(key.size() - kSuffix.size()) != kSuffix) {
    return bad("no YYYY-MM-DD.csv.gz file name");
  }
  auto stem = key.substr(key.size() - kSuffix.size() - 10, 10);
  auto date = ParseDate(stem);
  if (!date.ok()) return bad("bad date in the file name");
  auto dir = key.substr(0, key.size() - kSuffix.size() - 10);  // ".../YYYY/MM/"
  std::string ymd = FormatDate(*date);
  std::string tail = fmt::format("/{}/{}/", ymd.substr(0, 4), ymd.substr(5, 2));
  if (dir.size() <= tail.size() || dir.substr(dir.size() - tail.size()) != tail) {
    return bad("the YYYY/MM folders do not match the file's date");
  }
  auto prefix = dir.substr(0, dir.size() - tail.size());
  for (const auto& d : kDatasets) {
    if (d.Prefix() == prefix) return ParsedKey{&d, *date};
  }
  return bad("unknown dataset prefix");
}

std::string_view DayExpectationName(DayExpectation::Kind k) {
  switch (k) {
    case DayExpectation::Kind::kExpected:
      return "expected";
    case DayExpectation::Kind::kNotExpected:
      return "not-expected";
    case DayExpectation::Kind::kUnknown:
      return "unknown";
  }
  return "?";
}

arrow::Result<DayExpectation> ExpectFile(const DatasetSpec& spec, Date d) {
  using K = DayExpectation::Kind;
  if (!spec.first_date.empty()) {
    ARROW_ASSIGN_OR_RAISE(Date first, ParseDate(spec.first_date));
    if (d < first)
      return DayExpectation{K::kNotExpected, "before the dataset's first file"};
  }
  const date::weekday wd{d};
  switch (spec.calendar) {
    case FileCalendar::kNyse: {
      ARROW_ASSIGN_OR_RAISE(auto reason, NyseCalendar::Get().ClosureReason(d));
      if (reason.empty()) return DayExpectation{K::kExpected, ""};
      return DayExpectation{K::kNotExpected, reason};
    }
    case FileCalendar::kNysePlusHolidays:
      // Index minute files and values exist on market holidays, not on weekends.
      if (wd == date::Saturday || wd == date::Sunday) {
        return DayExpectation{K::kNotExpected, "weekend"};
      }
      return DayExpectation{K::kExpected, ""};
    case FileCalendar::kSundayToFriday:
      if (wd == date::Saturday) return DayExpectation{K::kNotExpected, "Saturday"};
      return DayExpectation{K::kExpected, ""};
    case FileCalendar::kEveryDay:
      return DayExpectation{K::kExpected, ""};
    case FileCalendar::kFutures:
      return DayExpectation{K::kUnknown, ""};
  }
  return DayExpectation{};
}

}  // namespace qlake::catalog

// File: qlake/catalog/datasets.h
//
// The flat-file catalog as data: every dataset of the Massive bucket with its S3 key
// layout, the header its files are expected to carry, the calendar that says on which
// days a file exists, and whether the lake can ingest it yet. Adding a dataset is a row
// in the table in datasets.cc, not new code.
//
// Key layout (shared/docs/flatfiles.md section 2), one gzipped CSV per dataset per day:
//   <asset_prefix>/<feed>/<YYYY>/<MM>/<YYYY-MM-DD>.csv.gz
//   us_stocks_sip/minute_aggs_v1/2025/09/2025-09-29.csv.gz
//
// Thread safety: the table is immutable; all functions are safe to call concurrently.

#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>

#include "qlake/core/dates.h"

namespace qlake::catalog {

/// Which days a dataset has files on (flatfiles.md section 8).
enum class FileCalendar : int8_t {
  kNyse,              // NYSE trading days only (US stocks and options)
  kNysePlusHolidays,  // weekdays including market holidays (US index minute aggs)
  kSundayToFriday,    // forex
  kEveryDay,          // crypto
  kFutures,           // per exchange; trading days start the previous evening
};
std::string_view FileCalendarName(FileCalendar c);

enum class Granularity : int8_t { kDay, kMinute, kSession, kTick };

struct DatasetSpec {
  std::string_view name;          // qlake's name: "stocks_minute"
  std::string_view asset_prefix;  // "us_stocks_sip"
  std::string_view feed;          // "minute_aggs_v1"
  std::string_view header;        // expected CSV header, comma-separated
  FileCalendar calendar;
  Granularity granularity;
  bool options = false;         // tickers are OCC option symbols ("O:SPY250117C00590000")
  std::string_view first_date;  // earliest file seen in the bucket ("" if unknown)
  bool ingestible = false;      // the lake stage can ingest it today

  /// "us_stocks_sip/minute_aggs_v1"
  std::string Prefix() const;
  /// The expected column names, split from `header`.
  std::vector<std::string_view> Columns() const;
};

/// Every dataset, in catalog order (stocks, options, indices, forex, crypto, futures).
std::span<const DatasetSpec> Datasets();

/// The dataset called `name`, or KeyError listing the valid names.
arrow::Result<const DatasetSpec*> FindDataset(std::string_view name);

/// Splits "a,b,c" into names; an empty list is Invalid. Unknown names are KeyError.
arrow::Result<std::vector<const DatasetSpec*>> ParseDatasetList(std::string_view list);

/// The S3 key (relative to the bucket root) of `spec`'s file for day `d`.
std::string KeyFor(const DatasetSpec& spec, Date d);

/// Inverse of KeyFor: the dataset and day of a key, or Invalid if the key is not a
/// flat-file key of a known dataset (e.g. a listing entry of another folder).
struct ParsedKey {
  const DatasetSpec* spec;
  Date date;
};
arrow::Result<ParsedKey> ParseKey(std::string_view key);

/// Whether the bucket should hold `spec`'s file for a day, by the dataset's calendar
/// (flatfiles.md section 8) and first date. The bucket listing is the truth for what
/// exists; this says what is missing.
struct DayExpectation {
  enum class Kind : int8_t {
    kExpected,     // a file should exist (it may still be unpublished or missing)
    kNotExpected,  // weekend, market holiday, Saturday (forex), before the first file
    kUnknown,      // calendar not modelled (futures): only the listing knows
  };
  Kind kind = Kind::kUnknown;
  /// Why no file is expected ("weekend", "Thanksgiving Day", "Saturday", "before the
  /// dataset's first file 2003-09-10"), or "" for kExpected. Static storage.
  std::string_view reason;
};
std::string_view DayExpectationName(DayExpectation::Kind k);  // "expected", ...

/// Invalid for NYSE-based calendars outside the NYSE calendar's years.
arrow::Result<DayExpectation> ExpectFile(const DatasetSpec& spec, Date d);

}  // namespace qlake::catalog

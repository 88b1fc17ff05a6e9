// File: qlake/features/features.h
//
// Features computed on the lake, stored in the lake beside the raw data:
//
//   raw dataset      feature dataset             features (docs/features.md defines each)
//   stocks_daily     features/stocks_daily       daily_return, intraday_return,
//   log_return,
//                                                alpha_daily, price_range, vwap,
//                                                relative_volume (+ vwap_source)
//   stocks_minute    features/stocks_minute      minute_return, price_velocity,
//   alpha_minute options_daily    features/options_daily      moneyness, log_moneyness,
//   days_to_expiry, options_minute   features/options_minute trading_days_to_expiry,
//   relative_volume,
//                                                bid_ask_spread
//
// A feature day is a lake commit like a raw day (same protocol, daily layout: one file
// year=YYYY/month=MM/YYYY-MM-DD.parquet sorted by (ticker, window_start)), keyed by
// `ticker`, `window_start` (the raw bar's) and `date`, so it joins 1:1 with the raw rows.
//
// Look-back. Computing day t reads only what its features need: the raw day t, the
// previous `relative_volume_window` trading days of the same daily dataset (t-1 for
// returns), that day's stocks_minute commit for the daily vwap, and that day's stocks
// commit for the options' underlying price. A range is computed in date order with the
// look-back days cached, so each raw file is read once: O(range + look-back).
//
// Incremental. Every feature commit records the commit (transaction id) of every raw day
// it read, or null for a look-back day that was not in the lake, plus the parameters.
// ComputeFeatures skips a day whose record matches the current inputs ("up to date"),
// recomputes it otherwise, and also re-checks the committed feature days that follow the
// range within the look-back, so re-ingesting a raw day and running features for that day
// refreshes every day whose look-back includes it.
//
// Parallelism: a range is split into `parallel_days` contiguous chunks computed on their
// own threads (Parquet column encoding stays single-threaded then); the files do not
// depend on the split.
//
// Thread safety: ComputeFeatures may run concurrently for different feature datasets; two
// runs must not write the same feature day at once (the lake refuses within a process).

#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "qlake/core/config.h"
#include "qlake/core/dates.h"
#include "qlake/ingest/parquet_out.h"

namespace qlake::features {

/// The raw dataset a feature set is computed from.
enum class FeatureSet : uint8_t {
  kStocksDaily,
  kStocksMinute,
  kOptionsDaily,
  kOptionsMinute
};

/// "stocks_daily" ... (the raw dataset's name).
std::string_view FeatureSetName(FeatureSet s);
/// From the raw dataset name or the feature dataset name ("features/stocks_daily").
arrow::Result<FeatureSet> ParseFeatureSet(std::string_view name);
/// "features/stocks_daily" ...
std::string FeatureDatasetName(FeatureSet s);

/// Parameters (config keys features.*). Part of every feature commit: changing one makes
/// the days computed with the old value stale.
struct FeatureParams {
  /// relative_volume: trading days (daily sets) or bars (options_minute) averaged.
  int relative_volume_window = 20;
  /// relative_volume is NaN until this many of the window's days/bars have a bar.
  int relative_volume_min_periods = 10;
  /// alpha_*: symbols whose dollar volume of the day is at least this are "liquid".
  double liquid_dollar_volume = 1e6;
  /// price_velocity: the bar k bars back.
  int velocity_bars = 5;

  arrow::Status Validate() const;
};

/// FeatureParams from `config` (features.relative_volume_window,
/// relative_volume_min_periods, velocity_bars, liquid_dollar_volume).
arrow::Result<FeatureParams> FeatureParamsFromConfig(const Config& config);

/// One row of the per-day input after preparation: what the feature functions read.
/// Vectors are per output row (length n) unless noted; a preparation step fills only the
/// vectors its set needs. NaN means "not available".
struct DayFrame {
  int64_t n = 0;
  int32_t date = 0;                   // the day, days since 1970
  std::vector<int64_t> window_start;  // ns
  std::vector<double> open, high, low, close, volume;
  /// Close of the comparison bar: daily sets the symbol's close on t-1, minute sets the
  /// symbol's previous bar of the same day.
  std::vector<double> prev_close;
  /// Mean volume of the look-back (NaN below min periods).
  std::vector<double> volume_mean;
  /// Cross-sectional mean log return of liquid symbols for the row's bar (day / minute).
  std::vector<double> market_log_return;
  /// stocks_daily: minute-bar vwap of the day (NaN if the minute lake lacks the symbol).
  std::vector<double> minute_vwap;
  /// stocks_minute: close and window_start `velocity_bars` bars back (NaN / 0 if none).
  std::vector<double> lag_close;
  std::vector<int64_t> lag_window_start;
  /// Options: strike, expiration (days since 1970), underlying close at the same bar,
  /// NYSE sessions in (date, expiration].
  std::vector<double> strike, underlying_close;
  std::vector<int32_t> expiration, trading_days_to_expiry;
};

enum class FeatureType : uint8_t { kFloat64, kInt32 };

/// One feature: adding a feature is one row in the table of features.cc (plus a
/// preparation step if it needs an input no other feature reads).
struct FeatureDef {
  std::string_view name;
  FeatureSet set;
  FeatureType type;
  /// One-line formula (docs/features.md has the full text).
  std::string_view formula;
  /// Value of row i; NaN for "no value" (an int32 column stores null).
  double (*value)(const DayFrame& frame, int64_t i);
  /// If not empty, the feature is NaN on every row for this reason (recorded in the
  /// commit record's validation.nan_reasons), e.g. no quotes in the lake.
  std::string_view always_nan_reason = {};
};

/// Every feature, in column order.
std::span<const FeatureDef> Features();
/// The features of one set, in column order.
std::vector<const FeatureDef*> FeaturesOf(FeatureSet set);

struct FeatureOptions {
  FeatureSet set = FeatureSet::kStocksDaily;
  /// Calendar dates, inclusive; non-trading days are skipped.
  Date from{};
  Date to{};
  /// Lake root: folder or URI.
  std::string lake;
  FeatureParams params;
  /// Recompute days that are up to date.
  bool force = false;
  /// Re-check committed feature days after `to` whose look-back includes the range.
  bool refresh_dependents = true;
  bool fsync = true;

  // Performance
  ingest::ParquetOutOptions parquet;
  /// Threads, each computing a contiguous chunk of the days (config
  /// features.parallel_days). Each chunk reads its own look-back; minute sets hold one
  /// day per thread in memory.
  int parallel_days = 1;

  arrow::Status Validate() const;
};

struct FeatureDayReport {
  Date day{};
  /// "computed", "up_to_date" or "failed".
  std::string action;
  /// Computed because a later range's look-back contained the range (dependent refresh).
  bool dependent = false;
  arrow::Status status;
  int64_t rows = 0;
  double seconds = 0;
  /// stocks_daily: rows whose vwap came from minute bars / from the day bar.
  int64_t vwap_minute = 0;
  int64_t vwap_day = 0;
};

struct FeatureReport {
  std::string dataset;  // "features/stocks_daily"
  std::vector<FeatureDayReport> days;
  int64_t input_rows = 0;  // raw rows read (the day's own rows and the look-back)
  double seconds = 0;

  int64_t failed() const;
  int64_t computed() const;
  /// OK, the single failure, or Cancelled("N of M days failed") (exit code 7).
  arrow::Status Summary() const;
};

/// Computes the feature days of [from, to] (see the file comment). Returns an error only
/// for bad options or an unusable lake; per-day failures (e.g. the raw day is not in the
/// lake) are in the report.
arrow::Result<FeatureReport> ComputeFeatures(const FeatureOptions& options);

}  // namespace qlake::features

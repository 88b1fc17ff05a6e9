#include "qlake/features/features.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/table.h>
#include <fmt/format.h>
#include <parquet/arrow/reader.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "qlake/catalog/datasets.h"
#include "qlake/catalog/nyse_calendar.h"
#include "qlake/catalog/symbols.h"
#include "qlake/core/version.h"
#include "qlake/ingest/agg_day.h"
#include "qlake/ingest/layout.h"
#include "qlake/lake/lake.h"

namespace qlake::features {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kNsPerMinute = 60e9;
// Bumped when a definition changes: days computed by an older definition become stale.
constexpr int kFeatureVersion = 1;
constexpr std::string_view kNoQuotes =
    "no options quotes in the lake (quotes ingestion is not implemented yet)";

double Ratio(double a, double b) { return (b > 0 && std::isfinite(a)) ? a / b : kNaN; }

// --- The feature table ---------------------------------------------------------------

double DailyReturn(const DayFrame& f, int64_t i) {
  return f.close[i] / f.prev_close[i] - 1.0;
}
double LogReturn(const DayFrame& f, int64_t i) {
  return std::log(f.close[i] / f.prev_close[i]);
}
double Alpha(const DayFrame& f, int64_t i) {
  return LogReturn(f, i) - f.market_log_return[i];
}
double IntradayReturn(const DayFrame& f, int64_t i) {
  return f.close[i] / f.open[i] - 1.0;
}
double PriceRange(const DayFrame& f, int64_t i) {
  return (f.high[i] - f.low[i]) / f.close[i];
}
double TypicalPrice(const DayFrame& f, int64_t i) {
  return (f.high[i] + f.low[i] + f.close[i]) / 3.0;
}
double Vwap(const DayFrame& f, int64_t i) {
  return std::isfinite(f.minute_vwap[i]) ? f.minute_vwap[i] : TypicalPrice(f, i);
}
double RelativeVolume(const DayFrame& f, int64_t i) {
  return Ratio(f.volume[i], f.volume_mean[i]);
}
double PriceVelocity(const DayFrame& f, int64_t i) {
  if (!std::isfinite(f.lag_close[i])) return kNaN;
  double minutes =
      static_cast<double>(f.window_start[i] - f.lag_window_start[i]) / kNsPerMinute;
  return minutes > 0 ? (f.close[i] - f.lag_close[i]) / minutes : kNaN;
}
double Moneyness(const DayFrame& f, int64_t i) {
  return f.underlying_close[i] / f.strike[i];
}
double LogMoneyness(const DayFrame& f, int64_t i) {
  return std::log(f.underlying_close[i] / f.strike[i]);
}
double DaysToExpiry(const DayFrame& f, int64_t i) {
  return static_cast<double>(f.expiration[i] - f.date);
}
double TradingDaysToExpiry(const DayFrame& f, int64_t i) {
  int32_t v = f.trading_days_to_expiry[i];
  return v < 0 ? kNaN : static_cast<double>(v);
}
double AlwaysNaN(const DayFrame&, int64_t) { return kNaN; }

using FS = FeatureSet;
using FT = FeatureType;
constexpr FeatureDef kFeatures[] = {
    {"daily_return", FS::kStocksDaily, FT::kFloat64, "close_t / close_{t-1} - 1",
     DailyReturn},
    {"intraday_return", FS::kStocksDaily, FT::kFloat64, "close / open - 1",
     IntradayReturn},
    {"log_return", FS::kStocksDaily, FT::kFloat64, "ln(close_t / close_{t-1})",
     LogReturn},
    {"alpha_daily", FS::kStocksDaily, FT::kFloat64,
     "log_return - mean(log_return of liquid symbols that day)", Alpha},
    {"price_range", FS::kStocksDaily, FT::kFloat64, "(high - low) / close", PriceRange},
    {"vwap", FS::kStocksDaily, FT::kFloat64,
     "sum(typical * volume) / sum(volume) over the day's minute bars, else the day bar's "
     "typical price",
     Vwap},
    {"relative_volume", FS::kStocksDaily, FT::kFloat64,
     "volume_t / mean(volume over the previous N trading days)", RelativeVolume},
    {"minute_return", FS::kStocksMinute, FT::kFloat64,
     "close_m / close_{previous bar, same day} - 1", DailyReturn},
    {"price_velocity", FS::kStocksMinute, FT::kFloat64,
     "(close_m - close_{k bars back}) / elapsed minutes", PriceVelocity},
    {"alpha_minute", FS::kStocksMinute, FT::kFloat64,
     "ln return of the minute - mean over liquid symbols for the same minute", Alpha},
    {"moneyness", FS::kOptionsDaily, FT::kFloat64, "S / K", Moneyness},
    {"log_moneyness", FS::kOptionsDaily, FT::kFloat64, "ln(S / K)", LogMoneyness},
    {"days_to_expiry", FS::kOptionsDaily, FT::kInt32, "expiration - date (calendar days)",
     DaysToExpiry},
    {"trading_days_to_expiry", FS::kOptionsDaily, FT::kInt32,
     "NYSE sessions in (date, expiration]", TradingDaysToExpiry},
    {"relative_volume", FS::kOptionsDaily, FT::kFloat64,
     "volume_t / mean(contract volume over the previous N trading days)", RelativeVolume},
    {"bid_ask_spread", FS::kOptionsDaily, FT::kFloat64, "(ask - bid) / mid", AlwaysNaN,
     kNoQuotes},
    {"moneyness", FS::kOptionsMinute, FT::kFloat64, "S / K", Moneyness},
    {"log_moneyness", FS::kOptionsMinute, FT::kFloat64, "ln(S / K)", LogMoneyness},
    {"days_to_expiry", FS::kOptionsMinute, FT::kInt32,
     "expiration - date (calendar days)", DaysToExpiry},
    {"trading_days_to_expiry", FS::kOptionsMinute, FT::kInt32,
     "NYSE sessions in (date, expiration]", TradingDaysToExpiry},
    {"relative_volume", FS::kOptionsMinute, FT::kFloat64,
     "volume_m / mean(volume of the contract's previous N bars of the day)",
     RelativeVolume},
    {"bid_ask_spread", FS::kOptionsMinute, FT::kFloat64, "(ask - bid) / mid", AlwaysNaN,
     kNoQuotes},
};

// --- Reading raw days ------------------------------------------------------------------

// Tickers (and OCC roots) of every day read in a run, as dense ids.
class Names {
 public:
  int32_t Id(std::string_view s) {
    auto it = ids_.find(std::string(s));
    if (it != ids_.end()) return it->second;
    int32_t id = static_cast<int32_t>(names_.size());
    names_.emplace_back(s);
    ids_.emplace(names_.back(), id);
    return id;
  }
  // -1 if `s` was never seen.
  int32_t Find(std::string_view s) const {
    auto it = ids_.find(std::string(s));
    return it == ids_.end() ? -1 : it->second;
  }
  const std::string& Name(int32_t id) const { return names_[static_cast<size_t>(id)]; }
  size_t size() const { return names_.size(); }
  // OCC root of an option ticker's id (-1 if not an OCC ticker).
  int32_t RootOf(int32_t id) {
    if (roots_.size() <= static_cast<size_t>(id)) roots_.resize(names_.size(), -2);
    int32_t& r = roots_[static_cast<size_t>(id)];
    if (r == -2) {
      auto occ = catalog::ParseOcc(Name(id));
      r = occ.ok() ? Id(occ->root) : -1;
    }
    return r;
  }

 private:
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::string> names_;
  std::vector<int32_t> roots_;
};

enum Col : unsigned {
  kTicker = 1,
  kWs = 2,
  kOpen = 4,
  kHigh = 8,
  kLow = 16,
  kClose = 32,
  kVolume = 64,
  kStrike = 128,
  kExpiration = 256,
};

struct RawDay {
  std::vector<int32_t> id;
  std::vector<int64_t> ws;
  std::vector<double> open, high, low, close, volume, strike;
  std::vector<int32_t> expiration;
  std::shared_ptr<arrow::DataType> ws_type;
  int64_t rows() const { return static_cast<int64_t>(id.size()); }
};

template <typename ArrowArray, typename T>
arrow::Status AppendValues(const arrow::ChunkedArray& col, std::vector<T>* out) {
  for (const auto& chunk : col.chunks()) {
    auto arr = std::dynamic_pointer_cast<ArrowArray>(chunk);
    if (!arr) {
      return arrow::Status::Invalid("unexpected type ", chunk->type()->ToString());
    }
    if (arr->null_count() > 0) return arrow::Status::Invalid("unexpected nulls");
    for (int64_t i = 0; i < arr->length(); ++i) {
      out->push_back(static_cast<T>(arr->Value(i)));
    }
  }
  return arrow::Status::OK();
}

// Reads the given columns of every data file of a committed raw day.
arrow::Result<RawDay> ReadRaw(lake::Lake& lake, const lake::CommitRecord& record,
                              unsigned cols, Names* names) {
  RawDay day;
  const std::string where = fmt::format("{} {}", record.dataset, FormatDate(record.day));
  for (const auto& f : record.files) {
    const std::string path = lake.PathOf(record.dataset + "/" + f.path);
    ARROW_ASSIGN_OR_RAISE(auto file, lake.filesystem()->OpenInputFile(path));
    ARROW_ASSIGN_OR_RAISE(auto reader,
                          parquet::arrow::OpenFile(file, arrow::default_memory_pool()));
    std::shared_ptr<arrow::Schema> schema;
    ARROW_RETURN_NOT_OK(reader->GetSchema(&schema));
    struct Want {
      Col col;
      const char* name;
    };
    static constexpr Want kWants[] = {
        {kTicker, "ticker"}, {kWs, "window_start"}, {kOpen, "open"},
        {kHigh, "high"},     {kLow, "low"},         {kClose, "close"},
        {kVolume, "volume"}, {kStrike, "strike"},   {kExpiration, "expiration"}};
    std::vector<int> indices;
    for (const auto& w : kWants) {
      if (!(cols & w.col)) continue;
      int idx = schema->GetFieldIndex(w.name);
      if (idx < 0) {
        return arrow::Status::Invalid(where, ": ", path, " has no column '", w.name, "'");
      }
      indices.push_back(idx);
    }
    ARROW_ASSIGN_OR_RAISE(auto t, reader->ReadTable(indices));
    auto status = [&]() -> arrow::Status {
      if (cols & kTicker) {
        for (const auto& chunk : t->GetColumnByName("ticker")->chunks()) {
          auto dict = std::dynamic_pointer_cast<arrow::DictionaryArray>(chunk);
          if (!dict) return arrow::Status::Invalid("ticker is not a dictionary column");
          auto values = std::dynamic_pointer_cast<arrow::StringArray>(dict->dictionary());
          if (!values) return arrow::Status::Invalid("ticker dictionary is not utf8");
          std::vector<int32_t> map(static_cast<size_t>(values->length()));
          for (int64_t k = 0; k < values->length(); ++k) {
            map[static_cast<size_t>(k)] = names->Id(values->GetView(k));
          }
          for (int64_t i = 0; i < dict->length(); ++i) {
            day.id.push_back(map[static_cast<size_t>(dict->GetValueIndex(i))]);
          }
        }
      }
      if (cols & kWs) {
        auto col = t->GetColumnByName("window_start");
        day.ws_type = col->type();
        ARROW_RETURN_NOT_OK((AppendValues<arrow::TimestampArray>(*col, &day.ws)));
      }
      std::pair<Col, std::vector<double>*> floats[] = {
          {kOpen, &day.open}, {kHigh, &day.high}, {kLow, &day.low}, {kClose, &day.close}};
      const char* float_names[] = {"open", "high", "low", "close"};
      for (int k = 0; k < 4; ++k) {
        if (cols & floats[k].first) {
          ARROW_RETURN_NOT_OK((AppendValues<arrow::FloatArray>(
              *t->GetColumnByName(float_names[k]), floats[k].second)));
        }
      }
      if (cols & kVolume) {
        ARROW_RETURN_NOT_OK((AppendValues<arrow::UInt64Array>(
            *t->GetColumnByName("volume"), &day.volume)));
      }
      if (cols & kStrike) {
        ARROW_RETURN_NOT_OK((AppendValues<arrow::DoubleArray>(
            *t->GetColumnByName("strike"), &day.strike)));
      }
      if (cols & kExpiration) {
        ARROW_RETURN_NOT_OK((AppendValues<arrow::Date32Array>(
            *t->GetColumnByName("expiration"), &day.expiration)));
      }
      return arrow::Status::OK();
    }();
    if (!status.ok())
      return status.WithMessage(where, ": ", path, ": ", status.message());
  }
  return day;
}

// Sorts the rows by (ticker, window_start) unless they already are (the daily layout
// always is; the original layout's per-symbol files come in path order).
void SortRows(RawDay* d, const Names& names) {
  const int64_t n = d->rows();
  auto less = [&](int64_t a, int64_t b) {
    const auto ia = d->id[static_cast<size_t>(a)], ib = d->id[static_cast<size_t>(b)];
    if (ia != ib) return names.Name(ia) < names.Name(ib);
    return d->ws[static_cast<size_t>(a)] < d->ws[static_cast<size_t>(b)];
  };
  bool sorted = true;
  for (int64_t i = 1; i < n && sorted; ++i) sorted = !less(i, i - 1);
  if (sorted) return;
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), less);
  auto apply = [&](auto& v) {
    if (v.empty()) return;
    std::remove_reference_t<decltype(v)> out(v.size());
    for (size_t i = 0; i < perm.size(); ++i) out[i] = v[static_cast<size_t>(perm[i])];
    v.swap(out);
  };
  apply(d->id);
  apply(d->ws);
  apply(d->open);
  apply(d->high);
  apply(d->low);
  apply(d->close);
  apply(d->volume);
  apply(d->strike);
  apply(d->expiration);
}

// A look-back day of a daily dataset: id -> (close, volume).
struct LookbackDay {
  std::vector<int32_t> id;
  std::vector<double> close, volume;
};

// For each row of a day (ticker ids `ids`): the mean volume over the look-back days with
// a bar (NaN below min_periods) and, if prev_close is given, the close of back[0] (t-1).
// One sequential pass per look-back day, no per-row hashing.
void LookbackStats(const std::vector<const LookbackDay*>& back,
                   const std::vector<int32_t>& ids, size_t num_ids, int min_periods,
                   std::vector<double>* mean, std::vector<double>* prev_close) {
  const size_t n = ids.size();
  std::vector<int32_t> row_of(num_ids, -1);
  for (size_t i = 0; i < n; ++i)
    row_of[static_cast<size_t>(ids[i])] = static_cast<int32_t>(i);
  std::vector<double> sum(n, 0);
  std::vector<int32_t> count(n, 0);
  mean->assign(n, kNaN);
  if (prev_close) prev_close->assign(n, kNaN);
  for (size_t k = 0; k < back.size(); ++k) {
    const LookbackDay* b = back[k];
    if (!b) continue;
    for (size_t j = 0; j < b->id.size(); ++j) {
      const auto id = static_cast<size_t>(b->id[j]);
      const int32_t r = id < num_ids ? row_of[id] : -1;
      if (r < 0) continue;
      const auto row = static_cast<size_t>(r);
      if (k == 0 && prev_close) (*prev_close)[row] = b->close[j];
      sum[row] += b->volume[j];
      count[row] += 1;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (count[i] >= min_periods && count[i] > 0) (*mean)[i] = sum[i] / count[i];
  }
}

struct KeyHash {
  size_t operator()(const std::pair<int32_t, int64_t>& k) const {
    return std::hash<int64_t>()(k.second * 1'000'003 + k.first);
  }
};

// --- One run ---------------------------------------------------------------------------

std::string AbsoluteUnlessUri(const std::string& uri_or_path) {
  if (uri_or_path.find("://") != std::string::npos) return uri_or_path;
  return std::filesystem::absolute(uri_or_path).lexically_normal().string();
}

bool IsDaily(FeatureSet s) {
  return s == FeatureSet::kStocksDaily || s == FeatureSet::kOptionsDaily;
}
bool IsOptions(FeatureSet s) {
  return s == FeatureSet::kOptionsDaily || s == FeatureSet::kOptionsMinute;
}

class Run {
 public:
  Run(const FeatureOptions& o, std::shared_ptr<lake::Lake> lake)
      : o_(o), lake_(std::move(lake)), raw_(FeatureSetName(o.set)) {}

  struct Target {
    Date day;
    bool dependent;
  };
  /// The trading days of the range, then the committed feature days after it whose
  /// look-back includes it (dependents).
  arrow::Result<std::vector<Target>> Targets();
  /// Computes (or skips) `targets` in order; per-day results go to out->days.
  void Process(std::span<const Target> targets, FeatureReport* out);

 private:
  using Record = std::optional<lake::CommitRecord>;

  arrow::Result<const Record*> Commit(const std::string& dataset, Date day);
  // The previous `window` trading days of `day`, most recent first (fewer near the start
  // of the calendar).
  std::vector<Date> Lookback(Date day, int count) const;
  // "dataset/day" -> txn or null, for every raw day the features of `day` read.
  arrow::Result<nlohmann::json> Inputs(Date day);
  nlohmann::json Params() const;
  arrow::Result<const LookbackDay*> Daily(const std::string& dataset, Date day);
  arrow::Status ComputeDay(Date day, FeatureDayReport* report);
  arrow::Status PrepareStocksDaily(Date day, const RawDay& raw, DayFrame* f,
                                   FeatureDayReport* report, nlohmann::json* notes);
  arrow::Status PrepareStocksMinute(const RawDay& raw, DayFrame* f);
  arrow::Status PrepareOptions(Date day, const RawDay& raw, DayFrame* f,
                               nlohmann::json* notes);
  int32_t TradingDaysTo(Date day, int32_t expiration);

  const FeatureOptions& o_;
  std::shared_ptr<lake::Lake> lake_;
  const std::string raw_;
  Names names_;
  std::map<std::pair<std::string, int32_t>, Record> records_;
  std::map<std::pair<std::string, int32_t>, std::shared_ptr<LookbackDay>> lookback_;
  std::unordered_map<int64_t, int32_t> sessions_to_;  // (day<<32|exp) -> count
  int64_t input_rows_ = 0;
};

arrow::Result<const Run::Record*> Run::Commit(const std::string& dataset, Date day) {
  auto key = std::make_pair(dataset, ToDate32(day));
  auto it = records_.find(key);
  if (it == records_.end()) {
    ARROW_ASSIGN_OR_RAISE(auto rec, lake_->GetCommit(dataset, day));
    it = records_.emplace(key, std::move(rec)).first;
  }
  return &it->second;
}

std::vector<Date> Run::Lookback(Date day, int count) const {
  std::vector<Date> out;
  Date d = day;
  for (int k = 0; k < count; ++k) {
    auto prev = catalog::NyseCalendar::Get().PreviousTradingDay(d);
    if (!prev.ok()) break;
    d = *prev;
    out.push_back(d);
  }
  return out;
}

arrow::Result<nlohmann::json> Run::Inputs(Date day) {
  nlohmann::json in = nlohmann::json::object();
  auto add = [&](const std::string& ds, Date d) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(const Record* rec, Commit(ds, d));
    in[ds + "/" + FormatDate(d)] = *rec ? nlohmann::json((*rec)->txn) : nlohmann::json();
    return arrow::Status::OK();
  };
  ARROW_RETURN_NOT_OK(add(raw_, day));
  if (IsDaily(o_.set)) {
    for (Date d : Lookback(day, std::max(1, o_.params.relative_volume_window))) {
      ARROW_RETURN_NOT_OK(add(raw_, d));
    }
  }
  switch (o_.set) {
    case FeatureSet::kStocksDaily:
    case FeatureSet::kOptionsMinute:
      ARROW_RETURN_NOT_OK(add("stocks_minute", day));
      break;
    case FeatureSet::kOptionsDaily:
      ARROW_RETURN_NOT_OK(add("stocks_daily", day));
      break;
    case FeatureSet::kStocksMinute:
      break;
  }
  return in;
}

nlohmann::json Run::Params() const {
  nlohmann::json features = nlohmann::json::array();
  for (const auto* f : FeaturesOf(o_.set)) features.push_back(std::string(f->name));
  return {{"version", kFeatureVersion},
          {"features", features},
          {"relative_volume_window", o_.params.relative_volume_window},
          {"relative_volume_min_periods", o_.params.relative_volume_min_periods},
          {"liquid_dollar_volume", o_.params.liquid_dollar_volume},
          {"velocity_bars", o_.params.velocity_bars}};
}

arrow::Result<const LookbackDay*> Run::Daily(const std::string& dataset, Date day) {
  auto key = std::make_pair(dataset, ToDate32(day));
  auto it = lookback_.find(key);
  if (it != lookback_.end()) return it->second.get();
  ARROW_ASSIGN_OR_RAISE(const Record* rec, Commit(dataset, day));
  std::shared_ptr<LookbackDay> lb;
  if (*rec) {
    ARROW_ASSIGN_OR_RAISE(auto raw,
                          ReadRaw(*lake_, **rec, kTicker | kClose | kVolume, &names_));
    lb = std::make_shared<LookbackDay>();
    input_rows_ += raw.rows();
    lb->id = std::move(raw.id);
    lb->close = std::move(raw.close);
    lb->volume = std::move(raw.volume);
  }
  lookback_.emplace(key, lb);
  return lb.get();
}

// Cross-sectional mean of ln(close / prev_close) over liquid rows, per bar key.
template <typename KeyOf>
void MarketMean(DayFrame* f, const std::vector<uint8_t>& liquid, KeyOf key_of) {
  std::unordered_map<int64_t, std::pair<double, int64_t>> sums;
  for (int64_t i = 0; i < f->n; ++i) {
    const auto s = static_cast<size_t>(i);
    if (!liquid[s]) continue;
    double r = std::log(f->close[s] / f->prev_close[s]);
    if (!std::isfinite(r)) continue;
    auto& acc = sums[key_of(i)];
    acc.first += r;
    acc.second += 1;
  }
  f->market_log_return.assign(static_cast<size_t>(f->n), kNaN);
  for (int64_t i = 0; i < f->n; ++i) {
    auto it = sums.find(key_of(i));
    if (it != sums.end()) {
      f->market_log_return[static_cast<size_t>(i)] =
          it->second.first / static_cast<double>(it->second.second);
    }
  }
}

arrow::Status Run::PrepareStocksDaily(Date day, const RawDay& raw, DayFrame* f,
                                      FeatureDayReport* report, nlohmann::json* notes) {
  const auto n = static_cast<size_t>(f->n);
  const int window = o_.params.relative_volume_window;
  std::vector<const LookbackDay*> back;
  for (Date d : Lookback(day, window)) {
    ARROW_ASSIGN_OR_RAISE(auto lb, Daily(raw_, d));
    back.push_back(lb);
  }
  LookbackStats(back, raw.id, names_.size(), o_.params.relative_volume_min_periods,
                &f->volume_mean, &f->prev_close);
  std::vector<uint8_t> liquid(n);
  for (size_t i = 0; i < n; ++i) {
    liquid[i] = f->close[i] * f->volume[i] >= o_.params.liquid_dollar_volume;
  }
  MarketMean(f, liquid, [](int64_t) { return int64_t{0}; });

  // vwap from the day's minute bars when that day is in the lake.
  f->minute_vwap.assign(n, kNaN);
  ARROW_ASSIGN_OR_RAISE(const Record* minute, Commit("stocks_minute", day));
  if (*minute) {
    ARROW_ASSIGN_OR_RAISE(
        auto m,
        ReadRaw(*lake_, **minute, kTicker | kHigh | kLow | kClose | kVolume, &names_));
    input_rows_ += m.rows();
    std::unordered_map<int32_t, std::pair<double, double>> acc;
    for (size_t i = 0; i < m.id.size(); ++i) {
      auto& a = acc[m.id[i]];
      a.first += (m.high[i] + m.low[i] + m.close[i]) / 3.0 * m.volume[i];
      a.second += m.volume[i];
    }
    for (size_t i = 0; i < n; ++i) {
      auto it = acc.find(raw.id[i]);
      if (it != acc.end() && it->second.second > 0) {
        f->minute_vwap[i] = it->second.first / it->second.second;
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    (std::isfinite(f->minute_vwap[i]) ? report->vwap_minute : report->vwap_day) += 1;
  }
  (*notes)["vwap_source"] = {{"minute", report->vwap_minute}, {"day", report->vwap_day}};
  if (!*minute) {
    (*notes)["nan_or_fallback"]["vwap"] =
        "stocks_minute " + FormatDate(day) + " is not in the lake: day-bar typical price";
  }
  return arrow::Status::OK();
}

arrow::Status Run::PrepareStocksMinute(const RawDay& raw, DayFrame* f) {
  const auto n = static_cast<size_t>(f->n);
  const auto k = static_cast<size_t>(o_.params.velocity_bars);
  f->prev_close.assign(n, kNaN);
  f->lag_close.assign(n, kNaN);
  f->lag_window_start.assign(n, 0);
  std::vector<uint8_t> liquid(n);
  size_t start = 0;
  while (start < n) {
    size_t end = start;
    double dollars = 0;
    while (end < n && raw.id[end] == raw.id[start]) {
      dollars += f->close[end] * f->volume[end];
      if (end > start) f->prev_close[end] = f->close[end - 1];
      if (end >= start + k) {
        f->lag_close[end] = f->close[end - k];
        f->lag_window_start[end] = f->window_start[end - k];
      }
      ++end;
    }
    const bool liq = dollars >= o_.params.liquid_dollar_volume;
    for (size_t i = start; i < end; ++i) liquid[i] = liq;
    start = end;
  }
  MarketMean(f, liquid,
             [&](int64_t i) { return f->window_start[static_cast<size_t>(i)]; });
  return arrow::Status::OK();
}

int32_t Run::TradingDaysTo(Date day, int32_t expiration) {
  const int32_t d = ToDate32(day);
  if (expiration < d) return -1;
  const int64_t key = (int64_t{d} << 32) | static_cast<uint32_t>(expiration);
  auto it = sessions_to_.find(key);
  if (it != sessions_to_.end()) return it->second;
  int32_t count = -1;
  if (expiration == d) {
    count = 0;
  } else {
    auto s = catalog::NyseCalendar::Get().Sessions(day + date::days{1},
                                                   FromDate32(expiration));
    if (s.ok()) count = static_cast<int32_t>(s->size());
  }
  sessions_to_.emplace(key, count);
  return count;
}

arrow::Status Run::PrepareOptions(Date day, const RawDay& raw, DayFrame* f,
                                  nlohmann::json* notes) {
  const auto n = static_cast<size_t>(f->n);
  f->strike = raw.strike;
  f->expiration = raw.expiration;
  f->trading_days_to_expiry.resize(n);
  for (size_t i = 0; i < n; ++i) {
    f->trading_days_to_expiry[i] = TradingDaysTo(day, raw.expiration[i]);
  }
  std::vector<int32_t> root(n);
  for (size_t i = 0; i < n; ++i) root[i] = names_.RootOf(raw.id[i]);

  // Underlying price: the stock bar of the OCC root's ticker at the same bar.
  f->underlying_close.assign(n, kNaN);
  const bool daily = o_.set == FeatureSet::kOptionsDaily;
  const std::string stocks = daily ? "stocks_daily" : "stocks_minute";
  ARROW_ASSIGN_OR_RAISE(const Record* srec, Commit(stocks, day));
  if (*srec) {
    std::vector<uint8_t> wanted;
    for (int32_t r : root) {
      if (r < 0) continue;
      if (wanted.size() <= static_cast<size_t>(r))
        wanted.resize(static_cast<size_t>(r) + 1);
      wanted[static_cast<size_t>(r)] = 1;
    }
    ARROW_ASSIGN_OR_RAISE(auto s,
                          ReadRaw(*lake_, **srec, kTicker | kWs | kClose, &names_));
    input_rows_ += s.rows();
    std::unordered_map<std::pair<int32_t, int64_t>, double, KeyHash> close;
    for (size_t i = 0; i < s.id.size(); ++i) {
      const auto id = static_cast<size_t>(s.id[i]);
      if (id < wanted.size() && wanted[id]) {
        close[{s.id[i], daily ? int64_t{0} : s.ws[i]}] = s.close[i];
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (root[i] < 0) continue;
      auto it = close.find({root[i], daily ? int64_t{0} : raw.ws[i]});
      if (it != close.end()) f->underlying_close[i] = it->second;
    }
  } else {
    (*notes)["nan_or_fallback"]["moneyness"] =
        stocks + " " + FormatDate(day) + " is not in the lake";
  }
  int64_t missing = 0;
  for (double v : f->underlying_close) missing += std::isfinite(v) ? 0 : 1;
  (*notes)["underlying_missing_rows"] = missing;

  // Relative volume: previous N trading days of the contract (daily), previous N bars
  // of the contract the same day (minute).
  f->volume_mean.assign(n, kNaN);
  const int window = o_.params.relative_volume_window;
  const int min_periods = o_.params.relative_volume_min_periods;
  if (daily) {
    std::vector<const LookbackDay*> back;
    for (Date d : Lookback(day, window)) {
      ARROW_ASSIGN_OR_RAISE(auto lb, Daily(raw_, d));
      back.push_back(lb);
    }
    LookbackStats(back, raw.id, names_.size(), min_periods, &f->volume_mean, nullptr);
  } else {
    size_t start = 0;
    while (start < n) {
      size_t end = start;
      double sum = 0;
      while (end < n && raw.id[end] == raw.id[start]) {
        const size_t have = end - start;  // previous bars of the contract today
        const size_t count = std::min(have, static_cast<size_t>(window));
        if (static_cast<int>(count) >= min_periods && count > 0) {
          f->volume_mean[end] = sum / static_cast<double>(count);
        }
        // The next bar's window: the `window` bars ending with this one.
        sum += f->volume[end];
        if (have >= static_cast<size_t>(window)) {
          sum -= f->volume[end - static_cast<size_t>(window)];
        }
        ++end;
      }
      start = end;
    }
  }
  return arrow::Status::OK();
}

// The Arrow dictionary column of the (sorted) tickers of a day.
arrow::Result<std::shared_ptr<arrow::Array>> TickerColumn(const std::vector<int32_t>& id,
                                                          const Names& names) {
  arrow::StringBuilder dict;
  arrow::Int32Builder indices;
  ARROW_RETURN_NOT_OK(indices.Reserve(static_cast<int64_t>(id.size())));
  int32_t next = -1;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 0 || id[i] != id[i - 1]) {
      ARROW_RETURN_NOT_OK(dict.Append(names.Name(id[i])));
      ++next;
    }
    indices.UnsafeAppend(next);
  }
  ARROW_ASSIGN_OR_RAISE(auto d, dict.Finish());
  ARROW_ASSIGN_OR_RAISE(auto idx, indices.Finish());
  return arrow::DictionaryArray::FromArrays(
      arrow::dictionary(arrow::int32(), arrow::utf8()), idx, d);
}

arrow::Status Run::ComputeDay(Date day, FeatureDayReport* report) {
  ARROW_ASSIGN_OR_RAISE(const Record* rec, Commit(raw_, day));
  if (!*rec) {
    return arrow::Status::KeyError(raw_, " ", FormatDate(day),
                                   " is not in the lake: run qlake ingest for it first");
  }
  unsigned cols = kTicker | kWs | kClose | kVolume;
  if (o_.set == FeatureSet::kStocksDaily) cols |= kOpen | kHigh | kLow;
  if (IsOptions(o_.set)) cols |= kStrike | kExpiration;
  ARROW_ASSIGN_OR_RAISE(auto raw, ReadRaw(*lake_, **rec, cols, &names_));
  input_rows_ += raw.rows();
  SortRows(&raw, names_);

  DayFrame f;
  f.n = raw.rows();
  f.date = ToDate32(day);
  f.window_start = raw.ws;
  f.open = raw.open;
  f.high = raw.high;
  f.low = raw.low;
  f.close = raw.close;
  f.volume = raw.volume;
  nlohmann::json notes = nlohmann::json::object();
  switch (o_.set) {
    case FeatureSet::kStocksDaily:
      ARROW_RETURN_NOT_OK(PrepareStocksDaily(day, raw, &f, report, &notes));
      break;
    case FeatureSet::kStocksMinute:
      ARROW_RETURN_NOT_OK(PrepareStocksMinute(raw, &f));
      break;
    case FeatureSet::kOptionsDaily:
    case FeatureSet::kOptionsMinute:
      ARROW_RETURN_NOT_OK(PrepareOptions(day, raw, &f, &notes));
      break;
  }

  // Columns: the keys, then the features in table order.
  std::vector<std::shared_ptr<arrow::Field>> fields;
  std::vector<std::shared_ptr<arrow::Array>> arrays;
  ARROW_ASSIGN_OR_RAISE(auto ticker, TickerColumn(raw.id, names_));
  fields.push_back(arrow::field("ticker", ticker->type(), false));
  arrays.push_back(ticker);
  {
    auto ws_type = raw.ws_type;
    if (!ws_type) ws_type = arrow::timestamp(arrow::TimeUnit::NANO, "UTC");
    arrow::TimestampBuilder b(ws_type, arrow::default_memory_pool());
    ARROW_RETURN_NOT_OK(b.AppendValues(raw.ws));
    ARROW_ASSIGN_OR_RAISE(auto a, b.Finish());
    fields.push_back(arrow::field("window_start", ws_type, false));
    arrays.push_back(a);
  }
  {
    arrow::Date32Builder b;
    ARROW_RETURN_NOT_OK(b.AppendValues(std::vector<int32_t>(raw.id.size(), f.date)));
    ARROW_ASSIGN_OR_RAISE(auto a, b.Finish());
    fields.push_back(arrow::field("date", arrow::date32(), false));
    arrays.push_back(a);
  }
  if (o_.set == FeatureSet::kStocksDaily) {
    arrow::StringBuilder dict;
    ARROW_RETURN_NOT_OK(dict.Append("day"));
    ARROW_RETURN_NOT_OK(dict.Append("minute"));
    ARROW_ASSIGN_OR_RAISE(auto d, dict.Finish());
    arrow::Int8Builder idx;
    for (int64_t i = 0; i < f.n; ++i) {
      ARROW_RETURN_NOT_OK(
          idx.Append(std::isfinite(f.minute_vwap[static_cast<size_t>(i)]) ? 1 : 0));
    }
    ARROW_ASSIGN_OR_RAISE(auto ia, idx.Finish());
    auto type = arrow::dictionary(arrow::int8(), arrow::utf8());
    ARROW_ASSIGN_OR_RAISE(auto a, arrow::DictionaryArray::FromArrays(type, ia, d));
    fields.push_back(arrow::field("vwap_source", type, false));
    arrays.push_back(a);
  }
  for (const FeatureDef* def : FeaturesOf(o_.set)) {
    if (!def->always_nan_reason.empty()) {
      notes["nan_reasons"][std::string(def->name)] = std::string(def->always_nan_reason);
    }
    if (def->type == FeatureType::kFloat64) {
      arrow::DoubleBuilder b;
      ARROW_RETURN_NOT_OK(b.Reserve(f.n));
      for (int64_t i = 0; i < f.n; ++i) {
        double v = def->value(f, i);
        b.UnsafeAppend(std::isfinite(v) ? v : kNaN);  // inf (x/0) is stored as NaN
      }
      ARROW_ASSIGN_OR_RAISE(auto a, b.Finish());
      fields.push_back(arrow::field(std::string(def->name), arrow::float64()));
      arrays.push_back(a);
    } else {
      arrow::Int32Builder b;
      ARROW_RETURN_NOT_OK(b.Reserve(f.n));
      for (int64_t i = 0; i < f.n; ++i) {
        double v = def->value(f, i);
        if (std::isfinite(v)) {
          b.UnsafeAppend(static_cast<int32_t>(v));
        } else {
          b.UnsafeAppendNull();
        }
      }
      ARROW_ASSIGN_OR_RAISE(auto a, b.Finish());
      fields.push_back(arrow::field(std::string(def->name), arrow::int32()));
      arrays.push_back(a);
    }
  }
  auto table = arrow::Table::Make(arrow::schema(fields), arrays, f.n);

  const std::string dataset = FeatureDatasetName(o_.set);
  ARROW_ASSIGN_OR_RAISE(auto inputs, Inputs(day));
  nlohmann::json validation = {{"inputs", inputs}, {"params", Params()}};
  for (auto& [k, v] : notes.items()) validation[k] = v;
  ARROW_ASSIGN_OR_RAISE(auto txn, lake_->BeginDay(dataset, day));
  ARROW_ASSIGN_OR_RAISE(auto out, txn->OpenFile(ingest::DayFilePath(day)));
  std::vector<std::pair<std::string, std::string>> footer = {
      {"qlake.version", QLAKE_VERSION},
      {"qlake.dataset", dataset},
      {"qlake.date", FormatDate(day)},
      {"qlake.features.params", Params().dump()},
  };
  // Feature values hardly repeat: dictionary encoding them costs time and bytes.
  ingest::ParquetOutOptions popts = o_.parquet;
  for (const FeatureDef* def : FeaturesOf(o_.set)) {
    popts.plain_columns.emplace_back(def->name);
  }
  ARROW_RETURN_NOT_OK(ingest::WriteParquet(*table, out, popts, footer));
  lake::CommitInfo info;
  info.source.key = raw_ + "/" + FormatDate(day);
  info.source.etag = (*rec)->txn;
  info.source.size = -1;
  info.rows = {f.n, f.n, 0, 0};
  info.validation = validation;
  ARROW_RETURN_NOT_OK(txn->Commit(info).status());
  report->rows = f.n;
  return arrow::Status::OK();
}

arrow::Result<std::vector<Run::Target>> Run::Targets() {
  const std::string dataset = FeatureDatasetName(o_.set);
  const auto& cal = catalog::NyseCalendar::Get();
  ARROW_ASSIGN_OR_RAISE(auto sessions, cal.Sessions(o_.from, o_.to));
  std::vector<Target> targets;
  for (const auto& s : sessions) targets.push_back({s.date, false});
  if (o_.refresh_dependents && IsDaily(o_.set) && !sessions.empty()) {
    // Feature days after the range whose look-back reaches into it.
    Date d = sessions.back().date;
    for (int k = 0; k < o_.params.relative_volume_window; ++k) {
      auto next = cal.NextTradingDay(d);
      if (!next.ok()) break;
      d = *next;
      ARROW_ASSIGN_OR_RAISE(const Record* fr, Commit(dataset, d));
      if (*fr) targets.push_back({d, true});
    }
  }
  return targets;
}

void Run::Process(std::span<const Target> targets, FeatureReport* out) {
  FeatureReport& report = *out;
  report.dataset = FeatureDatasetName(o_.set);
  const nlohmann::json params = Params();
  for (const auto& target : targets) {
    FeatureDayReport r;
    r.day = target.day;
    r.dependent = target.dependent;
    auto start = std::chrono::steady_clock::now();
    auto decide = [&]() -> arrow::Result<bool> {
      if (o_.force && !target.dependent) return true;
      ARROW_ASSIGN_OR_RAISE(const Record* existing, Commit(report.dataset, target.day));
      if (!*existing) return true;
      ARROW_ASSIGN_OR_RAISE(auto inputs, Inputs(target.day));
      const auto& v = (*existing)->validation;
      return !(v.contains("inputs") && v["inputs"] == inputs && v.contains("params") &&
               v["params"] == params);
    };
    auto needed = decide();
    if (!needed.ok()) {
      r.status = needed.status();
    } else if (!*needed) {
      r.action = "up_to_date";
    } else {
      r.status = ComputeDay(target.day, &r);
      // A re-read of the record would now show the new commit.
      records_.erase({report.dataset, ToDate32(target.day)});
    }
    if (!r.status.ok()) {
      r.action = "failed";
      spdlog::error("features {} {} failed: {}", report.dataset, FormatDate(r.day),
                    r.status.message());
    } else if (r.action.empty()) {
      r.action = "computed";
    }
    r.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report.days.push_back(std::move(r));
    // Look-back days older than any later target's window are not needed again.
    const int32_t keep_from =
        ToDate32(target.day) - 2 * o_.params.relative_volume_window - 10;
    for (auto it = lookback_.begin(); it != lookback_.end();) {
      it = it->first.second < keep_from ? lookback_.erase(it) : std::next(it);
    }
  }
  report.input_rows = input_rows_;
}

}  // namespace

std::string_view FeatureSetName(FeatureSet s) {
  switch (s) {
    case FeatureSet::kStocksDaily:
      return "stocks_daily";
    case FeatureSet::kStocksMinute:
      return "stocks_minute";
    case FeatureSet::kOptionsDaily:
      return "options_daily";
    case FeatureSet::kOptionsMinute:
      return "options_minute";
  }
  return "?";
}

std::string FeatureDatasetName(FeatureSet s) {
  return "features/" + std::string(FeatureSetName(s));
}

arrow::Result<FeatureParams> FeatureParamsFromConfig(const Config& config) {
  FeatureParams p;
  ARROW_ASSIGN_OR_RAISE(auto window, config.GetInt("features.relative_volume_window"));
  ARROW_ASSIGN_OR_RAISE(auto minp, config.GetInt("features.relative_volume_min_periods"));
  ARROW_ASSIGN_OR_RAISE(auto bars, config.GetInt("features.velocity_bars"));
  p.relative_volume_window = static_cast<int>(window);
  p.relative_volume_min_periods = static_cast<int>(minp);
  p.velocity_bars = static_cast<int>(bars);
  ARROW_ASSIGN_OR_RAISE(p.liquid_dollar_volume,
                        config.GetDouble("features.liquid_dollar_volume"));
  return p;
}

arrow::Result<FeatureSet> ParseFeatureSet(std::string_view name) {
  std::string_view bare = name;
  if (bare.starts_with("features/")) bare.remove_prefix(9);
  for (auto s : {FeatureSet::kStocksDaily, FeatureSet::kStocksMinute,
                 FeatureSet::kOptionsDaily, FeatureSet::kOptionsMinute}) {
    if (FeatureSetName(s) == bare) return s;
  }
  return arrow::Status::Invalid("no features for dataset '", name,
                                "'; use stocks_daily, stocks_minute, options_daily or "
                                "options_minute");
}

std::span<const FeatureDef> Features() { return kFeatures; }

std::vector<const FeatureDef*> FeaturesOf(FeatureSet set) {
  std::vector<const FeatureDef*> out;
  for (const auto& f : kFeatures) {
    if (f.set == set) out.push_back(&f);
  }
  return out;
}

arrow::Status FeatureParams::Validate() const {
  if (relative_volume_window < 1 || relative_volume_window > 250) {
    return arrow::Status::Invalid("relative volume window must be 1..250, got ",
                                  relative_volume_window);
  }
  if (relative_volume_min_periods < 1 ||
      relative_volume_min_periods > relative_volume_window) {
    return arrow::Status::Invalid("relative volume min periods must be 1..window (",
                                  relative_volume_window, "), got ",
                                  relative_volume_min_periods);
  }
  if (!(liquid_dollar_volume >= 0) || !std::isfinite(liquid_dollar_volume)) {
    return arrow::Status::Invalid("liquid dollar volume must be >= 0, got ",
                                  liquid_dollar_volume);
  }
  if (velocity_bars < 1 || velocity_bars > 1000) {
    return arrow::Status::Invalid("velocity bars must be 1..1000, got ", velocity_bars);
  }
  return arrow::Status::OK();
}

arrow::Status FeatureOptions::Validate() const {
  if (from > to) {
    return arrow::Status::Invalid("--from ", FormatDate(from), " is after --to ",
                                  FormatDate(to));
  }
  if (lake.empty()) return arrow::Status::Invalid("no lake given (--lake DIR|URI)");
  if (parallel_days < 1 || parallel_days > 256) {
    return arrow::Status::Invalid("parallel days must be 1..256, got ", parallel_days);
  }
  ARROW_RETURN_NOT_OK(params.Validate());
  return parquet.Validate();
}

int64_t FeatureReport::failed() const {
  int64_t n = 0;
  for (const auto& d : days) n += d.status.ok() ? 0 : 1;
  return n;
}

int64_t FeatureReport::computed() const {
  int64_t n = 0;
  for (const auto& d : days) n += d.action == "computed" ? 1 : 0;
  return n;
}

arrow::Status FeatureReport::Summary() const {
  const int64_t bad = failed();
  if (bad == 0) return arrow::Status::OK();
  if (bad == 1 && days.size() == 1) return days.front().status;
  return arrow::Status::Cancelled(bad, " of ", days.size(), " ", dataset,
                                  " days failed; the others are committed");
}

arrow::Result<FeatureReport> ComputeFeatures(const FeatureOptions& options) {
  ARROW_RETURN_NOT_OK(options.Validate());
  lake::LakeOptions lake_opts;
  lake_opts.fsync = options.fsync;
  lake_opts.create_root = false;
  auto lake = lake::Lake::Open(AbsoluteUnlessUri(options.lake), lake_opts);
  if (!lake.ok()) {
    return lake.status().WithMessage("cannot open the lake '", options.lake,
                                     "': ", lake.status().message());
  }
  auto t0 = std::chrono::steady_clock::now();
  FeatureOptions o = options;
  // Arrow can deadlock when parallel writers share its CPU pool (arrow-cpp.md 3.3).
  if (o.parallel_days > 1) o.parquet.use_threads = false;
  Run planner(o, *lake);
  ARROW_ASSIGN_OR_RAISE(auto targets, planner.Targets());
  // Contiguous chunks of days, one Run (own look-back cache) per thread: a chunk re-reads
  // one look-back, and the output does not depend on the split.
  const size_t threads = std::max<size_t>(
      1, std::min<size_t>(static_cast<size_t>(o.parallel_days), targets.size()));
  std::vector<FeatureReport> parts(threads);
  std::vector<std::thread> workers;
  const size_t per = (targets.size() + threads - 1) / threads;
  for (size_t t = 0; t < threads; ++t) {
    const size_t begin = std::min(targets.size(), t * per);
    const size_t end = std::min(targets.size(), begin + per);
    auto work = [&, begin, end, t] {
      Run run(o, *lake);
      run.Process(std::span<const Run::Target>(targets).subspan(begin, end - begin),
                  &parts[t]);
    };
    if (t + 1 == threads) {
      work();
    } else {
      workers.emplace_back(work);
    }
  }
  for (auto& w : workers) w.join();
  FeatureReport report;
  report.dataset = FeatureDatasetName(o.set);
  for (auto& p : parts) {
    for (auto& d : p.days) report.days.push_back(std::move(d));
    report.input_rows += p.input_rows;
  }
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace qlake::features

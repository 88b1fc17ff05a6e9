#include "qlake/ingest/agg_day.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <unordered_set>

#include <arrow/array.h>
#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_dict.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/buffer.h>
#include <fmt/format.h>

#include "qlake/catalog/symbols.h"
#include "qlake/ingest/fields.h"

namespace qlake::ingest {

namespace {

constexpr int64_t kNsPerMinute = 60'000'000'000LL;
constexpr int64_t kNsPerDay = 24 * 60 * kNsPerMinute;
// Plausible window_start range: 1990-01-01 .. 2100-01-01 in ns. A 17-digit value (a
// truncated ns stamp) decodes to 1970 and falls outside.
constexpr int64_t kMinPlausibleNs = 631152000LL * 1'000'000'000LL;
constexpr int64_t kMaxPlausibleNs = 4102444800LL * 1'000'000'000LL;
constexpr std::size_t kMaxTickerLength = 64;
constexpr double kBigMove = 0.5;

constexpr std::string_view kColumnNames[kNumAggColumns] = {
    "ticker", "volume", "open", "close", "high", "low", "window_start", "transactions"};

bool ValidTickerText(std::string_view t) {
  if (t.empty() || t.size() > kMaxTickerLength) return false;
  for (unsigned char c : t) {
    if (c <= 0x20 || c >= 0x7F || c == '"' || c == ',') return false;
  }
  return true;
}

template <typename T>
std::shared_ptr<arrow::Buffer> VectorBuffer(std::vector<T>&& v) {
  // Moves the vector into a buffer that owns it: no copy of the column.
  auto holder = std::make_shared<std::vector<T>>(std::move(v));
  auto buf =
      std::make_shared<arrow::Buffer>(reinterpret_cast<const uint8_t*>(holder->data()),
                                      static_cast<int64_t>(holder->size() * sizeof(T)));
  struct Owning : arrow::Buffer {
    Owning(std::shared_ptr<arrow::Buffer> b, std::shared_ptr<std::vector<T>> h)
        : arrow::Buffer(b->data(), b->size()), keep(std::move(h)) {}
    std::shared_ptr<std::vector<T>> keep;
  };
  return std::make_shared<Owning>(buf, holder);
}

template <typename T>
std::shared_ptr<arrow::Array> MakePrimitive(std::shared_ptr<arrow::DataType> type,
                                            std::vector<T>&& v) {
  auto n = static_cast<int64_t>(v.size());
  auto data =
      arrow::ArrayData::Make(std::move(type), n, {nullptr, VectorBuffer(std::move(v))},
                             /*null_count=*/0);
  return arrow::MakeArray(data);
}

arrow::Result<std::shared_ptr<arrow::Array>> MakeStringArray(
    const std::vector<std::string>& values) {
  arrow::StringBuilder b;
  ARROW_RETURN_NOT_OK(b.Reserve(static_cast<int64_t>(values.size())));
  for (const auto& v : values) ARROW_RETURN_NOT_OK(b.Append(v));
  return b.Finish();
}

template <typename IndexT>
arrow::Result<std::shared_ptr<arrow::Array>> MakeDictionary(
    std::shared_ptr<arrow::DataType> index_type, std::vector<IndexT>&& indices,
    const std::vector<std::string>& dictionary) {
  ARROW_ASSIGN_OR_RAISE(auto dict, MakeStringArray(dictionary));
  auto idx = MakePrimitive(index_type, std::move(indices));
  auto type = arrow::dictionary(index_type, arrow::utf8());
  return arrow::DictionaryArray::FromArrays(type, idx, dict);
}

}  // namespace

std::string_view RejectReasonName(RejectReason r) {
  switch (r) {
    case RejectReason::kFieldCount:
      return "field_count";
    case RejectReason::kNullField:
      return "null_field";
    case RejectReason::kBadTicker:
      return "bad_ticker";
    case RejectReason::kBadOcc:
      return "bad_occ";
    case RejectReason::kNonNumeric:
      return "non_numeric";
    case RejectReason::kNotFinite:
      return "nan_inf";
    case RejectReason::kNonPositivePrice:
      return "non_positive_price";
    case RejectReason::kOhlcInconsistent:
      return "ohlc_inconsistent";
    case RejectReason::kNegativeVolume:
      return "negative_volume";
    case RejectReason::kNonIntegerVolume:
      return "non_integer_volume";
    case RejectReason::kBadTransactions:
      return "bad_transactions";
    case RejectReason::kBadTimestamp:
      return "bad_timestamp";
    case RejectReason::kWrongDay:
      return "wrong_day";
    case RejectReason::kOutsideHours:
      return "outside_hours";
    case RejectReason::kDuplicate:
      return "duplicate";
    case RejectReason::kCount_:
      break;
  }
  return "?";
}

arrow::Result<ColumnMap> ColumnMap::FromHeader(std::string_view header_line,
                                               const catalog::DatasetSpec& spec,
                                               std::string_view source) {
  if (!header_line.empty() && header_line.back() == '\r') header_line.remove_suffix(1);
  std::array<std::string_view, 64> fields;
  std::size_t n = SplitCsvLine(header_line, fields);
  if (n > fields.size()) {
    return arrow::Status::Invalid(source, ": header has ", n, " columns; expected ",
                                  spec.header);
  }
  ColumnMap map;
  map.index.fill(-1);
  map.num_fields = static_cast<int>(n);
  std::vector<std::string> unknown;
  for (std::size_t i = 0; i < n; ++i) {
    bool known = false;
    for (std::size_t c = 0; c < kNumAggColumns; ++c) {
      if (fields[i] == kColumnNames[c]) {
        if (map.index[c] >= 0) {
          return arrow::Status::Invalid(source, ": header repeats column '", fields[i],
                                        "'");
        }
        map.index[c] = static_cast<int>(i);
        known = true;
      }
    }
    if (!known) unknown.emplace_back(fields[i]);
  }
  std::vector<std::string> missing;
  for (std::size_t c = 0; c < kNumAggColumns; ++c) {
    if (map.index[c] < 0) missing.emplace_back(kColumnNames[c]);
  }
  if (!unknown.empty() || !missing.empty()) {
    return arrow::Status::Invalid(
        source, ": header '", header_line, "' does not match the ", spec.name,
        " columns (", spec.header, ")",
        unknown.empty() ? "" : "; unknown: ", fmt::format("{}", fmt::join(unknown, ",")),
        missing.empty() ? "" : "; missing: ", fmt::format("{}", fmt::join(missing, ",")),
        ". The file format changed or the file is not a ", spec.name, " file");
  }
  return map;
}

namespace {
// The general splitter, for lines that contain a double quote.
std::size_t SplitQuoted(std::string_view line, std::span<std::string_view> out) {
  std::size_t n = 0;
  std::size_t pos = 0;
  const std::size_t size = line.size();
  while (true) {
    std::string_view field;
    if (pos < size && line[pos] == '"') {
      std::size_t start = pos + 1, i = start;
      while (i < size) {
        if (line[i] == '"') {
          if (i + 1 < size && line[i + 1] == '"') {
            i += 2;
            continue;
          }
          break;
        }
        ++i;
      }
      field = line.substr(start, std::min(i, size) - start);
      pos = std::min(i + 1, size);
      // Anything between the closing quote and the comma stays attached (malformed).
      std::size_t comma = line.find(',', pos);
      if (comma != pos && comma != std::string_view::npos) {
        field = line.substr(start - 1, comma - start + 1);
      } else if (comma == std::string_view::npos && pos < size) {
        field = line.substr(start - 1);
      }
      pos = comma == std::string_view::npos ? size : comma;
    } else {
      std::size_t comma = line.find(',', pos);
      std::size_t end = comma == std::string_view::npos ? size : comma;
      field = line.substr(pos, end - pos);
      pos = end;
    }
    if (n < out.size()) out[n] = field;
    ++n;
    if (pos >= size) break;
    ++pos;              // skip the comma
    if (pos == size) {  // trailing comma: one more empty field
      if (n < out.size()) out[n] = std::string_view();
      ++n;
      break;
    }
  }
  return n;
}
}  // namespace

std::size_t SplitCsvLine(std::string_view line, std::span<std::string_view> out) {
  // Aggregate lines have no quotes: one pass over the bytes, no function call per field.
  const char* data = line.data();
  const std::size_t size = line.size();
  std::size_t n = 0, start = 0;
  for (std::size_t i = 0; i < size; ++i) {
    const char c = data[i];
    if (c == ',') {
      if (n < out.size()) out[n] = std::string_view(data + start, i - start);
      ++n;
      start = i + 1;
    } else if (c == '"') {
      return SplitQuoted(line, out);
    }
  }
  if (n < out.size()) out[n] = std::string_view(data + start, size - start);
  return n + 1;
}

std::shared_ptr<arrow::Schema> LakeSchema(const catalog::DatasetSpec& spec) {
  bool minute = spec.granularity == catalog::Granularity::kMinute;
  std::vector<std::shared_ptr<arrow::Field>> f = {
      arrow::field("ticker", arrow::dictionary(arrow::int32(), arrow::utf8()), false),
      arrow::field("volume", arrow::uint64(), false),
      arrow::field("open", arrow::float32(), false),
      arrow::field("close", arrow::float32(), false),
      arrow::field("high", arrow::float32(), false),
      arrow::field("low", arrow::float32(), false),
      arrow::field(
          "window_start",
          arrow::timestamp(arrow::TimeUnit::NANO, minute ? "America/New_York" : "UTC"),
          false),
      arrow::field("transactions", arrow::uint32(), false),
      arrow::field("date", arrow::date32(), false),
  };
  if (minute) {
    f.push_back(
        arrow::field("session", arrow::dictionary(arrow::int8(), arrow::utf8()), false));
  }
  if (spec.options) {
    f.push_back(arrow::field("underlying",
                             arrow::dictionary(arrow::int32(), arrow::utf8()), false));
    f.push_back(arrow::field("expiration", arrow::date32(), false));
    f.push_back(arrow::field("option_type",
                             arrow::dictionary(arrow::int8(), arrow::utf8()), false));
    f.push_back(arrow::field("strike", arrow::float64(), false));
  }
  f.push_back(arrow::field("flags", arrow::uint8(), false));
  return arrow::schema(std::move(f));
}

std::shared_ptr<arrow::Schema> QuarantineSchema() {
  return arrow::schema({arrow::field("line", arrow::int64(), false),
                        arrow::field("reason", arrow::utf8(), false),
                        arrow::field("detail", arrow::utf8(), false),
                        arrow::field("raw", arrow::utf8(), false)});
}

class AggDayBuilder::Impl {
 public:
  Impl(DayContext ctx, ColumnMap map) : ctx_(std::move(ctx)), map_(map) {
    day_start_ns_ = FromNewYork(ctx_.session.date, 0);
    minute_ = ctx_.spec->granularity == catalog::Granularity::kMinute;
    options_ = ctx_.spec->options;
    filter_.insert(ctx_.symbols.begin(), ctx_.symbols.end());
  }

  void AddRow(int64_t line, std::string_view raw,
              std::span<const std::string_view> fields) {
    ++counts_.read;
    if (static_cast<int>(fields.size()) != map_.num_fields) {
      return Reject(
          line, raw, RejectReason::kFieldCount,
          fmt::format("{} fields, expected {}", fields.size(), map_.num_fields));
    }
    auto field = [&](AggColumn c) { return fields[map_.index[static_cast<int>(c)]]; };
    for (std::size_t c = 0; c < kNumAggColumns; ++c) {
      if (fields[map_.index[c]].empty()) {
        return Reject(line, raw, RejectReason::kNullField,
                      fmt::format("empty {}", kColumnNames[c]));
      }
    }

    // Ticker (and for options its contract), with a fast path for runs of one ticker.
    std::string_view ticker = field(AggColumn::kTicker);
    int32_t tid;
    if (last_tid_ >= 0 && ticker == tickers_[static_cast<std::size_t>(last_tid_)]) {
      tid = last_tid_;
    } else {
      auto it = ticker_ids_.find(std::string(ticker));
      if (it != ticker_ids_.end()) {
        tid = it->second;
      } else {
        auto st = NewTicker(ticker, &tid);
        if (!st.ok()) return Reject(line, raw, st.reason, st.detail);
      }
      last_tid_ = tid;
    }
    const TickerInfo& info = ticker_info_[static_cast<std::size_t>(tid)];
    if (!info.valid) return Reject(line, raw, info.reason, info.detail);
    if (!info.selected) {
      ++counts_.filtered;
      return;
    }

    // Prices.
    double px[4];
    constexpr AggColumn kPx[4] = {AggColumn::kOpen, AggColumn::kClose, AggColumn::kHigh,
                                  AggColumn::kLow};
    for (int i = 0; i < 4; ++i) {
      auto st = ParseDecimal(field(kPx[i]), &px[i]);
      if (st == NumberStatus::kNotFinite) {
        return Reject(line, raw, RejectReason::kNotFinite,
                      fmt::format("{} is {}", kColumnNames[static_cast<int>(kPx[i])],
                                  field(kPx[i])));
      }
      if (st != NumberStatus::kOk) {
        return Reject(line, raw, RejectReason::kNonNumeric,
                      fmt::format("{} '{}' is not a number",
                                  kColumnNames[static_cast<int>(kPx[i])], field(kPx[i])));
      }
      if (!(px[i] > 0)) {
        return Reject(line, raw, RejectReason::kNonPositivePrice,
                      fmt::format("{} {} <= 0", kColumnNames[static_cast<int>(kPx[i])],
                                  field(kPx[i])));
      }
    }
    const double open = px[0], close = px[1], high = px[2], low = px[3];
    if (high < std::max(open, close) || low > std::min(open, close) || low > high) {
      return Reject(
          line, raw, RejectReason::kOhlcInconsistent,
          fmt::format("open {} close {} high {} low {}", open, close, high, low));
    }

    // Volume and transactions.
    uint64_t volume = 0;
    bool negative = false, fractional = false;
    auto vst =
        ParseWholeNumber(field(AggColumn::kVolume), &volume, &negative, &fractional);
    if (vst == NumberStatus::kNotFinite || vst == NumberStatus::kMalformed) {
      return Reject(
          line, raw, RejectReason::kNonNumeric,
          fmt::format("volume '{}' is not a number", field(AggColumn::kVolume)));
    }
    if (negative) {
      return Reject(line, raw, RejectReason::kNegativeVolume,
                    fmt::format("volume {}", field(AggColumn::kVolume)));
    }
    if (fractional) {
      return Reject(line, raw, RejectReason::kNonIntegerVolume,
                    fmt::format("volume {}", field(AggColumn::kVolume)));
    }
    uint64_t transactions = 0;
    auto tst = ParseWholeNumber(field(AggColumn::kTransactions), &transactions, &negative,
                                &fractional);
    if (tst != NumberStatus::kOk || negative || fractional ||
        transactions > std::numeric_limits<uint32_t>::max()) {
      return Reject(line, raw, RejectReason::kBadTransactions,
                    fmt::format("transactions '{}'", field(AggColumn::kTransactions)));
    }

    // Timestamp: plausible, on the file's New York date, inside 04:00-20:00 ET for
    // minutes.
    int64_t ws = 0;
    int digits = 0;
    std::string_view ws_text = field(AggColumn::kWindowStart);
    if (!ParseInt64(ws_text, &ws, &digits) || ws < kMinPlausibleNs ||
        ws >= kMaxPlausibleNs) {
      return Reject(
          line, raw, RejectReason::kBadTimestamp,
          fmt::format("window_start '{}' is not a 19-digit ns epoch ({} digits)", ws_text,
                      digits));
    }
    int64_t rel = ws - day_start_ns_;
    if (rel < 0 || rel >= kNsPerDay) {
      auto ny = ToNewYork(ws);
      return Reject(
          line, raw, RejectReason::kWrongDay,
          fmt::format("window_start {} is on {} in New York, the file is for {}", ws,
                      FormatDate(ny.date), FormatDate(ctx_.session.date)));
    }
    int minute_of_day = static_cast<int>(rel / kNsPerMinute);
    if (minute_ && (minute_of_day < catalog::Session::kExtendedOpenMinute ||
                    minute_of_day >= catalog::Session::kExtendedCloseMinute)) {
      return Reject(line, raw, RejectReason::kOutsideHours,
                    fmt::format("{:02d}:{:02d} ET is outside 04:00-20:00",
                                minute_of_day / 60, minute_of_day % 60));
    }

    // Adjacent duplicate: the common case in sorted files; keeps the raw text exact.
    if (prev_tid_ == tid && prev_ws_ == ws) {
      return Reject(line, raw, RejectReason::kDuplicate,
                    fmt::format("repeats ({}, {}) of line {}", ticker, ws, prev_line_));
    }
    prev_tid_ = tid;
    prev_ws_ = ws;
    prev_line_ = line;

    ticker_.push_back(tid);
    volume_.push_back(volume);
    open_.push_back(static_cast<float>(open));
    close_.push_back(static_cast<float>(close));
    high_.push_back(static_cast<float>(high));
    low_.push_back(static_cast<float>(low));
    close_d_.push_back(close);
    ws_.push_back(ws);
    minute_of_day_.push_back(static_cast<int16_t>(minute_of_day));
    transactions_.push_back(static_cast<uint32_t>(transactions));
    line_.push_back(line);
  }

  std::size_t buffered_rows() const { return ws_.size(); }

  // Builds the tables of the rows buffered since the last chunk and clears the buffers;
  // the counts are cumulative. `final` also checks that they reconcile.
  arrow::Result<AggDay> BuildChunk(bool final) {
    const std::size_t n = ws_.size();
    // Lexicographic rank of each ticker: the output dictionary is sorted.
    std::vector<int32_t> order(tickers_.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return tickers_[static_cast<std::size_t>(a)] <
             tickers_[static_cast<std::size_t>(b)];
    });
    std::vector<int32_t> rank(tickers_.size());
    for (std::size_t r = 0; r < order.size(); ++r) {
      rank[static_cast<std::size_t>(order[r])] = static_cast<int32_t>(r);
    }

    auto key_less = [&](uint32_t a, uint32_t b) {
      int32_t ra = rank[static_cast<std::size_t>(ticker_[a])];
      int32_t rb = rank[static_cast<std::size_t>(ticker_[b])];
      if (ra != rb) return ra < rb;
      if (ws_[a] != ws_[b]) return ws_[a] < ws_[b];
      return line_[a] < line_[b];
    };
    std::vector<uint32_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0u);
    bool sorted = true;
    for (std::size_t i = 1; i < n && sorted; ++i) sorted = key_less(perm[i - 1], perm[i]);
    if (!sorted) std::stable_sort(perm.begin(), perm.end(), key_less);

    // Does this chunk start before the previous one ended? Then the file is not sorted
    // and chunks cannot simply be appended (the caller falls back to a whole-day read).
    bool out_of_order = false;
    if (n > 0 && has_emitted_) {
      uint32_t first = perm[0];
      const std::string& t = tickers_[static_cast<std::size_t>(ticker_[first])];
      const std::string& pt = tickers_[static_cast<std::size_t>(prev_out_tid_)];
      out_of_order = t < pt || (t == pt && ws_[first] < prev_out_ws_);
    }

    // Non-adjacent duplicates (only possible in unsorted files): keep the first line.
    std::vector<uint32_t> keep;
    keep.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      uint32_t r = perm[i];
      int32_t p_tid = keep.empty() ? prev_out_tid_ : ticker_[keep.back()];
      int64_t p_ws = keep.empty() ? prev_out_ws_ : ws_[keep.back()];
      int64_t p_line = keep.empty() ? prev_out_line_ : line_[keep.back()];
      if ((has_emitted_ || !keep.empty()) && p_tid == ticker_[r] && p_ws == ws_[r]) {
        Reject(
            line_[r], Reconstruct(r), RejectReason::kDuplicate,
            fmt::format("repeats ({}, {}) of line {} (raw text reconstructed)",
                        tickers_[static_cast<std::size_t>(ticker_[r])], ws_[r], p_line));
        continue;
      }
      keep.push_back(r);
    }
    const std::size_t m = keep.size();
    counts_.written += static_cast<int64_t>(m);

    // Columns in output order.
    std::vector<int32_t> o_ticker(m);
    std::vector<uint64_t> o_volume(m);
    std::vector<float> o_open(m), o_close(m), o_high(m), o_low(m);
    std::vector<int64_t> o_ws(m);
    std::vector<uint32_t> o_tx(m);
    std::vector<int32_t> o_date(m, ToDate32(ctx_.session.date));
    std::vector<uint8_t> o_flags(m, 0);
    for (std::size_t i = 0; i < m; ++i) {
      uint32_t r = keep[i];
      o_ticker[i] = rank[static_cast<std::size_t>(ticker_[r])];
      o_volume[i] = volume_[r];
      o_open[i] = open_[r];
      o_close[i] = close_[r];
      o_high[i] = high_[r];
      o_low[i] = low_[r];
      o_ws[i] = ws_[r];
      o_tx[i] = transactions_[r];
      bool have_prev = i > 0 || has_emitted_;
      int32_t prev_tid = i > 0 ? ticker_[keep[i - 1]] : prev_out_tid_;
      double prev_close = i > 0 ? close_d_[keep[i - 1]] : prev_out_close_;
      if ((!have_prev || prev_tid != ticker_[r]) && ctx_.previous_close) {
        // The ticker's first bar: compare with its close before this file, if known.
        auto it =
            ctx_.previous_close->find(tickers_[static_cast<std::size_t>(ticker_[r])]);
        have_prev = it != ctx_.previous_close->end() && it->second > 0;
        if (have_prev) {
          prev_tid = ticker_[r];
          prev_close = it->second;
        }
      }
      if (have_prev && prev_tid == ticker_[r] &&
          std::fabs(close_d_[r] / prev_close - 1.0) > kBigMove) {
        o_flags[i] |= kFlagBigMove;
        ++counts_.flagged;
      }
    }
    if (m > 0) {
      uint32_t last = keep[m - 1];
      has_emitted_ = true;
      prev_out_tid_ = ticker_[last];
      prev_out_ws_ = ws_[last];
      prev_out_line_ = line_[last];
      prev_out_close_ = close_d_[last];
    }
    std::vector<std::string> sorted_tickers(tickers_.size());
    for (std::size_t t = 0; t < tickers_.size(); ++t) {
      sorted_tickers[static_cast<std::size_t>(rank[t])] = tickers_[t];
    }

    auto schema = LakeSchema(*ctx_.spec);
    std::vector<std::shared_ptr<arrow::Array>> cols;
    ARROW_ASSIGN_OR_RAISE(
        auto ticker_col,
        MakeDictionary(arrow::int32(), std::move(o_ticker), sorted_tickers));
    cols.push_back(ticker_col);
    cols.push_back(MakePrimitive(arrow::uint64(), std::move(o_volume)));
    cols.push_back(MakePrimitive(arrow::float32(), std::move(o_open)));
    cols.push_back(MakePrimitive(arrow::float32(), std::move(o_close)));
    cols.push_back(MakePrimitive(arrow::float32(), std::move(o_high)));
    cols.push_back(MakePrimitive(arrow::float32(), std::move(o_low)));
    cols.push_back(
        MakePrimitive(schema->GetFieldByName("window_start")->type(), std::move(o_ws)));
    cols.push_back(MakePrimitive(arrow::uint32(), std::move(o_tx)));
    cols.push_back(MakePrimitive(arrow::date32(), std::move(o_date)));
    if (minute_) {
      std::vector<int8_t> session(m);
      for (std::size_t i = 0; i < m; ++i) {
        session[i] = static_cast<int8_t>(ctx_.session.Classify(minute_of_day_[keep[i]]));
      }
      std::vector<std::string> names;
      for (auto p : {catalog::SessionPart::kPre, catalog::SessionPart::kRegular,
                     catalog::SessionPart::kPost, catalog::SessionPart::kOutside}) {
        names.emplace_back(catalog::SessionPartName(p));
      }
      ARROW_ASSIGN_OR_RAISE(auto col,
                            MakeDictionary(arrow::int8(), std::move(session), names));
      cols.push_back(col);
    }
    if (options_) {
      std::vector<int32_t> underlying(m), expiration(m);
      std::vector<int8_t> type(m);
      std::vector<double> strike(m);
      for (std::size_t i = 0; i < m; ++i) {
        const TickerInfo& info = ticker_info_[static_cast<std::size_t>(ticker_[keep[i]])];
        underlying[i] = info.underlying;
        expiration[i] = info.expiration;
        type[i] = info.put ? 1 : 0;
        strike[i] = info.strike;
      }
      // Underlying dictionary sorted too.
      std::vector<int32_t> uorder(underlyings_.size());
      std::iota(uorder.begin(), uorder.end(), 0);
      std::sort(uorder.begin(), uorder.end(), [&](int32_t a, int32_t b) {
        return underlyings_[static_cast<std::size_t>(a)] <
               underlyings_[static_cast<std::size_t>(b)];
      });
      std::vector<int32_t> urank(underlyings_.size());
      std::vector<std::string> usorted(underlyings_.size());
      for (std::size_t r = 0; r < uorder.size(); ++r) {
        urank[static_cast<std::size_t>(uorder[r])] = static_cast<int32_t>(r);
        usorted[r] = underlyings_[static_cast<std::size_t>(uorder[r])];
      }
      for (auto& u : underlying) u = urank[static_cast<std::size_t>(u)];
      ARROW_ASSIGN_OR_RAISE(
          auto ucol, MakeDictionary(arrow::int32(), std::move(underlying), usorted));
      cols.push_back(ucol);
      cols.push_back(MakePrimitive(arrow::date32(), std::move(expiration)));
      ARROW_ASSIGN_OR_RAISE(auto tcol,
                            MakeDictionary(arrow::int8(), std::move(type),
                                           std::vector<std::string>{"C", "P"}));
      cols.push_back(tcol);
      cols.push_back(MakePrimitive(arrow::float64(), std::move(strike)));
    }
    cols.push_back(MakePrimitive(arrow::uint8(), std::move(o_flags)));

    AggDay day;
    day.table = arrow::Table::Make(schema, cols, static_cast<int64_t>(m));
    ARROW_ASSIGN_OR_RAISE(day.quarantine, BuildQuarantine());
    day.counts = counts_;
    day.out_of_order = out_of_order;
    line_.clear();
    ticker_.clear();
    volume_.clear();
    open_.clear();
    close_.clear();
    high_.clear();
    low_.clear();
    close_d_.clear();
    ws_.clear();
    minute_of_day_.clear();
    transactions_.clear();
    q_line_.clear();
    q_reason_.clear();
    q_detail_.clear();
    q_raw_.clear();
    if (final && !day.counts.Reconciles()) {
      return arrow::Status::UnknownError(
          ctx_.source, ": row counts do not reconcile: read ", counts_.read,
          " != written ", counts_.written, " + quarantined ", counts_.quarantined,
          " + filtered ", counts_.filtered);
    }
    return day;
  }

 private:
  struct TickerInfo {
    bool valid = true;
    bool selected = true;
    RejectReason reason = RejectReason::kBadTicker;
    std::string detail;
    int32_t underlying = 0;
    int32_t expiration = 0;
    bool put = false;
    double strike = 0;
  };
  struct NewTickerStatus {
    bool ok() const { return ok_; }
    bool ok_ = true;
    RejectReason reason{};
    std::string detail;
  };

  NewTickerStatus NewTicker(std::string_view ticker, int32_t* tid) {
    TickerInfo info;
    if (!ValidTickerText(ticker)) {
      // Not interned: a garbage ticker must not grow the dictionary.
      return {false, RejectReason::kBadTicker,
              fmt::format("ticker '{}' is empty, too long or has control characters",
                          ticker.substr(0, kMaxTickerLength))};
    }
    std::string_view selector = ticker;
    if (options_) {
      auto occ = catalog::ParseOcc(ticker);
      if (!occ.ok()) {
        info.valid = false;
        info.reason = RejectReason::kBadOcc;
        info.detail = occ.status().message();
      } else {
        selector = occ->root;
        std::string root(occ->root);
        auto it = underlying_ids_.find(root);
        if (it == underlying_ids_.end()) {
          it = underlying_ids_.emplace(root, static_cast<int32_t>(underlyings_.size()))
                   .first;
          underlyings_.push_back(root);
        }
        info.underlying = it->second;
        info.expiration = ToDate32(occ->expiration);
        info.put = occ->type == 'P';
        info.strike = static_cast<double>(occ->strike_milli) / 1000.0;
      }
    }
    if (info.valid && !filter_.empty()) {
      info.selected = filter_.count(std::string(selector)) > 0;
    }
    *tid = static_cast<int32_t>(tickers_.size());
    tickers_.emplace_back(ticker);
    ticker_ids_.emplace(tickers_.back(), *tid);
    ticker_info_.push_back(std::move(info));
    return {};
  }

  void Reject(int64_t line, std::string_view raw, RejectReason reason,
              std::string detail) {
    ++counts_.quarantined;
    ++counts_.by_reason[static_cast<std::size_t>(reason)];
    q_line_.push_back(line);
    q_reason_.push_back(reason);
    q_detail_.push_back(std::move(detail));
    q_raw_.emplace_back(raw);
  }

  // The CSV text of an accepted row, in the file's column order (for duplicates found
  // only after sorting, whose raw text is no longer in memory).
  std::string Reconstruct(uint32_t r) const {
    std::array<std::string, kNumAggColumns> v = {
        tickers_[static_cast<std::size_t>(ticker_[r])],
        std::to_string(volume_[r]),
        fmt::format("{}", open_[r]),
        fmt::format("{}", close_d_[r]),
        fmt::format("{}", high_[r]),
        fmt::format("{}", low_[r]),
        std::to_string(ws_[r]),
        std::to_string(transactions_[r])};
    std::vector<std::string> out(static_cast<std::size_t>(map_.num_fields));
    for (std::size_t c = 0; c < kNumAggColumns; ++c) {
      out[static_cast<std::size_t>(map_.index[c])] = v[c];
    }
    return fmt::format("{}", fmt::join(out, ","));
  }

  arrow::Result<std::shared_ptr<arrow::Table>> BuildQuarantine() {
    // In line order, whatever order rows were rejected in.
    std::vector<std::size_t> idx(q_line_.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
      return q_line_[a] < q_line_[b];
    });
    arrow::Int64Builder lines;
    arrow::StringBuilder reasons, details, raws;
    for (std::size_t i : idx) {
      ARROW_RETURN_NOT_OK(lines.Append(q_line_[i]));
      ARROW_RETURN_NOT_OK(reasons.Append(std::string(RejectReasonName(q_reason_[i]))));
      ARROW_RETURN_NOT_OK(details.Append(q_detail_[i]));
      ARROW_RETURN_NOT_OK(raws.Append(q_raw_[i]));
    }
    std::shared_ptr<arrow::Array> a, b, c, d;
    ARROW_RETURN_NOT_OK(lines.Finish(&a));
    ARROW_RETURN_NOT_OK(reasons.Finish(&b));
    ARROW_RETURN_NOT_OK(details.Finish(&c));
    ARROW_RETURN_NOT_OK(raws.Finish(&d));
    return arrow::Table::Make(QuarantineSchema(), {a, b, c, d});
  }

  DayContext ctx_;
  ColumnMap map_;
  int64_t day_start_ns_ = 0;
  bool minute_ = false;
  bool options_ = false;
  std::unordered_set<std::string> filter_;

  std::vector<std::string> tickers_;
  std::unordered_map<std::string, int32_t> ticker_ids_;
  std::vector<TickerInfo> ticker_info_;
  int32_t last_tid_ = -1;
  std::vector<std::string> underlyings_;
  std::unordered_map<std::string, int32_t> underlying_ids_;

  // Last accepted row (adjacent duplicates) and last emitted row (across chunks).
  int32_t prev_tid_ = -1;
  int64_t prev_ws_ = 0;
  int64_t prev_line_ = 0;
  bool has_emitted_ = false;
  int32_t prev_out_tid_ = -1;
  int64_t prev_out_ws_ = 0;
  int64_t prev_out_line_ = 0;
  double prev_out_close_ = 0;

  std::vector<int32_t> ticker_;
  std::vector<uint64_t> volume_;
  std::vector<float> open_, close_, high_, low_;
  std::vector<double> close_d_;
  std::vector<int64_t> ws_;
  std::vector<int16_t> minute_of_day_;
  std::vector<uint32_t> transactions_;
  std::vector<int64_t> line_;

  std::vector<int64_t> q_line_;
  std::vector<RejectReason> q_reason_;
  std::vector<std::string> q_detail_;
  std::vector<std::string> q_raw_;

  DayCounts counts_;
};

AggDayBuilder::AggDayBuilder(DayContext ctx, ColumnMap map)
    : impl_(std::make_unique<Impl>(std::move(ctx), map)) {}
AggDayBuilder::~AggDayBuilder() = default;

void AggDayBuilder::AddRow(int64_t line, std::string_view raw,
                           std::span<const std::string_view> fields) {
  impl_->AddRow(line, raw, fields);
}

arrow::Result<AggDay> AggDayBuilder::Finish() {
  return impl_->BuildChunk(/*final=*/true);
}
arrow::Result<AggDay> AggDayBuilder::TakeChunk() {
  return impl_->BuildChunk(/*final=*/false);
}
std::size_t AggDayBuilder::buffered_rows() const { return impl_->buffered_rows(); }

}  // namespace qlake::ingest

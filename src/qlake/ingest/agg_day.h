// File: qlake/ingest/agg_day.h
//
// One day of an aggregate flat file (stocks/options, day/minute bars), from CSV rows to a
// validated, sorted Arrow table plus the rows that failed validation.
//
//   AggDayBuilder b(ctx, column_map);          // ctx: dataset, file date, NYSE session
//   for each data row: b.AddRow(line_no, raw_line, fields);
//   ARROW_ASSIGN_OR_RAISE(AggDay day, b.Finish());
//   day.table        sorted by (ticker, window_start), typed per DESIGN.md section 5
//   day.quarantine   line, reason, detail, raw text of every rejected row
//   day.counts       read == written + quarantined + filtered, always
//
// Every row read ends up in exactly one of: the table, the quarantine, or the filtered
// count (rows dropped on purpose by a --symbols filter). Rows are rejected for: a wrong
// number of fields, an empty field, a bad ticker or OCC symbol, a non-numeric, NaN/inf or
// non-positive price, OHLC that contradict each other, a negative or fractional volume,
// bad transactions, a malformed timestamp (e.g. 17 digits), a timestamp whose New York
// date is not the file's date (the 2019-08-12 file) or outside 04:00-20:00 ET, and
// duplicates of (ticker, window_start) (the first occurrence is kept). Moves of more than
// 50 % against the ticker's previous bar in the file are flagged (`flags` bit 0), not
// dropped.
//
// Thread safety: a builder is used by one thread. Memory: the accepted rows of the day in
// columnar form (about 40 bytes a row) plus the raw text of rejected rows.

#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <arrow/result.h>
#include <arrow/table.h>

#include "qlake/catalog/datasets.h"
#include "qlake/catalog/nyse_calendar.h"

namespace qlake::ingest {

/// Why a row was rejected. The names (RejectReasonName) are stable: they are stored in
/// the quarantine files and commit records.
enum class RejectReason : uint8_t {
  kFieldCount,
  kNullField,
  kBadTicker,
  kBadOcc,
  kNonNumeric,
  kNotFinite,
  kNonPositivePrice,
  kOhlcInconsistent,
  kNegativeVolume,
  kNonIntegerVolume,
  kBadTransactions,
  kBadTimestamp,
  kWrongDay,
  kOutsideHours,
  kDuplicate,
  kCount_,  // number of reasons; not a reason
};
std::string_view RejectReasonName(RejectReason r);
inline constexpr std::size_t kNumRejectReasons =
    static_cast<std::size_t>(RejectReason::kCount_);

/// Bit flags stored in the `flags` column of accepted rows.
enum AggFlag : uint8_t {
  kFlagBigMove = 1,  // |close / previous close - 1| > 50 % within the file
};

/// The canonical aggregate columns and where each sits in the file's header.
enum class AggColumn : uint8_t {
  kTicker,
  kVolume,
  kOpen,
  kClose,
  kHigh,
  kLow,
  kWindowStart,
  kTransactions,
  kCount_
};
inline constexpr std::size_t kNumAggColumns =
    static_cast<std::size_t>(AggColumn::kCount_);

struct ColumnMap {
  std::array<int, kNumAggColumns> index{};  // field index of each canonical column
  int num_fields = 0;                       // fields a row must have

  /// Maps a header line to the canonical columns by name (order may differ). Unknown,
  /// missing or repeated columns are Invalid, naming `source` and the columns.
  static arrow::Result<ColumnMap> FromHeader(std::string_view header_line,
                                             const catalog::DatasetSpec& spec,
                                             std::string_view source);
};

struct DayContext {
  const catalog::DatasetSpec* spec = nullptr;
  catalog::Session session;  // the file's NYSE session (its date is the file's date)
  std::string source;        // file path or key, for messages
  /// Keep only these tickers (options: these underlyings); empty = all. Other rows count
  /// as filtered.
  std::vector<std::string> symbols;
  /// Close of each ticker's last bar before this file (for day bars: the previous trading
  /// day's committed close), so a move > 50 % on a ticker's first bar is flagged too.
  /// Null or missing tickers: the first bar is not compared.
  std::shared_ptr<const std::unordered_map<std::string, double>> previous_close;
};

struct DayCounts {
  int64_t read = 0;
  int64_t written = 0;
  int64_t quarantined = 0;
  int64_t filtered = 0;
  int64_t flagged = 0;
  std::array<int64_t, kNumRejectReasons> by_reason{};

  bool Reconciles() const { return read == written + quarantined + filtered; }
};

struct AggDay {
  /// Accepted rows, sorted by (ticker, window_start).
  std::shared_ptr<arrow::Table> table;
  /// Rejected rows: line int64, reason utf8, detail utf8, raw utf8.
  std::shared_ptr<arrow::Table> quarantine;
  /// Cumulative over the whole file so far.
  DayCounts counts;
  /// For chunks: this chunk's first row sorts before the previous chunk's last row, so
  /// the file is not sorted and chunks cannot be appended to one sorted file.
  bool out_of_order = false;
};

/// The Arrow schema of the lake table for `spec` (DESIGN.md section 5): ticker
/// dictionary<int32, utf8>, volume uint64, open/close/high/low float32, window_start
/// timestamp[ns, UTC] (day) or [ns, America/New_York] (minute), transactions uint32,
/// date date32, then for minute data `session` dictionary<int8, utf8>, for options
/// `underlying` dictionary<int32, utf8>, `expiration` date32, `option_type`
/// dictionary<int8, utf8> ("C"/"P") and `strike` float64, and finally `flags` uint8.
std::shared_ptr<arrow::Schema> LakeSchema(const catalog::DatasetSpec& spec);

/// The schema of quarantine tables.
std::shared_ptr<arrow::Schema> QuarantineSchema();

class AggDayBuilder {
 public:
  AggDayBuilder(DayContext ctx, ColumnMap map);
  ~AggDayBuilder();
  AggDayBuilder(const AggDayBuilder&) = delete;
  AggDayBuilder& operator=(const AggDayBuilder&) = delete;

  /// Validates one data row. `line` is the 1-based line number in the file (the header is
  /// line 1); `raw` is the row's text (kept only if the row is rejected).
  void AddRow(int64_t line, std::string_view raw,
              std::span<const std::string_view> fields);

  /// Sorts, removes duplicates, derives date/session/option columns and builds the
  /// tables of the rows not yet taken by TakeChunk (all rows if it was never called);
  /// the counts cover the whole file and must reconcile. The builder cannot be used
  /// afterwards.
  arrow::Result<AggDay> Finish();

  /// Streaming: the same for the rows buffered so far, which are then released. Sorted
  /// files give chunks that follow each other in order; duplicates and big moves are
  /// detected across chunk boundaries. Unsorted files set AggDay::out_of_order.
  arrow::Result<AggDay> TakeChunk();
  /// Accepted rows buffered since the last chunk.
  std::size_t buffered_rows() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

/// Splits a CSV line on commas, honouring double quotes (aggregate files have none; trade
/// files quote their condition lists, "12,37"). A quoted field is returned without its
/// outer quotes; doubled quotes inside it are left as they are. Returns the number of
/// fields in the line; only the first out.size() are stored.
std::size_t SplitCsvLine(std::string_view line, std::span<std::string_view> out);

}  // namespace qlake::ingest

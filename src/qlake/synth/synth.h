// File: qlake/synth/synth.h
//
// `qlake synth`: deterministic, realistic synthetic Massive/Polygon flat files. It writes
// a local mirror with the real S3 key layout and column order
//
//   DIR/us_stocks_sip/day_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz       (stocks_daily)
//   DIR/us_stocks_sip/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz    (stocks_minute)
//   DIR/us_options_opra/day_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz     (options_daily)
//   DIR/us_options_opra/minute_aggs_v1/YYYY/MM/YYYY-MM-DD.csv.gz  (options_minute)
//   DIR/_synth/manifest.json                                      (what was written)
//
// one gzipped CSV per dataset per NYSE trading day, header
// `ticker,volume,open,close,high,low,window_start,transactions`. docs/synth.md describes
// the model (tickers, price paths, activity, options chains) and the fault catalogue.
//
// Guarantees:
//  * Determinism: the same options give byte-identical files (gzip bytes included, mtime
//  0)
//    whatever `jobs` is, on the same build (libm results are assumed stable).
//  * Range independence: the content of a day's file depends only on (seed, scale, date,
//    dataset) and the row-level faults, never on `from`/`to`; file-level faults
//    (truncated_gzip, changed_header) hit the first session of the range by design.
//  * Consistency: a day bar equals the aggregate of that ticker's minute bars in the same
//    day (open = first open, close = last close, high = max, low = min, volume and
//    transactions summed), for stocks and options; injected fault rows are extra rows
//    that the manifest lists by line, so dropping them leaves clean, consistent data.
//
// Usage:
//   qlake::synth::SynthOptions opts;
//   opts.out_dir = "/tmp/mirror";
//   ARROW_ASSIGN_OR_RAISE(opts.from, qlake::ParseDate("2024-01-02"));
//   opts.to = opts.from;
//   opts.scale = 0.01;
//   ARROW_ASSIGN_OR_RAISE(auto summary, qlake::synth::GenerateMirror(opts));
//   std::cout << summary.ToText();
//
// Thread safety: all functions may be called concurrently; GenerateMirror runs its own
// worker threads (`jobs`) and returns when every file is written or an error occurred.

#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "qlake/core/dates.h"

namespace qlake::synth {

/// The four aggregate datasets synth writes.
enum class Dataset : uint8_t {
  kStocksDaily = 0,
  kStocksMinute = 1,
  kOptionsDaily = 2,
  kOptionsMinute = 3,
};
inline constexpr Dataset kAllDatasets[] = {Dataset::kStocksDaily, Dataset::kStocksMinute,
                                           Dataset::kOptionsDaily,
                                           Dataset::kOptionsMinute};

/// "stocks_daily", "stocks_minute", "options_daily", "options_minute".
std::string_view DatasetName(Dataset d);
/// The key prefix: "us_stocks_sip/day_aggs_v1", ..., "us_options_opra/minute_aggs_v1".
std::string_view DatasetPrefix(Dataset d);
bool IsOptions(Dataset d);
bool IsMinute(Dataset d);
/// Parses one name (as DatasetName prints it). Invalid lists the valid names.
arrow::Result<Dataset> ParseDataset(std::string_view name);
/// Parses a comma-separated list; duplicates are dropped, order is canonical
/// (kAllDatasets order). An empty list is Invalid.
arrow::Result<std::vector<Dataset>> ParseDatasetList(std::string_view list);
/// "us_stocks_sip/minute_aggs_v1/2025/09/2025-09-29.csv.gz".
std::string KeyFor(Dataset d, Date date);

/// Injectable faults (docs/synth.md, "Fault catalogue"). Row-level faults add a few
/// corrupted extra rows to every file they apply to; file-level faults damage one file.
enum class Fault : uint8_t {
  kBadTimestamp = 0,    // row: window_start with 17 digits (value / 100)
  kNonNumeric = 1,      // row: "abc" in one price column
  kNegativeVolume = 2,  // row: volume < 0
  kDuplicateRows = 3,   // row: an exact copy of an earlier row (its source_line)
  kNanInf = 4,          // row: "NaN", "inf" or "-inf" in one price column
  kWrongDay = 5,        // row: window_start one day (86,400 s) later than the file's day
  kOhlcInconsistent = 6,  // row: close above high
  kTruncatedGzip = 7,     // file: gzip cut in the middle of the deflate data
  kChangedHeader = 8,     // file: an extra trailing column `otc` (header and rows)
  kBadOcc = 9,            // row (options only): a malformed OCC option ticker
};
inline constexpr Fault kAllFaults[] = {Fault::kBadTimestamp,     Fault::kNonNumeric,
                                       Fault::kNegativeVolume,   Fault::kDuplicateRows,
                                       Fault::kNanInf,           Fault::kWrongDay,
                                       Fault::kOhlcInconsistent, Fault::kTruncatedGzip,
                                       Fault::kChangedHeader,    Fault::kBadOcc};

/// "bad_timestamp", "non_numeric", ... (the --faults spelling).
std::string_view FaultName(Fault f);
/// True for truncated_gzip and changed_header, which damage a whole file.
bool IsFileLevel(Fault f);
arrow::Result<Fault> ParseFault(std::string_view name);
/// Parses a comma-separated list ("" or "none" = no faults; "all" = every fault).
/// Unknown names are Invalid, listing the valid names.
arrow::Result<std::vector<Fault>> ParseFaultList(std::string_view list);

struct SynthOptions {
  // Behaviour
  /// Mirror root; created if missing. Existing files with the same keys are replaced.
  std::string out_dir;
  /// First and last calendar date (inclusive); files are written for NYSE sessions only.
  /// Both must lie in 2000-01-01..2035-12-31 (OCC years are 20YY; the NYSE calendar ends
  /// in 2035).
  Date from{};
  Date to{};
  /// Datasets to write, in canonical order.
  std::vector<Dataset> datasets{std::begin(kAllDatasets), std::end(kAllDatasets)};
  /// Seeds every random choice (tickers, prices, activity, fault positions).
  uint64_t seed = 42;
  /// Multiplies the number of stock tickers (about 12,000 at 1.0, of which ~11,200 trade
  /// on a given day) and option contracts. 0.01 gives files of a few thousand rows;
  /// must be in (0, 10].
  double scale = 1.0;
  /// Faults to inject; empty = clean data.
  std::vector<Fault> faults;
  /// Write DIR/_synth/manifest.json.
  bool write_manifest = true;

  // Performance
  /// Worker threads; 0 = std::thread::hardware_concurrency(). Output does not depend on
  /// it.
  int jobs = 0;
  /// ISA-L deflate level 0..3. 1 (default) is ~2x faster than 3 at ~10 % larger files.
  int gzip_level = 1;

  static SynthOptions Defaults() { return {}; }
  /// Invalid for an empty out_dir, from > to, dates outside 2000..2035, scale outside
  /// (0, 10], no datasets, jobs < 0, gzip_level outside 0..3.
  arrow::Status Validate() const;
};

/// One file written.
struct SynthFileInfo {
  std::string key;
  Dataset dataset = Dataset::kStocksDaily;
  Date date{};
  /// Data rows (lines after the header), injected fault rows included.
  int64_t rows = 0;
  /// Rows that are injected row-level faults (listed in SynthSummary::faults).
  int64_t fault_rows = 0;
  /// Bytes on disk (after truncation for truncated_gzip).
  int64_t bytes = 0;
  /// Bytes of the complete gzip stream (== bytes unless truncated).
  int64_t full_bytes = 0;
  /// Bytes of the uncompressed CSV, header included.
  int64_t uncompressed_bytes = 0;
  /// CRC-32 of the uncompressed CSV (the gzip trailer value).
  uint32_t crc32 = 0;
  bool truncated = false;
  bool changed_header = false;
  int64_t valid_rows() const { return rows - fault_rows; }
};

/// One injected fault. Row-level faults name the 1-based line of the decompressed file
/// (line 1 is the header); file-level faults use line 0 (truncated_gzip) or 1
/// (changed_header, the header line).
struct SynthFaultRecord {
  std::string key;
  int64_t line = 0;
  Fault kind = Fault::kBadTimestamp;
  /// Column the fault is in ("window_start", "open", ...; "" for whole-row/file faults).
  std::string column;
  /// The line number of the clean row the faulty row was copied from (0 for file-level).
  int64_t source_line = 0;
};

struct SynthSummary {
  std::vector<SynthFileInfo> files;      // in (date, dataset) order
  std::vector<SynthFaultRecord> faults;  // in (key, line) order
  int64_t rows = 0;
  int64_t bytes = 0;
  int64_t uncompressed_bytes = 0;
  double seconds = 0;
  int jobs = 0;

  double RowsPerSecond() const;
  /// Uncompressed MB (10^6 bytes) per second.
  double MegabytesPerSecond() const;
  /// Multi-line human summary (totals, speed, per-dataset files/rows/bytes).
  std::string ToText() const;
  /// JSON object: totals, speed, per-dataset totals (no per-file list; see the manifest).
  std::string ToJson() const;
};

/// Writes the mirror described by `options` (each file to a temporary name, then renamed)
/// and the manifest. Returns Invalid for bad options, IOError when a file cannot be
/// written (files already renamed into place stay).
arrow::Result<SynthSummary> GenerateMirror(const SynthOptions& options);

/// One file generated in memory: the uncompressed CSV and its injected faults (no file is
/// written; truncated_gzip does not apply). The same bytes GenerateMirror compresses.
struct SynthCsv {
  std::string key;
  std::string csv;
  int64_t rows = 0;
  std::vector<SynthFaultRecord> faults;
};
/// Generates the file of `dataset` on session `date` as GenerateMirror would with
/// `options` (`options.from` decides which day gets file-level faults). Invalid if `date`
/// is not a trading day or options are bad.
arrow::Result<SynthCsv> GenerateCsv(const SynthOptions& options, Dataset dataset,
                                    Date date);

}  // namespace qlake::synth

// File: qlake/qlib/export.h
//
// The lake -> a Qlib provider directory (shared/docs/qlib-format.md; docs/qlib.md):
//
//   <out>/calendars/day.txt | 1min.txt    NYSE sessions (day) or every minute of them
//   <out>/instruments/all.txt              CODE \t first day \t last day, no header
//   <out>/instruments/<market>.txt         the same for the symbols of --market
//   <out>/features/<dir>/<field>.<freq>.bin  float32 LE: start row, then one value a row
//   <out>/.qlake/qlib.json                 qlake's manifest (freq, fields, range,
//   markets)
//   <out>/.qlake/inputs.json               per exported day, the lake commit (transaction
//                                          id) of each dataset it read
//
// Sources: stocks_daily (freq day) or stocks_minute (freq 1min), every committed day of
// the range; each session in the range must be committed (else Invalid naming the days).
// Fields: open high low close volume vwap factor change, then --fields extras (numeric
// columns of the source dataset, else of features/<dataset> of the same day).
//
// Incremental and crash safe:
//  * A new store (or --rebuild) is built in a sibling folder and swapped in with two
//    renames; a crash leaves the old store (or none) and the next run cleans up.
//  * Days after the store's last day are appended: every touched bin gets NaN padding and
//    the new values appended at its end, new symbols get new bins. Days inside the store
//    are rewritten: the series of the symbols those days touch are recomputed; values
//    that changed are written in place after the commit point when a symbol's span is
//    unchanged (the journal is their redo log), else its bins are rewritten whole (temp +
//    rename). Days inside the store are those of an explicit `from`, plus
//    (check_recommits) every day whose lake commit changed since it was exported: the
//    commit records of the input datasets (source; stocks_minute for a day store's vwap;
//    features/<source> for feature fields) are listed once and compared by file size and
//    mtime with inputs.json, and a changed record is read to compare its transaction id.
//    Each batch of days is one transaction with a journal
//    (<out>/.qlake/journal.json): until it is marked committed, a crash is rolled back
//    (appended bins truncated to their old size, new folders deleted, temps removed);
//    after, it is rolled forward (temps renamed). Appended bytes lie past the calendar's
//    end, which Qlib never reads, and the calendar is renamed last, so readers see the
//    old store until the new calendar appears.
//  * Changing the calendar's start (days before the store's first day), the frequency,
//    the session or the field list needs --rebuild.
//
// Thread safety: one export per output folder at a time (not locked; the pipeline's lock
// serialises runs). Memory: buffered bars of one batch of days (batch_bytes) plus one
// source file; rewrites also hold one symbol's whole history.

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>

#include "qlake/core/dates.h"

namespace qlake::qlib {

enum class Freq { kDay, kMinute };
enum class SessionMode { kRegular, kExtended };

std::string_view FreqName(Freq f);  // "day", "1min"
arrow::Result<Freq> ParseFreq(std::string_view s);
std::string_view SessionModeName(SessionMode s);  // "regular", "extended"
arrow::Result<SessionMode> ParseSessionMode(std::string_view s);

struct ExportOptions {
  /// Lake folder or URI (file://, s3://).
  std::string lake;
  /// Output folder (local file system).
  std::string out;
  Freq freq = Freq::kDay;
  /// Range to export. Default from: the store's first day (new store: the source's first
  /// committed day); default to: the source's watermark (last contiguous committed day).
  std::optional<Date> from, to;
  /// Only these tickers (lake spelling); empty = all.
  std::vector<std::string> symbols;
  /// Also write instruments/<market>.txt listing the exported symbols ([a-z0-9_]).
  std::string market;
  /// 1min only: regular 09:30-15:59 (early closes shortened) or extended 04:00-19:59.
  SessionMode session = SessionMode::kRegular;
  /// Extra fields (lake or feature columns), [a-z0-9_].
  std::vector<std::string> fields;
  /// Rebuild the whole store from scratch (needed to move the calendar's start, change
  /// fields, frequency or session).
  bool rebuild = false;
  /// Days read into memory before their values are written (bytes of buffered bars).
  int64_t batch_bytes = int64_t{256} << 20;
  /// Flush the output file system (syncfs) before each commit point.
  bool fsync = true;
  /// Also rewrite the days inside the store whose lake commit changed since they were
  /// exported (re-ingested or republished days; for a day store also stocks_minute days
  /// committed or re-committed since, which its vwap reads). Costs one listing of each
  /// input dataset's commit records and a read of the records whose file changed.
  bool check_recommits = true;
};

struct ExportReport {
  std::string out;
  std::string freq;
  bool rebuilt = false;        // the store was (re)built from scratch
  int64_t days_appended = 0;   // days added after the store's previous end
  int64_t days_rewritten = 0;  // days inside the store exported again
  /// Of days_rewritten: days whose lake commit changed since they were exported.
  int64_t days_recommitted = 0;
  std::vector<std::string> recommitted_days;  // YYYY-MM-DD, ascending
  int64_t symbols = 0;                        // instruments in all.txt afterwards
  int64_t symbols_touched = 0;                // symbols whose bins were written
  int64_t bars = 0;                           // source bars exported
  int64_t bytes_written = 0;                  // feature bytes written
  int64_t calendar_rows = 0;
  std::string first_day, last_day;  // the store's range afterwards ("" if empty)
  int64_t recovered = 0;            // interrupted transactions cleaned up first
  double seconds = 0;
};

/// Creates or updates the store. Errors: Invalid for bad options, missing lake days, a
/// foreign non-empty output folder, or changes that need --rebuild; IOError for file
/// system failures (the store stays as it was, or is completed by the next run).
arrow::Result<ExportReport> Export(const ExportOptions& options);

}  // namespace qlake::qlib

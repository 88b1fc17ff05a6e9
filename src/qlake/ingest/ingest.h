// File: qlake/ingest/ingest.h
//
// The ingest stage: for each requested day of an aggregate dataset, read the flat file
// from the source (a mirror folder or any Arrow FileSystem URI), decompress it with
// ISA-L, validate every row, sort, write Parquet in the chosen layout and commit the day
// to the lake atomically (qlake/lake/lake.h). Days are independent: a file-level failure
// (missing file, corrupt gzip, changed header) fails that day only and leaves its
// previous committed state untouched.
//
//   IngestOptions o;
//   o.dataset = "stocks_minute"; o.from = o.to = day; o.source = "/mirror"; o.lake =
//   "/lake"; ARROW_ASSIGN_OR_RAISE(auto report, qlake::ingest::Ingest(o)); for (const
//   auto& d : report.days) ... d.status, d.counts, d.seconds ...
//
// Re-ingesting a day from the same file gives byte-identical Parquet files.
//
// Thread safety: Ingest may be called concurrently for different datasets or days; it
// runs `parallel_days` worker threads itself.

#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <arrow/filesystem/filesystem.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "qlake/core/dates.h"
#include "qlake/ingest/agg_day.h"
#include "qlake/ingest/agg_reader.h"
#include "qlake/ingest/layout.h"
#include "qlake/ingest/parquet_out.h"

namespace qlake {
class ProgressReporter;
}

namespace qlake::ingest {

struct IngestOptions {
  // Behaviour
  /// One of the ingestible datasets (catalog::DatasetSpec::ingestible).
  std::string dataset;
  /// Calendar dates, inclusive; non-trading days are skipped (no file is expected).
  Date from{};
  Date to{};
  /// Mirror folder or FileSystem URI holding the bucket's key layout. With source_fs
  /// set: the path inside source_fs ("flatfiles" for the bucket root on S3).
  std::string source;
  /// Lake root: folder or URI; with lake_fs set, the path inside lake_fs.
  std::string lake;
  /// File systems already opened by the caller (qlake/io/filesystem.h OpenFileSystem,
  /// which applies the s3.* config: endpoint, credentials, retries). Null: `source` /
  /// `lake` are opened as local paths or plain Arrow URIs.
  std::shared_ptr<arrow::fs::FileSystem> source_fs;
  std::shared_ptr<arrow::fs::FileSystem> lake_fs;
  LayoutKind layout = LayoutKind::kDaily;
  /// Keep only these tickers (options: underlyings); empty = all.
  std::vector<std::string> symbols;
  /// Fsync published files (off only for throwaway lakes in benchmarks).
  bool fsync = true;
  /// Skip days whose commit record names the same source version (size and
  /// LastModified) as the file in the source now: only new and republished days are
  /// (re)committed (`qlake ingest --changed-only`; see qlake/fetch/fetch.h).
  bool skip_unchanged = false;

  // Performance
  ParquetOutOptions parquet;
  AggReaderOptions reader;
  /// Bytes per read of a source file. On S3 every read is one ranged GET, so sources on
  /// S3 use at least 8 MiB.
  int64_t source_read_bytes = int64_t{1} << 20;
  /// Days processed at once (config ingest.parallel_files).
  int parallel_days = 1;

  arrow::Status Validate() const;
};

/// What happened to one day.
struct DayReport {
  Date day{};
  std::string key;       // source key
  arrow::Status status;  // OK, or why the day failed (nothing of it was committed)
  DayCounts counts;
  int64_t source_bytes = 0;  // compressed
  int64_t uncompressed_bytes = 0;
  int64_t output_bytes = 0;  // Parquet written (data files)
  int64_t files = 0;
  double seconds = 0;
  /// skip_unchanged: the day's commit already has this source version; nothing was
  /// written (counts are the commit's).
  bool unchanged = false;
};

struct IngestReport {
  std::string dataset;
  std::vector<DayReport> days;  // in date order; trading days only
  std::vector<Date> skipped;    // non-trading days in the range
  double seconds = 0;

  int64_t failed() const;
  /// OK if every day succeeded; otherwise the first failure when all failed, or
  /// Cancelled("N of M days failed") for a partial failure (exit code 7).
  arrow::Status Summary() const;
};

/// Ingests every trading day in [from, to]. Returns an error only for bad options or an
/// unusable source/lake; per-day failures are in the report.
arrow::Result<IngestReport> Ingest(const IngestOptions& options,
                                   ProgressReporter* progress = nullptr);

}  // namespace qlake::ingest

// File: qlake/query/engine.h
//
// The query engine: symbol x date-range reads of one lake dataset, returned as an Arrow
// table. It reads only what the lake says is committed (commit records; files of days in
// progress or torn are never seen) and, for each query:
//
//  1. prunes by date: only the commit records of days in [from, to] are opened (the
//     record listing is one directory listing; parsed records are cached by name, size
//     and modification time). On a local file system the listing itself is kept while
//     the commits folder's modification time is unchanged and was taken > 2 s after
//     that time (so a commit within the same coarse time-stamp tick cannot hide): a
//     warm query then costs one stat for its days;
//  2. prunes by partition: in the `original` layout, files whose `symbol=`/`underlying=`
//     folder (unescaped with catalog::UnescapePathComponent) is not asked for are skipped
//     without being opened;
//  3. prunes by row group: the min/max statistics of the ticker (options: underlying)
//     column drop row groups that cannot hold a requested symbol, and the statistics of
//     the columns of the --where condition drop row groups that cannot match it;
//  4. uses the ticker column as a per-file symbol index: lake files are sorted by
//     (ticker, window_start) and declare it in their sorting-columns metadata, so the
//     rows of a symbol are one contiguous range found by binary search over the (cached,
//     dictionary-encoded) ticker column; only that range enters the filter and the
//     result;
//  5. reads only the needed columns (output + condition + ticker), one decoded column
//     chunk (column x row group) at a time, through the shared ColumnChunkCache;
//  6. evaluates the condition (and the --session filter) on the selected rows.
//
// Result chunks: a row range of >= 256 rows is passed on as a zero-copy slice of the
// cached column chunks (its own chunk); runs of shorter ranges (daily bars: one row per
// symbol and file) are copied together into chunks of up to 64Ki rows, so that a year
// of daily bars is one chunk rather than thousands of one-row pieces. With symbols, the
// ticker column's dictionary is the requested symbols.
//
// Feature datasets ("features/stocks_daily", qlake/features/features.h) are read the same
// way; their schema is that of their committed files.
//
// Row order: with symbols, by (symbol, time) -- symbols in sorted order; without symbols
// or for options (where symbols are underlyings), by (day, ticker, time).
//
// Layouts: both `daily` and `original` (ingest/layout.h). In the original layout, columns
// that live only in the partition path (options `underlying`, options_minute `date`) are
// added back from the path. Lakes on any arrow::fs::FileSystem work (local, S3, mock).
//
// Thread safety: an Engine may be used by many threads at once; queries share the cache.

#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <arrow/result.h>
#include <arrow/table.h>

#include "qlake/core/config.h"
#include "qlake/core/dates.h"
#include "qlake/lake/lake.h"
#include "qlake/query/chunk_cache.h"

namespace qlake::query {

struct QueryOptions {
  /// A raw dataset ("stocks_minute") or a feature dataset ("features/stocks_minute",
  /// whose columns are those of its committed files).
  std::string dataset;
  /// Tickers (options datasets: underlyings). Empty = every symbol.
  std::vector<std::string> symbols;
  Date from;
  Date to;  // inclusive
  /// Output columns in this order; empty = every column of the dataset's lake schema.
  std::vector<std::string> columns;
  /// Condition in the where.h language; empty = none.
  std::string where;
  /// Minute datasets: keep only bars of these session parts ("pre", "regular", "post",
  /// "outside"); empty = all. Invalid for day datasets.
  std::vector<std::string> sessions;

  arrow::Status Validate() const;
};

struct QueryStats {
  int64_t days = 0;               // committed days in the range
  int64_t files = 0;              // data files listed by those days' records
  int64_t files_pruned = 0;       // skipped by partition path or statistics
  int64_t row_groups = 0;         // row groups of the files opened
  int64_t row_groups_pruned = 0;  // skipped by statistics or the symbol index
  int64_t rows_scanned = 0;       // rows that entered the filter
  int64_t rows = 0;               // rows returned
  int64_t bytes_read = 0;         // bytes read from storage (footers + column chunks)
  int64_t cache_hits = 0;         // column chunks served from the cache
  int64_t cache_misses = 0;       // column chunks decoded from storage
  double seconds = 0;
};

struct QueryResult {
  std::shared_ptr<arrow::Table> table;
  QueryStats stats;
};

struct EngineOptions {
  /// Budget of the decoded column-chunk cache (config query.cache_bytes); 0 disables it.
  /// Ignored when `cache` is given.
  int64_t cache_bytes = int64_t{512} << 20;
  /// Share one cache between engines (e.g. the process-wide cache of the Python module).
  std::shared_ptr<ColumnChunkCache> cache;
  /// Files whose footers (metadata) are kept in memory.
  int64_t max_open_files = 4096;
};

class Engine {
 public:
  /// Opens the lake at `uri_or_path` read-only (no folder is created). S3 lakes
  /// (s3://bucket/prefix) use the s3.* settings of `config` (endpoint, region,
  /// credentials: io::OpenFileSystem), as ingest does.
  static arrow::Result<std::shared_ptr<Engine>> Open(const std::string& uri_or_path,
                                                     const Config& config,
                                                     EngineOptions options = {});
  /// The same with the built-in configuration defaults (S3: Arrow's own URI handling).
  static arrow::Result<std::shared_ptr<Engine>> Open(const std::string& uri_or_path,
                                                     EngineOptions options = {});
  static arrow::Result<std::shared_ptr<Engine>> Make(std::shared_ptr<lake::Lake> lake,
                                                     EngineOptions options = {});
  ~Engine();

  /// Runs a query. Invalid for bad options (unknown dataset or column, bad condition,
  /// from > to), KeyError-free: a range without committed days gives an empty table with
  /// the output schema. IOError naming the file for unreadable files.
  arrow::Result<QueryResult> Query(const QueryOptions& options);

  /// The schema a query with these options returns (no file is read).
  arrow::Result<std::shared_ptr<arrow::Schema>> OutputSchema(const QueryOptions& options);

  const std::shared_ptr<lake::Lake>& lake() const { return lake_; }
  ColumnChunkCache& cache() { return *cache_; }

  struct FileState;  // cached footer and per-row-group facts (engine.cc)

 private:
  Engine(std::shared_ptr<lake::Lake> lake, EngineOptions options);

  using RecordPtr = std::shared_ptr<const lake::CommitRecord>;
  // The commit records of a dataset's folder, sorted by day.
  struct Listing {
    struct Entry {
      Date day;
      std::string path;
      int64_t size;
      int64_t mtime_ns;
    };
    std::vector<Entry> entries;
    int64_t dir_mtime_ns = 0;  // local file systems: the folder's time when listed
    bool trusted = false;      // listed > 2 s after dir_mtime_ns: reusable while it holds
  };

  // The lake schema of a raw dataset, or a committed file's schema for features/<x>.
  arrow::Result<std::shared_ptr<arrow::Schema>> DatasetSchema(
      const std::string& dataset, const std::vector<RecordPtr>& records,
      QueryStats* stats);
  arrow::Result<std::shared_ptr<const Listing>> ListRecords(const std::string& dataset);
  arrow::Result<std::vector<RecordPtr>> Records(const std::string& dataset, Date from,
                                                Date to, QueryStats* stats);

  std::shared_ptr<lake::Lake> lake_;
  EngineOptions options_;
  std::shared_ptr<ColumnChunkCache> cache_;

  std::mutex mu_;  // guards the maps below
  struct CachedRecord {
    int64_t size;
    int64_t mtime_ns;
    RecordPtr record;
  };
  std::unordered_map<std::string, CachedRecord> records_;
  std::unordered_map<std::string, std::shared_ptr<const Listing>> listings_;
  std::unordered_map<std::string, std::shared_ptr<FileState>> files_;

 public:
  arrow::Result<std::shared_ptr<FileState>> GetFile(const std::string& key,
                                                    const std::string& path,
                                                    QueryStats* stats);
};

/// Compute functions must be registered once per process before queries run (the CLI and
/// the Python module call this; pyarrow does it too). Idempotent and thread-safe.
arrow::Status InitializeQueryEngine();

}  // namespace qlake::query

// File: qlake/ingest/parquet_out.h
//
// Writes a lake table to Parquet the way every lake file is written: the dataset's Arrow
// schema stored in the footer (time zones and dictionaries round-trip), statistics and
// page indexes on (readers prune by ticker and time), sorting columns declared
// (ticker, window_start), row groups and compression from the processing mode, and
// key/value metadata (qlake version, source key and version, row counts, validation
// summary). The output is deterministic: the same table and options give the same bytes.
//
// Thread safety: one call per output stream.

#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <arrow/io/interfaces.h>
#include <arrow/status.h>
#include <arrow/table.h>
#include <arrow/util/type_fwd.h>

#include "qlake/core/config.h"

namespace qlake::ingest {

struct ParquetOutOptions {
  /// Codec: "zstd", "snappy", "lz4" or "none" (config ingest.compression).
  std::string compression = "zstd";
  /// Codec level where it has one (zstd 1-22).
  int compression_level = 3;
  /// Rows per row group (config ingest.row_group_rows). Smaller groups prune better.
  int64_t row_group_rows = 100'000;
  /// Rows per data page: page indexes let readers skip pages inside a row group.
  int64_t page_rows = 20'000;
  /// Encode columns in parallel on Arrow's CPU pool. Helps one large file; turn it off
  /// when several files are written at once (Arrow can deadlock when parallel writers
  /// share the executor, shared/docs/arrow-cpp.md section 3.3).
  bool use_threads = true;
  /// Columns written without dictionary encoding, besides open/close/high/low/volume
  /// (values that hardly repeat, such as computed features).
  std::vector<std::string> plain_columns;

  arrow::Status Validate() const;
};

/// The writer settings users configure: compression, compression_level and
/// row_group_rows from `config` (ingest.*); the other fields keep their defaults. Used
/// by every writer of lake files (ingest, features, the pipeline, the Python module).
arrow::Result<ParquetOutOptions> ParquetOutOptionsFromConfig(const Config& config);

/// A Parquet file written in pieces (streaming ingest): each Write appends row groups of
/// at most row_group_rows rows; Close adds the key/value metadata and closes the sink.
/// Deterministic for the same sequence of Write calls. Not thread-safe.
class ParquetStreamWriter {
 public:
  static arrow::Result<std::unique_ptr<ParquetStreamWriter>> Open(
      std::shared_ptr<arrow::Schema> schema,
      std::shared_ptr<arrow::io::OutputStream> sink, const ParquetOutOptions& options);
  ~ParquetStreamWriter();
  ParquetStreamWriter(const ParquetStreamWriter&) = delete;
  ParquetStreamWriter& operator=(const ParquetStreamWriter&) = delete;

  arrow::Status Write(const arrow::Table& table);
  arrow::Status Close(const std::vector<std::pair<std::string, std::string>>& metadata);
  int64_t rows_written() const { return rows_; }

 private:
  struct State;
  explicit ParquetStreamWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
  int64_t rows_ = 0;
};

/// Writes `table` to `sink` and closes it. Sorting columns are declared only for the
/// columns named "ticker" and "window_start" when present (callers sort the rows).
arrow::Status WriteParquet(
    const arrow::Table& table, std::shared_ptr<arrow::io::OutputStream> sink,
    const ParquetOutOptions& options,
    const std::vector<std::pair<std::string, std::string>>& metadata);

/// Rebuilds the dictionary columns of `table` with only the values its rows use (a slice
/// of a dictionary array keeps the whole dictionary, and Parquet would store all of it).
arrow::Result<std::shared_ptr<arrow::Table>> CompactDictionaries(
    const std::shared_ptr<arrow::Table>& table);

/// Parses a codec name for ParquetOutOptions; Invalid for unknown names.
arrow::Result<arrow::Compression::type> ParseCompression(const std::string& name);

}  // namespace qlake::ingest

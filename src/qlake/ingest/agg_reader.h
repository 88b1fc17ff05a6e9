// File: qlake/ingest/agg_reader.h
//
// Reads one decompressed aggregate CSV file (header + rows) into an AggDay. Two readers
// produce identical results:
//
//  * the fast reader (default) splits lines and fields itself on large blocks, with no
//    per-row allocation: the path used by `qlake ingest`;
//  * the reference reader (AggReaderOptions::use_arrow_csv) parses with Arrow's
//    StreamingReader, all columns as strings, and feeds the same validator. Tests compare
//    the two on clean and broken inputs; keep it as the oracle when tuning the fast one.
//
// File-level problems (empty file, wrong header) are Invalid errors naming the source;
// row problems never fail the read, they go to the quarantine table.
//
// Thread safety: one call per stream; independent calls may run concurrently.

#pragma once

#include <functional>
#include <memory>

#include <arrow/io/interfaces.h>
#include <arrow/result.h>

#include "qlake/ingest/agg_day.h"

namespace qlake::ingest {

struct AggReaderOptions {
  /// Parse with Arrow's CSV reader instead of the fast splitter (reference path).
  bool use_arrow_csv = false;
  /// Bytes read from the (decompressed) stream at a time.
  int64_t block_size = int64_t{4} << 20;
  /// Streaming: hand every `chunk_rows` accepted rows to `on_chunk` as a sorted chunk
  /// (AggDayBuilder::TakeChunk) instead of holding the whole day; the returned AggDay
  /// then holds only the last chunk. 0 = whole day in memory. The reference reader
  /// ignores it.
  int64_t chunk_rows = 0;
  std::function<arrow::Status(AggDay&&)> on_chunk;

  arrow::Status Validate() const;
};

/// Reads every row of `csv` (decompressed text) into a validated day.
arrow::Result<AggDay> ReadAggDay(std::shared_ptr<arrow::io::InputStream> csv,
                                 const DayContext& ctx,
                                 const AggReaderOptions& options = {});

}  // namespace qlake::ingest

// File: qlake/query/output.h
//
// Renders a query result: a readable aligned table (the default on a terminal), CSV
// (header line, RFC 4180 quoting), JSON (one array of row objects; numbers as numbers,
// times as ISO 8601 strings with the column's UTC offset, null as null) or Parquet (the
// lake's writer settings: zstd, statistics, stored Arrow schema).
//
// Times print in the column's time zone ("2025-01-02T09:30:00-05:00" for minute bars,
// "...Z"-equivalent "+00:00" for day bars); dates as YYYY-MM-DD; floats in their shortest
// round-trip form.
//
// Thread safety: pure functions.

#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include <arrow/io/interfaces.h>
#include <arrow/result.h>
#include <arrow/table.h>

namespace qlake::query {

enum class OutputFormat { kTable, kCsv, kJson, kParquet };
arrow::Result<OutputFormat> ParseOutputFormat(std::string_view name);

/// Writes `table` as text (table, csv or json) to `out`. Invalid for kParquet.
arrow::Status WriteText(const arrow::Table& table, OutputFormat format,
                        std::ostream& out);

/// Writes `table` as one Parquet file to `sink` and closes it.
arrow::Status WriteParquetResult(const std::shared_ptr<arrow::Table>& table,
                                 std::shared_ptr<arrow::io::OutputStream> sink);

}  // namespace qlake::query

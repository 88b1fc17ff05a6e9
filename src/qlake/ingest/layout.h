// File: qlake/ingest/layout.h
//
// Where a day's rows go inside a dataset's folder of the lake. Two layouts:
//
//  * "daily" (the default): one file per trading day, all tickers, sorted by (ticker,
//    window_start):   year=YYYY/month=MM/YYYY-MM-DD.parquet
//    A day is one file to write and one file to replace, so ingest is a single sequential
//    write; symbol queries prune by row-group and page statistics on the sorted ticker
//    column. docs/lake.md has the numbers behind the choice.
//  * "original": the scheme of the design document qlake implements (DESIGN.md section
//  1):
//      stocks_daily    year=YYYY/month=MM/YYYY-MM-DD.parquet
//      stocks_minute   symbol=<escaped>/year=YYYY/month=MM/YYYY-MM-DD.parquet
//      options_daily   underlying=<escaped>/year=YYYY/month=MM/YYYY-MM-DD.parquet
//      options_minute  underlying=<escaped>/date=YYYY-MM-DD/YYYY-MM-DD.parquet
//    with one file per partition per day, so replacing a day never rewrites other days.
//
// Tickers and underlyings become directory names only through
// catalog::EscapePathComponent (reversible, portable; pyarrow's hive partitioning decodes
// it back). Partition values live in the path only: in the original layout the options
// files carry no `underlying` column (and options_minute files no `date` column), which
// hive-partitioned readers add back from the directory names; all other columns are the
// lake schema's.
//
// Thread safety: pure functions.

#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <arrow/table.h>

#include "qlake/catalog/datasets.h"
#include "qlake/core/dates.h"

namespace qlake::ingest {

enum class LayoutKind { kDaily, kOriginal };
std::string_view LayoutName(LayoutKind k);  // "daily", "original"
arrow::Result<LayoutKind> ParseLayout(std::string_view name);

struct OutputFile {
  std::string relative_path;  // below the dataset folder
  std::shared_ptr<arrow::Table> table;
};

/// The daily layout's file of `day`: "year=YYYY/month=MM/YYYY-MM-DD.parquet".
std::string DayFilePath(Date day);

/// Splits a day's sorted lake table into the files of `layout`. Dictionary columns of
/// each piece are compacted so a per-symbol file does not carry the whole day's
/// dictionary. An empty table gives one empty file in the daily layout (the day is still
/// committed) and no files in partitioned layouts.
arrow::Result<std::vector<OutputFile>> PartitionDay(
    const catalog::DatasetSpec& spec, LayoutKind layout, Date day,
    const std::shared_ptr<arrow::Table>& table);

}  // namespace qlake::ingest

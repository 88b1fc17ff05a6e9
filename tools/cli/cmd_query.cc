// qlake query: symbol x date-range reads of one lake dataset, printed as a table (on a
// terminal), CSV, JSON or written as Parquet.

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <arrow/io/file.h>
#include <fmt/format.h>

#include "command.h"
#include "qlake/core/strings.h"
#include "qlake/query/engine.h"
#include "qlake/query/output.h"

namespace qlake::cli {

namespace {

struct QueryFlags {
  std::string lake, dataset, symbols, date, from, to, columns, where, session, format,
      out;
  bool stats = false;
};

}  // namespace

Runner SetupQuery(CLI::App& app) {
  auto f = std::make_shared<QueryFlags>();
  app.add_option("--lake", f->lake, "Lake folder or URI (default: config lake.root)");
  app.add_option("--dataset", f->dataset,
                 "stocks_daily, stocks_minute, options_daily or options_minute")
      ->required();
  app.add_option("--symbols", f->symbols,
                 "Comma-separated tickers (options: underlyings); default all");
  auto* date = app.add_option("--date", f->date, "One day (YYYY-MM-DD)");
  auto* from = app.add_option("--from", f->from, "First day (YYYY-MM-DD)");
  auto* to = app.add_option("--to", f->to, "Last day, inclusive");
  date->excludes(from)->excludes(to);
  from->needs(to);
  to->needs(from);
  app.add_option("--columns", f->columns,
                 "Comma-separated output columns in order (default: all)");
  app.add_option(
      "--where", f->where,
      "Row condition, e.g. \"close > 100 and volume >= 1000\" (docs/query.md)");
  app.add_option("--session", f->session,
                 "Minute bars: keep these session parts (regular, pre, post, outside; "
                 "comma-separated)");
  app.add_option("--format", f->format,
                 "table, csv, json or parquet (default: table on a terminal, else csv)")
      ->check(CLI::IsMember({"table", "csv", "json", "parquet"}));
  app.add_option("--out", f->out, "Write to this file instead of standard output");
  app.add_flag("--stats", f->stats,
               "Print pruning, bytes read and cache counters to standard error");

  return [f](Context& ctx) -> arrow::Status {
    auto& cfg = ctx.config;
    if (!f->lake.empty()) {
      ARROW_RETURN_NOT_OK(cfg.Set("lake.root", f->lake, ConfigSource::kFlag, "--lake"));
    }
    ARROW_ASSIGN_OR_RAISE(auto lake_uri, cfg.GetString("lake.root"));
    if (lake_uri.empty()) {
      return arrow::Status::Invalid("no lake: pass --lake DIR|URI or set lake.root");
    }
    if (f->date.empty() && f->from.empty()) {
      return arrow::Status::Invalid("give --date D or --from D --to D");
    }
    query::QueryOptions q;
    q.dataset = f->dataset;
    ARROW_ASSIGN_OR_RAISE(q.from, ParseDate(f->date.empty() ? f->from : f->date));
    ARROW_ASSIGN_OR_RAISE(q.to, ParseDate(f->date.empty() ? f->to : f->date));
    q.symbols = SplitCommaList(f->symbols);
    q.columns = SplitCommaList(f->columns);
    q.where = f->where;
    q.sessions = SplitCommaList(f->session);

    std::string fmt_name = f->format;
    if (fmt_name.empty()) {
      fmt_name = (f->out.empty() && isatty(STDOUT_FILENO)) ? "table" : "csv";
    }
    ARROW_ASSIGN_OR_RAISE(auto format, query::ParseOutputFormat(fmt_name));
    if (format == query::OutputFormat::kParquet && f->out.empty()) {
      return arrow::Status::Invalid("--format parquet needs --out FILE");
    }

    query::EngineOptions eo;
    ARROW_ASSIGN_OR_RAISE(eo.cache_bytes, cfg.GetInt("query.cache_bytes"));
    ARROW_ASSIGN_OR_RAISE(auto engine, query::Engine::Open(lake_uri, cfg, eo));
    ARROW_ASSIGN_OR_RAISE(auto result, engine->Query(q));

    if (format == query::OutputFormat::kParquet) {
      ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::FileOutputStream::Open(f->out));
      ARROW_RETURN_NOT_OK(query::WriteParquetResult(result.table, sink));
    } else if (!f->out.empty()) {
      std::ofstream out(f->out, std::ios::binary | std::ios::trunc);
      if (!out) return arrow::Status::IOError("cannot write ", f->out);
      ARROW_RETURN_NOT_OK(query::WriteText(*result.table, format, out));
      out.close();
      if (!out) return arrow::Status::IOError("writing ", f->out, " failed");
    } else {
      ARROW_RETURN_NOT_OK(query::WriteText(*result.table, format, std::cout));
      std::cout.flush();
    }
    if (f->stats) {
      const auto& s = result.stats;
      std::fprintf(
          stderr, "%s\n",
          fmt::format("query: {} rows in {:.3f} ms; {} days, {} files ({} pruned), "
                      "{} row groups ({} pruned), {} rows scanned, {} bytes read, "
                      "cache {} hits / {} misses",
                      s.rows, s.seconds * 1e3, s.days, s.files, s.files_pruned,
                      s.row_groups, s.row_groups_pruned, s.rows_scanned, s.bytes_read,
                      s.cache_hits, s.cache_misses)
              .c_str());
    }
    return arrow::Status::OK();
  };
}

}  // namespace qlake::cli

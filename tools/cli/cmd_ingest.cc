// qlake ingest: flat files of one aggregate dataset -> validated Parquet lake, one atomic
// commit per trading day. Prints a per-day summary (text or --json).

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "qlake/catalog/datasets.h"
#include "qlake/core/progress.h"
#include "qlake/core/strings.h"
#include "qlake/ingest/ingest.h"
#include "qlake/io/filesystem.h"

namespace qlake::cli {

namespace {

struct IngestFlags {
  std::string dataset;
  std::string date, from, to;
  std::string source, lake, mode, layout = "daily", symbols, underlyings, profile;
  int parallel = 0;
  bool json = false;
  bool reference_reader = false;
  bool changed_only = false;
};

double Mb(int64_t bytes) { return static_cast<double>(bytes) / 1e6; }

void PrintText(const ingest::IngestReport& r) {
  std::cout << fmt::format(
      "{:<10}  {:<6}  {:>10}  {:>10}  {:>8}  {:>8}  {:>8}  {:>7}  {:>6}  {:>10}\n",
      "date", "status", "read", "written", "quarant.", "filtered", "gz MB", "out MB",
      "sec", "rows/s");
  ingest::DayCounts total;
  int64_t gz = 0, out = 0;
  for (const auto& d : r.days) {
    std::string status = d.status.ok() ? (d.unchanged ? "same" : "ok") : "FAILED";
    double rate = d.seconds > 0 ? static_cast<double>(d.counts.read) / d.seconds : 0;
    std::cout << fmt::format(
        "{:<10}  {:<6}  {:>10}  {:>10}  {:>8}  {:>8}  {:>8.2f}  {:>7.2f}  {:>6.2f}  "
        "{:>10.0f}\n",
        FormatDate(d.day), status, d.counts.read, d.counts.written, d.counts.quarantined,
        d.counts.filtered, Mb(d.source_bytes), Mb(d.output_bytes), d.seconds, rate);
    if (!d.status.ok()) std::cout << "            " << d.status.message() << "\n";
    total.read += d.counts.read;
    total.written += d.counts.written;
    total.quarantined += d.counts.quarantined;
    total.filtered += d.counts.filtered;
    gz += d.source_bytes;
    out += d.output_bytes;
  }
  std::cout << fmt::format(
      "{} {}: {} days ({} failed, {} non-trading skipped), {} rows read = {} written + "
      "{} "
      "quarantined + {} filtered, {:.1f} MB gz -> {:.1f} MB Parquet in {:.2f}s ({:.0f} "
      "rows/s)\n",
      r.dataset, r.days.empty() ? "" : "done", r.days.size(), r.failed(),
      r.skipped.size(), total.read, total.written, total.quarantined, total.filtered,
      Mb(gz), Mb(out), r.seconds,
      r.seconds > 0 ? static_cast<double>(total.read) / r.seconds : 0.0);
}

void PrintJson(const ingest::IngestReport& r) {
  nlohmann::ordered_json days = nlohmann::ordered_json::array();
  for (const auto& d : r.days) {
    nlohmann::ordered_json reasons = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < ingest::kNumRejectReasons; ++i) {
      if (d.counts.by_reason[i]) {
        reasons[std::string(ingest::RejectReasonName(
            static_cast<ingest::RejectReason>(i)))] = d.counts.by_reason[i];
      }
    }
    days.push_back({{"date", FormatDate(d.day)},
                    {"key", d.key},
                    {"ok", d.status.ok()},
                    {"unchanged", d.unchanged},
                    {"error", d.status.ok() ? "" : d.status.message()},
                    {"read", d.counts.read},
                    {"written", d.counts.written},
                    {"quarantined", d.counts.quarantined},
                    {"filtered", d.counts.filtered},
                    {"flagged", d.counts.flagged},
                    {"rejected", reasons},
                    {"source_bytes", d.source_bytes},
                    {"uncompressed_bytes", d.uncompressed_bytes},
                    {"output_bytes", d.output_bytes},
                    {"files", d.files},
                    {"seconds", d.seconds}});
  }
  nlohmann::ordered_json skipped = nlohmann::ordered_json::array();
  for (auto d : r.skipped) skipped.push_back(FormatDate(d));
  nlohmann::ordered_json j = {{"dataset", r.dataset},
                              {"seconds", r.seconds},
                              {"failed", r.failed()},
                              {"days", days},
                              {"skipped", skipped}};
  std::cout << j.dump(2) << "\n";
}

}  // namespace

Runner SetupIngest(CLI::App& app) {
  auto f = std::make_shared<IngestFlags>();
  app.add_option("--dataset", f->dataset,
                 "stocks_daily, stocks_minute, options_daily or options_minute")
      ->required();
  auto* date = app.add_option("--date", f->date, "One day (YYYY-MM-DD)");
  auto* from = app.add_option("--from", f->from, "First day of a range");
  auto* to = app.add_option("--to", f->to, "Last day of a range (inclusive)");
  date->excludes(from)->excludes(to);
  from->needs(to);
  to->needs(from);
  app.add_option("--source", f->source,
                 "Mirror folder or file system URI with the bucket's key layout "
                 "(default: config source.root)");
  app.add_option("--lake", f->lake, "Lake folder or URI (default: config lake.root)");
  app.add_option("--mode", f->mode,
                 "Processing mode (default: system.mode / the profile)")
      ->check(CLI::IsMember({"streaming", "batch", "parallel"}));
  app.add_option("--layout", f->layout, "Lake layout")
      ->check(CLI::IsMember({"daily", "original"}));
  auto* symbols = app.add_option(
      "--symbols", f->symbols,
      "Comma-separated tickers to keep (options: underlyings); default all. Applied "
      "while the file streams in, also from s3://");
  app.add_option("--underlyings", f->underlyings,
                 "Options datasets: comma-separated underlyings to keep (same filter as "
                 "--symbols)")
      ->excludes(symbols);
  app.add_option(
      "--profile", f->profile,
      "AWS shared-credentials profile for an s3:// source or lake (s3.profile)");
  app.add_option("--parallel", f->parallel,
                 "Days at once (default: ingest.parallel_files)");
  app.add_flag("--changed-only", f->changed_only,
               "Skip days already committed from the same source version (size and "
               "LastModified): re-commits only new and republished days");
  app.add_flag("--json", f->json, "Print the report as JSON");
  app.add_flag("--reference-reader", f->reference_reader,
               "Parse with Arrow's CSV reader (the reference path; slower)");

  return [f](Context& ctx) -> arrow::Status {
    auto& cfg = ctx.config;
    if (!f->mode.empty()) {
      ARROW_RETURN_NOT_OK(cfg.Set("system.mode", f->mode, ConfigSource::kFlag, "--mode"));
      ARROW_RETURN_NOT_OK(cfg.ApplyModeDefaults(ctx.profile.usable_cores));
    }
    if (f->parallel > 0) {
      ARROW_RETURN_NOT_OK(cfg.Set("ingest.parallel_files", std::to_string(f->parallel),
                                  ConfigSource::kFlag, "--parallel"));
    }
    if (!f->source.empty()) {
      ARROW_RETURN_NOT_OK(
          cfg.Set("source.root", f->source, ConfigSource::kFlag, "--source"));
    }
    if (!f->lake.empty()) {
      ARROW_RETURN_NOT_OK(cfg.Set("lake.root", f->lake, ConfigSource::kFlag, "--lake"));
    }
    if (!f->profile.empty()) {
      ARROW_RETURN_NOT_OK(
          cfg.Set("s3.profile", f->profile, ConfigSource::kFlag, "--profile"));
    }
    if (f->date.empty() && f->from.empty()) {
      return arrow::Status::Invalid("give --date D or --from D --to D");
    }
    ingest::IngestOptions o;
    o.dataset = f->dataset;
    ARROW_ASSIGN_OR_RAISE(o.from, ParseDate(f->date.empty() ? f->from : f->date));
    ARROW_ASSIGN_OR_RAISE(o.to, ParseDate(f->date.empty() ? f->to : f->date));
    ARROW_ASSIGN_OR_RAISE(o.source, cfg.GetString("source.root"));
    if (o.source.empty()) {
      return arrow::Status::Invalid(
          "no source: pass --source DIR|URI or set source.root");
    }
    ARROW_ASSIGN_OR_RAISE(o.lake, cfg.GetString("lake.root"));
    // Both through the shared opener, so s3:// locations get the s3.* settings
    // (endpoint, credentials, timeouts, retries).
    ARROW_ASSIGN_OR_RAISE(o.source_fs, io::OpenFileSystem(o.source, cfg, &o.source));
    ARROW_ASSIGN_OR_RAISE(o.lake_fs, io::OpenFileSystem(o.lake, cfg, &o.lake));
    ARROW_ASSIGN_OR_RAISE(o.layout, ingest::ParseLayout(f->layout));
    o.symbols = SplitCommaList(f->underlyings.empty() ? f->symbols : f->underlyings);
    ARROW_ASSIGN_OR_RAISE(o.parquet, ingest::ParquetOutOptionsFromConfig(cfg));
    ARROW_ASSIGN_OR_RAISE(auto parallel, cfg.GetInt("ingest.parallel_files"));
    o.parallel_days = static_cast<int>(parallel);
    o.reader.use_arrow_csv = f->reference_reader;
    o.skip_unchanged = f->changed_only;
    ARROW_ASSIGN_OR_RAISE(o.reader.chunk_rows, cfg.GetInt("ingest.chunk_rows"));

    ProgressOptions popts;
    popts.label = "ingest " + o.dataset;
    popts.unit = "days";
    popts.quiet = ctx.quiet || f->json;
    ProgressReporter progress(popts);
    ARROW_ASSIGN_OR_RAISE(auto report, ingest::Ingest(o, &progress));
    progress.Finish();
    if (f->json) {
      PrintJson(report);
    } else if (!ctx.quiet) {
      PrintText(report);
    }
    return report.Summary();
  };
}

}  // namespace qlake::cli

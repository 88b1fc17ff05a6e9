// qlake sync: bring every dataset of the project up to the latest published day
// (fetch -> ingest -> features -> qlib, as far as this build has stages). Cron-safe: one
// writer per lake (exit code 6 when another run holds it), recovery on start, a run
// report under <lake>/_qlake/runs/, metrics and alerts.

#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "command.h"
#include "pipeline_flags.h"
#include "qlake/core/strings.h"
#include "qlake/pipeline/options.h"
#include "qlake/pipeline/pipeline.h"

namespace qlake::cli {

namespace {

void LogDay(bool quiet, const std::string& dataset, const pipeline::DayRun& d) {
  if (quiet) return;
  const pipeline::StageRun* ing = d.Stage("ingest");
  const pipeline::StageRun* fetched = d.Stage("fetch");
  if (d.status == "ok") {
    std::string fetch_part;
    if (fetched) {
      fetch_part = fmt::format(
          " fetch {} {:.1f} MB{},", fetched->action,
          static_cast<double>(fetched->bytes_in) / 1e6,
          fetched->retries > 0 ? fmt::format(" after {} retries", fetched->retries) : "");
    }
    spdlog::info("{} {} ({}): ok in {:.2f}s,{} {} rows written, {} quarantined", dataset,
                 FormatDate(d.day), d.reason, d.seconds, fetch_part,
                 ing ? ing->rows_written : 0, ing ? ing->rows_quarantined : 0);
  } else {
    spdlog::error("{} {} ({}): FAILED: {}", dataset, FormatDate(d.day), d.reason,
                  d.error);
  }
}

}  // namespace

Runner SetupSync(CLI::App& app) {
  auto f = std::make_shared<PipelineFlags>();
  AddPipelineFlags(app, *f, /*writes=*/true);
  app.add_option("--datasets", f->datasets,
                 "Only these datasets (comma-separated; without a project file: the "
                 "datasets to sync)");
  auto qlib = std::make_shared<std::vector<std::string>>();
  app.add_option("--qlib", *qlib,
                 "Also keep this Qlib store up to date: DIR[:day|1min[:dataset]] "
                 "(repeatable; adds to the project's stores)");
  return [f, qlib](Context& ctx) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto o, MakePipelineOptions(*f, ctx));
    for (const auto& q : *qlib) {
      ARROW_ASSIGN_OR_RAISE(auto spec, pipeline::ParseQlibStore(q));
      o.project.qlib.push_back(std::move(spec));
    }
    std::vector<std::string> only;
    if (!o.project.file.empty()) only = SplitCommaList(f->datasets);
    const bool quiet = ctx.quiet || f->json;
    o.on_day = [quiet](const std::string& ds, const pipeline::DayRun& d) {
      LogDay(quiet, ds, d);
    };
    ARROW_ASSIGN_OR_RAISE(auto report, pipeline::Sync(o, only));
    if (f->json) {
      std::cout << report.ToJson().dump(2) << "\n";
    } else if (!ctx.quiet) {
      std::cout << report.Summary();
    }
    return report.ToStatus();
  };
}

}  // namespace qlake::cli

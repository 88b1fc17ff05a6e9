// qlake backfill: the pipeline over a day range of one dataset, optionally one shard of
// it (--shard i/n: the k-th trading day of the range belongs to shard k mod n), so that
// separate processes or machines split a long history without touching the same day.

#include <iostream>
#include <memory>

#include <spdlog/spdlog.h>

#include "command.h"
#include "pipeline_flags.h"
#include "qlake/pipeline/pipeline.h"

namespace qlake::cli {

Runner SetupBackfill(CLI::App& app) {
  auto f = std::make_shared<PipelineFlags>();
  auto range = std::make_shared<pipeline::BackfillRange>();
  auto from = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto shard = std::make_shared<std::string>();
  app.add_option("--dataset", range->dataset,
                 "stocks_daily, stocks_minute, options_daily or options_minute")
      ->required();
  app.add_option("--from", *from, "First day (YYYY-MM-DD)")->required();
  app.add_option("--to", *to, "Last day, inclusive (YYYY-MM-DD)")->required();
  app.add_option(
      "--shard", *shard,
      "Only shard i of n (1-based, e.g. 2/4); every shard must get the same range");
  app.add_flag("--force", range->force,
               "Redo days already committed from the same source version");
  AddPipelineFlags(app, *f, /*writes=*/true);
  return [f, range, from, to, shard](Context& ctx) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto o, MakePipelineOptions(*f, ctx));
    ARROW_ASSIGN_OR_RAISE(range->from, ParseDate(*from));
    ARROW_ASSIGN_OR_RAISE(range->to, ParseDate(*to));
    if (!shard->empty()) {
      ARROW_RETURN_NOT_OK(
          pipeline::ParseShard(*shard, &range->shard_index, &range->shard_count));
    }
    const bool quiet = ctx.quiet || f->json;
    o.on_day = [quiet](const std::string& ds, const pipeline::DayRun& d) {
      if (quiet) return;
      if (d.status == "ok") {
        spdlog::info("{} {}: ok in {:.2f}s", ds, FormatDate(d.day), d.seconds);
      } else {
        spdlog::error("{} {}: FAILED: {}", ds, FormatDate(d.day), d.error);
      }
    };
    ARROW_ASSIGN_OR_RAISE(auto report, pipeline::Backfill(o, *range));
    if (f->json) {
      std::cout << report.ToJson().dump(2) << "\n";
    } else if (!ctx.quiet) {
      std::cout << report.Summary();
    }
    return report.ToStatus();
  };
}

}  // namespace qlake::cli

// qlake features: feature days computed on the lake (docs/features.md). Prints a per-day
// summary (text or --json).

#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "qlake/features/features.h"

namespace qlake::cli {

namespace {

struct FeaturesFlags {
  std::string dataset, date, from, to, lake;
  int parallel = 0;
  bool force = false;
  bool no_dependents = false;
  bool json = false;
};

void PrintText(const features::FeatureReport& r) {
  std::cout << fmt::format("{:<10}  {:<10}  {:>10}  {:>7}\n", "date", "action", "rows",
                           "sec");
  int64_t rows = 0;
  for (const auto& d : r.days) {
    std::cout << fmt::format("{:<10}  {:<10}  {:>10}  {:>7.2f}{}\n", FormatDate(d.day),
                             d.action, d.rows, d.seconds,
                             d.dependent ? "  (look-back of the range)" : "");
    if (!d.status.ok()) std::cout << "            " << d.status.message() << "\n";
    rows += d.rows;
  }
  std::cout << fmt::format(
      "{}: {} days ({} computed, {} failed), {} rows written, {} input rows read in "
      "{:.2f}s\n",
      r.dataset, r.days.size(), r.computed(), r.failed(), rows, r.input_rows, r.seconds);
}

void PrintJson(const features::FeatureReport& r) {
  nlohmann::ordered_json days = nlohmann::ordered_json::array();
  for (const auto& d : r.days) {
    days.push_back({{"date", FormatDate(d.day)},
                    {"action", d.action},
                    {"dependent", d.dependent},
                    {"ok", d.status.ok()},
                    {"error", d.status.ok() ? "" : d.status.message()},
                    {"rows", d.rows},
                    {"vwap_minute", d.vwap_minute},
                    {"vwap_day", d.vwap_day},
                    {"seconds", d.seconds}});
  }
  nlohmann::ordered_json j = {{"dataset", r.dataset},       {"seconds", r.seconds},
                              {"input_rows", r.input_rows}, {"computed", r.computed()},
                              {"failed", r.failed()},       {"days", days}};
  std::cout << j.dump(2) << "\n";
}

}  // namespace

Runner SetupFeatures(CLI::App& app) {
  auto f = std::make_shared<FeaturesFlags>();
  app.add_option("--dataset", f->dataset,
                 "stocks_daily, stocks_minute, options_daily or options_minute (or "
                 "features/<name>)")
      ->required();
  auto* date = app.add_option("--date", f->date, "One day (YYYY-MM-DD)");
  auto* from = app.add_option("--from", f->from, "First day of a range");
  auto* to = app.add_option("--to", f->to, "Last day of a range (inclusive)");
  date->excludes(from)->excludes(to);
  from->needs(to);
  to->needs(from);
  app.add_option("--lake", f->lake, "Lake folder or URI (default: config lake.root)");
  app.add_flag("--force", f->force, "Recompute days that are up to date");
  app.add_flag("--no-dependents", f->no_dependents,
               "Do not re-check the feature days after the range whose look-back "
               "includes it");
  app.add_option("--parallel", f->parallel,
                 "Threads, each a contiguous chunk of days (default: "
                 "features.parallel_days)");
  app.add_flag("--json", f->json, "Print the report as JSON");

  return [f](Context& ctx) -> arrow::Status {
    auto& cfg = ctx.config;
    if (!f->lake.empty()) {
      ARROW_RETURN_NOT_OK(cfg.Set("lake.root", f->lake, ConfigSource::kFlag, "--lake"));
    }
    if (f->parallel > 0) {
      ARROW_RETURN_NOT_OK(cfg.Set("features.parallel_days", std::to_string(f->parallel),
                                  ConfigSource::kFlag, "--parallel"));
    }
    if (f->date.empty() && f->from.empty()) {
      return arrow::Status::Invalid("give --date D or --from D --to D");
    }
    features::FeatureOptions o;
    ARROW_ASSIGN_OR_RAISE(o.set, features::ParseFeatureSet(f->dataset));
    ARROW_ASSIGN_OR_RAISE(o.from, ParseDate(f->date.empty() ? f->from : f->date));
    ARROW_ASSIGN_OR_RAISE(o.to, ParseDate(f->date.empty() ? f->to : f->date));
    ARROW_ASSIGN_OR_RAISE(o.lake, cfg.GetString("lake.root"));
    o.force = f->force;
    o.refresh_dependents = !f->no_dependents;
    ARROW_ASSIGN_OR_RAISE(o.params, features::FeatureParamsFromConfig(cfg));
    ARROW_ASSIGN_OR_RAISE(o.parquet, ingest::ParquetOutOptionsFromConfig(cfg));
    ARROW_ASSIGN_OR_RAISE(auto parallel, cfg.GetInt("features.parallel_days"));
    o.parallel_days = static_cast<int>(parallel);
    o.parquet.use_threads = o.parallel_days == 1;
    ARROW_ASSIGN_OR_RAISE(auto report, features::ComputeFeatures(o));
    if (f->json) {
      PrintJson(report);
    } else if (!ctx.quiet) {
      PrintText(report);
    }
    return report.Summary();
  };
}

}  // namespace qlake::cli

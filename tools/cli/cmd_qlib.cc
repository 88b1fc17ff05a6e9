// qlake qlib export: the lake -> a Qlib provider directory (calendars, instruments,
// features/*.bin), created or updated incrementally. Prints a one-line summary (or
// --json).

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "qlake/core/strings.h"
#include "qlake/qlib/export.h"

namespace qlake::cli {

namespace {

struct QlibFlags {
  std::string lake, out, freq = "day", from, to, symbols, market, session = "regular",
                         fields;
  bool rebuild = false;
  bool json = false;
  bool no_fsync = false;
  bool no_recommit_check = false;
  int64_t batch_mb = 256;
};

}  // namespace

Runner SetupQlib(CLI::App& app) {
  auto f = std::make_shared<QlibFlags>();
  app.require_subcommand(1);
  auto* ex = app.add_subcommand("export",
                                "Create or update a Qlib provider directory from the "
                                "lake (docs/qlib.md). Days after "
                                "the store's end are appended; days of an explicit "
                                "--from/--to already in the store "
                                "are exported again in place.");
  ex->add_option("--lake", f->lake, "Lake folder or URI (default: config lake.root)");
  ex->add_option("--out", f->out, "Qlib provider directory (qlib.init(provider_uri=...))")
      ->required();
  ex->add_option("--freq", f->freq, "day (stocks_daily) or 1min (stocks_minute)")
      ->check(CLI::IsMember({"day", "1min"}));
  auto* from = ex->add_option(
      "--from", f->from, "First day (default: the store's first day, or the lake's)");
  auto* to = ex->add_option("--to", f->to, "Last day (default: the lake's watermark)");
  (void)from;
  (void)to;
  ex->add_option("--symbols", f->symbols,
                 "Comma-separated tickers (lake spelling); default all");
  ex->add_option("--market", f->market,
                 "Also write instruments/<market>.txt listing the exported symbols");
  ex->add_option(
        "--session", f->session,
        "1min: regular 09:30-15:59 (early closes shortened) or extended 04:00-19:59")
      ->check(CLI::IsMember({"regular", "extended"}));
  ex->add_option("--fields", f->fields,
                 "Extra fields: lake columns (e.g. transactions) or feature columns");
  ex->add_flag(
      "--rebuild", f->rebuild,
      "Rebuild the store from scratch (to move its start, change fields/session)");
  ex->add_option("--batch-mb", f->batch_mb, "Buffered bars per write batch, MiB")
      ->check(CLI::Range(1, 65536));
  ex->add_flag("--no-fsync", f->no_fsync,
               "Skip the file-system flush before each commit");
  ex->add_flag("--no-recommit-check", f->no_recommit_check,
               "Do not rewrite days whose lake commit changed since they were exported "
               "(re-ingested or republished days; checked by default)");
  ex->add_flag("--json", f->json, "Print the report as JSON");

  return [f](Context& ctx) -> arrow::Status {
    auto& cfg = ctx.config;
    if (!f->lake.empty()) {
      ARROW_RETURN_NOT_OK(cfg.Set("lake.root", f->lake, ConfigSource::kFlag, "--lake"));
    }
    qlib::ExportOptions o;
    ARROW_ASSIGN_OR_RAISE(o.lake, cfg.GetString("lake.root"));
    o.out = f->out;
    ARROW_ASSIGN_OR_RAISE(o.freq, qlib::ParseFreq(f->freq));
    if (!f->from.empty()) {
      ARROW_ASSIGN_OR_RAISE(o.from, ParseDate(f->from));
    }
    if (!f->to.empty()) {
      ARROW_ASSIGN_OR_RAISE(o.to, ParseDate(f->to));
    }
    o.symbols = SplitCommaList(f->symbols);
    o.market = f->market;
    ARROW_ASSIGN_OR_RAISE(o.session, qlib::ParseSessionMode(f->session));
    o.fields = SplitCommaList(f->fields);
    o.rebuild = f->rebuild;
    o.batch_bytes = f->batch_mb << 20;
    o.fsync = !f->no_fsync;
    o.check_recommits = !f->no_recommit_check;
    ARROW_ASSIGN_OR_RAISE(auto r, qlib::Export(o));
    if (f->json) {
      nlohmann::ordered_json j = {{"out", r.out},
                                  {"freq", r.freq},
                                  {"rebuilt", r.rebuilt},
                                  {"days_appended", r.days_appended},
                                  {"days_rewritten", r.days_rewritten},
                                  {"days_recommitted", r.days_recommitted},
                                  {"recommitted_days", r.recommitted_days},
                                  {"symbols", r.symbols},
                                  {"symbols_touched", r.symbols_touched},
                                  {"bars", r.bars},
                                  {"bytes_written", r.bytes_written},
                                  {"calendar_rows", r.calendar_rows},
                                  {"first_day", r.first_day},
                                  {"last_day", r.last_day},
                                  {"recovered", r.recovered},
                                  {"seconds", r.seconds}};
      std::cout << j.dump(2) << "\n";
    } else if (!ctx.quiet) {
      if (r.days_appended == 0 && r.days_rewritten == 0) {
        std::cout << fmt::format(
            "qlib export {}: up to date ({} .. {}, {} instruments)\n", r.out, r.first_day,
            r.last_day, r.symbols);
      } else {
        std::cout << fmt::format(
            "qlib export {} ({}): {}{} days appended, {} rewritten ({} re-committed in "
            "the lake); {} bars of {} symbols; "
            "{} instruments, {} calendar rows ({} .. {}); {:.1f} MB written in {:.2f}s\n",
            r.out, r.freq, r.rebuilt ? "built from scratch, " : "", r.days_appended,
            r.days_rewritten, r.days_recommitted, r.bars, r.symbols_touched, r.symbols,
            r.calendar_rows, r.first_day, r.last_day,
            static_cast<double>(r.bytes_written) / 1e6, r.seconds);
      }
    }
    return arrow::Status::OK();
  };
}

}  // namespace qlake::cli

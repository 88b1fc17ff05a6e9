// qlake synth: write a deterministic synthetic mirror of the flat files (docs/synth.md).

#include <iostream>
#include <memory>
#include <string>

#include "command.h"
#include "qlake/synth/synth.h"

namespace qlake::cli {

namespace {

struct SynthFlags {
  std::string out;
  std::string from;
  std::string to;
  std::string datasets = "stocks_daily,stocks_minute,options_daily,options_minute";
  uint64_t seed = 42;
  double scale = 1.0;
  std::string faults;
  int jobs = 0;
  int gzip_level = 1;
  bool json = false;
};

arrow::Result<synth::SynthOptions> ToOptions(const SynthFlags& f, const Context& ctx) {
  synth::SynthOptions o;
  o.out_dir = f.out;
  ARROW_ASSIGN_OR_RAISE(o.from, ParseDate(f.from));
  ARROW_ASSIGN_OR_RAISE(o.to, f.to.empty() ? ParseDate(f.from) : ParseDate(f.to));
  ARROW_ASSIGN_OR_RAISE(o.datasets, synth::ParseDatasetList(f.datasets));
  o.seed = f.seed;
  o.scale = f.scale;
  ARROW_ASSIGN_OR_RAISE(o.faults, synth::ParseFaultList(f.faults));
  o.jobs = f.jobs > 0 ? f.jobs : ctx.profile.usable_cores;
  o.gzip_level = f.gzip_level;
  ARROW_RETURN_NOT_OK(o.Validate());
  return o;
}

}  // namespace

Runner SetupSynth(CLI::App& app) {
  auto f = std::make_shared<SynthFlags>();
  app.add_option("--out", f->out, "Mirror root to write (created if missing)")
      ->required();
  app.add_option("--from", f->from, "First date, YYYY-MM-DD")->required();
  app.add_option("--to", f->to, "Last date, YYYY-MM-DD (default: --from)");
  app.add_option(
         "--datasets", f->datasets,
         "Comma-separated: stocks_daily,stocks_minute,options_daily,options_minute")
      ->capture_default_str();
  app.add_option("--seed", f->seed, "Random seed; same seed, same bytes")
      ->capture_default_str();
  app.add_option(
         "--scale", f->scale,
         "Multiplies tickers and contracts: 1 = real-sized days, 0.01 = test-sized")
      ->capture_default_str();
  app.add_option("--faults", f->faults,
                 "Comma-separated faults to inject (docs/synth.md): bad_timestamp, "
                 "non_numeric, negative_volume, duplicate_rows, nan_inf, wrong_day, "
                 "ohlc_inconsistent, truncated_gzip, changed_header, bad_occ, or all");
  app.add_option("--jobs", f->jobs, "Worker threads (default: usable cores)");
  app.add_option("--gzip-level", f->gzip_level, "ISA-L deflate level 0-3")
      ->capture_default_str();
  app.add_flag("--json", f->json, "Print the summary as JSON");
  return [f](Context& ctx) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto options, ToOptions(*f, ctx));
    ARROW_ASSIGN_OR_RAISE(auto summary, synth::GenerateMirror(options));
    if (f->json) {
      std::cout << summary.ToJson();
    } else if (!ctx.quiet) {
      std::cout << summary.ToText();
    }
    return arrow::Status::OK();
  };
}

}  // namespace qlake::cli

#include "pipeline_flags.h"

#include "qlake/pipeline/options.h"

namespace qlake::cli {

void AddPipelineFlags(CLI::App& app, PipelineFlags& f, bool writes) {
  app.add_option("--project", f.project,
                 "Project file (default: ./qlake.yaml if it exists; see qlake init)");
  app.add_option("--source", f.source,
                 "Source: mirror folder or URI (overrides the project's / source.root)");
  app.add_option("--lake", f.lake,
                 "Lake folder or URI (overrides the project's / lake.root)");
  if (writes) {
    app.add_option("--cache", f.cache,
                   "Fetch each day into this local flat-file cache before ingest "
                   "(overrides the project's `cache:`)");
    app.add_option(
        "--metrics-file", f.metrics_file,
        "Write Prometheus metrics of the run to this file (textfile collector)");
    app.add_option("--jobs", f.jobs,
                   "Days processed at once (default: ingest.parallel_files)");
  }
  // For tests and replays: the time publish deadlines are compared with.
  app.add_option("--now", f.now, "")->group("");
  app.add_flag("--json", f.json, "Print JSON instead of text");
}

arrow::Result<pipeline::PipelineOptions> MakePipelineOptions(const PipelineFlags& f,
                                                             Context& ctx) {
  pipeline::PipelineArgs args;
  args.project = f.project;
  args.source = f.source;
  args.lake = f.lake;
  args.cache = f.cache;
  args.datasets = f.datasets;
  args.metrics_file = f.metrics_file;
  args.now = f.now;
  args.jobs = f.jobs;
  return pipeline::MakePipelineOptions(args, ctx.config, ctx.profile);
}

}  // namespace qlake::cli

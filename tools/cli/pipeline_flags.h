// Flags shared by the pipeline commands (sync, backfill, status, report): where the
// project file, source and lake are, and how to turn them plus the configuration into
// pipeline::PipelineOptions.

#pragma once

#include <string>
#include <vector>

#include <arrow/result.h>
#include <CLI/CLI.hpp>

#include "command.h"
#include "qlake/pipeline/pipeline.h"

namespace qlake::cli {

struct PipelineFlags {
  std::string project;  // --project FILE (default ./qlake.yaml when it exists)
  std::string source, lake, cache, datasets, metrics_file, now;
  int jobs = 0;
  bool json = false;
};

/// Declares --project --source --lake [--cache --metrics-file --jobs] --now --json on
/// `app`.
void AddPipelineFlags(CLI::App& app, PipelineFlags& f, bool writes);

/// Loads the project (or builds one from flags and config), applies its `config:`
/// section and the flags, and fills the ingest template and memory settings.
arrow::Result<pipeline::PipelineOptions> MakePipelineOptions(const PipelineFlags& f,
                                                             Context& ctx);

}  // namespace qlake::cli

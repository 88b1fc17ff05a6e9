// File: qlake/pipeline/options.h
//
// PipelineOptions from the configuration plus the arguments of `qlake sync`/`backfill`/
// `status` (--project, --source, --lake, --cache, --datasets, --metrics-file, --jobs,
// --now,
// --qlib). The CLI and the Python module (qlake.sync) both build their options here, so
// the two take the same options with the same meaning and error messages.

#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <arrow/result.h>

#include "qlake/core/config.h"
#include "qlake/core/system_profile.h"
#include "qlake/pipeline/pipeline.h"

namespace qlake::pipeline {

struct PipelineArgs {
  /// Project file; empty = ./qlake.yaml when it exists, else a project made from the
  /// config (source.root, lake.root) and `datasets`.
  std::string project;
  /// Override the project's source / lake (folder or URI).
  std::string source, lake;
  /// Override the project's `cache:` (local flat-file cache the fetch stage fills).
  std::string cache;
  /// Without a project file: the datasets to run (comma-separated names).
  std::string datasets;
  /// Prometheus textfile to write after the run.
  std::string metrics_file;
  /// "Now" for publish deadlines: Unix seconds or YYYY-MM-DDTHH:MM:SSZ; empty = clock.
  std::string now;
  /// Days processed at once; <= 0 = ingest.parallel_files.
  int jobs = 0;
  /// Extra Qlib stores to keep up to date, each "DIR[:day|1min[:dataset]]".
  std::vector<std::string> qlib;
};

/// Loads the project (or builds one from `config` and `args`), applies its `config:`
/// section to `config`, then the arguments, and fills the fetch/ingest/features templates
/// and memory settings from `config`; an S3 source is opened with the config's s3.*
/// settings. Invalid for a missing lake, a bad --now or --qlib.
arrow::Result<PipelineOptions> MakePipelineOptions(const PipelineArgs& args,
                                                   Config& config,
                                                   const SystemProfile& profile);

/// Parses one --qlib value "DIR[:day|1min[:dataset]]" (dataset default: stocks_daily for
/// day, stocks_minute for 1min).
arrow::Result<QlibStoreSpec> ParseQlibStore(const std::string& text);

}  // namespace qlake::pipeline

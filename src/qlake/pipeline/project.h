// File: qlake/pipeline/project.h
//
// The project file (`qlake.yaml`): everything a nightly `qlake sync` needs, so that the
// cron line is just `cd /data && qlake sync` (or `qlake sync --project FILE`).
//
//   source: ./mirror                  # mirror folder or s3://flatfiles
//   lake: ./lake                      # folder or s3://bucket/prefix
//   cache: ./flatfiles                # optional local copy of the flat files (below)
//   start: 2025-01-02                 # first day when a dataset is still empty
//   datasets: [stocks_daily, stocks_minute]     # or {name: x, start: D} maps
//   qlib: [{path: ./qlib/day, freq: day, dataset: stocks_daily}]
//   schedule: {cron: "30 11 * * 2-6", timezone: America/New_York}   # hints only
//   alerts: {command: ..., webhook: ..., max_quarantine_rate: 0.01, ...}
//   metrics_file: /var/lib/node_exporter/textfile/qlake.prom
//   runs_keep: 200
//   config: {memory.limit: 4GiB}      # any config key (docs/config.md)
//
// `cache`: with it, every day the pipeline works on is first fetched from the source into
// this folder (qlake::fetch: resumable, verified, retried, recorded in the cache's
// manifest; the bucket's key layout, so the folder is also a mirror) and ingest reads
// the cached file; a republished object is downloaded again before its day is
// re-ingested. Without it, ingest streams each day's object straight from the source.
// Either way the source listing decides what is published.
//
// Relative paths are resolved against the folder holding the file. Unknown keys are
// errors naming the file and line (a typo must not silently disable an alert).
// ProjectTemplate() is the commented file `qlake init` writes; it parses to a valid
// project. docs/pipeline.md documents every key.
//
// Thread safety: plain values and pure functions.

#pragma once

#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "qlake/core/config.h"
#include "qlake/core/dates.h"

namespace qlake::pipeline {

struct ProjectDataset {
  std::string name;
  /// First day to ingest when the dataset has no commit yet; nullopt = the project's
  /// start, else the first day the source lists.
  std::optional<Date> start;
};

struct QlibStoreSpec {
  std::string path;          // folder of the store (absolute after loading)
  std::string freq = "day";  // "day" or "1min"
  std::string dataset;       // lake dataset it is built from
};

struct AlertOptions {
  /// Shell command run (via /bin/sh -c) per alert with the alert JSON on stdin and
  /// QLAKE_ALERT_KIND / QLAKE_ALERT_SUMMARY in its environment. Empty = none.
  std::string command;
  /// URL the alert JSON is POSTed to (http:// or https://). Empty = none.
  std::string webhook;
  /// Seconds before a command or POST is abandoned.
  int timeout_seconds = 30;
  bool on_failure = true;
  bool on_missing_day = true;
  /// Minutes after New York midnight of the *next* calendar day by which a day's file
  /// is expected (flatfiles.md section 6: about 11:00 ET).
  int publish_deadline_minute = 11 * 60;
  /// Alert when a day's quarantined / read rows exceed this (0..1); < 0 disables.
  double max_quarantine_rate = 0.01;
  /// Alert when a committed day has no rows written.
  bool on_empty_day = true;

  bool enabled() const { return !command.empty() || !webhook.empty(); }
};

struct Project {
  /// File it was loaded from (absolute); empty for a project built from flags.
  std::string file;
  std::string source;
  std::string lake;
  /// Local flat-file cache folder (absolute after loading); "" = no cache: ingest
  /// streams from the source.
  std::string cache;
  std::optional<Date> start;
  std::vector<ProjectDataset> datasets;
  std::vector<QlibStoreSpec> qlib;
  std::string schedule_cron;
  std::string schedule_timezone = "America/New_York";
  AlertOptions alerts;
  /// Compute feature datasets (features/<dataset>) after ingest.
  bool features = true;
  std::string metrics_file;
  /// Run reports kept under _qlake/runs/ (older ones are deleted).
  int runs_keep = 200;
  /// Committed days re-checked against the source listing for republished files on
  /// each sync (the most recent ones).
  int recheck_days = 30;
  /// Config keys from the file's `config:` section, with their line for messages.
  struct ConfigLine {
    std::string key, value, origin;
  };
  std::vector<ConfigLine> config;

  /// Applies `config:` to `cfg` at the file layer.
  arrow::Status ApplyConfig(Config& cfg) const;
  arrow::Status Validate() const;
};

/// Parses a project file's text. `file` names it in errors and anchors relative paths
/// (its folder); Invalid naming file:line for bad YAML, unknown keys, bad values.
arrow::Result<Project> ParseProject(const std::string& text, const std::string& file);
/// Reads and parses `file`. KeyError if it does not exist (with a hint to `qlake init`).
arrow::Result<Project> LoadProject(const std::string& file);

struct InitOptions {
  std::string source = "./mirror";
  std::string lake = "./lake";
  /// `cache:` line; "" writes `cache: ""` (streaming) with an example in a comment.
  std::string cache;
  std::vector<std::string> datasets = {"stocks_daily", "stocks_minute", "options_daily",
                                       "options_minute"};
  std::optional<Date> start;
};
/// The commented qlake.yaml that `qlake init` writes.
std::string ProjectTemplate(const InitOptions& options);

/// "HH:MM" -> minutes after midnight; Invalid otherwise.
arrow::Result<int> ParseClockMinute(std::string_view text);

}  // namespace qlake::pipeline

// File: qlake/pipeline/pipeline.h
//
// The orchestrator behind `qlake sync`, `qlake backfill` and `qlake status`.
//
// Sync(options): under the lake's exclusive lock, recover interrupted commits (the lake's
// own recovery, lake.h), list the source, and for each configured dataset run every day
// from its watermark to the latest published day that is not committed yet, plus recent
// committed days whose source object changed (republished), through the stage list
// (stage.h). A second Sync right after does nothing and says so.
//
// Backfill(options, range): the same per day over [from, to], optionally only the days of
// shard i of n (the k-th expected day of the range belongs to shard k mod n), so separate
// processes or machines never touch the same day. Days already committed from the listed
// source version are skipped (a rerun resumes); `force` redoes them. Shards take the lake
// lock shared plus their own shard lock exclusively; a sync is refused while they run.
//
// With a `cache:` in the project, each planned day is first fetched into the cache
// (FetchStage, stage.h) and ingested from there; the cache's manifest is locked for the
// whole run (a concurrent `qlake fetch`, or a shard of another process, on the same
// cache is refused with AlreadyExists). The plan still comes from the source listing.
//
// Every run writes a run report (report.h) to <lake>/_qlake/runs/, updates
// <lake>/_qlake/pipeline/state.json (last run and last success per dataset), rewrites the
// metrics file if asked, and delivers alerts (alerts.h). The memory monitor watches
// memory.limit: at the warn tier only one day is in flight at a time.
//
// Errors: AlreadyExists when the lock is held (exit code 6); bad options are Invalid.
// Once the lock is held, failures are recorded in the report (and alerted), and
// RunReport::ToStatus() gives the exit status.
//
// Thread safety: one run per Pipeline call; runs in one process must use distinct lakes.

#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include "qlake/core/dates.h"
#include "qlake/features/features.h"
#include "qlake/fetch/fetch.h"
#include "qlake/ingest/ingest.h"
#include "qlake/pipeline/project.h"
#include "qlake/pipeline/report.h"

namespace qlake::pipeline {

struct PipelineOptions {
  Project project;
  /// Ingest template (parquet, reader, layout, fsync) built from the config.
  ingest::IngestOptions ingest;
  /// Features template (params, parquet) built from the config.
  features::FeatureOptions features;
  /// Fetch template (retries, backoff, chunk size, gzip check) built from the config;
  /// used when the project has a `cache:`.
  fetch::FetchOptions fetch;
  /// The source's file system, opened with the config (io::OpenFileSystem: S3 endpoint,
  /// credentials, timeouts), and the mirror's / "bucket[/prefix]" path in it. Null: the
  /// pipeline opens project.source with Arrow's URI factory (local mirrors, tests).
  std::shared_ptr<arrow::fs::FileSystem> source_fs;
  std::string source_root;
  /// Days processed at once.
  int jobs = 1;
  /// memory.limit in bytes (0 = no monitor) and the monitor's fractions.
  uint64_t memory_budget = 0;
  double memory_warn_fraction = 0.75;
  double memory_act_fraction = 0.85;
  /// Metrics file path (overrides project.metrics_file when set).
  std::string metrics_file;
  /// "Now" as Unix seconds for publish deadlines (tests); nullopt = the clock.
  std::optional<int64_t> now_unix;
  /// Called after each finished day (progress output); may be empty.
  std::function<void(const std::string& dataset, const DayRun&)> on_day;
};

struct BackfillRange {
  std::string dataset;
  Date from{}, to{};
  int shard_index = 0;  // 0-based
  int shard_count = 1;
  bool force = false;
};

/// Parses "i/n" (1-based i as users write it: 1/4 .. 4/4) into 0-based index and count.
arrow::Status ParseShard(std::string_view text, int* index, int* count);

/// The days of `days` that belong to shard `index` of `count` (position mod count).
std::vector<Date> ShardDays(const std::vector<Date>& days, int index, int count);

arrow::Result<RunReport> Sync(const PipelineOptions& options,
                              const std::vector<std::string>& only_datasets = {});
arrow::Result<RunReport> Backfill(const PipelineOptions& options,
                                  const BackfillRange& range);

struct DatasetStatus {
  std::string dataset;
  std::optional<Date> first_day, watermark, last_committed;
  int64_t committed_days = 0;
  std::optional<Date> latest_published;
  /// Listed by the source but not committed yet (sync will do them).
  std::vector<Date> pending;
  /// Expected, past the publish deadline, not listed by the source.
  std::vector<Date> missing;
  /// Committed from a source version that the listing no longer has.
  std::vector<Date> republished;
  int64_t rows_written = 0, rows_quarantined = 0;
  std::map<std::string, int64_t> quarantine_reasons;
  /// Last run that touched the dataset: {run_id, command, status, finished_at, seconds}.
  nlohmann::json last_run;
  std::optional<std::string> last_success_at;
};

struct QlibStoreStatus {
  QlibStoreSpec spec;
  bool exists = false;
  std::optional<std::string> calendar_start, calendar_end;
  int64_t calendar_days = 0;  // sessions
  int64_t calendar_rows = 0;  // lines of calendars/<freq>.txt (minutes for 1min)
  int64_t symbols = 0;
  /// Committed days of the dataset, up to its watermark, after the store's last day
  /// (the next sync appends them).
  int64_t behind_days = 0;
};

struct StatusReport {
  std::string lake, source;
  std::string source_error;  // listing failed: status still reports the lake
  std::optional<std::string> locked_by;
  std::vector<DatasetStatus> datasets;
  std::vector<QlibStoreStatus> qlib;
  nlohmann::json last_run;  // the newest run report's summary fields (null if none)

  nlohmann::ordered_json ToJson() const;
  std::string ToText() const;
};

/// Reads the lake (and the source listing, if reachable) without taking the lock.
arrow::Result<StatusReport> GetStatus(const PipelineOptions& options);

/// Run reports under <lake>/_qlake/runs/, oldest first (at most `limit` newest).
arrow::Result<std::vector<nlohmann::json>> ListRunReports(const std::string& lake,
                                                          int limit);

}  // namespace qlake::pipeline

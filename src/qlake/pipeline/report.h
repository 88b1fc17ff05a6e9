// File: qlake/pipeline/report.h
//
// What a pipeline run did, kept as JSON under <lake>/_qlake/runs/<run id>.json, printed
// as a short human summary at the end of `qlake sync` / `qlake backfill`, and turned
// into a Prometheus textfile (--metrics-file) for node_exporter.
//
// A run report is written when the run starts (status "running"), rewritten after every
// finished day (so a report never lists a day as ok before the day's commit returned),
// and finalized at the end ("ok", "partial", "failed", "nothing_to_do"). A report still
// "running" whose process is gone is marked "interrupted" by the next run.
//
// Thread safety: plain values and pure functions.

#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <nlohmann/json.hpp>

#include "qlake/core/dates.h"

namespace qlake::pipeline {

/// One stage's work on one day (fetch, ingest) or on one dataset (features, qlib).
struct StageRun {
  std::string stage;
  std::string status = "ok";  // ok | failed | skipped
  std::string error;
  double seconds = 0;
  int64_t rows_read = 0;
  int64_t rows_written = 0;
  int64_t rows_quarantined = 0;
  int64_t rows_filtered = 0;
  int64_t bytes_in = 0;
  int64_t bytes_out = 0;
  /// fetch: attempts beyond the first (transient failures that were retried).
  int64_t retries = 0;
  /// What the stage did when it says more than ok: fetch "downloaded", "republished",
  /// "unchanged". "" otherwise.
  std::string action;
  /// Quarantine reason -> rows (ingest).
  std::map<std::string, int64_t> reasons;
  std::vector<std::string> warnings;
  /// What the stage did, one line per item (e.g. per Qlib store); printed in the summary.
  std::vector<std::string> notes;
};

struct DayRun {
  Date day{};
  /// Why the day was run: "new", "republished", "backfill", "forced".
  std::string reason;
  std::string status = "ok";  // ok | failed
  std::string error;
  std::vector<StageRun> stages;
  double seconds = 0;

  const StageRun* Stage(std::string_view name) const;
};

struct DatasetRun {
  std::string dataset;
  std::optional<Date> watermark_before, watermark_after;
  /// Newest day the source lists.
  std::optional<Date> latest_published;
  /// Expected days past their publish deadline that the source does not list.
  std::vector<Date> missing;
  /// Days left alone because they are committed from the listed version.
  int64_t up_to_date_days = 0;
  /// Days of a backfill range not published yet (after latest_published).
  int64_t unpublished_days = 0;
  std::vector<DayRun> days;
  /// Dataset-scoped stages (features, qlib) after the days.
  std::vector<StageRun> stages;

  int64_t failed() const;
  int64_t committed() const;
};

struct AlertRecord {
  std::string kind;  // failure | missing_day | quarantine_rate | empty_day
  std::string dataset;
  std::string day;  // "" for run-level alerts
  std::string message;
};

struct DeliveryRecord {
  std::string target;  // "command" | "webhook"
  bool ok = false;
  std::string error;
};

struct RunReport {
  static constexpr std::string_view kFormat = "qlake.run.v1";

  std::string run_id;
  std::string command;  // sync | backfill
  std::string status = "running";
  std::string error;
  std::string started_at, finished_at;
  double seconds = 0;
  int64_t pid = 0;
  std::string host;
  std::string lake, source;
  std::string shard;  // "1/4" or ""
  /// Stages that ran, in order, and stages configured but not available in this build.
  std::vector<std::string> stages;
  std::vector<std::string> stages_missing;
  /// Recovery on start.
  int64_t recovered_forward = 0, recovered_back = 0, recovered_dropped = 0,
          temp_files_removed = 0, runs_marked_interrupted = 0;
  std::string lock_taken_over;  // description of a dead holder, if any
  std::vector<DatasetRun> datasets;
  std::vector<AlertRecord> alerts;
  std::vector<DeliveryRecord> deliveries;
  std::vector<std::string> warnings;
  /// Notes of dataset stages that had nothing to do ("qlib store ... up to date").
  std::vector<std::string> notes;
  uint64_t peak_rss_bytes = 0;
  uint64_t memory_budget_bytes = 0;
  std::string max_memory_tier = "normal";

  int64_t failed_days() const;
  int64_t committed_days() const;
  /// The run's exit status: OK, Cancelled (some days failed: exit 7) or the error.
  arrow::Status ToStatus() const;

  nlohmann::ordered_json ToJson() const;
  /// The human summary printed at the end of a run (a few lines).
  std::string Summary() const;
  /// Prometheus text exposition format. `last_success` holds per-dataset unix seconds of
  /// the last successful run (from the pipeline state), `now_unix` the finish time.
  std::string PrometheusText(const std::map<std::string, double>& last_success,
                             double now_unix) const;
};

/// "20251125T140001.123Z-4242": sortable by start time, unique per process.
std::string MakeRunId();

}  // namespace qlake::pipeline

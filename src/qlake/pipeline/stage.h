// File: qlake/pipeline/stage.h
//
// The pipeline is a list of stages run in order: fetch -> ingest -> features -> qlib.
// Day-scoped stages (fetch, ingest) run once per (dataset, day) the plan selected, each
// day on its own worker; a day stops at its first failing stage. Dataset-scoped stages
// (features, qlib) run once per dataset after its days, given the days that changed.
// Each stage is a thin adapter over its library function (never over the CLI).
//
// Which stages run depends on the project (BuildStages): fetch only with a `cache:`
// folder (without one, ingest streams each day from the source), ingest always, features
// when `features:` is on, qlib when it lists Qlib stores (docs/pipeline.md lists the
// state). A project that asks for a stage this build lacks gets a warning in the run
// report, not a silent skip.
//
// The source listing is the truth about what is published: for a local mirror the files
// present; for S3 the bucket listing. A day's source version (size, mtime, ETag) is
// compared with the one in its commit record to find republished files.
//
// Thread safety: RunDay may be called concurrently for different days; RunDataset once
// per dataset at a time.

#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

#include "qlake/catalog/datasets.h"
#include "qlake/core/dates.h"
#include "qlake/features/features.h"
#include "qlake/fetch/fetch.h"
#include "qlake/ingest/ingest.h"
#include "qlake/lake/commit_record.h"
#include "qlake/pipeline/project.h"
#include "qlake/pipeline/report.h"

namespace qlake::lake {
class Lake;
}

namespace qlake::pipeline {

/// One object of the source listing.
struct SourceObject {
  std::string key;
  int64_t size = -1;
  /// Unix seconds as text, the way the ingest stage records it ("" if unknown).
  std::string last_modified;
  std::string etag;
};

/// Whether a committed day's source version matches the listed object (size, and mtime
/// and ETag where both sides know them).
bool SameVersion(const lake::SourceVersion& committed, const SourceObject& listed);

struct SourceListing {
  /// dataset -> day -> object. Only keys of the catalog's layout for that dataset.
  std::map<std::string, std::map<Date, SourceObject>> objects;

  std::optional<Date> Latest(const std::string& dataset) const;
  const SourceObject* Find(const std::string& dataset, Date day) const;
};

/// Lists the source (mirror folder or FileSystem URI) for `datasets`. A dataset folder
/// that does not exist lists nothing; an unreachable source is an IOError.
arrow::Result<SourceListing> ListSource(const std::string& source,
                                        const std::vector<std::string>& datasets);
/// The same on an open file system (io::OpenFileSystem: S3 with the config's endpoint
/// and credentials); `root` is the path of the mirror or "bucket[/prefix]" in it. An S3
/// root is not checked for existence (HeadBucket may be refused where listing works).
arrow::Result<SourceListing> ListSource(arrow::fs::FileSystem& fs,
                                        const std::string& root,
                                        const std::vector<std::string>& datasets);

/// Keys being fetched by some day of this run: a day holds its keys while it fetches,
/// so two days never download the same object at once (a day bar's previous day is
/// also the previous day's own file).
class FetchKeyLocks {
 public:
  /// Waits until none of `keys` is held, then holds them all.
  void Lock(const std::vector<std::string>& keys);
  void Unlock(const std::vector<std::string>& keys);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> held_;
};

/// What every stage gets.
struct StageContext {
  std::string source;
  /// The source's file system and the mirror's (or "bucket[/prefix]") path in it. The
  /// fetch stage downloads from it; without a cache, ingest streams from it.
  std::shared_ptr<arrow::fs::FileSystem> source_fs;
  std::string source_root;
  /// Local flat-file cache (project `cache:`, absolute); "" = no fetch stage.
  std::string cache;
  /// The cache's manifest, opened (and locked) once per run and shared by the days.
  std::shared_ptr<fetch::Manifest> manifest;
  /// Template for the fetch stage: retries, backoff, chunk size, gzip check (dataset,
  /// day, bucket root, cache and manifest are filled per day).
  fetch::FetchOptions fetch;
  std::shared_ptr<FetchKeyLocks> fetch_locks = std::make_shared<FetchKeyLocks>();
  std::string lake_uri;
  std::shared_ptr<lake::Lake> lake;
  /// Template for the ingest stage: parquet/reader/layout/fsync (dataset, days, source
  /// and lake are filled per day).
  ingest::IngestOptions ingest;
  /// Template for the features stage: params, parquet, fsync (set, days, lake per call).
  features::FeatureOptions features;
  std::vector<QlibStoreSpec> qlib;
  /// Dataset stages also re-check this many most recent committed days (catching up
  /// after a run that died between a commit and its dataset stages).
  int recheck_days = 30;
};

struct DayTask {
  const catalog::DatasetSpec* spec = nullptr;
  Date day{};
  std::string reason;
  SourceObject object;
};

class Stage {
 public:
  enum class Scope { kDay, kDataset };
  virtual ~Stage() = default;
  virtual std::string_view name() const = 0;
  virtual Scope scope() const = 0;
  /// Day-scoped: does the day. Fills `run` (counts, bytes); the returned error fails the
  /// day (the runner stores it in run->error).
  virtual arrow::Status RunDay(const StageContext& ctx, const DayTask& task,
                               StageRun* run);
  /// Dataset-scoped: brings its output for `dataset` up to date after this run's
  /// commits; `changed` maps every dataset of the run to the days it committed or
  /// re-committed (ascending), so a stage can follow inputs of other datasets.
  virtual arrow::Status RunDataset(
      const StageContext& ctx, const std::string& dataset,
      const std::map<std::string, std::vector<Date>>& changed, StageRun* run);
};

/// Copies one day's object from the source into the cache through qlake::fetch::Fetch
/// (one listing request for the day's month folder; a HEAD and ranged GETs when the
/// cache lacks the listed version; resumable, verified, retried per fetch.retries /
/// fetch.forbidden_retries; the manifest records it). A day whose cached version is the
/// listed one transfers nothing ("unchanged"); a cached older version is replaced
/// ("republished"). Fills bytes_in (bytes transferred), bytes_out (the cached file's
/// size), retries (download attempts beyond the first) and action (of the day's own
/// file). A failed download, or an object the listing no longer has, fails the day
/// before ingest touches it.
///
/// Day bars (stocks_daily, options_daily) also fetch the previous session's file when
/// the source lists it: ingest checks each bar against the previous close from the
/// source's previous file (ingest.h), so the cache must hold it for the result to equal
/// a sync that streams from the source, whatever order days run in. Failing to get it is
/// a warning (ingest then takes the closes from the lake's commit of that day).
class FetchStage : public Stage {
 public:
  std::string_view name() const override { return "fetch"; }
  Scope scope() const override { return Scope::kDay; }
  arrow::Status RunDay(const StageContext& ctx, const DayTask& task,
                       StageRun* run) override;
};

/// Validates and ingests one day through qlake::ingest::Ingest: from the cache when the
/// project has one (the fetch stage put the day there), else streamed from the source.
class IngestStage : public Stage {
 public:
  std::string_view name() const override { return "ingest"; }
  Scope scope() const override { return Scope::kDay; }
  arrow::Status RunDay(const StageContext& ctx, const DayTask& task,
                       StageRun* run) override;
};

/// Computes the dataset's feature days (qlake::features::ComputeFeatures) for the days
/// it or its inputs changed (stocks_daily reads stocks_minute; options read stocks), the
/// committed days that have no feature day yet, and the most recent `recheck_days`
/// committed days, in runs of consecutive committed days. Days already up to date are
/// skipped by the features library itself (it compares the inputs' transactions), so a
/// run that died between a commit and its features is caught up by the next one. Reports
/// "skipped" when nothing needed computing.
class FeaturesStage : public Stage {
 public:
  std::string_view name() const override { return "features"; }
  Scope scope() const override { return Scope::kDataset; }
  arrow::Status RunDataset(const StageContext& ctx, const std::string& dataset,
                           const std::map<std::string, std::vector<Date>>& changed,
                           StageRun* run) override;
};

/// Brings the project's Qlib stores up to date (qlake::qlib::Export with its defaults):
/// each store built from `dataset` gets the committed days after its end appended and
/// the days whose lake commit changed since they were exported (re-ingested,
/// republished) rewritten; the library finds those itself from its manifest, so a run
/// that died between a commit and this stage is caught up by the next one. A day store
/// also reads stocks_minute (its vwap): it is run for stocks_minute too when the run does
/// not include its own dataset. Stores whose dataset has no committed day yet are left
/// alone. Reports "skipped" when no store changed (a note per store says it is up to
/// date); a failing store fails the stage after the others ran.
class QlibStage : public Stage {
 public:
  std::string_view name() const override { return "qlib"; }
  Scope scope() const override { return Scope::kDataset; }
  arrow::Status RunDataset(const StageContext& ctx, const std::string& dataset,
                           const std::map<std::string, std::vector<Date>>& changed,
                           StageRun* run) override;
};

struct StageCatalog {
  std::vector<std::unique_ptr<Stage>> stages;
  /// Stages the project needs that this build does not have (none today).
  std::vector<std::string> missing;
};

/// The stages for a project, in pipeline order.
StageCatalog BuildStages(const Project& project);

}  // namespace qlake::pipeline

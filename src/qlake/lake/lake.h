// File: qlake/lake/lake.h
//
// The lake: a folder (local, S3, or in-memory in tests) of Parquet files that DuckDB,
// polars and pyarrow read as they are, plus the bookkeeping that makes every
// (dataset, trading day) appear all at once or not at all.
//
//   <root>/<dataset>/<layout path>.parquet          data, hive-style key=value folders
//   <root>/_quarantine/<dataset>/<YYYY-MM-DD>.parquet  rows that failed validation
//   <root>/_qlake/<dataset>/commits/<YYYY-MM-DD>.json  commit record (source of truth)
//   <root>/_qlake/<dataset>/watermark.json[.bak]    last contiguous committed day
//   <root>/_qlake/<dataset>/history.jsonl           every commit, one line (best effort)
//   <root>/_staging/<dataset>/<YYYY-MM-DD>/<txn>/   files of a commit in progress
//
// Readers skip '_'-prefixed folders (pyarrow) or never match staged names (DuckDB's
// `**/*.parquet` glob: staged files end in ".parquet.tmp"). docs/lake.md describes the
// protocol step by step, the crash cases and the record formats.
//
// Usage (one day; the ingest writer decides the file paths through the layout):
//
//   ARROW_ASSIGN_OR_RAISE(auto lake, qlake::lake::Lake::Open("/data/lake"));
//   ARROW_ASSIGN_OR_RAISE(auto txn, lake->BeginDay("stocks_minute", day));
//   ARROW_ASSIGN_OR_RAISE(auto out,
//   txn->OpenFile("year=2025/month=01/2025-01-02.parquet"));
//   ... write a Parquet file into `out` and close it ...
//   qlake::lake::CommitInfo info;  // source version, row counts, validation summary
//   ARROW_ASSIGN_OR_RAISE(auto record, txn->Commit(info));
//
// Concurrency: a Lake is thread-safe. A DayTransaction belongs to one thread. Different
// days of a dataset may be committed concurrently, from threads of one process or from
// different processes or machines (shards): a commit touches only its own day's files,
// record and staging folder, plus the dataset's watermark, which is derived state (a
// race can only leave it lower than the truth; the next commit or GetWatermark after
// RebuildWatermark repairs it). The same day must not be committed by two processes at
// once (the pipeline's lock prevents it); within one process BeginDay refuses a second
// open transaction for a day.

#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include <arrow/filesystem/filesystem.h>
#include <arrow/io/interfaces.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <nlohmann/json.hpp>

#include "qlake/core/dates.h"
#include "qlake/lake/commit_record.h"
#include "qlake/lake/watermark.h"

namespace qlake::lake {

/// Folder names below the lake root (all '_'-prefixed, so readers skip them).
inline constexpr std::string_view kMetaDir = "_qlake";
inline constexpr std::string_view kStagingDir = "_staging";
inline constexpr std::string_view kQuarantineDir = "_quarantine";
/// Name of the intent record inside a transaction's staging folder.
inline constexpr std::string_view kIntentName = "_intent.json";

struct LakeOptions {
  // Behaviour
  /// fsync staged files before they are published, and every record and every folder a
  /// file is renamed into or deleted from (local file systems only; object stores need
  /// nothing). Default on. Off saves a few ms per day but a power loss (not a process
  /// crash) may then lose or tear recent commits.
  bool fsync = true;
  /// With fsync on, a commit that publishes more than this many files on a local file
  /// system makes them durable with one syncfs(2) of the lake's file system (data,
  /// inodes and folders together) instead of an fsync per file and per folder: the
  /// original layout publishes ~11,000 small files per stocks-minute day, and their
  /// 22,000 fsyncs took longer than encoding them. 1..1,000,000, default 64.
  int64_t sync_batch_files = 64;
  /// Create the root folder in Open/Make if it does not exist. Default on.
  bool create_root = true;
  /// Fail a commit that would overwrite an existing file which is not part of the same
  /// day's previous commit (another day's file or a stray file: a layout bug). Costs one
  /// GetFileInfo per file. Default on.
  bool refuse_foreign_overwrite = true;
  /// Append every commit record as one JSON line to _qlake/<dataset>/history.jsonl where
  /// the file system supports appends (not S3). Best effort: the per-day records are the
  /// truth, and recovery may append a line twice. Default on.
  bool write_history = true;
  /// When recovery rolls an interrupted commit forward and a staged file has already
  /// been moved into place, check the CRC-32 of the file found there (else size only).
  /// Default on; costs one read of such files, which only exist after a crash.
  bool verify_moved_files_on_recovery = true;
  /// Run RecoverAll() in Open/Make. Only safe when no other process is writing the lake
  /// (it rolls back staging folders without an intent record, including ones another
  /// live process is still writing). Default off: BeginDay recovers its own day anyway.
  bool recover_on_open = false;

  // Performance
  /// Read size when computing checksums (Verify, recovery). 64 KiB..1 GiB, default 4 MiB.
  int64_t read_buffer_bytes = int64_t{4} << 20;

  static LakeOptions Defaults() { return {}; }
  arrow::Status Validate() const;
};

/// What the ingest stage knows about a day when it commits it.
struct CommitInfo {
  SourceVersion source;
  /// Must reconcile: read == written + quarantined + filtered (else Invalid).
  RowCounts rows;
  /// Rows per data file, keyed by the relative path given to OpenFile. Optional: if
  /// given it must name every data file and sum to rows.written; if empty and there is
  /// exactly one data file, that file gets rows.written; otherwise rows are -1.
  std::map<std::string, int64_t> file_rows;
  /// Validation summary; must be a JSON object (null means {}).
  nlohmann::json validation = nlohmann::json::object();
  /// Defaults to the running qlake's version (QLAKE_VERSION).
  std::string qlake_version;
};

struct VerifyOptions {
  /// Also read every file and compare its CRC-32 (else existence and size only).
  bool checksums = false;
};

/// What recovery did to one interrupted transaction.
struct RecoveryAction {
  enum class Kind {
    kRolledForward,  // had an intent record: the commit was finished
    kRolledBack,     // had no intent record: its staged files were deleted
    kDropped,        // intent record, but files it needs are gone: the day was removed
  };
  Kind kind;
  std::string dataset;
  Date day;
  std::string txn;
  /// Why a day was dropped; empty otherwise.
  std::string detail;
};

struct RecoveryReport {
  std::vector<RecoveryAction> actions;
  /// Leftover temp files of interrupted atomic writes that were removed.
  int64_t temp_files_removed = 0;

  int64_t Count(RecoveryAction::Kind kind) const;
  bool empty() const { return actions.empty() && temp_files_removed == 0; }
  void Append(const RecoveryReport& other);
};

class Lake;

/// One (dataset, day) commit in progress. Obtained from Lake::BeginDay; ended by
/// exactly one of Commit() or Abort() (the destructor aborts if neither was called).
/// Until Commit publishes them, its files live in the staging folder, invisible to
/// readers, and the day's previous commit stays as it was.
///
/// Thread safety: not thread-safe; use from one thread. Streams from OpenFile belong to
/// the same thread and must not be written after Commit/Abort (they fail if they are).
class DayTransaction {
 public:
  ~DayTransaction();
  DayTransaction(const DayTransaction&) = delete;
  DayTransaction& operator=(const DayTransaction&) = delete;

  const std::string& dataset() const { return dataset_; }
  Date day() const { return day_; }
  const std::string& txn_id() const { return txn_; }

  /// Opens a new data file of the day. `relative_path` is relative to the dataset folder
  /// and decided by the layout ("year=2025/month=01/2025-01-02.parquet"); it is checked
  /// with ValidateDataPath and must not repeat within the transaction. The stream writes
  /// to the staging folder ("<n>.parquet.tmp") and computes size and CRC-32 as it goes;
  /// close it before Commit (Commit closes streams left open). IOError naming the day
  /// and paths if the staging file cannot be created (read-only lake, full disk).
  arrow::Result<std::shared_ptr<arrow::io::OutputStream>> OpenFile(
      std::string_view relative_path);

  /// Opens the day's quarantine file, published to
  /// _quarantine/<dataset>/<YYYY-MM-DD>.parquet with the data files. At most once.
  arrow::Result<std::shared_ptr<arrow::io::OutputStream>> OpenQuarantineFile();

  /// Publishes the day: closes and fsyncs the staged files, writes the intent record,
  /// retires the previous commit record, moves the files into place, deletes files of
  /// the previous commit that the new one does not have, writes the commit record,
  /// removes the staging folder and advances the watermark. Returns the record written.
  ///
  /// Errors: Invalid for row counts that do not reconcile, a bad file_rows map, rows
  /// without files, a non-object validation summary, a stream that failed or was
  /// aborted, or a file that would overwrite another day's file; IOError for file system
  /// failures. Before the intent record is written, an error discards the staged files
  /// and leaves the previous commit untouched. After it, the commit is half applied: the
  /// error says so, and the next BeginDay of that day or Recover finishes it (readers
  /// may see a mix of old and new files until then, but no record calls it good).
  /// Either way the transaction is over.
  arrow::Result<CommitRecord> Commit(const CommitInfo& info);

  /// Discards the staged files; the day's previous commit stays untouched. Idempotent.
  /// Invalid after a successful Commit.
  arrow::Status Abort();

 private:
  friend class Lake;
  struct StagedFile;
  class StagingStream;
  enum class State { kOpen, kCommitted, kAborted, kFailed, kHalfApplied };

  DayTransaction(std::shared_ptr<Lake> lake, std::string dataset, Date day,
                 std::string txn);

  std::string Where() const;   // "stocks_minute 2025-01-02"
  std::string TxnDir() const;  // lake-root relative
  arrow::Result<std::shared_ptr<arrow::io::OutputStream>> Stage(std::string relative_path,
                                                                std::string final_path,
                                                                std::string staged_name);
  arrow::Result<CommitRecord> DoCommit(const CommitInfo& info);
  // Removes the staging folder and seals the streams (best effort, logs failures).
  arrow::Status DiscardStaging();
  void Finish(State state);

  std::shared_ptr<Lake> lake_;
  std::string dataset_;
  Date day_;
  std::string txn_;
  State state_ = State::kOpen;
  bool staging_created_ = false;
  std::vector<std::shared_ptr<StagedFile>> files_;  // data files in OpenFile order
  std::unordered_set<std::string> relative_paths_;  // of files_, for duplicate checks
  std::shared_ptr<StagedFile> quarantine_;
};

/// A lake root: a FileSystem plus a base path inside it.
///
/// Thread safety: all methods are safe to call concurrently (see the file comment for
/// the rules on days). Transactions keep their Lake alive.
class Lake : public std::enable_shared_from_this<Lake> {
 private:
  struct Private {
    explicit Private() = default;
  };

 public:
  /// Opens a lake from a URI ("s3://bucket/prefix", "file:///data/lake", "mock:///")
  /// or an absolute local path. S3 must have been initialized by the caller.
  static arrow::Result<std::shared_ptr<Lake>> Open(const std::string& uri_or_path,
                                                   const LakeOptions& options = {});
  /// A lake at `base_path` inside `fs` ("" for the file system's root).
  static arrow::Result<std::shared_ptr<Lake>> Make(
      std::shared_ptr<arrow::fs::FileSystem> fs, std::string base_path,
      const LakeOptions& options = {});

  Lake(Private, std::shared_ptr<arrow::fs::FileSystem> fs, std::string base_path,
       LakeOptions options);

  const std::shared_ptr<arrow::fs::FileSystem>& filesystem() const { return fs_; }
  const std::string& base_path() const { return base_; }
  const LakeOptions& options() const { return options_; }

  /// The FileSystem path of a lake-root relative path.
  std::string PathOf(std::string_view relative) const;
  /// Lake-root relative paths of the bookkeeping files.
  static std::string CommitRecordPath(std::string_view dataset, Date day);
  static std::string WatermarkPath(std::string_view dataset);
  static std::string QuarantinePath(std::string_view dataset, Date day);

  /// Starts a transaction for (dataset, day), after recovering any interrupted commit of
  /// that day (RecoverDay). Invalid for a bad dataset name or if this process already
  /// has an open transaction for the day.
  arrow::Result<std::unique_ptr<DayTransaction>> BeginDay(std::string_view dataset,
                                                          Date day);

  /// Finishes or undoes interrupted commits of one day: staging folders with an intent
  /// record are rolled forward, others deleted. Idempotent. Skips nothing: call it only
  /// for days no other process is writing. Invalid if this process has the day open.
  /// A staging folder whose intent record is damaged is left in place and reported as an
  /// error after the others are handled.
  arrow::Result<RecoveryReport> RecoverDay(std::string_view dataset, Date day);
  /// RecoverDay for every day with a staging folder (days open in this process are
  /// skipped), then removes leftover temp files under _qlake/<dataset>/ and brings the
  /// watermark up to date. Safe to run repeatedly; not while another process writes the
  /// dataset.
  arrow::Result<RecoveryReport> Recover(std::string_view dataset);
  /// Recover() for every dataset found under _staging/ or _qlake/.
  arrow::Result<RecoveryReport> RecoverAll();

  /// Datasets with bookkeeping under _qlake/, sorted.
  arrow::Result<std::vector<std::string>> ListDatasets();
  /// Committed days, ascending (from the record names; no record is read).
  arrow::Result<std::vector<Date>> ListCommittedDays(std::string_view dataset);
  /// Every commit record, ascending by day. Invalid naming the file if one is damaged.
  arrow::Result<std::vector<CommitRecord>> ListCommits(std::string_view dataset);
  /// The day's record, or nullopt if the day is not committed.
  arrow::Result<std::optional<CommitRecord>> GetCommit(std::string_view dataset,
                                                       Date day);
  /// Checks that every file of the day's record exists with the recorded size (and
  /// CRC-32 if asked) and that no interrupted commit of the day is pending. KeyError if
  /// the day is not committed; Invalid listing every problem otherwise.
  arrow::Status Verify(std::string_view dataset, Date day,
                       const VerifyOptions& options = {});

  /// The stored watermark (empty if nothing is committed). Falls back to the backup copy
  /// if the main file is damaged, and rebuilds it from the records if both are.
  arrow::Result<Watermark> GetWatermark(std::string_view dataset);
  /// Recomputes the watermark from the commit records and stores it.
  arrow::Result<Watermark> RebuildWatermark(std::string_view dataset);

 private:
  friend class DayTransaction;

  using DayKey = std::pair<std::string, int32_t>;  // (dataset, date32)

  arrow::Status Init();
  arrow::Status Acquire(const std::string& dataset, Date day);
  void Release(const std::string& dataset, Date day);
  bool IsOpen(const std::string& dataset, Date day);

  // Applies an intent record (the tail of Commit, and recovery's roll forward).
  arrow::Status ApplyIntent(const IntentRecord& intent, const std::string& txn_dir,
                            bool recovering, RecoveryAction* action);
  arrow::Status DropDay(const IntentRecord& intent, const std::string& txn_dir,
                        const std::string& why);
  arrow::Result<RecoveryReport> RecoverDayUnlocked(const std::string& dataset, Date day);
  arrow::Status RemoveDayTempFiles(const std::string& dataset, Date day,
                                   RecoveryReport* report);
  void AppendHistory(const CommitRecord& record);
  arrow::Status SyncDirIfEnabled(const std::string& path);

  // Watermark helpers; callers hold watermark_mu_.
  // The main copy if it parses, else the backup, else nullopt; *main_ok tells whether the
  // main copy was good.
  arrow::Result<std::optional<Watermark>> ReadStoredWatermark(const std::string& dataset,
                                                              bool* main_ok);
  arrow::Status StoreWatermark(const Watermark& w);
  arrow::Result<Watermark> RebuildWatermarkLocked(const std::string& dataset);
  // Walks the stored watermark forward over committed days (rebuilds when it is missing
  // or `day` lies before its first day).
  arrow::Result<Watermark> AdvanceWatermark(const std::string& dataset,
                                            std::optional<Date> day);

  std::shared_ptr<arrow::fs::FileSystem> fs_;
  std::string base_;
  LakeOptions options_;

  std::mutex mu_;  // guards open_
  std::set<DayKey> open_;
  std::mutex watermark_mu_;  // serializes watermark read-modify-write in this process
};

}  // namespace qlake::lake

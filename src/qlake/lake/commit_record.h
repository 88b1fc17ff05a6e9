// File: qlake/lake/commit_record.h
//
// What the lake writes down about a committed day, and the rules for names it accepts.
//
// A commit record (`_qlake/<dataset>/commits/<YYYY-MM-DD>.json`) is the source of truth
// for one (dataset, trading day): the data files that make up the day (path relative to
// the dataset folder, size, rows, CRC-32), the quarantine file if any, the row counts
// (read == written + quarantined + filtered), the source object's version (key, ETag,
// size, mtime), the validation summary, the transaction id, the commit time and the
// qlake version. A day without a record is not committed, whatever files exist.
//
// An intent record (`_staging/<dataset>/<day>/<txn>/_intent.json`) is written before the
// first file of a commit is moved into place. It holds the full commit record plus the
// moves still to make and the files of the previous commit, so that recovery can finish
// (roll forward) an interrupted commit. docs/lake.md has both formats with examples.
//
// Thread safety: plain values and pure functions.

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>
#include <nlohmann/json.hpp>

#include "qlake/core/dates.h"

namespace qlake::lake {

/// The version of the source object a day was ingested from (fetch's manifest).
struct SourceVersion {
  /// Object key, e.g. "us_stocks_sip/minute_aggs_v1/2025/01/2025-01-02.csv.gz".
  std::string key;
  /// ETag as the source reported it (quotes stripped or not: stored verbatim); may be "".
  std::string etag;
  /// Object size in bytes; -1 if unknown.
  int64_t size = -1;
  /// Last-modified time as the source reported it (ISO 8601 preferred); may be "".
  std::string last_modified;

  bool operator==(const SourceVersion&) const = default;
};

/// Row accounting for one day. Every row read from the source is written, quarantined
/// or deliberately filtered, exactly once.
struct RowCounts {
  int64_t read = 0;
  int64_t written = 0;
  int64_t quarantined = 0;
  int64_t filtered = 0;

  /// Invalid if a count is negative or read != written + quarantined + filtered.
  arrow::Status Validate() const;
  bool operator==(const RowCounts&) const = default;
};

/// One file of a committed day.
struct FileEntry {
  /// Data files: relative to the dataset folder
  /// ("year=2025/month=01/2025-01-02.parquet"). The quarantine file: relative to the lake
  /// root
  /// ("_quarantine/stocks_minute/2025-01-02.parquet").
  std::string path;
  int64_t size = 0;
  /// Rows in the file; -1 if the writer did not say.
  int64_t rows = -1;
  /// CRC-32 (zlib.crc32) of the file's bytes.
  uint32_t crc32 = 0;

  bool operator==(const FileEntry&) const = default;
};

struct CommitRecord {
  /// Format tag written into every record; a reader rejects other tags.
  static constexpr std::string_view kFormat = "qlake.commit.v1";

  std::string dataset;
  Date day;
  /// Transaction id: "<UTC yyyymmddThhmmssmmmZ>-<pid>-<16 hex>", unique per commit.
  std::string txn;
  /// UTC ISO 8601 time the record was built.
  std::string committed_at;
  std::string qlake_version;
  SourceVersion source;
  RowCounts rows;
  /// Sorted by path; may be empty (a day whose rows were all quarantined or filtered).
  std::vector<FileEntry> files;
  std::optional<FileEntry> quarantine;
  /// Validation summary from the ingest stage; always a JSON object.
  nlohmann::json validation = nlohmann::json::object();

  bool operator==(const CommitRecord&) const = default;
};

nlohmann::json CommitRecordToJson(const CommitRecord& record);
/// Invalid naming `where` (a path, usually) and the offending field if `j` is not a
/// well-formed record (also if its row counts do not reconcile).
arrow::Result<CommitRecord> CommitRecordFromJson(const nlohmann::json& j,
                                                 std::string_view where);
/// Pretty-printed JSON (2-space indent) with a trailing newline.
std::string SerializeCommitRecord(const CommitRecord& record);
arrow::Result<CommitRecord> ParseCommitRecord(std::string_view text,
                                              std::string_view where);

/// One staged file to move into place.
struct StagedMove {
  /// Name inside the transaction's staging folder ("0.parquet.tmp").
  std::string staged;
  /// Final path relative to the lake root ("stocks_minute/year=2025/.../x.parquet").
  std::string final_path;

  bool operator==(const StagedMove&) const = default;
};

struct IntentRecord {
  static constexpr std::string_view kFormat = "qlake.intent.v1";

  /// The record to write once every move is done.
  CommitRecord record;
  std::vector<StagedMove> moves;
  /// Files of the previous commit of the day (lake-root relative, quarantine included);
  /// those not among the new final paths are deleted.
  std::vector<std::string> previous_files;
  /// Transaction id of the previous commit of the day ("" if there was none).
  std::string previous_txn;

  bool operator==(const IntentRecord&) const = default;
};

std::string SerializeIntentRecord(const IntentRecord& intent);
arrow::Result<IntentRecord> ParseIntentRecord(std::string_view text,
                                              std::string_view where);

/// Folders that group datasets: "features/stocks_daily" is the dataset "stocks_daily" of
/// the group "features" (data in <root>/features/stocks_daily/, bookkeeping in
/// _qlake/features/stocks_daily/). A group's name is not a dataset name itself.
inline constexpr std::string_view kDatasetGroups[] = {"features"};

/// Dataset names become folder names: 1-64 characters of [a-z0-9_], starting with a
/// letter or digit (a leading '_' would hide the dataset from readers), optionally
/// prefixed by a group of kDatasetGroups and '/' ("features/stocks_daily"). Invalid
/// otherwise, naming the name.
arrow::Status ValidateDatasetName(std::string_view dataset);

/// A data file path relative to the dataset folder, as the layout produces it. Invalid
/// (with the reason) unless it is '/'-separated, relative, has no empty, "." or ".."
/// component, no component starting with '.' or '_' (readers such as pyarrow would skip
/// it), no backslash or control character, is at most 1024 bytes, and ends in
/// ".parquet".
arrow::Status ValidateDataPath(std::string_view relative_path);

}  // namespace qlake::lake

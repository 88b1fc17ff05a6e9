// File: qlake/fetch/fetch.h
//
// The fetch stage: list a dataset's flat files in the bucket, compare them with the
// local cache's manifest (manifest.h), and download what is new or republished, in
// parallel, into the cache in the bucket's key layout, so `qlake ingest --source CACHE`
// reads it like a mirror.
//
//   FetchOptions o;
//   o.dataset = "stocks_minute"; o.from = o.to = day; o.cache = "/data/flatfiles";
//   ARROW_ASSIGN_OR_RAISE(auto fs, io::OpenFileSystem("s3://", config, &o.bucket_root));
//   ARROW_ASSIGN_OR_RAISE(auto report, Fetch(*fs, o, &progress));
//   report.Summary() -> OK, or why the run counts as failed
//
// Per day (the calendar says which days a file is expected on: catalog::ExpectFile; the
// listing says which files exist):
//   listed, cache holds the same version   -> kUnchanged (no request beyond the listing)
//   listed, not in the cache               -> kDownloaded
//   listed, cache holds another version    -> kRepublished: downloaded again; the day
//                                             must be re-ingested (see below)
//   not listed, expected                   -> kNotPublished ("not published yet"); a
//                                             failure for explicit days, not for the
//                                             newest days of --latest / --last
//   not listed, not expected (holiday ...) -> kSkipped
//   download failed                        -> kFailed with a clear message:
//       403 (after fetch.forbidden_retries attempts) "not in your plan or bad
//       credentials"; 5xx, timeouts, resets, truncated bodies after fetch.retries
//       attempts "gave up after N attempts: <last error>".
//
// A download: HEAD (size, ETag, LastModified), then ranged GETs of fetch.chunk_bytes into
// "<key>.qlake-part" (with "<key>.qlake-part.json" naming the version being fetched),
// SHA-256 (and MD5, checked against a single-part ETag) computed on the way; then size
// and gzip integrity (every member's CRC) are checked, the file gets the object's
// LastModified as mtime, is fsynced and renamed into place, and the manifest gets its
// line. A failed attempt keeps the part file: the next attempt (or the next run)
// resumes from where it stopped if the object's version is unchanged, else restarts.
// Retries back off exponentially with jitter (io::BackoffMs).
//
// Re-ingest of republished days: the lake's commit record of a day stores the source's
// size and LastModified (epoch seconds; the cached file's mtime is the object's
// LastModified). `qlake ingest --changed-only` (ingest::IngestOptions::skip_unchanged)
// re-commits exactly the days whose source differs from what was committed, and
// StaleDays() below lists them for any caller (qlake catalog days shows them as
// "stale").
//
// Memory: fetch.jobs x fetch.chunk_bytes of buffers (one per worker, reused), plus the
// AWS client's. Connections are reused across files (one S3 client per run).
//
// Thread safety: Fetch runs `jobs` worker threads itself; do not run two fetches on one
// cache at once (the manifest lock refuses the second) unless they share one open
// Manifest (FetchOptions::manifest) and fetch different keys, as the pipeline's days do.

#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <arrow/filesystem/filesystem.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include "qlake/catalog/datasets.h"
#include "qlake/core/config.h"
#include "qlake/core/dates.h"
#include "qlake/fetch/manifest.h"

namespace qlake {
class ProgressReporter;
namespace lake {
class Lake;
}
}  // namespace qlake

namespace qlake::fetch {

/// One object of the bucket listing for a dataset day.
struct ListedObject {
  Date day{};
  ObjectVersion version;  // etag "" (a listing through Arrow carries none)
};

/// Lists `spec`'s files with from <= day <= to under `bucket_root` ("flatfiles" or
/// "flatfiles/prefix"), one listing request per month folder (continuations followed).
/// Keys that are not flat-file keys of `spec` are ignored.
arrow::Result<std::map<Date, ListedObject>> ListDays(arrow::fs::FileSystem& fs,
                                                     const std::string& bucket_root,
                                                     const catalog::DatasetSpec& spec,
                                                     Date from, Date to);

/// The newest day on or before `until` that has a file in the listing, looking back
/// year folder by year folder to the dataset's first date; nullopt if none.
arrow::Result<std::optional<Date>> LatestListedDay(arrow::fs::FileSystem& fs,
                                                   const std::string& bucket_root,
                                                   const catalog::DatasetSpec& spec,
                                                   Date until);

/// The version of one object from a HEAD request (with its ETag).
arrow::Result<ObjectVersion> HeadObject(arrow::fs::FileSystem& fs,
                                        const std::string& bucket_root,
                                        const std::string& key);

/// Today's date in New York (the flat files' dates are New York trading dates).
Date TodayNewYork();

enum class Selection : int8_t {
  kRange,   // from..to
  kLatest,  // the newest published day (and say if the newest expected one is late)
  kLastN,   // the last N expected days up to as_of
};

struct FetchOptions {
  // Behaviour
  std::string dataset;
  Selection selection = Selection::kRange;
  Date from{}, to{};
  int last_n = 1;
  /// "Today" for --latest / --last (default TodayNewYork()).
  std::optional<Date> as_of;
  /// Path of the bucket (and prefix) inside the file system: "flatfiles".
  std::string bucket_root;
  /// Local cache folder (created if missing).
  std::string cache;
  /// Download even when the cache holds the same version.
  bool force = false;
  /// Check every download's gzip CRCs before keeping it.
  bool verify_gzip = true;
  /// Attempts per file on transient errors, and on 403.
  int retries = 5;
  int forbidden_retries = 3;
  int64_t backoff_ms = 500;
  int64_t backoff_max_ms = 30000;
  /// Only plan: list and compare, download nothing.
  bool dry_run = false;
  /// The cache's manifest, already open (and locked) by the caller, e.g. the pipeline,
  /// which holds it for a whole run and fetches several days at once; it must be the
  /// manifest of `cache`. Null: Fetch opens and locks it itself for the call.
  Manifest* manifest = nullptr;

  // Performance
  int jobs = 8;
  int64_t chunk_bytes = int64_t{8} << 20;

  arrow::Status Validate() const;
};

/// Sets the transfer settings of `options` from `config` (fetch.retries,
/// forbidden_retries, backoff_ms, backoff_max_ms, chunk_bytes, verify_gzip), as
/// `qlake fetch` and the pipeline's fetch stage both use them.
arrow::Status ApplyTransferConfig(const Config& config, FetchOptions* options);

enum class FileStatus : int8_t {
  kDownloaded,
  kRepublished,
  kUnchanged,
  kNotPublished,
  kSkipped,
  kFailed,
  kPlanned,  // dry run: would be downloaded
};
std::string_view FileStatusName(FileStatus s);  // "downloaded", "republished", ...

struct FileReport {
  Date day{};
  std::string key;
  FileStatus status = FileStatus::kFailed;
  /// kFailed: why; kNotPublished / kSkipped: the reason ("not published yet",
  /// "Thanksgiving Day"); else "".
  std::string message;
  ObjectVersion version;                  // what the cache holds now (when known)
  std::optional<ObjectVersion> replaced;  // kRepublished: the previous version
  std::string sha256;
  int64_t bytes = 0;  // bytes transferred in this run
  int attempts = 0;   // download attempts (0 when nothing was downloaded)
  bool resumed = false;
  double seconds = 0;
  /// kNotPublished on a day where that is expected (newest days of --latest/--last).
  bool tolerated = false;
};

struct FetchReport {
  std::string dataset;
  std::string cache;
  std::vector<FileReport> files;  // by day
  double seconds = 0;
  int64_t bytes = 0;

  int64_t Count(FileStatus s) const;
  /// Days whose file was republished in this run (re-ingest them).
  std::vector<Date> RepublishedDays() const;
  /// OK when nothing failed; else IOError/Invalid for a single failure, Cancelled
  /// ("N of M files failed: ...") otherwise, each with a summary of the failures.
  arrow::Status Summary() const;
};

/// Runs the fetch. Errors only for bad options, an unusable cache or a listing that
/// fails (after retries); per-file failures are in the report.
arrow::Result<FetchReport> Fetch(arrow::fs::FileSystem& fs, const FetchOptions& options,
                                 ProgressReporter* progress = nullptr);

/// Days in [from, to] whose current source version (`versions`: from a listing, or the
/// cache manifest) differs from the lake's commit record of that day (size or
/// LastModified), or that are not committed. Days without a source version are left
/// out.
arrow::Result<std::vector<Date>> StaleDays(lake::Lake& lake, const std::string& dataset,
                                           const std::map<Date, ObjectVersion>& versions);

}  // namespace qlake::fetch

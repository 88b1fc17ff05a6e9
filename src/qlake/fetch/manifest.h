// File: qlake/fetch/manifest.h
//
// The manifest of a local flat-file cache: for every key downloaded, the version of the
// object it came from (size, ETag, LastModified) and the SHA-256 of the bytes kept. It is
// how `qlake fetch` knows that a file is unchanged (skip it) or was republished in the
// bucket (download it again and mark the day for re-ingest).
//
//   <cache>/_qlake/manifest.jsonl     one JSON object per line, appended:
//     {"key":"us_stocks_sip/day_aggs_v1/2025/01/2025-01-02.csv.gz","size":123,
//      "etag":"\"9b2c...\"","last_modified":"2025-01-03T15:02:11Z","sha256":"ab12...",
//      "fetched_at":"2026-11-25T15:00:00Z","replaced":{"size":..,"etag":..,
//      "last_modified":..}}
//   <cache>/_qlake/lock               flock()ed by the process using the cache
//
// The last line of a key wins. A torn last line (a crash mid-append) is ignored on
// load; the file it described is then downloaded again, which is safe. Open() rewrites
// the file (temp + rename) when it holds more than twice as many lines as keys.
// "replaced" is present when the entry superseded another version of the key: the key
// was republished.
//
// Thread safety: Get/Put/Entries are safe to call concurrently. One process per cache
// (Open takes the lock; a second Open of the same cache fails with AlreadyExists).

#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <arrow/result.h>
#include <arrow/status.h>

namespace qlake::fetch {

/// One version of one object, as the bucket reports it.
struct ObjectVersion {
  std::string key;
  int64_t size = -1;
  /// As the server sent it, quotes included ("\"9b2c...\""); "" when unknown (a listing
  /// through Arrow has no ETags; HEAD has them).
  std::string etag;
  /// UTC, whole seconds, ISO 8601: "2025-01-03T15:02:11Z".
  std::string last_modified;
};

/// True when `a` and `b` are the same version: same size and LastModified, and the
/// same ETag when both know it. (S3 changes LastModified on every write, so a
/// republished object always differs in it.)
bool SameVersion(const ObjectVersion& a, const ObjectVersion& b);

struct ManifestEntry {
  ObjectVersion version;
  /// Hex SHA-256 of the bytes in the cache.
  std::string sha256;
  std::string fetched_at;  // UTC ISO 8601
  /// The version this entry replaced, when the key was republished.
  std::optional<ObjectVersion> replaced;
};

class Manifest {
 public:
  /// Opens (creating) <cache_dir>/_qlake/, takes its lock and loads the manifest.
  /// AlreadyExists if another process holds the lock; Invalid naming the line if a line
  /// other than the last does not parse.
  static arrow::Result<std::unique_ptr<Manifest>> Open(const std::string& cache_dir);
  ~Manifest();
  Manifest(const Manifest&) = delete;
  Manifest& operator=(const Manifest&) = delete;

  std::optional<ManifestEntry> Get(const std::string& key) const;
  /// Appends `entry` (one line, flushed and fsynced) and makes it the key's entry.
  arrow::Status Put(const ManifestEntry& entry);
  /// Every key's entry, sorted by key.
  std::vector<ManifestEntry> Entries() const;

  const std::string& path() const { return path_; }

  /// The manifest file of a cache, for readers that do not want the lock (ingest).
  static std::string PathFor(const std::string& cache_dir);
  /// Reads a manifest without locking it: every key's entry. A missing file is empty.
  static arrow::Result<std::map<std::string, ManifestEntry>> Read(
      const std::string& cache_dir);

 private:
  Manifest() = default;
  arrow::Status Load();
  arrow::Status Compact();

  std::string dir_, path_;
  int lock_fd_ = -1;
  mutable std::mutex mu_;
  std::map<std::string, ManifestEntry> entries_;
  int64_t lines_ = 0;
};

/// Seconds since the epoch <-> "YYYY-MM-DDTHH:MM:SSZ".
std::string FormatUtc(int64_t unix_seconds);
arrow::Result<int64_t> ParseUtc(const std::string& text);

}  // namespace qlake::fetch

// File: qlake/lake/fs_util.h
//
// Small FileSystem helpers the lake's commit protocol is built from: path joining,
// atomic small-file writes (temp name in the same folder + Move), whole-file reads,
// durability (fsync) on local file systems, and CRC-32 digests of files.
//
// Every function takes an arrow::fs::FileSystem, so it works the same on a local
// folder, on S3 and on arrow::fs::internal::MockFileSystem. Paths are FileSystem paths
// ('/'-separated; absolute OS paths on LocalFileSystem, "bucket/key" on S3).
//
// Durability: on a LocalFileSystem (also seen through SubTreeFileSystem wrappers) the
// Sync* functions call POSIX fsync on the file or directory; on every other file system
// they do nothing, because object stores make an object durable when its PUT returns.
//
// Thread safety: all functions are safe to call concurrently on different paths; the
// FileSystem must itself be thread-safe (Arrow's are).

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <arrow/filesystem/filesystem.h>
#include <arrow/result.h>
#include <arrow/status.h>

namespace qlake::lake {

/// Joins two FileSystem paths with exactly one '/' between them. An empty `a` yields
/// `b`, an empty `b` yields `a`.
std::string JoinPath(std::string_view a, std::string_view b);

/// The parent of a '/'-separated path: "a/b/c" -> "a/b", "/x" -> "/", "c" -> "".
std::string ParentPath(std::string_view path);

/// The last component of a '/'-separated path: "a/b/c.json" -> "c.json".
std::string_view BaseName(std::string_view path);

/// The local OS path behind `path` when `fs` is a LocalFileSystem, possibly wrapped in
/// SubTreeFileSystems; nullopt for any other file system.
std::optional<std::string> LocalPathOf(const arrow::fs::FileSystem& fs,
                                       const std::string& path);

/// Flushes a file's data (POSIX fsync) on local file systems; no-op elsewhere. IOError
/// naming the path if the file cannot be opened or synced.
arrow::Status SyncFile(const arrow::fs::FileSystem& fs, const std::string& path);

/// Makes a directory's entries (creations, renames, deletions) durable on local file
/// systems; no-op elsewhere. File systems that cannot sync directories are tolerated.
arrow::Status SyncDir(const arrow::fs::FileSystem& fs, const std::string& path);

/// Makes everything written to the local file system holding `path` durable with one
/// syncfs(2): file data, inodes and directory entries of every file and folder changed
/// before the call (Linux; elsewhere an fsync of `path` only). One call instead of an
/// fsync per file and folder when a commit publishes thousands of small files. No-op on
/// non-local file systems. IOError naming the path on failure.
arrow::Status SyncFileSystem(const arrow::fs::FileSystem& fs, const std::string& path);

/// Creates folder `dir` and any missing parents, skipping those in `known` (folders this
/// caller already made sure of) and adding the ones it checks or creates. Costs one
/// CreateDir call per folder not in `known` that exists, instead of one per path
/// component for every call. `known` is the caller's cache; clear it if folders may be
/// deleted.
arrow::Status EnsureDir(arrow::fs::FileSystem& fs, const std::string& dir,
                        std::unordered_set<std::string>* known);

/// fs.GetFileInfo(selector) for a folder other writers may be changing. With
/// allow_not_found, Arrow's local listing can still fail with "Cannot list directory"
/// when the folder is created between its failed open and its existence check, or a
/// sub-folder vanishes in between during a recursive walk; ListFiles lists again then (up
/// to 8 times in all, 1 ms apart) and returns the last error only if every try failed.
/// Without allow_not_found it is GetFileInfo.
arrow::Result<std::vector<arrow::fs::FileInfo>> ListFiles(
    arrow::fs::FileSystem& fs, const arrow::fs::FileSelector& selector);

struct AtomicWriteOptions {
  /// fsync the temp file before the rename and the folder after it (local only).
  bool sync = true;
  /// Create the parent folder first (one CreateDir call).
  bool create_parent = true;
};

/// Marker in the names of WriteFileAtomic's temp files: "<name>.tmp-<16 hex>". A file
/// whose name contains it is a leftover of an interrupted write and may be deleted by
/// recovery.
inline constexpr std::string_view kTempMarker = ".tmp-";

/// Replaces (or creates) `path` with `bytes` so that a reader, or a crash at any moment,
/// sees either the old content or the new one, never a torn file: the bytes go to a temp
/// file in the same folder, which is then moved over `path`. (On S3 the final object
/// appears atomically when the copy completes; the source PUT is already atomic.)
/// On failure the temp file is removed if possible and the IOError names `path`.
arrow::Status WriteFileAtomic(arrow::fs::FileSystem& fs, const std::string& path,
                              std::string_view bytes,
                              const AtomicWriteOptions& options = {});

/// Reads a whole (small) file. nullopt if it does not exist; IOError if it is a folder or
/// cannot be read.
arrow::Result<std::optional<std::string>> ReadFileIfExists(arrow::fs::FileSystem& fs,
                                                           const std::string& path);

/// Deletes a file; succeeds if it does not exist.
arrow::Status DeleteFileIfExists(arrow::fs::FileSystem& fs, const std::string& path);

/// Deletes a folder and its contents; succeeds if it does not exist.
arrow::Status DeleteDirIfExists(arrow::fs::FileSystem& fs, const std::string& path);

/// CRC-32 as in gzip and zlib (IEEE polynomial, reflected; Python's zlib.crc32),
/// continued from `crc` (0 for the start). Uses ISA-L.
uint32_t Crc32Update(uint32_t crc, const void* data, int64_t size);

/// "cbf43926": 8 lower-case hex digits.
std::string FormatCrc32(uint32_t crc);
/// Inverse of FormatCrc32; Invalid for anything but 8 hex digits.
arrow::Result<uint32_t> ParseCrc32(std::string_view text);

struct FileDigest {
  int64_t size = 0;
  uint32_t crc32 = 0;
};

/// Reads `path` through `fs` in `buffer_size` chunks and returns its size and CRC-32.
arrow::Result<FileDigest> DigestFile(arrow::fs::FileSystem& fs, const std::string& path,
                                     int64_t buffer_size = int64_t{4} << 20);

/// 16 random hex digits (for temp names and transaction ids).
std::string RandomHex64();

/// The current UTC time as "2025-11-25T12:00:00.123Z".
std::string UtcNowIso8601();

}  // namespace qlake::lake

// File: qlake/pipeline/lock.h
//
// One writer per lake: an advisory lock on a local lock file. The kernel's flock(2)
// decides who holds it (it is released when the holder exits, however it exits); the
// file's content, one JSON line {"pid", "host", "started_at", "command"}, says who that
// is, for the error message of the run that is refused and for `qlake status`.
//
//   ARROW_ASSIGN_OR_RAISE(auto lock, LakeLock::Acquire(path, LockMode::kExclusive,
//   info));
//   ... write the lake ...   // the destructor releases it
//
// Modes: kExclusive for sync and unsharded backfill (one writer, which may also run
// whole-lake recovery); kShared for sharded backfill workers, which also take an
// exclusive lock on their shard's own file so two workers of the same shard refuse to
// run, while different shards run side by side and a sync waits for none of them
// (it is refused while any shard runs).
//
// Stale locks: a holder that died leaves its content behind but no flock. The next
// Acquire gets the flock, finds the old content and reports it (`took_over`), logging
// a warning naming the dead pid. If flock is not supported by the file system (some
// network file systems), the content alone decides: a lock naming a live process on
// this host, or any process on another host, is held; a dead local pid is taken over.
//
// The descriptor is close-on-exec, so alert commands do not inherit the lock.
// A lake on S3 is locked through a file in the local temp folder named after the lake's
// URI: that stops two runs on this machine; across machines use --shard
// (docs/pipeline.md).
//
// Thread safety: a LakeLock is owned by one thread; Acquire is safe from any thread.

#pragma once

#include <memory>
#include <optional>
#include <string>

#include <arrow/result.h>
#include <arrow/status.h>

namespace qlake::pipeline {

enum class LockMode { kExclusive, kShared };

struct LockHolder {
  int64_t pid = 0;
  std::string host;
  std::string started_at;
  std::string command;

  std::string ToJson() const;
  static std::optional<LockHolder> FromJson(const std::string& text);
  std::string Describe() const;  // "pid 123 on host h since 2025-...Z (qlake sync)"
};

/// This process: pid, hostname, now, `command`.
LockHolder CurrentProcess(const std::string& command);

/// Whether `pid` is a running process on this host (kill(pid, 0)).
bool ProcessAlive(int64_t pid);

class LakeLock {
 public:
  /// Takes the lock or fails at once with AlreadyExists (exit code 6) naming the holder
  /// and the lock file. IOError if the file cannot be created.
  static arrow::Result<std::unique_ptr<LakeLock>> Acquire(const std::string& path,
                                                          LockMode mode,
                                                          const LockHolder& me);
  ~LakeLock();
  LakeLock(const LakeLock&) = delete;
  LakeLock& operator=(const LakeLock&) = delete;

  const std::string& path() const { return path_; }
  /// The dead holder whose lock was taken over, if any.
  const std::optional<LockHolder>& took_over() const { return took_over_; }
  /// Releases early (idempotent).
  void Release();

 private:
  LakeLock(std::string path, int fd, LockMode mode);
  std::string path_;
  int fd_ = -1;
  LockMode mode_;
  std::optional<LockHolder> took_over_;
};

/// The lock file of a lake: <lake>/_qlake/lock for a local lake, else
/// $TMPDIR/qlake-lock-<hash of the URI>. `suffix` makes per-shard files ("shard-1-of-4").
std::string LockPathFor(const std::string& lake, const std::string& suffix = "");

/// The current holder of a lock file, if it is held (for status); nullopt if free.
std::optional<LockHolder> ReadHolderIfHeld(const std::string& path);

}  // namespace qlake::pipeline

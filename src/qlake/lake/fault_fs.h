// File: qlake/lake/fault_fs.h
//
// A FileSystem wrapper for tests that fails, or "crashes", at the k-th mutating call, so
// a test can interrupt a commit at every step and check what recovery makes of it. Part
// of the qlake_lake_testing library, not of the lake itself.
//
// Mutating calls, counted from 1 after Arm(): CreateDir, DeleteDir, DeleteDirContents,
// DeleteRootDirContents, DeleteFile, Move, CopyFile, OpenOutputStream, OpenAppendStream,
// and Write, Flush and Close on the streams those return. Reads are never counted and
// never fail.
//
// Modes:
//   kFailOnce        the k-th call returns IOError and has no effect; later calls work
//                    (a transient error: disk full for a moment, an S3 503).
//   kCrash           the k-th call and every later mutating call fail without effect, as
//                    if the process had died there; a Write at the crash point writes
//                    the first half of its bytes first (a torn write).
//   kCrashMidMove    like kCrash, but if the k-th call is a Move it first copies the
//                    source to the destination (S3's copy-then-delete, cut in between).
//
// A "crash" leaves the file system exactly as it was at that point; the test then makes
// a fresh Lake on the underlying file system (as a restarted process would) and runs
// recovery. Heal() ends a crash.
//
// Thread safety: all methods are thread-safe (the counter is atomic).

#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <arrow/filesystem/filesystem.h>

namespace qlake::lake::testing {

class FaultInjectingFileSystem : public arrow::fs::FileSystem {
 public:
  enum class Mode { kFailOnce, kCrash, kCrashMidMove };

  explicit FaultInjectingFileSystem(std::shared_ptr<arrow::fs::FileSystem> base);
  ~FaultInjectingFileSystem() override;

  /// Resets the counter; the `fail_at`-th mutating call from now on fails (0: never).
  void Arm(int64_t fail_at, Mode mode);
  /// Mutating calls seen since the last Arm().
  int64_t mutating_calls() const { return calls_.load(); }
  /// True once a kCrash/kCrashMidMove fault has fired (until Heal or Arm).
  bool crashed() const { return crashed_.load(); }
  /// True once the armed fault has fired.
  bool fired() const { return fired_.load(); }
  void Heal();

  const std::shared_ptr<arrow::fs::FileSystem>& base() const { return base_; }

  std::string type_name() const override { return "fault-injection"; }
  bool Equals(const arrow::fs::FileSystem& other) const override;
  arrow::Result<std::string> NormalizePath(std::string path) override;

  using arrow::fs::FileSystem::CreateDir;
  using arrow::fs::FileSystem::DeleteDirContents;
  using arrow::fs::FileSystem::GetFileInfo;
  using arrow::fs::FileSystem::OpenAppendStream;
  using arrow::fs::FileSystem::OpenInputFile;
  using arrow::fs::FileSystem::OpenInputStream;
  using arrow::fs::FileSystem::OpenOutputStream;

  arrow::Result<arrow::fs::FileInfo> GetFileInfo(const std::string& path) override;
  arrow::Result<arrow::fs::FileInfoVector> GetFileInfo(
      const arrow::fs::FileSelector& select) override;
  arrow::Status CreateDir(const std::string& path, bool recursive) override;
  arrow::Status DeleteDir(const std::string& path) override;
  arrow::Status DeleteDirContents(const std::string& path, bool missing_dir_ok) override;
  arrow::Status DeleteRootDirContents() override;
  arrow::Status DeleteFile(const std::string& path) override;
  arrow::Status Move(const std::string& src, const std::string& dest) override;
  arrow::Status CopyFile(const std::string& src, const std::string& dest) override;
  arrow::Result<std::shared_ptr<arrow::io::InputStream>> OpenInputStream(
      const std::string& path) override;
  arrow::Result<std::shared_ptr<arrow::io::RandomAccessFile>> OpenInputFile(
      const std::string& path) override;
  arrow::Result<std::shared_ptr<arrow::io::OutputStream>> OpenOutputStream(
      const std::string& path,
      const std::shared_ptr<const arrow::KeyValueMetadata>& metadata) override;
  arrow::Result<std::shared_ptr<arrow::io::OutputStream>> OpenAppendStream(
      const std::string& path,
      const std::shared_ptr<const arrow::KeyValueMetadata>& metadata) override;

  /// What a mutating call should do.
  enum class Verdict { kProceed, kFail, kFailAfterPartialEffect };
  /// Counts one mutating call and decides its fate (used by the wrapped streams too).
  Verdict Next();
  arrow::Status InjectedError(const char* what, const std::string& path) const;

 private:
  class FaultyOutputStream;

  std::shared_ptr<arrow::fs::FileSystem> base_;
  std::atomic<int64_t> calls_{0};
  std::atomic<int64_t> fail_at_{0};
  std::atomic<int> mode_{0};
  std::atomic<bool> crashed_{false};
  std::atomic<bool> fired_{false};
};

}  // namespace qlake::lake::testing

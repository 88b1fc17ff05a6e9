// File: qlake/core/status.h
//
// qlake reports every failure as an arrow::Status / arrow::Result<T> (one error type
// across our code and Arrow's). This header adds what the CLI needs on top: the
// documented process exit codes and the mapping from a Status to one of them, plus small
// helpers to build errors that name the thing that failed.
//
// Exit codes (also in docs/cli.md):
//   0  success
//   1  internal error (a bug: please report it with the command line)
//   2  usage error (bad flag, bad argument value)
//   3  invalid input or configuration (bad data, bad config key, wrong header, ...)
//   4  I/O error (file system, network, S3)
//   5  not found (missing file, key, day)
//   6  another qlake run holds the lock (used by the pipeline)
//   7  partial failure: some days failed, the others committed (used by the pipeline)
//   8  out of memory budget (the memory monitor's hard limit)

#pragma once

#include <string>
#include <string_view>

#include <arrow/result.h>
#include <arrow/status.h>

namespace qlake {

enum class ExitCode : int {
  kOk = 0,
  kInternal = 1,
  kUsage = 2,
  kInvalid = 3,
  kIoError = 4,
  kNotFound = 5,
  kLocked = 6,
  kPartial = 7,
  kOutOfMemory = 8,
};

/// Maps a Status to the exit code the CLI returns for it. Codes not listed map to
/// kInternal.
///   Invalid, TypeError, IndexError, SerializationError -> kInvalid
///   IOError -> kIoError; KeyError -> kNotFound; OutOfMemory -> kOutOfMemory
///   Cancelled -> kPartial (used for "some units failed")
///   AlreadyExists -> kLocked (a held lock is the only AlreadyExists we surface)
ExitCode ExitCodeFor(const arrow::Status& status);

/// The one line the CLI prints on stderr for a failed command: "qlake: error: <message>".
/// Secrets registered with the logging module are masked.
std::string FormatCliError(const arrow::Status& status);

}  // namespace qlake

#include "qlake/core/status.h"

#include "qlake/core/logging.h"

namespace qlake {

ExitCode ExitCodeFor(const arrow::Status& status) {
  if (status.ok()) return ExitCode::kOk;
  switch (status.code()) {
    case arrow::StatusCode::Invalid:
    case arrow::StatusCode::TypeError:
    case arrow::StatusCode::IndexError:
    case arrow::StatusCode::SerializationError:
      return ExitCode::kInvalid;
    case arrow::StatusCode::IOError:
      return ExitCode::kIoError;
    case arrow::StatusCode::KeyError:
      return ExitCode::kNotFound;
    case arrow::StatusCode::OutOfMemory:
      return ExitCode::kOutOfMemory;
    case arrow::StatusCode::Cancelled:
      return ExitCode::kPartial;
    case arrow::StatusCode::AlreadyExists:
      return ExitCode::kLocked;
    default:
      return ExitCode::kInternal;
  }
}

std::string FormatCliError(const arrow::Status& status) {
  // status.message() without the "Invalid: " code prefix: the exit code carries the
  // class.
  return MaskSecrets("qlake: error: " + status.message());
}

}  // namespace qlake

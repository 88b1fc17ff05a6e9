#include "qlake/core/status.h"

#include <gtest/gtest.h>

namespace qlake {
namespace {

TEST(StatusTest, ExitCodesFollowTheDocumentedTable) {
  EXPECT_EQ(ExitCodeFor(arrow::Status::OK()), ExitCode::kOk);
  EXPECT_EQ(ExitCodeFor(arrow::Status::Invalid("x")), ExitCode::kInvalid);
  EXPECT_EQ(ExitCodeFor(arrow::Status::IOError("x")), ExitCode::kIoError);
  EXPECT_EQ(ExitCodeFor(arrow::Status::KeyError("x")), ExitCode::kNotFound);
  EXPECT_EQ(ExitCodeFor(arrow::Status::OutOfMemory("x")), ExitCode::kOutOfMemory);
  EXPECT_EQ(ExitCodeFor(arrow::Status::UnknownError("x")), ExitCode::kInternal);
  EXPECT_EQ(ExitCodeFor(arrow::Status::Cancelled("x")), ExitCode::kPartial);
  EXPECT_EQ(ExitCodeFor(arrow::Status::AlreadyExists("x")), ExitCode::kLocked);
}

}  // namespace
}  // namespace qlake

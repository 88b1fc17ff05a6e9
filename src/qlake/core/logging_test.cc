#include "qlake/core/logging.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "qlake/core/status.h"  // FormatCliError

namespace qlake {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(LoggingTest, RegisteredSecretsAreMaskedInErrorsAndText) {
  RegisterSecret("s3cr3t-VALUE-42");
  EXPECT_EQ(MaskSecrets("a s3cr3t-VALUE-42 b s3cr3t-VALUE-42"), "a **** b ****");
  auto st = arrow::Status::IOError("GET failed for key=s3cr3t-VALUE-42");
  std::string line = FormatCliError(st);
  EXPECT_THAT(line, HasSubstr("qlake: error: GET failed"));
  EXPECT_THAT(line, Not(HasSubstr("s3cr3t")));
}

TEST(LoggingTest, ShortStringsAreNotTreatedAsSecrets) {
  RegisterSecret("ab");
  EXPECT_EQ(MaskSecrets("abc ab"), "abc ab");
}

TEST(LoggingTest, LogLinesAreMasked) {
  RegisterSecret("AKIAEXAMPLE1234");
  ASSERT_TRUE(InitLogging({"info", LogFormat::kJson}).ok());
  ::testing::internal::CaptureStderr();
  spdlog::info("using key AKIAEXAMPLE1234 with \"quotes\"");
  spdlog::default_logger()->flush();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, HasSubstr(R"("level":"info")"));
  EXPECT_THAT(err, HasSubstr(R"(using key **** with \"quotes\")"));
  EXPECT_THAT(err, Not(HasSubstr("AKIAEXAMPLE1234")));
}

TEST(LoggingTest, UnknownLevelIsRejected) {
  auto st = InitLogging({"loud", LogFormat::kText});
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("'loud'"));
  EXPECT_TRUE(InitLogging({"off", LogFormat::kText}).ok());
}

TEST(LoggingTest, JsonEscapeHandlesControlCharacters) {
  EXPECT_EQ(JsonEscape("a\"b\\c\nd\x01"), "a\\\"b\\\\c\\nd\\u0001");
}

}  // namespace
}  // namespace qlake

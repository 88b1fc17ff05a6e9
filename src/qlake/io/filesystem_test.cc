#include "qlake/io/filesystem.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "qlake/core/logging.h"

namespace qlake::io {
namespace {

// S3 is initialized by some tests; finalize it before the process exits.
class S3Environment : public ::testing::Environment {
 public:
  void TearDown() override { (void)arrow::fs::EnsureS3Finalized(); }
};
[[maybe_unused]] ::testing::Environment* const kS3Env =
    ::testing::AddGlobalTestEnvironment(new S3Environment);

using ::testing::HasSubstr;

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("qlake_io_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ / ".aws");
    env_["HOME"] = dir_.string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void WriteCredentials(const std::string& body) {
    std::ofstream(dir_ / ".aws" / "credentials") << body;
  }
  EnvLookup Env() const {
    return [env = env_](std::string_view name) -> std::optional<std::string> {
      auto it = env.find(std::string(name));
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
  }
  Config Cfg(std::vector<std::pair<std::string, std::string>> sets = {}) {
    Config c = Config::Defaults();
    for (const auto& [k, v] : sets) {
      EXPECT_TRUE(c.Set(k, v, ConfigSource::kEnv, "QLAKE_TEST").ok());
    }
    return c;
  }

  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(CredentialsTest, ConfigKeysWinOverEverything) {
  env_["AWS_ACCESS_KEY_ID"] = "AKIAENVXXXXX";
  env_["AWS_SECRET_ACCESS_KEY"] = "envsecretvalue";
  WriteCredentials(
      "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = s\n");
  auto c = ResolveS3Credentials(
      Cfg({{"s3.access_key_id", "AKIACFGXXXXX"}, {"s3.secret_access_key", "cfgsecret1"}}),
      Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "AKIACFGXXXXX");
  EXPECT_EQ(c->secret_access_key, "cfgsecret1");
  EXPECT_THAT(c->source, HasSubstr("QLAKE_TEST"));
  EXPECT_EQ(c->source.find("cfgsecret1"), std::string::npos);
  // Registered: masked from now on.
  EXPECT_EQ(MaskSecrets("x cfgsecret1 y"), "x **** y");
}

TEST_F(CredentialsTest, HalfAPairIsAnError) {
  auto c = ResolveS3Credentials(Cfg({{"s3.access_key_id", "AKIAONLYKEY"}}), Env());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("must be set together"));
}

TEST_F(CredentialsTest, NamedProfileFromTheSharedFile) {
  WriteCredentials(
      "# comment\n[default]\naws_access_key_id=AKIADEF\naws_secret_access_key=defsecret\n"
      "\n[massive]\n aws_access_key_id = AKIAMASSIVE \n"
      "aws_secret_access_key = massivesecret\n");
  env_["AWS_ACCESS_KEY_ID"] = "AKIAENVXXXXX";  // a named profile beats the env vars
  env_["AWS_SECRET_ACCESS_KEY"] = "envsecretvalue";
  auto c = ResolveS3Credentials(Cfg({{"s3.profile", "massive"}}), Env());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "AKIAMASSIVE");
  EXPECT_EQ(c->secret_access_key, "massivesecret");
  EXPECT_THAT(c->source, HasSubstr("profile 'massive'"));

  auto missing = ResolveS3Credentials(Cfg({{"s3.profile", "nope"}}), Env());
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("profile 'nope' not found"));
}

TEST_F(CredentialsTest, EnvVarsThenDefaultProfileThenAnonymous) {
  auto none = ResolveS3Credentials(Cfg(), Env());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->anonymous());
  EXPECT_THAT(none->source, HasSubstr("anonymous"));

  WriteCredentials(
      "[default]\naws_access_key_id=AKIADEF\naws_secret_access_key=defsec\n");
  auto def = ResolveS3Credentials(Cfg(), Env());
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def->access_key_id, "AKIADEF");

  env_["AWS_ACCESS_KEY_ID"] = "AKIAENVXXXXX";
  env_["AWS_SECRET_ACCESS_KEY"] = "envsecretvalue";
  env_["AWS_SESSION_TOKEN"] = "envtokenvalue";
  auto env = ResolveS3Credentials(Cfg(), Env());
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->access_key_id, "AKIAENVXXXXX");
  EXPECT_EQ(env->session_token, "envtokenvalue");
  EXPECT_EQ(env->source, "AWS_ACCESS_KEY_ID");

  env_.erase("AWS_ACCESS_KEY_ID");
  env_["AWS_PROFILE"] = "other";
  WriteCredentials("[other]\naws_access_key_id=AKIAOTHER\naws_secret_access_key=osec\n");
  auto other = ResolveS3Credentials(Cfg(), Env());
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->access_key_id, "AKIAOTHER");
}

TEST(OpenFileSystemTest, LocalPathsAndBadS3Uris) {
  Config c = Config::Defaults();
  std::string path;
  auto fs = OpenFileSystem("relative/dir/", c, &path);
  ASSERT_TRUE(fs.ok()) << fs.status();
  EXPECT_EQ((*fs)->type_name(), "local");
  EXPECT_TRUE(std::filesystem::path(path).is_absolute());
  EXPECT_THAT(path, ::testing::EndsWith("relative/dir"));

  auto q = OpenFileSystem("s3://bucket/p?endpoint_override=x", c, &path);
  ASSERT_FALSE(q.ok());
  EXPECT_THAT(q.status().message(), HasSubstr("not supported"));

  ASSERT_TRUE(c.Set("s3.endpoint", "ftp://x", ConfigSource::kFlag, "--set").ok());
  auto bad = OpenFileSystem("s3://bucket", c, &path);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("http or https"));
}

TEST(OpenFileSystemTest, S3OptionsFromConfig) {
  Config c = Config::Defaults();
  ASSERT_TRUE(c.Set("s3.endpoint", "http://127.0.0.1:9/", ConfigSource::kFlag, "t").ok());
  ASSERT_TRUE(c.Set("s3.region", "eu-west-9", ConfigSource::kFlag, "t").ok());
  auto env = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  auto o = MakeS3Options(c, env);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->scheme, "http");
  EXPECT_EQ(o->endpoint_override, "127.0.0.1:9");
  EXPECT_EQ(o->region, "eu-west-9");
  EXPECT_FALSE(o->force_virtual_addressing);  // path-style by default
  EXPECT_DOUBLE_EQ(o->connect_timeout, 10);

  std::string path;
  auto fs = OpenFileSystem("s3://", c, &path);
  ASSERT_TRUE(fs.ok()) << fs.status();
  EXPECT_EQ(path, "flatfiles");  // s3.bucket
  EXPECT_EQ((*fs)->type_name(), "s3");
  auto fs2 = OpenFileSystem("s3://other/prefix/", c, &path);
  ASSERT_TRUE(fs2.ok());
  EXPECT_EQ(path, "other/prefix");
}

TEST(ClassifyErrorTest, ArrowS3Messages) {
  using arrow::Status;
  EXPECT_EQ(ClassifyError(Status::IOError("When reading information for key 'k' in "
                                          "bucket 'b': AWS Error ACCESS_DENIED during "
                                          "HeadObject operation: No response body.")),
            ErrorClass::kForbidden);
  EXPECT_EQ(ClassifyError(Status::IOError(
                "AWS Error NO_SUCH_KEY during GetObject operation: The key does not")),
            ErrorClass::kNotFound);
  EXPECT_EQ(ClassifyError(Status::IOError("AWS Error UNKNOWN (HTTP status 503) during "
                                          "GetObject operation: x")),
            ErrorClass::kTransient);
  EXPECT_EQ(ClassifyError(Status::IOError("AWS Error NETWORK_CONNECTION during "
                                          "GetObject operation: curlCode: 28")),
            ErrorClass::kTransient);
  EXPECT_EQ(ClassifyError(Status::IOError("AWS Error UNKNOWN (HTTP status 400) during "
                                          "GetObject operation: bad")),
            ErrorClass::kPermanent);
  EXPECT_EQ(ClassifyError(Status::IOError("No space left on device")),
            ErrorClass::kPermanent);
}

TEST(BackoffTest, GrowsWithJitterAndIsCapped) {
  for (int i = 0; i < 50; ++i) {
    int64_t a0 = BackoffMs(0, 100, 10000);
    EXPECT_GE(a0, 50);
    EXPECT_LE(a0, 100);
    int64_t a3 = BackoffMs(3, 100, 10000);
    EXPECT_GE(a3, 400);
    EXPECT_LE(a3, 800);
    int64_t big = BackoffMs(30, 100, 10000);
    EXPECT_GE(big, 5000);
    EXPECT_LE(big, 10000);
  }
}

}  // namespace
}  // namespace qlake::io

#include "qlake/core/config.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "qlake/core/logging.h"

namespace qlake {
namespace {

using ::testing::HasSubstr;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("qlake_config_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteFile(const std::string& body) {
    auto p = (dir_ / "config.yaml").string();
    std::ofstream(p) << body;
    return p;
  }

  // Loads with an explicit file (if any) and an explicit environment: no process state.
  arrow::Result<Config> Load(std::optional<std::string> file,
                             std::vector<std::string> env,
                             std::optional<SystemProfile> profile = std::nullopt) {
    ConfigLoadOptions o;
    o.file = std::move(file);
    o.use_default_file = false;
    o.environment = std::move(env);
    o.profile = std::move(profile);
    return Config::Load(o);
  }

  static SystemProfile Profile(uint64_t memory, ProcessingMode mode, int cores = 2) {
    SystemProfile p;
    p.total_memory = memory;
    p.usable_memory = memory;
    p.usable_cores = cores;
    p.mode = mode;
    return p;
  }

  std::filesystem::path dir_;
};

TEST_F(ConfigTest, SchemaIsSortedUniqueAndEveryDefaultParses) {
  const auto& schema = ConfigSchema();
  ASSERT_FALSE(schema.empty());
  for (std::size_t i = 1; i < schema.size(); ++i) {
    EXPECT_LT(schema[i - 1].key, schema[i].key) << "schema must be sorted and unique";
  }
  Config c = Config::Defaults();
  for (const auto& spec : schema) {
    auto e = c.Find(spec.key);
    ASSERT_TRUE(e.ok()) << spec.key;
    // A default that failed to parse is stored as a raw string; typed keys must not be.
    if (spec.type == ConfigType::kInt || spec.type == ConfigType::kBytes) {
      EXPECT_TRUE(c.GetInt(spec.key).ok()) << spec.key;
    } else if (spec.type == ConfigType::kDouble) {
      EXPECT_TRUE(c.GetDouble(spec.key).ok()) << spec.key;
    } else if (spec.type == ConfigType::kBool) {
      EXPECT_TRUE(c.GetBool(spec.key).ok()) << spec.key;
    }
  }
}

TEST_F(ConfigTest, LayersOverrideInOrderAndRecordTheirOrigin) {
  // memory.limit is set by every layer; each later layer must win.
  auto profile = Profile(10ull << 30, ProcessingMode::kStreaming);
  auto only_profile = Load(std::nullopt, {}, profile);
  ASSERT_TRUE(only_profile.ok()) << only_profile.status();
  auto e = *only_profile->Find("memory.limit");
  EXPECT_EQ(e->source, ConfigSource::kProfile);
  EXPECT_EQ(*only_profile->GetInt("memory.limit"),
            static_cast<int64_t>((10ull << 30) / 10 * 8));

  auto file = WriteFile("# comment\nmemory:\n  limit: 3GiB\n");
  auto with_file = Load(file, {}, profile);
  ASSERT_TRUE(with_file.ok()) << with_file.status();
  e = *with_file->Find("memory.limit");
  EXPECT_EQ(e->source, ConfigSource::kFile);
  EXPECT_EQ(e->origin, file + ":3");
  EXPECT_EQ(*with_file->GetInt("memory.limit"), 3ll << 30);

  auto with_env = Load(file, {"QLAKE_MEMORY__LIMIT=2GiB"}, profile);
  ASSERT_TRUE(with_env.ok()) << with_env.status();
  e = *with_env->Find("memory.limit");
  EXPECT_EQ(e->source, ConfigSource::kEnv);
  EXPECT_EQ(e->origin, "QLAKE_MEMORY__LIMIT");
  EXPECT_EQ(*with_env->GetInt("memory.limit"), 2ll << 30);

  ASSERT_TRUE(with_env->Set("memory.limit", "1GiB", ConfigSource::kFlag, "--set").ok());
  EXPECT_EQ(*with_env->GetInt("memory.limit"), 1ll << 30);
  EXPECT_EQ((*with_env->Find("memory.limit"))->source, ConfigSource::kFlag);

  // A lower layer applied later does not override a higher one.
  ASSERT_TRUE(
      with_env->Set("memory.limit", "5GiB", ConfigSource::kFile, "late.yaml:1").ok());
  EXPECT_EQ(*with_env->GetInt("memory.limit"), 1ll << 30);
}

TEST_F(ConfigTest, ProfileLayerFollowsTheProcessingMode) {
  auto s = Load(std::nullopt, {}, Profile(16ull << 30, ProcessingMode::kStreaming));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s->GetInt("ingest.row_group_rows"), 50000);
  EXPECT_EQ(*s->GetString("ingest.compression"), "snappy");
  auto b = Load(std::nullopt, {}, Profile(48ull << 30, ProcessingMode::kBatch));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b->GetInt("ingest.row_group_rows"), 100000);
  EXPECT_EQ(*b->GetString("ingest.compression"), "zstd");
  auto p = Load(std::nullopt, {}, Profile(128ull << 30, ProcessingMode::kParallel, 16));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p->GetInt("ingest.row_group_rows"), 1000000);
  EXPECT_EQ(*p->GetInt("ingest.parallel_files"), 8);
  EXPECT_EQ(*p->GetInt("query.cache_bytes"), 2ll << 30);  // capped at 2 GiB
  EXPECT_EQ(*p->GetInt("fetch.jobs"), 8);
}

TEST_F(ConfigTest, SystemModeOverridesTheProfilesModeButNotUserValues) {
  auto profile = Profile(16ull << 30, ProcessingMode::kStreaming);
  auto c = Load(WriteFile("system:\n  mode: batch\n"), {}, profile);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c->GetString("ingest.compression"), "zstd");
  EXPECT_EQ(*c->GetInt("ingest.row_group_rows"), 100000);
  EXPECT_EQ((*c->Find("ingest.compression"))->origin, "system.mode=batch");

  c = Load(WriteFile("system:\n  mode: parallel\ningest:\n  compression: lz4\n"), {},
           profile);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c->GetString("ingest.compression"), "lz4");  // the user's value wins
  EXPECT_EQ(*c->GetInt("ingest.row_group_rows"), 1000000);

  ASSERT_TRUE(c->Set("system.mode", "streaming", ConfigSource::kFlag, "--mode").ok());
  ASSERT_TRUE(c->ApplyModeDefaults(2).ok());
  EXPECT_EQ(*c->GetInt("ingest.row_group_rows"), 50000);
  EXPECT_EQ(*c->GetString("ingest.compression"), "lz4");
}

TEST_F(ConfigTest, NestedAndDottedKeysAreEquivalent) {
  auto a = Load(WriteFile("ingest:\n  row_group_rows: 20000\n"), {});
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = Load(WriteFile("ingest.row_group_rows: 20000\n"), {});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*a->GetInt("ingest.row_group_rows"), 20000);
  EXPECT_EQ(*b->GetInt("ingest.row_group_rows"), 20000);
}

TEST_F(ConfigTest, UnknownKeyInFileNamesFileLineAndSuggests) {
  auto file = WriteFile("log:\n  level: info\ningest:\n  row_grop_rows: 5\n");
  auto c = Load(file, {});
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.status().IsInvalid());
  EXPECT_THAT(c.status().message(), HasSubstr(file + ":4"));
  EXPECT_THAT(c.status().message(), HasSubstr("ingest.row_grop_rows"));
  EXPECT_THAT(c.status().message(), HasSubstr("did you mean 'ingest.row_group_rows'"));
}

TEST_F(ConfigTest, WrongTypeAndRangeErrorsNameKeyAndLine) {
  auto file = WriteFile("memory:\n  warn_fraction: lots\n");
  auto c = Load(file, {});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(
      c.status().message(),
      HasSubstr(file + ":2: memory.warn_fraction: expected a number, got 'lots'"));

  file = WriteFile("ingest:\n  row_group_rows: 5\n");
  c = Load(file, {});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(),
              HasSubstr(file + ":2: ingest.row_group_rows must be between 1000"));

  file = WriteFile("system:\n  mode: turbo\n");
  c = Load(file, {});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("one of auto,streaming,batch,parallel"));

  file = WriteFile("memory:\n  limit: 12 parsecs\n");
  c = Load(file, {});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("memory.limit: expected a size"));

  file = WriteFile("fetch:\n  jobs: [1, 2]\n");
  c = Load(file, {});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(),
              HasSubstr(file + ":2: fetch.jobs: expected a single value"));
}

TEST_F(ConfigTest, YamlSyntaxErrorNamesLine) {
  auto file = WriteFile("log:\n  level: info\n  format: [json\n");
  auto c = Load(file, {});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr(file + ":"));
  EXPECT_THAT(c.status().message(), HasSubstr("YAML syntax error"));
}

TEST_F(ConfigTest, MissingExplicitFileIsAnError) {
  auto c = Load((dir_ / "nope.yaml").string(), {});
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.status().IsIOError());
  EXPECT_THAT(c.status().message(), HasSubstr("nope.yaml does not exist"));
}

TEST_F(ConfigTest, EnvironmentErrorsNameTheVariable) {
  auto c = Load(std::nullopt, {"QLAKE_INGEST__ROW_GROUP_ROW=5"});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("QLAKE_INGEST__ROW_GROUP_ROW"));
  EXPECT_THAT(c.status().message(), HasSubstr("did you mean 'ingest.row_group_rows'"));

  c = Load(std::nullopt, {"QLAKE_FETCH__JOBS=0"});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(),
              HasSubstr("QLAKE_FETCH__JOBS: fetch.jobs must be between 1 and 256"));

  // Not config variables: no double underscore, or not ours.
  c = Load(std::nullopt,
           {"QLAKE_BIN=/x", "PATH=/bin", "QLAKE_S3_ENDPOINT=http://127.0.0.1:9"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c->GetString("s3.endpoint"), "http://127.0.0.1:9");
  EXPECT_EQ((*c->Find("s3.endpoint"))->origin, "QLAKE_S3_ENDPOINT");
}

TEST_F(ConfigTest, SecretsAreRejectedInFilesAndMaskedEverywhere) {
  auto file = WriteFile("s3:\n  secret_access_key: abcdEFGH1234\n");
  auto c = Load(file, {});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("QLAKE_S3__SECRET_ACCESS_KEY"));
  EXPECT_THAT(c.status().message(), ::testing::Not(HasSubstr("abcdEFGH1234")));

  const std::string secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz";
  const std::string aws_secret = "AWSsecretValue0987654321";
  c = Load(std::nullopt, {"QLAKE_S3__SECRET_ACCESS_KEY=" + secret,
                          "AWS_SECRET_ACCESS_KEY=" + aws_secret});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c->GetString("s3.secret_access_key"), secret);  // usable by the library...
  EXPECT_THAT(c->ShowText(), ::testing::Not(HasSubstr(secret)));  // ...never shown
  EXPECT_THAT(c->ShowJson(), ::testing::Not(HasSubstr(secret)));
  EXPECT_THAT(c->ShowText(), HasSubstr("s3.secret_access_key"));
  EXPECT_EQ(MaskSecrets("key=" + secret + " other=" + aws_secret), "key=**** other=****");
}

TEST_F(ConfigTest, ParseBytesUnitsAndErrors) {
  EXPECT_EQ(*ParseBytes("1000"), 1000);
  EXPECT_EQ(*ParseBytes("512MiB"), 512ll << 20);
  EXPECT_EQ(*ParseBytes("4 GiB"), 4ll << 30);
  EXPECT_EQ(*ParseBytes("1.5G"), 3ll << 29);
  EXPECT_EQ(*ParseBytes("2k"), 2048);
  EXPECT_EQ(*ParseBytes("1TB"), 1ll << 40);
  for (const char* bad : {"", "GiB", "12 parsecs", "1.2.3G", "-5", "1.5", "80%"}) {
    EXPECT_FALSE(ParseBytes(bad).ok()) << bad;
  }
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(3ull << 29), "1.5 GiB");
}

TEST_F(ConfigTest, ShowJsonListsEveryKeyWithSource) {
  auto c = Load(WriteFile("log:\n  format: json\n"), {"QLAKE_FETCH__JOBS=3"});
  ASSERT_TRUE(c.ok()) << c.status();
  std::string j = c->ShowJson();
  EXPECT_THAT(j, HasSubstr("\"fetch.jobs\""));
  EXPECT_THAT(j, HasSubstr("\"origin\": \"QLAKE_FETCH__JOBS\""));
  EXPECT_THAT(j, HasSubstr("\"source\": \"file\""));
  for (const auto& spec : ConfigSchema()) {
    EXPECT_THAT(j, HasSubstr("\"" + std::string(spec.key) + "\"")) << spec.key;
  }
}

}  // namespace
}  // namespace qlake

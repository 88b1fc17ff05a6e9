#include "qlake/fetch/manifest.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "qlake/catalog/datasets.h"
#include "qlake/core/dates.h"

namespace qlake::fetch {
namespace {

using ::testing::HasSubstr;

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("qlake_manifest_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static ManifestEntry Entry(const std::string& key, int64_t size,
                             const std::string& lm) {
    ManifestEntry e;
    e.version = {key, size, "\"etag-" + std::to_string(size) + "\"", lm};
    e.sha256 = std::string(64, 'a');
    e.fetched_at = "2026-11-25T15:00:00Z";
    return e;
  }

  std::filesystem::path dir_;
};

TEST_F(ManifestTest, PutGetReopenLastLineWins) {
  {
    auto m = Manifest::Open(dir_.string());
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_TRUE(
        (*m)->Put(Entry("a/b/2025/01/2025-01-02.csv.gz", 10, "2025-01-03T00:00:00Z"))
            .ok());
    auto e2 = Entry("a/b/2025/01/2025-01-02.csv.gz", 12, "2025-02-01T00:00:00Z");
    e2.replaced = ObjectVersion{"", 10, "\"etag-10\"", "2025-01-03T00:00:00Z"};
    ASSERT_TRUE((*m)->Put(e2).ok());
    ASSERT_TRUE(
        (*m)->Put(Entry("a/b/2025/01/2025-01-03.csv.gz", 7, "2025-01-04T00:00:00Z"))
            .ok());
    // The lock refuses a second user of the cache.
    auto second = Manifest::Open(dir_.string());
    ASSERT_FALSE(second.ok());
    EXPECT_TRUE(second.status().IsAlreadyExists());
  }
  auto m = Manifest::Open(dir_.string());
  ASSERT_TRUE(m.ok()) << m.status();
  auto e = (*m)->Get("a/b/2025/01/2025-01-02.csv.gz");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->version.size, 12);
  ASSERT_TRUE(e->replaced.has_value());
  EXPECT_EQ(e->replaced->size, 10);
  EXPECT_EQ(e->replaced->key, "a/b/2025/01/2025-01-02.csv.gz");
  EXPECT_EQ((*m)->Entries().size(), 2u);
}

TEST_F(ManifestTest, TornLastLineIsIgnoredDamagedMiddleLineIsAnError) {
  {
    auto m = Manifest::Open(dir_.string());
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE((*m)->Put(Entry("k1", 1, "2025-01-03T00:00:00Z")).ok());
  }
  const std::string path = Manifest::PathFor(dir_.string());
  std::ofstream(path, std::ios::app) << "{\"key\":\"k2\",\"si";
  {
    auto m = Manifest::Open(dir_.string());
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_TRUE((*m)->Get("k1").has_value());
    EXPECT_FALSE((*m)->Get("k2").has_value());
  }
  std::ofstream(path, std::ios::app) << "\n{\"key\":\"k3\",\"size\":3}\n";
  auto bad = Manifest::Open(dir_.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("damaged manifest line"));
}

TEST_F(ManifestTest, CompactsWhenMostLinesAreStale) {
  {
    auto m = Manifest::Open(dir_.string());
    ASSERT_TRUE(m.ok());
    for (int i = 0; i < 40; ++i) {
      ASSERT_TRUE((*m)->Put(Entry("k", i + 1, "2025-01-03T00:00:00Z")).ok());
    }
  }
  auto m = Manifest::Open(dir_.string());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->Get("k")->version.size, 40);
  std::ifstream in(Manifest::PathFor(dir_.string()));
  int lines = 0;
  for (std::string l; std::getline(in, l);) ++lines;
  EXPECT_EQ(lines, 1);
}

TEST(VersionTest, SameVersionAndUtc) {
  ObjectVersion a{"k", 10, "\"x\"", "2025-01-03T00:00:00Z"};
  ObjectVersion b = a;
  b.etag = "";  // a listing without ETags still matches
  EXPECT_TRUE(SameVersion(a, b));
  b.etag = "\"y\"";
  EXPECT_FALSE(SameVersion(a, b));
  b = a;
  b.last_modified = "2025-01-03T00:00:01Z";
  EXPECT_FALSE(SameVersion(a, b));
  b = a;
  b.size = 11;
  EXPECT_FALSE(SameVersion(a, b));

  EXPECT_EQ(FormatUtc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatUtc(1759118400), "2025-09-29T04:00:00Z");
  EXPECT_EQ(*ParseUtc("2025-09-29T04:00:00Z"), 1759118400);
  EXPECT_FALSE(ParseUtc("2025-09-29 04:00").ok());
}

TEST(ExpectFileTest, CalendarsPerDataset) {
  using K = catalog::DayExpectation::Kind;
  auto kind = [](std::string_view ds, const char* d) {
    auto spec = *catalog::FindDataset(ds);
    return catalog::ExpectFile(*spec, *ParseDate(d))->kind;
  };
  // 2024-11-28 Thanksgiving (Thu), 2024-11-30 Saturday, 2024-12-01 Sunday.
  EXPECT_EQ(kind("stocks_minute", "2024-11-27"), K::kExpected);
  EXPECT_EQ(kind("stocks_minute", "2024-11-28"), K::kNotExpected);
  EXPECT_EQ(kind("indices_minute", "2024-11-28"), K::kExpected);  // holidays too
  EXPECT_EQ(kind("indices_minute", "2024-11-30"), K::kNotExpected);
  EXPECT_EQ(kind("forex_daily", "2024-12-01"), K::kExpected);  // Sunday
  EXPECT_EQ(kind("forex_daily", "2024-11-30"), K::kNotExpected);
  EXPECT_EQ(kind("crypto_daily", "2024-11-30"), K::kExpected);
  EXPECT_EQ(kind("futures_cme_minute", "2024-11-27"), K::kUnknown);
  EXPECT_EQ(kind("stocks_daily", "2003-09-09"), K::kNotExpected);  // before first file
  auto spec = *catalog::FindDataset("stocks_daily");
  EXPECT_EQ(catalog::ExpectFile(*spec, *ParseDate("2024-11-28"))->reason,
            "Thanksgiving Day");
}

}  // namespace
}  // namespace qlake::fetch

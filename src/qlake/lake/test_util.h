// File: qlake/lake/test_util.h
//
// Helpers shared by the lake's tests: a temporary local folder, gtest macros for
// arrow::Status / Result, and a one-call "commit these files for this day".
// Test-only; not part of the library.

#pragma once

#include <stdlib.h>

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/filesystem/filesystem.h>
#include <arrow/io/interfaces.h>
#include <gtest/gtest.h>

#include "qlake/lake/lake.h"

#define QLAKE_ASSERT_OK(expr)                            \
  do {                                                   \
    const ::arrow::Status _st = ::arrow::ToStatus(expr); \
    ASSERT_TRUE(_st.ok()) << _st.ToString();             \
  } while (false)

#define QLAKE_EXPECT_OK(expr)                            \
  do {                                                   \
    const ::arrow::Status _st = ::arrow::ToStatus(expr); \
    EXPECT_TRUE(_st.ok()) << _st.ToString();             \
  } while (false)

#define QLAKE_CONCAT_INNER(a, b) a##b
#define QLAKE_CONCAT(a, b) QLAKE_CONCAT_INNER(a, b)
#define QLAKE_ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();     \
  lhs = std::move(tmp).ValueUnsafe()
#define QLAKE_ASSERT_OK_AND_ASSIGN(lhs, expr) \
  QLAKE_ASSERT_OK_AND_ASSIGN_IMPL(QLAKE_CONCAT(_res_, __LINE__), lhs, expr)

namespace qlake::lake::testing {

/// A fresh local folder, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "qlake-lake-test-XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    path_ = made != nullptr ? std::string(made) : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline Date D(const char* text) { return *ParseDate(text); }

/// A data file to stage: path relative to the dataset folder, and its bytes.
struct TestFile {
  std::string path;
  std::string content;
};

/// Stages `files` (and a quarantine file if given) for (dataset, day) and commits them
/// with row counts that reconcile (one row per byte of content, for simplicity).
inline arrow::Result<CommitRecord> CommitFiles(
    Lake& lake, const std::string& dataset, Date day, const std::vector<TestFile>& files,
    std::optional<std::string> quarantine = std::nullopt,
    const std::string& source_key = "src") {
  ARROW_ASSIGN_OR_RAISE(auto txn, lake.BeginDay(dataset, day));
  CommitInfo info;
  info.source.key = source_key;
  info.source.etag = "\"etag-" + source_key + "\"";
  info.source.size = 1234;
  info.source.last_modified = "2025-01-03T10:00:00Z";
  for (const auto& f : files) {
    ARROW_ASSIGN_OR_RAISE(auto out, txn->OpenFile(f.path));
    // Two writes, to exercise incremental checksums.
    const std::size_t half = f.content.size() / 2;
    ARROW_RETURN_NOT_OK(out->Write(f.content.data(), static_cast<int64_t>(half)));
    ARROW_RETURN_NOT_OK(out->Write(f.content.data() + half,
                                   static_cast<int64_t>(f.content.size() - half)));
    ARROW_RETURN_NOT_OK(out->Close());
    info.file_rows[f.path] = static_cast<int64_t>(f.content.size());
    info.rows.written += static_cast<int64_t>(f.content.size());
  }
  if (quarantine) {
    ARROW_ASSIGN_OR_RAISE(auto out, txn->OpenQuarantineFile());
    ARROW_RETURN_NOT_OK(
        out->Write(quarantine->data(), static_cast<int64_t>(quarantine->size())));
    ARROW_RETURN_NOT_OK(out->Close());
    info.rows.quarantined = 3;
  }
  info.rows.filtered = 2;
  info.rows.read = info.rows.written + info.rows.quarantined + info.rows.filtered;
  info.validation = {{"null_prices", 0}, {"duplicates", 1}};
  return txn->Commit(info);
}

/// Every file below `dir` (recursive), as paths relative to `dir`.
inline arrow::Result<std::set<std::string>> ListFilesUnder(arrow::fs::FileSystem& fs,
                                                           const std::string& dir) {
  arrow::fs::FileSelector selector;
  selector.base_dir = dir;
  selector.allow_not_found = true;
  selector.recursive = true;
  ARROW_ASSIGN_OR_RAISE(auto infos, fs.GetFileInfo(selector));
  std::set<std::string> out;
  std::string prefix = dir.empty() ? "" : dir + "/";
  for (const auto& info : infos) {
    if (info.type() != arrow::fs::FileType::File) continue;
    std::string p = info.path();
    if (!prefix.empty() && p.rfind(prefix, 0) == 0) p = p.substr(prefix.size());
    out.insert(p);
  }
  return out;
}

inline arrow::Result<std::string> ReadAll(arrow::fs::FileSystem& fs,
                                          const std::string& path) {
  ARROW_ASSIGN_OR_RAISE(auto in, fs.OpenInputStream(path));
  ARROW_ASSIGN_OR_RAISE(auto info, fs.GetFileInfo(path));
  ARROW_ASSIGN_OR_RAISE(auto buf, in->Read(info.size() + 1));
  return buf->ToString();
}

inline arrow::Status WriteAll(arrow::fs::FileSystem& fs, const std::string& path,
                              std::string_view bytes) {
  ARROW_ASSIGN_OR_RAISE(auto out, fs.OpenOutputStream(path));
  ARROW_RETURN_NOT_OK(out->Write(bytes.data(), static_cast<int64_t>(bytes.size())));
  return out->Close();
}

}  // namespace qlake::lake::testing

namespace qlake::lake::testing {

/// Checks the lake-wide invariants the commit protocol promises for `dataset`:
///  * the .parquet files below the dataset folder are exactly the files of its commit
///    records, and the quarantine files exactly the records' quarantine files;
///  * every record verifies (existence, size, CRC-32);
///  * nothing is left in the staging area and no temp file anywhere;
///  * the stored watermark equals the one derived from the records.
inline void ExpectLakeConsistent(Lake& lake, const std::string& dataset,
                                 const std::string& context = "") {
  auto& fs = *lake.filesystem();
  auto records = lake.ListCommits(dataset);
  ASSERT_TRUE(records.ok()) << context << ": " << records.status().ToString();
  std::set<std::string> expected_data;
  std::set<std::string> expected_quarantine;
  for (const auto& rec : *records) {
    for (const auto& f : rec.files) expected_data.insert(f.path);
    if (rec.quarantine) expected_quarantine.insert(rec.quarantine->path);
    auto st = lake.Verify(dataset, rec.day, VerifyOptions{/*checksums=*/true});
    EXPECT_TRUE(st.ok()) << context << ": " << st.ToString();
  }
  auto data = ListFilesUnder(fs, lake.PathOf(dataset));
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(*data, expected_data) << context;
  auto quarantine =
      ListFilesUnder(fs, lake.PathOf(std::string(kQuarantineDir) + "/" + dataset));
  ASSERT_TRUE(quarantine.ok());
  std::set<std::string> quarantine_paths;
  for (const auto& q : *quarantine) {
    quarantine_paths.insert(std::string(kQuarantineDir) + "/" + dataset + "/" + q);
  }
  EXPECT_EQ(quarantine_paths, expected_quarantine) << context;
  auto staged = ListFilesUnder(fs, lake.PathOf(kStagingDir));
  ASSERT_TRUE(staged.ok());
  EXPECT_TRUE(staged->empty()) << context << ": staged leftover " << *staged->begin();
  auto everything = ListFilesUnder(fs, lake.base_path());
  ASSERT_TRUE(everything.ok());
  for (const auto& f : *everything) {
    EXPECT_EQ(f.find(".tmp"), std::string::npos) << context << ": leftover " << f;
  }
  auto days = lake.ListCommittedDays(dataset);
  ASSERT_TRUE(days.ok());
  auto stored = lake.GetWatermark(dataset);
  ASSERT_TRUE(stored.ok()) << context << ": " << stored.status().ToString();
  EXPECT_EQ(*stored, ComputeWatermark(dataset, CalendarForDataset(dataset), *days))
      << context;
}

}  // namespace qlake::lake::testing

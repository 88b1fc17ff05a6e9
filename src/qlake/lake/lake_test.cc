#include "qlake/lake/lake.h"

#include <thread>

#include <arrow/array/builder_primitive.h>
#include <arrow/filesystem/localfs.h>
#include <arrow/filesystem/mockfs.h>
#include <arrow/memory_pool.h>
#include <arrow/table.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>
#include <spdlog/spdlog.h>

#include "qlake/lake/fault_fs.h"
#include "qlake/lake/fs_util.h"
#include "qlake/lake/test_util.h"

namespace qlake::lake {
namespace {

using testing::CommitFiles;
using testing::D;
using testing::ExpectLakeConsistent;
using testing::FaultInjectingFileSystem;
using ::testing::HasSubstr;
using testing::ListFilesUnder;
using testing::ReadAll;
using testing::TempDir;
using testing::TestFile;
using testing::WriteAll;

// Error paths log warnings by design; keep test output readable.
class QuietLogs : public ::testing::Environment {
 public:
  void SetUp() override { spdlog::set_level(spdlog::level::off); }
};
const auto* const kQuietLogs = ::testing::AddGlobalTestEnvironment(new QuietLogs);

constexpr const char* kDs = "stocks_minute";
const TestFile kMain{"year=2025/month=01/2025-01-03.parquet", "PAR1-main-v1-PAR1"};
const TestFile kSymA{"symbol=A/year=2025/month=01/2025-01-03.parquet", "PAR1-a-PAR1"};
const TestFile kSymB{"symbol=B/year=2025/month=01/2025-01-03.parquet", "PAR1-b-PAR1"};
const TestFile kMain2{"year=2025/month=01/2025-01-03.parquet",
                      "PAR1-main-v2-longer-PAR1"};

enum class Backend { kLocal, kMock };

class LakeTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kLocal) {
      base_fs_ = std::make_shared<arrow::fs::LocalFileSystem>();
      root_ = tmp_.path() + "/lake";
    } else {
      base_fs_ =
          std::make_shared<arrow::fs::internal::MockFileSystem>(arrow::fs::TimePoint{});
      root_ = "lake";
    }
    QLAKE_ASSERT_OK_AND_ASSIGN(lake_, Lake::Make(base_fs_, root_));
  }

  std::string P(const std::string& relative) const { return JoinPath(root_, relative); }
  std::string Data(const std::string& relative) const {
    return P(std::string(kDs) + "/" + relative);
  }
  std::set<std::string> DataFiles() {
    auto files = ListFilesUnder(*base_fs_, P(kDs));
    EXPECT_TRUE(files.ok());
    return files.ok() ? *files : std::set<std::string>{};
  }

  TempDir tmp_;
  std::shared_ptr<arrow::fs::FileSystem> base_fs_;
  std::string root_;
  std::shared_ptr<Lake> lake_;
};

INSTANTIATE_TEST_SUITE_P(Backends, LakeTest,
                         ::testing::Values(Backend::kLocal, Backend::kMock),
                         [](const auto& param_info) {
                           return param_info.param == Backend::kLocal ? "Local" : "Mock";
                         });

TEST_P(LakeTest, GroupedDatasetsLiveInTheirGroupFolder) {
  const std::string ds = "features/stocks_daily";
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain}).status());
  QLAKE_ASSERT_OK_AND_ASSIGN(auto rec, CommitFiles(*lake_, ds, D("2025-01-03"), {kMain}));
  EXPECT_EQ(rec.dataset, ds);
  QLAKE_ASSERT_OK_AND_ASSIGN(auto content, ReadAll(*base_fs_, P(ds + "/" + kMain.path)));
  EXPECT_EQ(content, kMain.content);
  QLAKE_ASSERT_OK_AND_ASSIGN(auto datasets, lake_->ListDatasets());
  EXPECT_EQ(datasets, (std::vector<std::string>{ds, std::string(kDs)}));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto days, lake_->ListCommittedDays(ds));
  EXPECT_EQ(days, std::vector<Date>{D("2025-01-03")});
  QLAKE_ASSERT_OK_AND_ASSIGN(auto report, lake_->RecoverAll());
  EXPECT_TRUE(report.empty());
  QLAKE_EXPECT_OK(lake_->Verify(ds, D("2025-01-03"), VerifyOptions{true}));
  EXPECT_TRUE(lake_->BeginDay("features", D("2025-01-03")).status().IsInvalid());
}

TEST_P(LakeTest, CommitThenReadBack) {
  QLAKE_ASSERT_OK_AND_ASSIGN(
      auto rec, CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain, kSymA}, "Q"));
  EXPECT_EQ(rec.dataset, kDs);
  EXPECT_EQ(rec.day, D("2025-01-03"));
  ASSERT_EQ(rec.files.size(), 2u);
  // Sorted by path, with size, rows and CRC-32 of the bytes written.
  EXPECT_EQ(rec.files[0].path, kSymA.path);
  EXPECT_EQ(rec.files[1].path, kMain.path);
  EXPECT_EQ(rec.files[1].size, static_cast<int64_t>(kMain.content.size()));
  EXPECT_EQ(rec.files[1].rows, static_cast<int64_t>(kMain.content.size()));
  EXPECT_EQ(rec.files[1].crc32, Crc32Update(0, kMain.content.data(),
                                            static_cast<int64_t>(kMain.content.size())));
  ASSERT_TRUE(rec.quarantine.has_value());
  EXPECT_EQ(rec.quarantine->path, "_quarantine/stocks_minute/2025-01-03.parquet");
  EXPECT_EQ(rec.quarantine->rows, 3);
  EXPECT_EQ(rec.rows.read, rec.rows.written + 3 + 2);
  EXPECT_EQ(rec.source.key, "src");
  EXPECT_EQ(rec.validation["duplicates"], 1);
  EXPECT_FALSE(rec.txn.empty());
  EXPECT_FALSE(rec.qlake_version.empty());

  QLAKE_ASSERT_OK_AND_ASSIGN(auto content, ReadAll(*base_fs_, Data(kMain.path)));
  EXPECT_EQ(content, kMain.content);
  QLAKE_ASSERT_OK_AND_ASSIGN(auto q, ReadAll(*base_fs_, P(rec.quarantine->path)));
  EXPECT_EQ(q, "Q");

  QLAKE_ASSERT_OK_AND_ASSIGN(auto got, lake_->GetCommit(kDs, D("2025-01-03")));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, rec);
  QLAKE_ASSERT_OK_AND_ASSIGN(auto none, lake_->GetCommit(kDs, D("2025-01-02")));
  EXPECT_FALSE(none.has_value());
  QLAKE_ASSERT_OK_AND_ASSIGN(auto all, lake_->ListCommits(kDs));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], rec);
  QLAKE_ASSERT_OK_AND_ASSIGN(auto datasets, lake_->ListDatasets());
  EXPECT_EQ(datasets, std::vector<std::string>{kDs});
  QLAKE_EXPECT_OK(lake_->Verify(kDs, D("2025-01-03"), VerifyOptions{true}));

  // The on-disk layout promised in lake.h.
  QLAKE_ASSERT_OK_AND_ASSIGN(auto everything, ListFilesUnder(*base_fs_, root_));
  EXPECT_EQ(everything, (std::set<std::string>{
                            "_qlake/stocks_minute/commits/2025-01-03.json",
                            "_qlake/stocks_minute/history.jsonl",
                            "_qlake/stocks_minute/watermark.json",
                            "_qlake/stocks_minute/watermark.json.bak",
                            "_quarantine/stocks_minute/2025-01-03.parquet",
                            "stocks_minute/" + kSymA.path,
                            "stocks_minute/" + kMain.path,
                        }));
  ExpectLakeConsistent(*lake_, kDs);
}

TEST_P(LakeTest, TheParquetWriterWritesThroughTheStagingStream) {
  auto schema = arrow::schema({arrow::field("x", arrow::int64())});
  arrow::Int64Builder builder;
  QLAKE_ASSERT_OK(builder.AppendValues({1, 2, 3, 4, 5}));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto column, builder.Finish());
  auto table = arrow::Table::Make(schema, {column});

  QLAKE_ASSERT_OK_AND_ASSIGN(auto txn, lake_->BeginDay(kDs, D("2025-01-03")));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto out, txn->OpenFile(kMain.path));
  QLAKE_ASSERT_OK(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out,
                                             /*chunk_size=*/2));
  // Nothing is visible before the commit.
  QLAKE_ASSERT_OK_AND_ASSIGN(auto info, base_fs_->GetFileInfo(Data(kMain.path)));
  EXPECT_EQ(info.type(), arrow::fs::FileType::NotFound);
  CommitInfo commit;
  commit.rows = {5, 5, 0, 0};
  QLAKE_ASSERT_OK_AND_ASSIGN(auto rec, txn->Commit(commit));
  ASSERT_EQ(rec.files.size(), 1u);
  EXPECT_EQ(rec.files[0].rows, 5);

  QLAKE_ASSERT_OK_AND_ASSIGN(auto file, base_fs_->OpenInputFile(Data(kMain.path)));
  QLAKE_ASSERT_OK_AND_ASSIGN(
      auto reader, parquet::arrow::OpenFile(file, arrow::default_memory_pool()));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto back, reader->ReadTable());
  EXPECT_TRUE(back->Equals(*table));
  EXPECT_EQ(reader->num_row_groups(), 3);
  QLAKE_ASSERT_OK_AND_ASSIGN(auto size, file->GetSize());
  EXPECT_EQ(size, rec.files[0].size);
  ExpectLakeConsistent(*lake_, kDs);
}

TEST_P(LakeTest, RecommitWithADifferentFileSetRemovesStaleFiles) {
  QLAKE_ASSERT_OK_AND_ASSIGN(
      auto first, CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain, kSymA}, "Q"));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto second,
                             CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain2, kSymB}));
  EXPECT_NE(first.txn, second.txn);
  EXPECT_EQ(DataFiles(), (std::set<std::string>{kMain.path, kSymB.path}));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto content, ReadAll(*base_fs_, Data(kMain.path)));
  EXPECT_EQ(content, kMain2.content);
  // The old quarantine file went with the old commit.
  QLAKE_ASSERT_OK_AND_ASSIGN(auto q, ListFilesUnder(*base_fs_, P("_quarantine")));
  EXPECT_TRUE(q.empty());
  QLAKE_ASSERT_OK_AND_ASSIGN(auto got, lake_->GetCommit(kDs, D("2025-01-03")));
  EXPECT_EQ(*got, second);
  // Both commits are in the history log, oldest first.
  QLAKE_ASSERT_OK_AND_ASSIGN(auto history,
                             ReadAll(*base_fs_, P("_qlake/stocks_minute/history.jsonl")));
  EXPECT_EQ(std::count(history.begin(), history.end(), '\n'), 2);
  EXPECT_LT(history.find(first.txn), history.find(second.txn));
  ExpectLakeConsistent(*lake_, kDs);

  // Same input again: same files, same bytes (idempotent re-ingest).
  QLAKE_ASSERT_OK_AND_ASSIGN(auto third,
                             CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain2, kSymB}));
  EXPECT_EQ(third.files, second.files);
  ExpectLakeConsistent(*lake_, kDs);
}

TEST_P(LakeTest, AnEmptyDayIsACommitToo) {
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain}));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto txn, lake_->BeginDay(kDs, D("2025-01-03")));
  CommitInfo info;
  info.rows = {5, 0, 0, 5};  // everything filtered
  QLAKE_ASSERT_OK_AND_ASSIGN(auto rec, txn->Commit(info));
  EXPECT_TRUE(rec.files.empty());
  EXPECT_TRUE(DataFiles().empty());
  ExpectLakeConsistent(*lake_, kDs);
}

TEST_P(LakeTest, AbortAndDestructorLeaveThePreviousState) {
  QLAKE_ASSERT_OK_AND_ASSIGN(auto first,
                             CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain}));
  {
    QLAKE_ASSERT_OK_AND_ASSIGN(auto txn, lake_->BeginDay(kDs, D("2025-01-03")));
    QLAKE_ASSERT_OK_AND_ASSIGN(auto out, txn->OpenFile(kSymA.path));
    QLAKE_ASSERT_OK(out->Write("partial", 7));
    QLAKE_ASSERT_OK(txn->Abort());
    QLAKE_ASSERT_OK(txn->Abort());  // idempotent
    EXPECT_TRUE(txn->Commit(CommitInfo{}).status().IsInvalid());
    EXPECT_TRUE(out->Write("more", 4).IsInvalid());  // sealed
  }
  {
    QLAKE_ASSERT_OK_AND_ASSIGN(auto txn, lake_->BeginDay(kDs, D("2025-01-03")));
    QLAKE_ASSERT_OK_AND_ASSIGN(auto out, txn->OpenFile(kMain.path));
    QLAKE_ASSERT_OK(out->Write("overwrite?", 10));
    // Destroyed without Commit or Abort.
  }
  QLAKE_ASSERT_OK_AND_ASSIGN(auto got, lake_->GetCommit(kDs, D("2025-01-03")));
  EXPECT_EQ(*got, first);
  QLAKE_ASSERT_OK_AND_ASSIGN(auto content, ReadAll(*base_fs_, Data(kMain.path)));
  EXPECT_EQ(content, kMain.content);
  ExpectLakeConsistent(*lake_, kDs);
}

TEST_P(LakeTest, CountsThatDoNotReconcileAreInvalidAndChangeNothing) {
  QLAKE_ASSERT_OK_AND_ASSIGN(auto first,
                             CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain}));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto txn, lake_->BeginDay(kDs, D("2025-01-03")));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto out, txn->OpenFile(kMain2.path));
  QLAKE_ASSERT_OK(out->Write(kMain2.content.data(), 5));
  QLAKE_ASSERT_OK(out->Close());
  CommitInfo info;
  info.rows = {100, 90, 5, 4};  // 99 != 100
  auto result = txn->Commit(info);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().IsInvalid());
  EXPECT_THAT(result.status().message(), HasSubstr("stocks_minute 2025-01-03"));
  EXPECT_THAT(result.status().message(), HasSubstr("do not reconcile"));
  EXPECT_THAT(result.status().message(),
              HasSubstr("previous state of the day is unchanged"));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto got, lake_->GetCommit(kDs, D("2025-01-03")));
  EXPECT_EQ(*got, first);
  ExpectLakeConsistent(*lake_, kDs);
}

TEST_P(LakeTest, CommitInfoIsChecked) {
  auto commit_with = [&](const std::function<void(CommitInfo&)>& edit) {
    auto txn = lake_->BeginDay(kDs, D("2025-01-06"));
    EXPECT_TRUE(txn.ok());
    for (const auto& f : {kMain, kSymA}) {
      auto out = (*txn)->OpenFile(f.path);
      EXPECT_TRUE(out.ok());
      EXPECT_TRUE((*out)->Write(f.content.data(), 3).ok());
    }
    CommitInfo info;
    info.rows = {10, 10, 0, 0};
    info.file_rows = {{kMain.path, 4}, {kSymA.path, 6}};
    edit(info);
    return (*txn)->Commit(info).status();
  };
  EXPECT_THAT(commit_with([&](CommitInfo& i) { i.file_rows[kMain.path] = 5; }).message(),
              HasSubstr("sum to 11"));
  EXPECT_THAT(
      commit_with([&](CommitInfo& i) { i.file_rows.erase(kSymA.path); }).message(),
      HasSubstr("names 1 files but 2"));
  EXPECT_THAT(
      commit_with([&](CommitInfo& i) { i.file_rows["nope.parquet"] = 0; }).message(),
      HasSubstr("'nope.parquet'"));
  EXPECT_THAT(commit_with([&](CommitInfo& i) { i.validation = "text"; }).message(),
              HasSubstr("JSON object"));
  {
    QLAKE_ASSERT_OK_AND_ASSIGN(auto txn, lake_->BeginDay(kDs, D("2025-01-06")));
    CommitInfo info;
    info.rows = {3, 3, 0, 0};
    EXPECT_THAT(txn->Commit(info).status().message(), HasSubstr("no data file"));
  }
  QLAKE_EXPECT_OK(commit_with([](CommitInfo&) {}));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto rec, lake_->GetCommit(kDs, D("2025-01-06")));
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->files[0].rows + rec->files[1].rows, 10);
  ExpectLakeConsistent(*lake_, kDs);
}

TEST_P(LakeTest, BadPathsAndDuplicatesAreRejected) {
  QLAKE_ASSERT_OK_AND_ASSIGN(auto txn, lake_->BeginDay(kDs, D("2025-01-03")));
  for (const char* bad : {"../escape.parquet", "/abs.parquet", "a/../../b.parquet",
                          "_staging/x.parquet", "x.csv", "a//b.parquet"}) {
    auto out = txn->OpenFile(bad);
    ASSERT_FALSE(out.ok()) << bad;
    EXPECT_TRUE(out.status().IsInvalid()) << bad;
    EXPECT_THAT(out.status().message(), HasSubstr("stocks_minute 2025-01-03")) << bad;
  }
  QLAKE_ASSERT_OK(txn->OpenFile(kMain.path));
  EXPECT_THAT(txn->OpenFile(kMain.path).status().message(), HasSubstr("already opened"));
  QLAKE_ASSERT_OK(txn->OpenQuarantineFile());
  EXPECT_TRUE(txn->OpenQuarantineFile().status().IsInvalid());
  EXPECT_TRUE(lake_->BeginDay("Bad-Name", D("2025-01-03")).status().IsInvalid());
  EXPECT_TRUE(lake_->BeginDay("_qlake", D("2025-01-03")).status().IsInvalid());
}

TEST_P(LakeTest, OneOpenTransactionPerDayPerProcess) {
  QLAKE_ASSERT_OK_AND_ASSIGN(auto txn, lake_->BeginDay(kDs, D("2025-01-03")));
  auto second = lake_->BeginDay(kDs, D("2025-01-03"));
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("another transaction"));
  EXPECT_TRUE(lake_->RecoverDay(kDs, D("2025-01-03")).status().IsInvalid());
  QLAKE_ASSERT_OK(lake_->BeginDay(kDs, D("2025-01-06")));  // other days are free
  QLAKE_ASSERT_OK(txn->Abort());
  QLAKE_ASSERT_OK(lake_->BeginDay(kDs, D("2025-01-03")));  // released
}

TEST_P(LakeTest, ForeignOverwriteIsRefused) {
  // A layout bug: two days claim the same file name.
  const TestFile shared{"month=2025-01/all.parquet", "day-one"};
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-02"), {shared}));
  auto second = CommitFiles(*lake_, kDs, D("2025-01-03"), {{shared.path, "day-two"}});
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(second.status().IsInvalid());
  EXPECT_THAT(second.status().message(), HasSubstr("refusing to overwrite"));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto content, ReadAll(*base_fs_, Data(shared.path)));
  EXPECT_EQ(content, "day-one");
  ExpectLakeConsistent(*lake_, kDs);
}

TEST_P(LakeTest, VerifyFindsMissingResizedAndCorruptedFiles) {
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain, kSymA, kSymB}));
  EXPECT_TRUE(lake_->Verify(kDs, D("2025-01-02")).IsKeyError());
  QLAKE_ASSERT_OK(base_fs_->DeleteFile(Data(kSymA.path)));
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, Data(kSymB.path), "short"));
  std::string flipped = kMain.content;
  flipped[5] ^= 0x20;  // same size, different bytes
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, Data(kMain.path), flipped));
  auto quick = lake_->Verify(kDs, D("2025-01-03"));
  EXPECT_TRUE(quick.IsInvalid());
  EXPECT_THAT(quick.message(), HasSubstr("2 problem(s)"));
  EXPECT_THAT(quick.message(), HasSubstr(kSymA.path + "' is missing"));
  EXPECT_THAT(quick.message(), HasSubstr("has 5 bytes"));
  auto full = lake_->Verify(kDs, D("2025-01-03"), VerifyOptions{true});
  EXPECT_THAT(full.message(), HasSubstr("3 problem(s)"));
  EXPECT_THAT(full.message(), HasSubstr("CRC-32"));
  EXPECT_THAT(full.message(), HasSubstr("Re-ingest the day"));
}

TEST_P(LakeTest, ADamagedRecordIsReportedWithAdvice) {
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain}));
  const std::string rec_path = P(Lake::CommitRecordPath(kDs, D("2025-01-03")));
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, rec_path, "{\"format\": \"qlake.co"));
  auto got = lake_->GetCommit(kDs, D("2025-01-03"));
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.status().IsInvalid());
  EXPECT_THAT(got.status().message(), HasSubstr(rec_path));
  EXPECT_THAT(got.status().message(), HasSubstr("re-ingest the day"));
  // A re-commit cannot know which files the damaged record had, so it refuses too.
  auto again = CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain});
  EXPECT_FALSE(again.ok());
  // A record under another day's name is caught as well.
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-06"),
                              {{"year=2025/month=01/2025-01-06.parquet", "x"}}));
  QLAKE_ASSERT_OK_AND_ASSIGN(
      auto text, ReadAll(*base_fs_, P(Lake::CommitRecordPath(kDs, D("2025-01-06")))));
  QLAKE_ASSERT_OK(
      WriteAll(*base_fs_, P(Lake::CommitRecordPath(kDs, D("2025-01-07"))), text));
  EXPECT_THAT(lake_->GetCommit(kDs, D("2025-01-07")).status().message(),
              HasSubstr("record is for stocks_minute 2025-01-06"));
}

TEST_P(LakeTest, AReadOnlyLakeFailsTheDayWithAClearIOError) {
  QLAKE_ASSERT_OK_AND_ASSIGN(auto first,
                             CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain}));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto before, ListFilesUnder(*base_fs_, root_));
  auto faulty = std::make_shared<FaultInjectingFileSystem>(base_fs_);
  faulty->Arm(1, FaultInjectingFileSystem::Mode::kCrash);  // every mutation fails
  LakeOptions options;
  options.create_root = false;
  QLAKE_ASSERT_OK_AND_ASSIGN(auto ro, Lake::Make(faulty, root_, options));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto txn, ro->BeginDay(kDs, D("2025-01-03")));
  auto out = txn->OpenFile(kMain2.path);
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(out.status().IsIOError());
  EXPECT_THAT(out.status().message(), HasSubstr("stocks_minute 2025-01-03"));
  EXPECT_THAT(out.status().message(), HasSubstr(kMain2.path));
  EXPECT_THAT(out.status().message(), HasSubstr("writable"));
  QLAKE_EXPECT_OK(txn->Abort());  // nothing was staged, nothing to clean up
  txn.reset();
  // Reading still works on the read-only lake.
  QLAKE_ASSERT_OK_AND_ASSIGN(auto got, ro->GetCommit(kDs, D("2025-01-03")));
  EXPECT_EQ(*got, first);
  QLAKE_ASSERT_OK(ro->GetWatermark(kDs));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto after, ListFilesUnder(*base_fs_, root_));
  EXPECT_EQ(after, before);
}

TEST_P(LakeTest, AWriteErrorFailsTheCommitAndKeepsThePreviousDay) {
  QLAKE_ASSERT_OK_AND_ASSIGN(auto first,
                             CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain}));
  auto faulty = std::make_shared<FaultInjectingFileSystem>(base_fs_);
  QLAKE_ASSERT_OK_AND_ASSIGN(auto lake, Lake::Make(faulty, root_));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto txn, lake->BeginDay(kDs, D("2025-01-03")));
  // CreateDir (staging), OpenOutputStream, then the first write to the file fails (disk
  // full). Staged files are buffered, so the error surfaces at the latest when the
  // stream is closed.
  faulty->Arm(3, FaultInjectingFileSystem::Mode::kFailOnce);
  QLAKE_ASSERT_OK_AND_ASSIGN(auto out, txn->OpenFile(kMain2.path));
  auto st = out->Write(kMain2.content.data(), 4);
  if (st.ok()) st = out->Close();
  ASSERT_TRUE(st.IsIOError()) << st.ToString();
  // A writer that ignores the error and commits anyway is stopped.
  CommitInfo info;
  info.rows = {4, 4, 0, 0};
  auto result = txn->Commit(info);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().IsIOError());
  EXPECT_THAT(result.status().message(), HasSubstr("failed"));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto got, lake_->GetCommit(kDs, D("2025-01-03")));
  EXPECT_EQ(*got, first);
  ExpectLakeConsistent(*lake_, kDs);
}

TEST_P(LakeTest, RecoveryRollsBackAStagingFolderWithoutIntent) {
  QLAKE_ASSERT_OK_AND_ASSIGN(auto first,
                             CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain}));
  const std::string txn_dir =
      P("_staging/stocks_minute/2025-01-03/20250103T000000.000Z-1-x");
  QLAKE_ASSERT_OK(base_fs_->CreateDir(txn_dir));
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, txn_dir + "/0.parquet.tmp", "half a file"));
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, txn_dir + "/_intent.json.tmp-0123", "{\"torn"));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto report, lake_->Recover(kDs));
  ASSERT_EQ(report.actions.size(), 1u);
  EXPECT_EQ(report.actions[0].kind, RecoveryAction::Kind::kRolledBack);
  EXPECT_EQ(report.actions[0].txn, "20250103T000000.000Z-1-x");
  QLAKE_ASSERT_OK_AND_ASSIGN(auto got, lake_->GetCommit(kDs, D("2025-01-03")));
  EXPECT_EQ(*got, first);
  ExpectLakeConsistent(*lake_, kDs);
  QLAKE_ASSERT_OK_AND_ASSIGN(auto again, lake_->Recover(kDs));
  EXPECT_TRUE(again.empty());
}

TEST_P(LakeTest, RecoveryRemovesTempFilesOfInterruptedRecordWrites) {
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain}));
  QLAKE_ASSERT_OK(WriteAll(
      *base_fs_, P("_qlake/stocks_minute/commits/2025-01-06.json.tmp-00ff"), "{"));
  QLAKE_ASSERT_OK(
      WriteAll(*base_fs_, P("_qlake/stocks_minute/watermark.json.tmp-00ff"), "{"));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto days, lake_->ListCommittedDays(kDs));
  EXPECT_EQ(days, std::vector<Date>{D("2025-01-03")});  // temp files are not records
  QLAKE_ASSERT_OK_AND_ASSIGN(auto report, lake_->Recover(kDs));
  EXPECT_EQ(report.temp_files_removed, 2);
  ExpectLakeConsistent(*lake_, kDs);
}

TEST_P(LakeTest, BeginDayRemovesItsOwnRecordTempFilesButNotOtherDays) {
  // A kill during the record write leaves "<day>.json.tmp-*"; the next transaction of
  // that day (all that `qlake ingest` runs) must remove it, and leave other days' alone.
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain}));
  const std::string mine = P("_qlake/stocks_minute/commits/2025-01-06.json.tmp-00ff");
  const std::string other = P("_qlake/stocks_minute/commits/2025-01-07.json.tmp-00ff");
  const std::string fresh_wm = P("_qlake/stocks_minute/watermark.json.tmp-00ff");
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, mine, "{"));
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, other, "{"));
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, fresh_wm, "{"));
  QLAKE_ASSERT_OK(lake_->BeginDay(kDs, D("2025-01-06")).status());
  auto exists = [&](const std::string& p) {
    auto info = base_fs_->GetFileInfo(p);
    return info.ok() && info->type() == arrow::fs::FileType::File;
  };
  EXPECT_FALSE(exists(mine));
  EXPECT_TRUE(exists(other));
  if (GetParam() == Backend::kLocal) {  // MockFileSystem stamps files with a fixed time
    EXPECT_TRUE(exists(fresh_wm));      // may belong to a live writer
  }
}

TEST_P(LakeTest, ADamagedIntentIsLeftForAHuman) {
  const std::string txn_dir =
      P("_staging/stocks_minute/2025-01-03/20250103T000000.000Z-1-x");
  QLAKE_ASSERT_OK(base_fs_->CreateDir(txn_dir));
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, txn_dir + "/_intent.json", "{\"format\": 1}"));
  auto report = lake_->RecoverDay(kDs, D("2025-01-03"));
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("_intent.json"));
  auto txn = lake_->BeginDay(kDs, D("2025-01-03"));
  ASSERT_FALSE(txn.ok());
  EXPECT_THAT(txn.status().message(), HasSubstr("could not be recovered"));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto info, base_fs_->GetFileInfo(txn_dir + "/_intent.json"));
  EXPECT_EQ(info.type(), arrow::fs::FileType::File);
  // Other days are not blocked.
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-06"),
                              {{"year=2025/month=01/2025-01-06.parquet", "x"}}));
}

TEST_P(LakeTest, AnIntentThatPointsOutsideTheDatasetIsRefused) {
  IntentRecord intent;
  intent.record.dataset = kDs;
  intent.record.day = D("2025-01-03");
  intent.record.txn = "t1";
  intent.moves = {{"0.parquet.tmp", "stocks_daily/x.parquet"}};
  const std::string txn_dir = P("_staging/stocks_minute/2025-01-03/t1");
  QLAKE_ASSERT_OK(base_fs_->CreateDir(txn_dir));
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, txn_dir + "/0.parquet.tmp", "x"));
  QLAKE_ASSERT_OK(
      WriteAll(*base_fs_, txn_dir + "/_intent.json", SerializeIntentRecord(intent)));
  auto report = lake_->RecoverDay(kDs, D("2025-01-03"));
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("outside the dataset"));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto other, ListFilesUnder(*base_fs_, P("stocks_daily")));
  EXPECT_TRUE(other.empty());
}

TEST_P(LakeTest, RecoveryDropsADayWhoseMovedFilesVanished) {
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-02"),
                              {{"year=2025/month=01/2025-01-02.parquet", "prev"}}));
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain, kSymA}));
  auto faulty = std::make_shared<FaultInjectingFileSystem>(base_fs_);
  QLAKE_ASSERT_OK_AND_ASSIGN(auto lake, Lake::Make(faulty, root_));
  // Find a crash point where the intent is written and one file is already in place.
  const std::string day_staging = P("_staging/stocks_minute/2025-01-03");
  bool found = false;
  for (int64_t k = 1; k < 200 && !found; ++k) {
    QLAKE_ASSERT_OK(lake_->Recover(kDs));  // repairs the previous round
    faulty->Arm(k, FaultInjectingFileSystem::Mode::kCrash);
    (void)CommitFiles(*lake, kDs, D("2025-01-03"), {kMain2, kSymB});
    if (!faulty->fired()) break;
    QLAKE_ASSERT_OK_AND_ASSIGN(auto staged, ListFilesUnder(*base_fs_, day_staging));
    bool has_intent = false;
    int tmp_files = 0;
    for (const auto& f : staged) {
      if (BaseName(f) == kIntentName) has_intent = true;
      if (f.find(".parquet.tmp") != std::string::npos) ++tmp_files;
    }
    found = has_intent && tmp_files == 1;
  }
  ASSERT_TRUE(found);
  faulty->Heal();
  // Someone deletes a published file of the interrupted commit.
  QLAKE_ASSERT_OK_AND_ASSIGN(auto record_gone, lake_->GetCommit(kDs, D("2025-01-03")));
  EXPECT_FALSE(record_gone.has_value());  // the old record was retired first
  QLAKE_ASSERT_OK(base_fs_->DeleteFile(Data(kMain2.path)));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto report, lake_->Recover(kDs));
  ASSERT_EQ(report.Count(RecoveryAction::Kind::kDropped), 1);
  EXPECT_THAT(report.actions[0].detail, HasSubstr("both missing"));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto rec, lake_->GetCommit(kDs, D("2025-01-03")));
  EXPECT_FALSE(rec.has_value());
  EXPECT_EQ(DataFiles(), std::set<std::string>{"year=2025/month=01/2025-01-02.parquet"});
  QLAKE_ASSERT_OK_AND_ASSIGN(auto w, lake_->GetWatermark(kDs));
  EXPECT_EQ(w.last_contiguous, D("2025-01-02"));
  ExpectLakeConsistent(*lake_, kDs);
  // The day can simply be ingested again.
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain2}));
  ExpectLakeConsistent(*lake_, kDs);
}

TEST_P(LakeTest, WatermarkFollowsContiguousTradingDays) {
  auto commit = [&](const char* day) {
    std::string path = std::string("year=2025/month=01/") + day + ".parquet";
    return CommitFiles(*lake_, kDs, D(day), {{path, day}}).status();
  };
  QLAKE_ASSERT_OK_AND_ASSIGN(auto empty, lake_->GetWatermark(kDs));
  EXPECT_TRUE(empty.empty());
  QLAKE_ASSERT_OK(commit("2024-12-31"));
  QLAKE_ASSERT_OK(commit("2025-01-02"));  // across New Year's Day
  QLAKE_ASSERT_OK(commit("2025-01-03"));
  QLAKE_ASSERT_OK(commit("2025-01-07"));  // 01-06 missing
  QLAKE_ASSERT_OK_AND_ASSIGN(auto w, lake_->GetWatermark(kDs));
  EXPECT_EQ(w.first_day, D("2024-12-31"));
  EXPECT_EQ(w.last_contiguous, D("2025-01-03"));
  QLAKE_ASSERT_OK(commit("2025-01-08"));
  QLAKE_ASSERT_OK(commit("2025-01-10"));  // 01-09 is a closure, not a gap
  QLAKE_ASSERT_OK_AND_ASSIGN(w, lake_->GetWatermark(kDs));
  EXPECT_EQ(w.last_contiguous, D("2025-01-03"));
  QLAKE_ASSERT_OK(commit("2025-01-06"));  // fills the gap
  QLAKE_ASSERT_OK_AND_ASSIGN(w, lake_->GetWatermark(kDs));
  EXPECT_EQ(w.last_contiguous, D("2025-01-10"));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto rebuilt, lake_->RebuildWatermark(kDs));
  EXPECT_EQ(rebuilt, w);
  // A backfill before the first day restarts the run there (and says so).
  QLAKE_ASSERT_OK(commit("2024-12-27"));
  QLAKE_ASSERT_OK_AND_ASSIGN(w, lake_->GetWatermark(kDs));
  EXPECT_EQ(w.first_day, D("2024-12-27"));
  EXPECT_EQ(w.last_contiguous, D("2024-12-27"));
  QLAKE_ASSERT_OK(commit("2024-12-30"));
  QLAKE_ASSERT_OK_AND_ASSIGN(w, lake_->GetWatermark(kDs));
  EXPECT_EQ(w.last_contiguous, D("2025-01-10"));
  ExpectLakeConsistent(*lake_, kDs);
}

TEST_P(LakeTest, WatermarkFallsBackToItsBackupThenToTheRecords) {
  for (const char* day : {"2025-01-02", "2025-01-03"}) {
    QLAKE_ASSERT_OK(
        CommitFiles(*lake_, kDs, D(day),
                    {{std::string("year=2025/month=01/") + day + ".parquet", day}}));
  }
  const std::string main_path = P(Lake::WatermarkPath(kDs));
  const std::string backup_path = main_path + ".bak";
  // A torn main file: the backup answers.
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, main_path, "{\"format\": \"qlake.water"));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto w, lake_->GetWatermark(kDs));
  EXPECT_EQ(w.last_contiguous, D("2025-01-03"));
  // Prove the backup is really what answered: make it say something else.
  Watermark fake = w;
  fake.last_contiguous = D("2025-01-02");
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, backup_path, SerializeWatermark(fake)));
  QLAKE_ASSERT_OK_AND_ASSIGN(w, lake_->GetWatermark(kDs));
  EXPECT_EQ(w.last_contiguous, D("2025-01-02"));
  // Both damaged: rebuilt from the records, and both copies are good again.
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, backup_path, "garbage"));
  QLAKE_ASSERT_OK_AND_ASSIGN(w, lake_->GetWatermark(kDs));
  EXPECT_EQ(w.last_contiguous, D("2025-01-03"));
  for (const auto& path : {main_path, backup_path}) {
    QLAKE_ASSERT_OK_AND_ASSIGN(auto text, ReadAll(*base_fs_, path));
    QLAKE_ASSERT_OK_AND_ASSIGN(auto parsed, ParseWatermark(text, kDs, path));
    EXPECT_EQ(parsed.last_contiguous, D("2025-01-03"));
  }
  // Both missing: the same.
  QLAKE_ASSERT_OK(base_fs_->DeleteFile(main_path));
  QLAKE_ASSERT_OK(base_fs_->DeleteFile(backup_path));
  QLAKE_ASSERT_OK_AND_ASSIGN(w, lake_->GetWatermark(kDs));
  EXPECT_EQ(w.last_contiguous, D("2025-01-03"));
  // Only the backup good: the next commit rewrites the main copy.
  QLAKE_ASSERT_OK(WriteAll(*base_fs_, main_path, ""));
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-06"),
                              {{"year=2025/month=01/2025-01-06.parquet", "x"}}));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto text, ReadAll(*base_fs_, main_path));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto parsed, ParseWatermark(text, kDs, main_path));
  EXPECT_EQ(parsed.last_contiguous, D("2025-01-06"));
  ExpectLakeConsistent(*lake_, kDs);
}

TEST_P(LakeTest, RecoverAllAndRecoverOnOpen) {
  QLAKE_ASSERT_OK(CommitFiles(*lake_, kDs, D("2025-01-03"), {kMain}));
  for (const char* ds : {"stocks_minute", "options_daily"}) {
    const std::string dir = P(std::string("_staging/") + ds + "/2025-01-06/t");
    QLAKE_ASSERT_OK(base_fs_->CreateDir(dir));
    QLAKE_ASSERT_OK(WriteAll(*base_fs_, dir + "/0.parquet.tmp", "x"));
  }
  LakeOptions options;
  options.recover_on_open = true;
  QLAKE_ASSERT_OK_AND_ASSIGN(auto reopened, Lake::Make(base_fs_, root_, options));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto staged, ListFilesUnder(*base_fs_, P("_staging")));
  EXPECT_TRUE(staged.empty());
  QLAKE_ASSERT_OK_AND_ASSIGN(auto report, reopened->RecoverAll());
  EXPECT_TRUE(report.empty());
  ExpectLakeConsistent(*reopened, kDs);
}

TEST_P(LakeTest, DifferentDaysCommitConcurrently) {
  const std::vector<const char*> days = {"2025-01-02", "2025-01-03", "2025-01-06",
                                         "2025-01-07", "2025-01-08", "2025-01-10",
                                         "2025-01-13", "2025-01-14"};
  std::vector<std::thread> threads;
  std::vector<arrow::Status> results(days.size());
  for (std::size_t i = 0; i < days.size(); ++i) {
    threads.emplace_back([&, i] {
      const std::string day = days[i];
      results[i] = CommitFiles(*lake_, kDs, D(day.c_str()),
                               {{"year=2025/month=01/" + day + ".parquet", day},
                                {"symbol=A/year=2025/month=01/" + day + ".parquet", "a"}})
                       .status();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& st : results) QLAKE_EXPECT_OK(st);
  QLAKE_ASSERT_OK_AND_ASSIGN(auto commits, lake_->ListCommits(kDs));
  EXPECT_EQ(commits.size(), days.size());
  // Concurrent watermark updates may lag; one more update (any commit, or a rebuild)
  // brings it to the truth.
  QLAKE_ASSERT_OK_AND_ASSIGN(auto w, lake_->RebuildWatermark(kDs));
  EXPECT_EQ(w.last_contiguous, D("2025-01-14"));
  ExpectLakeConsistent(*lake_, kDs);
}

TEST(LakeOpenTest, OpensFromALocalPathAndValidatesOptions) {
  TempDir tmp;
  QLAKE_ASSERT_OK_AND_ASSIGN(auto lake, Lake::Open(tmp.path() + "/lake/"));
  EXPECT_EQ(lake->base_path(), tmp.path() + "/lake");
  EXPECT_EQ(lake->filesystem()->type_name(), "local");
  QLAKE_ASSERT_OK(CommitFiles(*lake, kDs, D("2025-01-03"), {kMain}));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto again, Lake::Open("file://" + tmp.path() + "/lake"));
  QLAKE_ASSERT_OK_AND_ASSIGN(auto rec, again->GetCommit(kDs, D("2025-01-03")));
  EXPECT_TRUE(rec.has_value());
  EXPECT_FALSE(Lake::Open("relative/path").ok());

  LakeOptions bad;
  bad.read_buffer_bytes = 10;
  EXPECT_TRUE(bad.Validate().IsInvalid());
  EXPECT_TRUE(Lake::Open(tmp.path(), bad).status().IsInvalid());
  QLAKE_EXPECT_OK(LakeOptions::Defaults().Validate());
}

TEST(LakeOpenTest, WithoutFsyncTheProtocolIsTheSame) {
  TempDir tmp;
  LakeOptions options;
  options.fsync = false;
  options.write_history = false;
  QLAKE_ASSERT_OK_AND_ASSIGN(auto lake, Lake::Open(tmp.path(), options));
  QLAKE_ASSERT_OK(CommitFiles(*lake, kDs, D("2025-01-03"), {kMain, kSymA}));
  QLAKE_ASSERT_OK(CommitFiles(*lake, kDs, D("2025-01-03"), {kMain2}));
  QLAKE_ASSERT_OK_AND_ASSIGN(
      auto history, ReadFileIfExists(*lake->filesystem(),
                                     lake->PathOf("_qlake/stocks_minute/history.jsonl")));
  EXPECT_FALSE(history.has_value());
  ExpectLakeConsistent(*lake, kDs);
}

}  // namespace
}  // namespace qlake::lake

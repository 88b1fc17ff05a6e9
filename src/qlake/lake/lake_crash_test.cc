// Interrupts a full commit at every mutating file-system call, in three ways (a transient
// error, a crash, a crash halfway through an S3-style copy-then-delete move), on a local
// folder and on the in-memory file system, with and without an older version of the day
// to replace. After each interruption a fresh Lake (a restarted process) runs recovery,
// and the day must be exactly its old or its new version, with nothing else visible.

#include <arrow/filesystem/localfs.h>
#include <arrow/filesystem/mockfs.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "qlake/lake/fault_fs.h"
#include "qlake/lake/fs_util.h"
#include "qlake/lake/lake.h"
#include "qlake/lake/test_util.h"

namespace qlake::lake {
namespace {

using testing::CommitFiles;
using testing::D;
using testing::ExpectLakeConsistent;
using testing::FaultInjectingFileSystem;
using ::testing::HasSubstr;
using testing::ListFilesUnder;
using testing::TempDir;
using testing::TestFile;
using Mode = FaultInjectingFileSystem::Mode;

constexpr const char* kDs = "stocks_minute";
const Date kDay = D("2025-01-03");
const std::vector<TestFile> kOld = {
    {"year=2025/month=01/2025-01-03.parquet", "OLD-main-bytes"},
    {"symbol=A/year=2025/month=01/2025-01-03.parquet", "OLD-a"},
};
const std::vector<TestFile> kNew = {
    {"year=2025/month=01/2025-01-03.parquet", "NEW-main-bytes, a little longer"},
    {"symbol=B/year=2025/month=01/2025-01-03.parquet", "NEW-b"},
};
const std::vector<TestFile> kNewer = {
    {"year=2025/month=01/2025-01-03.parquet", "NEWER"},
};

enum class Backend { kLocal, kMock };

struct Env {
  std::unique_ptr<TempDir> tmp;
  std::shared_ptr<arrow::fs::FileSystem> fs;
  std::string root;
  std::string old_txn;  // "" when there is no old version
};

class LakeCrashTest
    : public ::testing::TestWithParam<std::tuple<Backend, Mode, /*replace=*/bool>> {
 protected:
  void SetUp() override { spdlog::set_level(spdlog::level::off); }

  Backend backend() const { return std::get<0>(GetParam()); }
  Mode mode() const { return std::get<1>(GetParam()); }
  bool replace() const { return std::get<2>(GetParam()); }

  // A lake with the previous trading day committed and, when replacing, an old version
  // of kDay (with a quarantine file the new version does not have).
  void MakeEnv(Env* env) {
    if (backend() == Backend::kLocal) {
      env->tmp = std::make_unique<TempDir>();
      env->fs = std::make_shared<arrow::fs::LocalFileSystem>();
      env->root = env->tmp->path() + "/lake";
    } else {
      env->fs =
          std::make_shared<arrow::fs::internal::MockFileSystem>(arrow::fs::TimePoint{});
      env->root = "lake";
    }
    LakeOptions setup;
    setup.fsync = false;  // only the setup; recovery below runs with fsync on
    QLAKE_ASSERT_OK_AND_ASSIGN(auto lake, Lake::Make(env->fs, env->root, setup));
    QLAKE_ASSERT_OK(CommitFiles(*lake, kDs, D("2025-01-02"),
                                {{"year=2025/month=01/2025-01-02.parquet", "prev-day"}}));
    if (replace()) {
      QLAKE_ASSERT_OK_AND_ASSIGN(auto old, CommitFiles(*lake, kDs, kDay, kOld, "OLD-Q"));
      env->old_txn = old.txn;
    }
  }

  // The interrupted run: a new version of kDay (with a quarantine file only when there
  // is no old version, so that both staging it and removing a stale one are covered).
  arrow::Result<CommitRecord> CommitNew(Lake& lake) {
    return CommitFiles(lake, kDs, kDay, kNew,
                       replace() ? std::nullopt : std::optional<std::string>("NEW-Q"));
  }
};

TEST_P(LakeCrashTest, EveryInterruptionLeavesTheOldOrTheNewDay) {
  LakeOptions options;
  options.create_root = false;
  // Replacing runs publish through the batched durability path (one syncfs instead of an
  // fsync per file and folder), fresh runs through per-file fsyncs.
  options.sync_batch_files = replace() ? 1 : 64;

  // How many mutating calls does an uninterrupted commit make?
  int64_t total = 0;
  {
    Env env;
    MakeEnv(&env);
    auto faulty = std::make_shared<FaultInjectingFileSystem>(env.fs);
    QLAKE_ASSERT_OK_AND_ASSIGN(auto lake, Lake::Make(faulty, env.root, options));
    faulty->Arm(0, Mode::kFailOnce);
    QLAKE_ASSERT_OK(CommitNew(*lake));
    total = faulty->mutating_calls();
  }
  ASSERT_GT(total, 15);

  std::set<std::string> new_paths;
  for (const auto& f : kNew) new_paths.insert(f.path);
  bool seen_new = false;
  int64_t rolled_forward = 0;
  for (int64_t k = 1; k <= total + 1; ++k) {
    const std::string ctx = "interrupted at mutating call " + std::to_string(k) + " of " +
                            std::to_string(total);
    Env env;
    MakeEnv(&env);
    auto faulty = std::make_shared<FaultInjectingFileSystem>(env.fs);
    faulty->Arm(k, mode());
    arrow::Status result;
    {
      QLAKE_ASSERT_OK_AND_ASSIGN(auto lake, Lake::Make(faulty, env.root, options));
      result = CommitNew(*lake).status();
    }
    EXPECT_EQ(faulty->fired(), k <= total) << ctx;
    if (!result.ok()) {
      EXPECT_THAT(result.message(), HasSubstr("stocks_minute 2025-01-03")) << ctx;
    }
    if (mode() == Mode::kFailOnce && !result.ok() &&
        result.message().find("unchanged") != std::string::npos) {
      // Failed before the point of no return: already clean, before any recovery.
      QLAKE_ASSERT_OK_AND_ASSIGN(auto staged,
                                 ListFilesUnder(*env.fs, JoinPath(env.root, "_staging")));
      EXPECT_TRUE(staged.empty()) << ctx << ": " << *staged.begin();
    }

    // Restart: a fresh Lake on the real file system recovers.
    QLAKE_ASSERT_OK_AND_ASSIGN(auto lake, Lake::Make(env.fs, env.root));
    QLAKE_ASSERT_OK_AND_ASSIGN(auto report, lake->Recover(kDs));
    EXPECT_EQ(report.Count(RecoveryAction::Kind::kDropped), 0) << ctx;
    rolled_forward += report.Count(RecoveryAction::Kind::kRolledForward);

    QLAKE_ASSERT_OK_AND_ASSIGN(auto rec, lake->GetCommit(kDs, kDay));
    std::set<std::string> paths;
    if (rec) {
      for (const auto& f : rec->files) paths.insert(f.path);
    }
    const bool is_new = rec && rec->txn != env.old_txn && paths == new_paths;
    const bool is_old = replace() ? (rec && rec->txn == env.old_txn) : !rec;
    EXPECT_TRUE(is_new || is_old) << ctx;
    if (result.ok()) {
      EXPECT_TRUE(is_new) << ctx << ": Commit succeeded";
    }
    if (seen_new) {
      EXPECT_TRUE(is_new) << ctx << ": a later interruption kept the old day";
    }
    seen_new = seen_new || is_new;
    if (is_old && replace()) {
      EXPECT_TRUE(rec->quarantine.has_value()) << ctx;
    }
    ExpectLakeConsistent(*lake, kDs, ctx);

    // Recovery is idempotent, and the lake keeps working.
    QLAKE_ASSERT_OK_AND_ASSIGN(auto again, lake->Recover(kDs));
    EXPECT_TRUE(again.empty()) << ctx;
    QLAKE_ASSERT_OK(CommitFiles(*lake, kDs, kDay, kNewer));
    ExpectLakeConsistent(*lake, kDs, ctx + ", then committed again");
    QLAKE_ASSERT_OK_AND_ASSIGN(auto w, lake->GetWatermark(kDs));
    EXPECT_EQ(w.last_contiguous, kDay) << ctx;
  }
  EXPECT_TRUE(seen_new);
  if (mode() != Mode::kFailOnce) {
    EXPECT_GT(rolled_forward, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllSteps, LakeCrashTest,
    ::testing::Combine(::testing::Values(Backend::kLocal, Backend::kMock),
                       ::testing::Values(Mode::kFailOnce, Mode::kCrash,
                                         Mode::kCrashMidMove),
                       ::testing::Bool()),
    [](const auto& param_info) {
      const auto& p = param_info.param;
      std::string name = std::get<0>(p) == Backend::kLocal ? "Local" : "Mock";
      switch (std::get<1>(p)) {
        case Mode::kFailOnce:
          name += "FailOnce";
          break;
        case Mode::kCrash:
          name += "Crash";
          break;
        case Mode::kCrashMidMove:
          name += "CrashMidMove";
          break;
      }
      return name + (std::get<2>(p) ? "Replace" : "Fresh");
    });

}  // namespace
}  // namespace qlake::lake

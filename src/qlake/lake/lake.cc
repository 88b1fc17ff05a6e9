#include "qlake/lake/lake.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>

#include <arrow/buffer.h>
#include <arrow/io/buffered.h>
#include <arrow/memory_pool.h>
#include <date/date.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "qlake/core/version.h"
#include "qlake/lake/fs_util.h"

namespace qlake::lake {

namespace fs = arrow::fs;

namespace {

constexpr int64_t kMinReadBuffer = int64_t{64} << 10;
constexpr int64_t kMaxReadBuffer = int64_t{1} << 30;
constexpr std::string_view kHistoryName = "history.jsonl";
constexpr std::string_view kStagedSuffix = ".parquet.tmp";
constexpr int64_t kStageBufferBytes = int64_t{256} << 10;

std::string MetaDir(std::string_view dataset) {
  return fmt::format("{}/{}", kMetaDir, dataset);
}
std::string CommitsDir(std::string_view dataset) {
  return fmt::format("{}/{}/commits", kMetaDir, dataset);
}
std::string StagingDatasetDir(std::string_view dataset) {
  return fmt::format("{}/{}", kStagingDir, dataset);
}
std::string StagingDayDir(std::string_view dataset, Date day) {
  return fmt::format("{}/{}/{}", kStagingDir, dataset, FormatDate(day));
}
std::string Where(std::string_view dataset, Date day) {
  return fmt::format("{} {}", dataset, FormatDate(day));
}

// "20251125T120000.123Z-4242-9f3a1c2b": sorts by start time, unique across processes.
std::string NewTxnId() {
  auto now =
      std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
  return fmt::format("{}Z-{}-{}", date::format("%Y%m%dT%H%M%S", now),
                     static_cast<long>(::getpid()), RandomHex64().substr(0, 8));
}

// A record's name is exactly "YYYY-MM-DD.json"; anything else in commits/ (temp files of
// interrupted writes) is not a record.
std::optional<Date> RecordDay(std::string_view name) {
  constexpr std::string_view kSuffix = ".json";
  if (name.size() != 10 + kSuffix.size() || name.substr(10) != kSuffix)
    return std::nullopt;
  auto d = ParseDate(name.substr(0, 10));
  if (!d.ok()) return std::nullopt;
  return *d;
}

bool IsUnder(std::string_view path, std::string_view folder) {
  return path.size() > folder.size() + 1 && path.substr(0, folder.size()) == folder &&
         path[folder.size()] == '/';
}

// A damaged or foreign intent record must not make recovery move or delete files
// outside the day it claims to be about.
arrow::Status CheckIntent(const IntentRecord& intent, const std::string& dataset,
                          Date day, const std::string& txn, const std::string& where) {
  auto bad = [&](std::string_view why) {
    return arrow::Status::Invalid(where, ": intent record ", why,
                                  "; it is left in place: inspect it, delete its staging "
                                  "folder and re-ingest the day");
  };
  const auto& rec = intent.record;
  if (rec.dataset != dataset || rec.day != day || rec.txn != txn) {
    return bad("belongs to another dataset, day or transaction");
  }
  const std::string quarantine = Lake::QuarantinePath(dataset, day);
  auto check_final = [&](const std::string& p) -> arrow::Status {
    if (p == quarantine) return arrow::Status::OK();
    if (!IsUnder(p, dataset) || !ValidateDataPath(p.substr(dataset.size() + 1)).ok()) {
      return bad("names a path outside the dataset: '" + p + "'");
    }
    return arrow::Status::OK();
  };
  for (const auto& m : intent.moves) {
    if (m.staged.empty() || m.staged.find('/') != std::string::npos ||
        m.staged.front() == '.') {
      return bad("names a bad staged file '" + m.staged + "'");
    }
    ARROW_RETURN_NOT_OK(check_final(m.final_path));
  }
  for (const auto& p : intent.previous_files) ARROW_RETURN_NOT_OK(check_final(p));
  return arrow::Status::OK();
}

// Dataset names among the folders `entries` of `dir` (_qlake/ or _staging/): plain
// dataset folders, plus "<group>/<name>" for the folders inside a dataset group.
arrow::Result<std::vector<std::string>> DatasetFolders(
    fs::FileSystem& fs, const std::string& dir,
    const std::vector<fs::FileInfo>& entries) {
  std::vector<std::string> names;
  for (const auto& e : entries) {
    if (e.type() != fs::FileType::Directory) continue;
    std::string name(BaseName(e.path()));
    bool group = false;
    for (std::string_view g : kDatasetGroups) group = group || g == name;
    if (!group) {
      if (ValidateDatasetName(name).ok()) names.push_back(std::move(name));
      continue;
    }
    fs::FileSelector inner;
    inner.base_dir = dir + "/" + name;
    inner.allow_not_found = true;
    ARROW_ASSIGN_OR_RAISE(auto children, fs.GetFileInfo(inner));
    for (const auto& c : children) {
      std::string full = name + "/" + std::string(BaseName(c.path()));
      if (c.type() == fs::FileType::Directory && ValidateDatasetName(full).ok()) {
        names.push_back(std::move(full));
      }
    }
  }
  return names;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Options and reports

arrow::Status LakeOptions::Validate() const {
  if (sync_batch_files < 1 || sync_batch_files > 1'000'000) {
    return arrow::Status::Invalid("lake sync_batch_files ", sync_batch_files,
                                  " is outside 1..1000000");
  }
  if (read_buffer_bytes < kMinReadBuffer || read_buffer_bytes > kMaxReadBuffer) {
    return arrow::Status::Invalid("lake read_buffer_bytes ", read_buffer_bytes,
                                  " is outside 64 KiB..1 GiB");
  }
  return arrow::Status::OK();
}

int64_t RecoveryReport::Count(RecoveryAction::Kind kind) const {
  return std::count_if(actions.begin(), actions.end(),
                       [&](const RecoveryAction& a) { return a.kind == kind; });
}

void RecoveryReport::Append(const RecoveryReport& other) {
  actions.insert(actions.end(), other.actions.begin(), other.actions.end());
  temp_files_removed += other.temp_files_removed;
}

// ---------------------------------------------------------------------------------------
// Staged files

struct DayTransaction::StagedFile {
  std::string where;        // "stocks_minute 2025-01-03", for error messages
  std::string relative;     // as given to OpenFile; "" for the quarantine file
  std::string final_path;   // lake-root relative
  std::string staged_name;  // inside the transaction's staging folder
  std::string staged_path;  // FileSystem path
  std::shared_ptr<arrow::io::OutputStream> inner;
  int64_t size = 0;
  uint32_t crc32 = 0;
  bool closed = false;
  bool sealed = false;  // the transaction ended; writes are refused
  arrow::Status error;  // first failure of a write or close
};

// Forwards to the staging file and keeps the size and CRC-32 of what was written, so
// Commit needs no read-back.
class DayTransaction::StagingStream final : public arrow::io::OutputStream {
 public:
  explicit StagingStream(std::shared_ptr<StagedFile> file) : file_(std::move(file)) {}

  arrow::Status Close() override {
    if (file_->closed) return arrow::Status::OK();
    file_->closed = true;
    // Release the stream (and its write buffer) now: a day may stage thousands of files.
    auto st = file_->inner->Close();
    file_->inner.reset();
    return Track(st);
  }

  arrow::Status Abort() override {
    if (file_->closed) return arrow::Status::OK();
    file_->closed = true;
    if (file_->error.ok()) {
      file_->error = arrow::Status::Cancelled("the writer aborted the stream");
    }
    auto st = file_->inner->Abort();
    file_->inner.reset();
    return st;
  }

  arrow::Result<int64_t> Tell() const override { return file_->size; }
  bool closed() const override { return file_->closed; }

  arrow::Status Write(const void* data, int64_t nbytes) override {
    ARROW_RETURN_NOT_OK(CheckWritable());
    ARROW_RETURN_NOT_OK(Track(file_->inner->Write(data, nbytes)));
    Account(data, nbytes);
    return arrow::Status::OK();
  }

  arrow::Status Write(const std::shared_ptr<arrow::Buffer>& data) override {
    ARROW_RETURN_NOT_OK(CheckWritable());
    ARROW_RETURN_NOT_OK(Track(file_->inner->Write(data)));
    Account(data->data(), data->size());
    return arrow::Status::OK();
  }

  arrow::Status Flush() override {
    ARROW_RETURN_NOT_OK(CheckWritable());
    return Track(file_->inner->Flush());
  }

 private:
  arrow::Status CheckWritable() const {
    if (file_->sealed) {
      return arrow::Status::Invalid("write to '", file_->final_path,
                                    "' after its transaction ended");
    }
    if (file_->closed) {
      return arrow::Status::Invalid("write to '", file_->final_path, "' after Close");
    }
    return arrow::Status::OK();
  }
  arrow::Status Track(const arrow::Status& st) {
    if (st.ok()) return st;
    auto wrapped =
        st.WithMessage(file_->where, ": writing '", file_->final_path, "' (staged at '",
                       file_->staged_path, "') failed: ", st.message(),
                       "; check that the lake is writable and has free space");
    if (file_->error.ok()) file_->error = wrapped;
    return wrapped;
  }
  void Account(const void* data, int64_t nbytes) {
    file_->crc32 = Crc32Update(file_->crc32, data, nbytes);
    file_->size += nbytes;
  }

  std::shared_ptr<StagedFile> file_;
};

// ---------------------------------------------------------------------------------------
// DayTransaction

DayTransaction::DayTransaction(std::shared_ptr<Lake> lake, std::string dataset, Date day,
                               std::string txn)
    : lake_(std::move(lake)),
      dataset_(std::move(dataset)),
      day_(day),
      txn_(std::move(txn)) {}

DayTransaction::~DayTransaction() {
  if (state_ != State::kOpen) return;
  auto st = Abort();
  if (!st.ok()) {
    spdlog::warn("lake: {}: could not discard the staged files of transaction {}: {}",
                 Where(), txn_, st.ToString());
  }
}

std::string DayTransaction::Where() const { return lake::Where(dataset_, day_); }

std::string DayTransaction::TxnDir() const {
  return StagingDayDir(dataset_, day_) + "/" + txn_;
}

arrow::Result<std::shared_ptr<arrow::io::OutputStream>> DayTransaction::OpenFile(
    std::string_view relative_path) {
  if (state_ != State::kOpen) {
    return arrow::Status::Invalid(Where(), ": OpenFile after the transaction ended");
  }
  if (auto st = ValidateDataPath(relative_path); !st.ok()) {
    return st.WithMessage(Where(), ": ", st.message());
  }
  std::string relative(relative_path);
  if (relative_paths_.count(relative) > 0) {
    return arrow::Status::Invalid(Where(), ": data file '", relative_path,
                                  "' was already opened in this transaction");
  }
  std::string staged_name = fmt::format("{}{}", files_.size(), kStagedSuffix);
  ARROW_ASSIGN_OR_RAISE(
      auto out, Stage(relative, dataset_ + "/" + relative, std::move(staged_name)));
  relative_paths_.insert(std::move(relative));
  return out;
}

arrow::Result<std::shared_ptr<arrow::io::OutputStream>>
DayTransaction::OpenQuarantineFile() {
  if (state_ != State::kOpen) {
    return arrow::Status::Invalid(Where(),
                                  ": OpenQuarantineFile after the transaction ended");
  }
  if (quarantine_) {
    return arrow::Status::Invalid(Where(), ": the quarantine file was already opened");
  }
  return Stage("", Lake::QuarantinePath(dataset_, day_),
               fmt::format("quarantine{}", kStagedSuffix));
}

arrow::Result<std::shared_ptr<arrow::io::OutputStream>> DayTransaction::Stage(
    std::string relative_path, std::string final_path, std::string staged_name) {
  auto& filesystem = *lake_->fs_;
  const std::string dir = lake_->PathOf(TxnDir());
  auto fail = [&](const arrow::Status& st, const std::string& path) {
    return st.WithMessage(Where(), ": cannot stage '", final_path, "' at '", path,
                          "': ", st.message(),
                          "; check that the lake is writable and has free space");
  };
  if (!staging_created_) {
    if (auto st = filesystem.CreateDir(dir, /*recursive=*/true); !st.ok()) {
      return fail(st, dir);
    }
    staging_created_ = true;
  }
  auto file = std::make_shared<StagedFile>();
  file->where = Where();
  file->relative = std::move(relative_path);
  file->final_path = std::move(final_path);
  file->staged_name = std::move(staged_name);
  file->staged_path = JoinPath(dir, file->staged_name);
  auto out = filesystem.OpenOutputStream(file->staged_path);
  if (!out.ok()) return fail(out.status(), file->staged_path);
  // Parquet writers issue many small writes (~60 of ~90 bytes for a small file): one
  // system call per buffer instead.
  auto buffered = arrow::io::BufferedOutputStream::Create(
      kStageBufferBytes, arrow::default_memory_pool(), std::move(out).ValueUnsafe());
  if (!buffered.ok()) return fail(buffered.status(), file->staged_path);
  file->inner = std::move(buffered).ValueUnsafe();
  if (file->relative.empty()) {
    quarantine_ = file;
  } else {
    files_.push_back(file);
  }
  return std::make_shared<StagingStream>(std::move(file));
}

arrow::Result<CommitRecord> DayTransaction::Commit(const CommitInfo& info) {
  if (state_ != State::kOpen) {
    return arrow::Status::Invalid(Where(), ": Commit after the transaction ended");
  }
  auto result = DoCommit(info);
  if (result.ok()) {
    Finish(State::kCommitted);
    auto w = lake_->AdvanceWatermark(dataset_, day_);
    if (!w.ok()) {
      spdlog::warn(
          "lake: {}: committed, but the watermark could not be updated ({}); it is "
          "derived state and the next commit or RebuildWatermark repairs it",
          Where(), w.status().ToString());
    }
    return result;
  }
  const arrow::Status& st = result.status();
  // Errors from the staged streams already start with "<dataset> <day>: ".
  std::string_view detail = st.message();
  const std::string prefix = Where() + ": ";
  if (detail.substr(0, prefix.size()) == prefix) detail.remove_prefix(prefix.size());
  if (state_ == State::kHalfApplied) {
    Finish(State::kHalfApplied);
    return st.WithMessage(
        Where(), ": commit ", txn_, " is half applied: ", detail,
        "; the next BeginDay of this day or Lake::Recover finishes it (until then "
        "readers may see a mix of old and new files, but no commit record calls it "
        "good)");
  }
  if (auto discard = DiscardStaging(); !discard.ok()) {
    spdlog::warn("lake: {}: could not remove staging folder of {}: {}", Where(), txn_,
                 discard.ToString());
  }
  Finish(State::kFailed);
  return st.WithMessage(Where(),
                        ": commit failed, the previous state of the day is "
                        "unchanged: ",
                        detail);
}

arrow::Result<CommitRecord> DayTransaction::DoCommit(const CommitInfo& info) {
  auto& filesystem = *lake_->fs_;
  const LakeOptions& opt = lake_->options_;

  // 1. What the caller says must add up.
  ARROW_RETURN_NOT_OK(info.rows.Validate());
  if (!info.validation.is_object() && !info.validation.is_null()) {
    return arrow::Status::Invalid("the validation summary must be a JSON object, not ",
                                  info.validation.type_name());
  }
  if (info.rows.written > 0 && files_.empty()) {
    return arrow::Status::Invalid("rows.written is ", info.rows.written,
                                  " but no data file was staged");
  }
  std::map<std::string, int64_t> rows_of;
  if (!info.file_rows.empty()) {
    int64_t sum = 0;
    for (const auto& [path, rows] : info.file_rows) {
      if (relative_paths_.count(path) == 0) {
        return arrow::Status::Invalid("file_rows names '", path,
                                      "', which was not opened in this transaction");
      }
      if (rows < 0) {
        return arrow::Status::Invalid("file_rows of '", path, "' is negative");
      }
      sum += rows;
    }
    if (info.file_rows.size() != files_.size()) {
      return arrow::Status::Invalid("file_rows names ", info.file_rows.size(),
                                    " files but ", files_.size(), " were staged");
    }
    if (sum != info.rows.written) {
      return arrow::Status::Invalid("file_rows sum to ", sum, " but rows.written is ",
                                    info.rows.written);
    }
    rows_of = info.file_rows;
  } else if (files_.size() == 1) {
    rows_of[files_.front()->relative] = info.rows.written;
  }

  // 2. Close what the writer left open; a stream that failed or was aborted fails the
  // commit (its bytes are not trustworthy).
  std::vector<std::shared_ptr<StagedFile>> all = files_;
  if (quarantine_) all.push_back(quarantine_);
  for (const auto& f : all) {
    if (!f->closed) {
      // Through the stream wrapper, so a failure is recorded like any other.
      (void)StagingStream(f).Close();
    }
    if (!f->error.ok()) return f->error;
  }
  if (opt.fsync) {
    if (static_cast<int64_t>(all.size()) > opt.sync_batch_files) {
      ARROW_RETURN_NOT_OK(SyncFileSystem(filesystem, lake_->PathOf(TxnDir())));
    } else {
      for (const auto& f : all) {
        ARROW_RETURN_NOT_OK(SyncFile(filesystem, f->staged_path));
      }
    }
  }

  // 3. The previous commit of the day decides which files become stale.
  ARROW_ASSIGN_OR_RAISE(auto previous, lake_->GetCommit(dataset_, day_));
  std::vector<std::string> previous_files;
  if (previous) {
    for (const auto& f : previous->files) {
      previous_files.push_back(dataset_ + "/" + f.path);
    }
    if (previous->quarantine) previous_files.push_back(previous->quarantine->path);
  }
  if (opt.refuse_foreign_overwrite) {
    for (const auto& f : all) {
      if (std::find(previous_files.begin(), previous_files.end(), f->final_path) !=
          previous_files.end()) {
        continue;
      }
      ARROW_ASSIGN_OR_RAISE(auto existing,
                            filesystem.GetFileInfo(lake_->PathOf(f->final_path)));
      if (existing.type() != fs::FileType::NotFound) {
        return arrow::Status::Invalid(
            "'", f->final_path,
            "' already exists and is not a file of this day's previous commit (another "
            "day's file or a stray file); refusing to overwrite it. The layout must give "
            "every day its own file names");
      }
    }
  }

  // 4. The record and the intent that lets recovery finish the job.
  IntentRecord intent;
  CommitRecord& rec = intent.record;
  rec.dataset = dataset_;
  rec.day = day_;
  rec.txn = txn_;
  rec.committed_at = UtcNowIso8601();
  rec.qlake_version = info.qlake_version.empty() ? QLAKE_VERSION : info.qlake_version;
  rec.source = info.source;
  rec.rows = info.rows;
  for (const auto& f : files_) {
    auto it = rows_of.find(f->relative);
    rec.files.push_back(
        FileEntry{f->relative, f->size, it == rows_of.end() ? -1 : it->second, f->crc32});
    intent.moves.push_back(StagedMove{f->staged_name, f->final_path});
  }
  std::sort(rec.files.begin(), rec.files.end(),
            [](const FileEntry& a, const FileEntry& b) { return a.path < b.path; });
  if (quarantine_) {
    rec.quarantine = FileEntry{quarantine_->final_path, quarantine_->size,
                               info.rows.quarantined, quarantine_->crc32};
    intent.moves.push_back(StagedMove{quarantine_->staged_name, quarantine_->final_path});
  }
  rec.validation = info.validation.is_null() ? nlohmann::json::object() : info.validation;
  intent.previous_files = std::move(previous_files);
  intent.previous_txn = previous ? previous->txn : "";

  AtomicWriteOptions write_options;
  write_options.sync = opt.fsync;
  write_options.create_parent = !staging_created_;
  staging_created_ = true;  // so that a failure below removes the folder again
  ARROW_RETURN_NOT_OK(WriteFileAtomic(
      filesystem, lake_->PathOf(TxnDir() + "/" + std::string(kIntentName)),
      SerializeIntentRecord(intent), write_options));

  // 5. Point of no return: from here on, recovery rolls this commit forward.
  state_ = State::kHalfApplied;
  ARROW_RETURN_NOT_OK(
      lake_->ApplyIntent(intent, TxnDir(), /*recovering=*/false, nullptr));
  // The day's staging folder belongs to this transaction alone (one writer per day).
  if (auto st =
          DeleteDirIfExists(filesystem, lake_->PathOf(StagingDayDir(dataset_, day_)));
      !st.ok()) {
    spdlog::warn("lake: {}: committed, but could not remove the staging folder: {}",
                 Where(), st.ToString());
  }
  state_ = State::kCommitted;
  return std::move(rec);
}

arrow::Status DayTransaction::Abort() {
  switch (state_) {
    case State::kCommitted:
      return arrow::Status::Invalid(Where(), ": Abort after a successful Commit");
    case State::kHalfApplied:
      return arrow::Status::Invalid(
          Where(), ": Abort after a half-applied Commit; recovery finishes it");
    case State::kAborted:
    case State::kFailed:
      return arrow::Status::OK();
    case State::kOpen:
      break;
  }
  auto st = DiscardStaging();
  Finish(State::kAborted);
  return st;
}

arrow::Status DayTransaction::DiscardStaging() {
  std::vector<std::shared_ptr<StagedFile>> all = files_;
  if (quarantine_) all.push_back(quarantine_);
  for (const auto& f : all) {
    if (!f->closed) {
      f->closed = true;
      (void)f->inner->Abort();
      f->inner.reset();
    }
  }
  if (!staging_created_) return arrow::Status::OK();
  auto st = DeleteDirIfExists(*lake_->fs_, lake_->PathOf(StagingDayDir(dataset_, day_)));
  if (!st.ok()) {
    return st.WithMessage(Where(), ": could not delete staging folder '",
                          lake_->PathOf(TxnDir()), "': ", st.message(),
                          "; it is invisible to readers and recovery deletes it");
  }
  return st;
}

void DayTransaction::Finish(State state) {
  state_ = state;
  for (const auto& f : files_) f->sealed = true;
  if (quarantine_) quarantine_->sealed = true;
  lake_->Release(dataset_, day_);
}

// ---------------------------------------------------------------------------------------
// Lake: construction and paths

Lake::Lake(Private, std::shared_ptr<fs::FileSystem> filesystem, std::string base_path,
           LakeOptions options)
    : fs_(std::move(filesystem)), base_(std::move(base_path)), options_(options) {
  while (base_.size() > 1 && base_.back() == '/') base_.pop_back();
}

arrow::Result<std::shared_ptr<Lake>> Lake::Open(const std::string& uri_or_path,
                                                const LakeOptions& options) {
  std::string path;
  auto filesystem = fs::FileSystemFromUriOrPath(uri_or_path, &path);
  if (!filesystem.ok()) {
    return filesystem.status().WithMessage(
        "cannot open lake '", uri_or_path, "': ", filesystem.status().message(),
        "; give an absolute path or a URI such as s3://bucket/prefix");
  }
  return Make(*std::move(filesystem), std::move(path), options);
}

arrow::Result<std::shared_ptr<Lake>> Lake::Make(
    std::shared_ptr<fs::FileSystem> filesystem, std::string base_path,
    const LakeOptions& options) {
  ARROW_RETURN_NOT_OK(options.Validate());
  if (!filesystem) return arrow::Status::Invalid("Lake::Make: null file system");
  auto lake = std::make_shared<Lake>(Private{}, std::move(filesystem),
                                     std::move(base_path), options);
  ARROW_RETURN_NOT_OK(lake->Init());
  return lake;
}

arrow::Status Lake::Init() {
  if (options_.create_root && !base_.empty() && base_ != "/") {
    if (auto st = fs_->CreateDir(base_, /*recursive=*/true); !st.ok()) {
      return st.WithMessage("cannot create lake root '", base_, "': ", st.message());
    }
  }
  if (options_.recover_on_open) {
    ARROW_ASSIGN_OR_RAISE(auto report, RecoverAll());
    if (!report.empty()) {
      spdlog::info(
          "lake: recovery at open: {} rolled forward, {} rolled back, {} dropped",
          report.Count(RecoveryAction::Kind::kRolledForward),
          report.Count(RecoveryAction::Kind::kRolledBack),
          report.Count(RecoveryAction::Kind::kDropped));
    }
  }
  return arrow::Status::OK();
}

std::string Lake::PathOf(std::string_view relative) const {
  return JoinPath(base_, relative);
}

std::string Lake::CommitRecordPath(std::string_view dataset, Date day) {
  return fmt::format("{}/{}.json", CommitsDir(dataset), FormatDate(day));
}

std::string Lake::WatermarkPath(std::string_view dataset) {
  return fmt::format("{}/watermark.json", MetaDir(dataset));
}

std::string Lake::QuarantinePath(std::string_view dataset, Date day) {
  return fmt::format("{}/{}/{}.parquet", kQuarantineDir, dataset, FormatDate(day));
}

arrow::Status Lake::SyncDirIfEnabled(const std::string& path) {
  if (!options_.fsync) return arrow::Status::OK();
  return SyncDir(*fs_, path);
}

arrow::Status Lake::Acquire(const std::string& dataset, Date day) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!open_.emplace(dataset, ToDate32(day)).second) {
    return arrow::Status::Invalid(
        lake::Where(dataset, day),
        ": another transaction or recovery of this day is running in this process; "
        "commit or abort it first");
  }
  return arrow::Status::OK();
}

void Lake::Release(const std::string& dataset, Date day) {
  std::lock_guard<std::mutex> lock(mu_);
  open_.erase(DayKey(dataset, ToDate32(day)));
}

bool Lake::IsOpen(const std::string& dataset, Date day) {
  std::lock_guard<std::mutex> lock(mu_);
  return open_.count(DayKey(dataset, ToDate32(day))) > 0;
}

arrow::Result<std::unique_ptr<DayTransaction>> Lake::BeginDay(
    std::string_view dataset_view, Date day) {
  ARROW_RETURN_NOT_OK(ValidateDatasetName(dataset_view));
  std::string dataset(dataset_view);
  ARROW_RETURN_NOT_OK(Acquire(dataset, day));
  auto recovered = RecoverDayUnlocked(dataset, day);
  if (!recovered.ok()) {
    Release(dataset, day);
    return recovered.status().WithMessage(
        "cannot start ", lake::Where(dataset, day),
        ": an interrupted earlier commit of the day could not be recovered: ",
        recovered.status().message());
  }
  // The constructor is private; DayTransaction is a friend-constructed resource.
  return std::unique_ptr<DayTransaction>(
      new DayTransaction(shared_from_this(), std::move(dataset), day, NewTxnId()));
}

// ---------------------------------------------------------------------------------------
// Lake: the protocol's second half (shared by Commit and recovery)

arrow::Status Lake::ApplyIntent(const IntentRecord& intent, const std::string& txn_dir,
                                bool recovering, RecoveryAction* action) {
  const CommitRecord& rec = intent.record;
  const std::string record_path = PathOf(CommitRecordPath(rec.dataset, rec.day));
  const std::string txn_path = PathOf(txn_dir);

  // Recovery: if this transaction's record is already in place, only the cleanup is left.
  bool record_done = false;
  bool record_present = !intent.previous_txn.empty();
  if (recovering) {
    ARROW_ASSIGN_OR_RAISE(auto text, ReadFileIfExists(*fs_, record_path));
    record_present = text.has_value();
    if (text) {
      auto existing = ParseCommitRecord(*text, record_path);
      record_done = existing.ok() && existing->txn == rec.txn;
    }
  }

  if (!record_done) {
    // Retire the previous record first, so no record describes the day while its files
    // are being replaced.
    if (record_present) {
      ARROW_RETURN_NOT_OK(DeleteFileIfExists(*fs_, record_path));
      ARROW_RETURN_NOT_OK(SyncDirIfEnabled(ParentPath(record_path)));
    }

    std::map<std::string, const FileEntry*> entry_of;
    for (const auto& f : rec.files) entry_of[rec.dataset + "/" + f.path] = &f;
    if (rec.quarantine) entry_of[rec.quarantine->path] = &*rec.quarantine;

    std::set<std::string> touched_dirs;
    std::unordered_set<std::string> ensured_dirs;
    for (const auto& m : intent.moves) {
      const std::string staged = JoinPath(txn_path, m.staged);
      const std::string final_path = PathOf(m.final_path);
      if (recovering) {
        ARROW_ASSIGN_OR_RAISE(auto info, fs_->GetFileInfo(staged));
        if (info.type() == fs::FileType::NotFound) {
          // Moved before the interruption, unless something removed it since.
          auto it = entry_of.find(m.final_path);
          ARROW_ASSIGN_OR_RAISE(auto there, fs_->GetFileInfo(final_path));
          std::string why;
          if (it == entry_of.end()) {
            why = "the intent moves '" + m.final_path + "', which its record lacks";
          } else if (there.type() != fs::FileType::File) {
            why = "staged file '" + m.staged + "' and its destination '" + m.final_path +
                  "' are both missing";
          } else if (there.size() != it->second->size) {
            why = "'" + m.final_path + "' has " + std::to_string(there.size()) +
                  " bytes, the record says " + std::to_string(it->second->size);
          } else if (options_.verify_moved_files_on_recovery) {
            ARROW_ASSIGN_OR_RAISE(
                auto digest, DigestFile(*fs_, final_path, options_.read_buffer_bytes));
            if (digest.crc32 != it->second->crc32) {
              why = "'" + m.final_path + "' has CRC-32 " + FormatCrc32(digest.crc32) +
                    ", the record says " + FormatCrc32(it->second->crc32);
            }
          }
          if (!why.empty()) {
            ARROW_RETURN_NOT_OK(DropDay(intent, txn_dir, why));
            if (action != nullptr) {
              action->kind = RecoveryAction::Kind::kDropped;
              action->detail = why;
            }
            return arrow::Status::OK();
          }
          continue;
        }
      }
      const std::string parent = ParentPath(final_path);
      if (touched_dirs.insert(parent).second) {
        ARROW_RETURN_NOT_OK(EnsureDir(*fs_, parent, &ensured_dirs));
      }
      ARROW_RETURN_NOT_OK(fs_->Move(staged, final_path));
    }

    // Files of the previous commit that the new one does not have.
    for (const auto& p : intent.previous_files) {
      if (entry_of.count(p) > 0) continue;
      const std::string path = PathOf(p);
      ARROW_RETURN_NOT_OK(DeleteFileIfExists(*fs_, path));
      touched_dirs.insert(ParentPath(path));
    }
    if (options_.fsync &&
        static_cast<int64_t>(touched_dirs.size()) > options_.sync_batch_files) {
      ARROW_RETURN_NOT_OK(SyncFileSystem(*fs_, base_));
    } else {
      for (const auto& dir : touched_dirs) ARROW_RETURN_NOT_OK(SyncDirIfEnabled(dir));
    }

    AtomicWriteOptions write_options;
    write_options.sync = options_.fsync;
    ARROW_RETURN_NOT_OK(
        WriteFileAtomic(*fs_, record_path, SerializeCommitRecord(rec), write_options));
    if (options_.write_history) AppendHistory(rec);
  }

  if (action != nullptr) action->kind = RecoveryAction::Kind::kRolledForward;
  // Commit removes the whole staging folder of the day itself.
  if (recovering) ARROW_RETURN_NOT_OK(DeleteDirIfExists(*fs_, txn_path));
  return arrow::Status::OK();
}

arrow::Status Lake::DropDay(const IntentRecord& intent, const std::string& txn_dir,
                            const std::string& why) {
  const CommitRecord& rec = intent.record;
  spdlog::error(
      "lake: {}: interrupted commit {} cannot be finished ({}); removing the day "
      "(record and files) so that nothing inconsistent stays visible; re-ingest it",
      lake::Where(rec.dataset, rec.day), rec.txn, why);
  ARROW_RETURN_NOT_OK(
      DeleteFileIfExists(*fs_, PathOf(CommitRecordPath(rec.dataset, rec.day))));
  for (const auto& m : intent.moves) {
    ARROW_RETURN_NOT_OK(DeleteFileIfExists(*fs_, PathOf(m.final_path)));
  }
  for (const auto& p : intent.previous_files) {
    ARROW_RETURN_NOT_OK(DeleteFileIfExists(*fs_, PathOf(p)));
  }
  return DeleteDirIfExists(*fs_, PathOf(txn_dir));
}

void Lake::AppendHistory(const CommitRecord& record) {
  const std::string path =
      PathOf(MetaDir(record.dataset) + "/" + std::string(kHistoryName));
  auto out = fs_->OpenAppendStream(path);
  if (!out.ok()) {
    if (!out.status().IsNotImplemented()) {
      spdlog::warn("lake: cannot append to '{}': {}", path, out.status().ToString());
    }
    return;
  }
  std::string line = CommitRecordToJson(record).dump() + "\n";
  auto st = (*out)->Write(line.data(), static_cast<int64_t>(line.size()));
  auto close = (*out)->Close();
  if (st.ok()) st = close;
  if (!st.ok()) spdlog::warn("lake: cannot append to '{}': {}", path, st.ToString());
}

// ---------------------------------------------------------------------------------------
// Lake: recovery

arrow::Result<RecoveryReport> Lake::RecoverDay(std::string_view dataset_view, Date day) {
  ARROW_RETURN_NOT_OK(ValidateDatasetName(dataset_view));
  std::string dataset(dataset_view);
  ARROW_RETURN_NOT_OK(Acquire(dataset, day));
  auto report = RecoverDayUnlocked(dataset, day);
  Release(dataset, day);
  return report;
}

arrow::Result<RecoveryReport> Lake::RecoverDayUnlocked(const std::string& dataset,
                                                       Date day) {
  RecoveryReport report;
  ARROW_RETURN_NOT_OK(RemoveDayTempFiles(dataset, day, &report));
  const std::string day_dir = PathOf(StagingDayDir(dataset, day));
  fs::FileSelector selector;
  selector.base_dir = day_dir;
  selector.allow_not_found = true;
  ARROW_ASSIGN_OR_RAISE(auto entries, ListFiles(*fs_, selector));
  if (entries.empty()) return report;
  std::sort(
      entries.begin(), entries.end(),
      [](const fs::FileInfo& a, const fs::FileInfo& b) { return a.path() < b.path(); });

  arrow::Status first_error;
  bool rolled_forward = false;
  bool dropped = false;
  for (const auto& entry : entries) {
    if (entry.type() != fs::FileType::Directory) {
      ARROW_RETURN_NOT_OK(DeleteFileIfExists(*fs_, entry.path()));
      ++report.temp_files_removed;
      continue;
    }
    RecoveryAction action{RecoveryAction::Kind::kRolledBack, dataset, day,
                          std::string(BaseName(entry.path())), ""};
    const std::string txn_dir = StagingDayDir(dataset, day) + "/" + action.txn;
    const std::string intent_path = JoinPath(entry.path(), kIntentName);
    ARROW_ASSIGN_OR_RAISE(auto text, ReadFileIfExists(*fs_, intent_path));
    if (!text) {
      // Never reached the point of no return: the previous state is intact.
      ARROW_RETURN_NOT_OK(DeleteDirIfExists(*fs_, entry.path()));
      spdlog::info("lake: {}: rolled back interrupted commit {}",
                   lake::Where(dataset, day), action.txn);
      report.actions.push_back(std::move(action));
      continue;
    }
    auto intent = ParseIntentRecord(*text, intent_path);
    arrow::Status st = intent.status();
    if (st.ok()) st = CheckIntent(*intent, dataset, day, action.txn, intent_path);
    if (st.ok()) st = ApplyIntent(*intent, txn_dir, /*recovering=*/true, &action);
    if (!st.ok()) {
      spdlog::error("lake: {}: recovery of {} failed: {}", lake::Where(dataset, day),
                    action.txn, st.ToString());
      if (first_error.ok()) first_error = st;
      continue;
    }
    if (action.kind == RecoveryAction::Kind::kDropped) {
      dropped = true;
    } else {
      rolled_forward = true;
      spdlog::info("lake: {}: rolled forward interrupted commit {}",
                   lake::Where(dataset, day), action.txn);
    }
    report.actions.push_back(std::move(action));
  }
  ARROW_RETURN_NOT_OK(first_error);
  ARROW_RETURN_NOT_OK(DeleteDirIfExists(*fs_, day_dir));

  if (dropped) {
    ARROW_RETURN_NOT_OK(RebuildWatermark(dataset).status());
  } else if (rolled_forward) {
    ARROW_RETURN_NOT_OK(AdvanceWatermark(dataset, day).status());
  }
  return report;
}

arrow::Result<RecoveryReport> Lake::Recover(std::string_view dataset_view) {
  ARROW_RETURN_NOT_OK(ValidateDatasetName(dataset_view));
  std::string dataset(dataset_view);
  RecoveryReport report;
  arrow::Status first_error;

  fs::FileSelector staging;
  staging.base_dir = PathOf(StagingDatasetDir(dataset));
  staging.allow_not_found = true;
  ARROW_ASSIGN_OR_RAISE(auto days, fs_->GetFileInfo(staging));
  for (const auto& entry : days) {
    auto day = ParseDate(BaseName(entry.path()));
    if (entry.type() != fs::FileType::Directory || !day.ok()) {
      spdlog::warn("lake: ignoring unexpected '{}' in the staging area", entry.path());
      continue;
    }
    if (!Acquire(dataset, *day).ok())
      continue;  // open in this process: not ours to touch
    auto one = RecoverDayUnlocked(dataset, *day);
    Release(dataset, *day);
    if (one.ok()) {
      report.Append(*one);
    } else if (first_error.ok()) {
      first_error = one.status();
    }
  }

  // Leftover temp files of interrupted atomic writes (records, watermark). A temp file of
  // a day open in this process may still be in use; the watermark lock covers the rest.
  {
    std::lock_guard<std::mutex> lock(watermark_mu_);
    fs::FileSelector meta;
    meta.base_dir = PathOf(MetaDir(dataset));
    meta.allow_not_found = true;
    meta.recursive = true;
    ARROW_ASSIGN_OR_RAISE(auto files, ListFiles(*fs_, meta));
    for (const auto& f : files) {
      std::string_view name = BaseName(f.path());
      if (f.type() != fs::FileType::File || name.find(kTempMarker) == std::string::npos) {
        continue;
      }
      if (auto d = ParseDate(name.substr(0, std::min<std::size_t>(10, name.size())));
          d.ok() && IsOpen(dataset, *d)) {
        continue;
      }
      ARROW_RETURN_NOT_OK(DeleteFileIfExists(*fs_, f.path()));
      ++report.temp_files_removed;
    }
  }
  ARROW_RETURN_NOT_OK(first_error);
  ARROW_RETURN_NOT_OK(AdvanceWatermark(dataset, std::nullopt).status());
  return report;
}

// Leftovers of interrupted atomic writes that only this day's commit could have made (its
// commit record's temp files: the day is held, so no live writer owns them), plus
// watermark temp files old enough that no live writer can still own them (a watermark
// write takes milliseconds). Per-day recovery runs at every BeginDay, so `qlake ingest`
// cleans these up without the whole-dataset Recover, which is only safe for a single
// writer.
arrow::Status Lake::RemoveDayTempFiles(const std::string& dataset, Date day,
                                       RecoveryReport* report) {
  constexpr auto kStaleAfter = std::chrono::minutes(10);
  const std::string record_prefix = FormatDate(day) + ".json" + std::string(kTempMarker);
  const std::string watermark_prefix = "watermark.json";
  fs::FileSelector meta;
  meta.base_dir = PathOf(MetaDir(dataset));
  meta.allow_not_found = true;
  meta.recursive = true;
  ARROW_ASSIGN_OR_RAISE(auto files, ListFiles(*fs_, meta));
  const auto now = std::chrono::system_clock::now();
  for (const auto& f : files) {
    if (f.type() != fs::FileType::File) continue;
    std::string_view name = BaseName(f.path());
    if (name.find(kTempMarker) == std::string_view::npos) continue;
    bool mine = name.starts_with(record_prefix);
    bool stale_watermark =
        name.starts_with(watermark_prefix) && f.mtime() != fs::kNoTime &&
        now - std::chrono::time_point_cast<std::chrono::system_clock::duration>(
                  f.mtime()) >
            kStaleAfter;
    if (!mine && !stale_watermark) continue;
    ARROW_RETURN_NOT_OK(DeleteFileIfExists(*fs_, f.path()));
    ++report->temp_files_removed;
  }
  return arrow::Status::OK();
}

arrow::Result<RecoveryReport> Lake::RecoverAll() {
  std::set<std::string> names;
  for (std::string_view dir : {kStagingDir, kMetaDir}) {
    fs::FileSelector selector;
    selector.base_dir = PathOf(dir);
    selector.allow_not_found = true;
    ARROW_ASSIGN_OR_RAISE(auto entries, ListFiles(*fs_, selector));
    ARROW_ASSIGN_OR_RAISE(auto found, DatasetFolders(*fs_, PathOf(dir), entries));
    names.insert(found.begin(), found.end());
  }
  RecoveryReport report;
  for (const auto& name : names) {
    ARROW_ASSIGN_OR_RAISE(auto one, Recover(name));
    report.Append(one);
  }
  return report;
}

// ---------------------------------------------------------------------------------------
// Lake: reading

arrow::Result<std::vector<std::string>> Lake::ListDatasets() {
  fs::FileSelector selector;
  selector.base_dir = PathOf(kMetaDir);
  selector.allow_not_found = true;
  ARROW_ASSIGN_OR_RAISE(auto entries, ListFiles(*fs_, selector));
  ARROW_ASSIGN_OR_RAISE(auto names, DatasetFolders(*fs_, PathOf(kMetaDir), entries));
  std::sort(names.begin(), names.end());
  return names;
}

arrow::Result<std::vector<Date>> Lake::ListCommittedDays(std::string_view dataset) {
  ARROW_RETURN_NOT_OK(ValidateDatasetName(dataset));
  fs::FileSelector selector;
  selector.base_dir = PathOf(CommitsDir(dataset));
  selector.allow_not_found = true;
  ARROW_ASSIGN_OR_RAISE(auto entries, ListFiles(*fs_, selector));
  std::vector<Date> days;
  for (const auto& e : entries) {
    if (e.type() != fs::FileType::File) continue;
    if (auto d = RecordDay(BaseName(e.path()))) days.push_back(*d);
  }
  std::sort(days.begin(), days.end());
  return days;
}

arrow::Result<std::vector<CommitRecord>> Lake::ListCommits(std::string_view dataset) {
  ARROW_ASSIGN_OR_RAISE(auto days, ListCommittedDays(dataset));
  std::vector<CommitRecord> records;
  records.reserve(days.size());
  for (Date d : days) {
    ARROW_ASSIGN_OR_RAISE(auto rec, GetCommit(dataset, d));
    if (rec) records.push_back(std::move(*rec));  // absent: re-committed meanwhile
  }
  return records;
}

arrow::Result<std::optional<CommitRecord>> Lake::GetCommit(std::string_view dataset,
                                                           Date day) {
  ARROW_RETURN_NOT_OK(ValidateDatasetName(dataset));
  const std::string path = PathOf(CommitRecordPath(dataset, day));
  ARROW_ASSIGN_OR_RAISE(auto text, ReadFileIfExists(*fs_, path));
  if (!text) return std::nullopt;
  auto rec = ParseCommitRecord(*text, path);
  if (!rec.ok()) {
    return rec.status().WithMessage(rec.status().message(), "; the commit record of ",
                                    lake::Where(dataset, day),
                                    " is damaged: delete it and re-ingest the day");
  }
  if (rec->dataset != dataset || rec->day != day) {
    return arrow::Status::Invalid(
        path, ": record is for ", lake::Where(rec->dataset, rec->day),
        "; delete it and re-ingest ", lake::Where(dataset, day));
  }
  return std::optional<CommitRecord>(std::move(*rec));
}

arrow::Status Lake::Verify(std::string_view dataset, Date day,
                           const VerifyOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto rec, GetCommit(dataset, day));
  if (!rec) {
    return arrow::Status::KeyError(lake::Where(dataset, day), " is not committed");
  }
  std::vector<std::string> problems;
  auto check = [&](const std::string& relative, const FileEntry& f) -> arrow::Status {
    const std::string path = PathOf(relative);
    ARROW_ASSIGN_OR_RAISE(auto info, fs_->GetFileInfo(path));
    if (info.type() != fs::FileType::File) {
      problems.push_back(fmt::format("'{}' is missing", relative));
    } else if (info.size() != f.size) {
      problems.push_back(fmt::format("'{}' has {} bytes, the record says {}", relative,
                                     info.size(), f.size));
    } else if (options.checksums) {
      ARROW_ASSIGN_OR_RAISE(auto digest,
                            DigestFile(*fs_, path, options_.read_buffer_bytes));
      if (digest.crc32 != f.crc32) {
        problems.push_back(fmt::format("'{}' has CRC-32 {}, the record says {}", relative,
                                       FormatCrc32(digest.crc32), FormatCrc32(f.crc32)));
      }
    }
    return arrow::Status::OK();
  };
  for (const auto& f : rec->files) {
    ARROW_RETURN_NOT_OK(check(std::string(dataset) + "/" + f.path, f));
  }
  if (rec->quarantine)
    ARROW_RETURN_NOT_OK(check(rec->quarantine->path, *rec->quarantine));

  fs::FileSelector staging;
  staging.base_dir = PathOf(StagingDayDir(dataset, day));
  staging.allow_not_found = true;
  ARROW_ASSIGN_OR_RAISE(auto pending, fs_->GetFileInfo(staging));
  if (!pending.empty()) {
    problems.push_back(fmt::format(
        "an interrupted commit ({}) is pending in the staging area; run recovery",
        BaseName(pending.front().path())));
  }
  if (problems.empty()) return arrow::Status::OK();
  std::string joined;
  for (const auto& p : problems) {
    if (!joined.empty()) joined += "; ";
    joined += p;
  }
  return arrow::Status::Invalid(lake::Where(dataset, day), ": ", problems.size(),
                                " problem(s): ", joined,
                                ". Re-ingest the day to repair it");
}

// ---------------------------------------------------------------------------------------
// Lake: watermark

arrow::Result<std::optional<Watermark>> Lake::ReadStoredWatermark(
    const std::string& dataset, bool* main_ok) {
  *main_ok = false;
  const std::string main_path = PathOf(WatermarkPath(dataset));
  const std::string backup_path = main_path + ".bak";
  for (const auto& path : {main_path, backup_path}) {
    ARROW_ASSIGN_OR_RAISE(auto text, ReadFileIfExists(*fs_, path));
    if (!text) continue;
    auto w = ParseWatermark(*text, dataset, path);
    if (w.ok()) {
      *main_ok = path == main_path;
      if (path == backup_path) {
        spdlog::warn("lake: {} is missing or damaged; using its backup copy", main_path);
      }
      return std::optional<Watermark>(std::move(*w));
    }
    spdlog::warn("lake: {}", w.status().message());
  }
  return std::nullopt;
}

arrow::Status Lake::StoreWatermark(const Watermark& w) {
  // Backup first, then main: each write is atomic, and the pair is never both torn.
  const std::string main_path = PathOf(WatermarkPath(w.dataset));
  const std::string text = SerializeWatermark(w);
  AtomicWriteOptions write_options;
  write_options.sync = options_.fsync;
  ARROW_RETURN_NOT_OK(WriteFileAtomic(*fs_, main_path + ".bak", text, write_options));
  return WriteFileAtomic(*fs_, main_path, text, write_options);
}

arrow::Result<Watermark> Lake::RebuildWatermarkLocked(const std::string& dataset) {
  ARROW_ASSIGN_OR_RAISE(auto days, ListCommittedDays(dataset));
  Watermark w = ComputeWatermark(dataset, CalendarForDataset(dataset), std::move(days));
  w.updated_at = UtcNowIso8601();
  if (!w.empty()) {
    ARROW_RETURN_NOT_OK(StoreWatermark(w));
  } else {
    // Nothing committed: no watermark files (and none to mislead anyone).
    const std::string main_path = PathOf(WatermarkPath(dataset));
    for (const auto& path : {main_path, main_path + ".bak"}) {
      ARROW_ASSIGN_OR_RAISE(auto info, fs_->GetFileInfo(path));
      if (info.type() != fs::FileType::NotFound) {
        ARROW_RETURN_NOT_OK(DeleteFileIfExists(*fs_, path));
      }
    }
  }
  return w;
}

arrow::Result<Watermark> Lake::RebuildWatermark(std::string_view dataset) {
  ARROW_RETURN_NOT_OK(ValidateDatasetName(dataset));
  std::lock_guard<std::mutex> lock(watermark_mu_);
  return RebuildWatermarkLocked(std::string(dataset));
}

arrow::Result<Watermark> Lake::AdvanceWatermark(const std::string& dataset,
                                                std::optional<Date> day) {
  std::lock_guard<std::mutex> lock(watermark_mu_);
  bool main_ok = false;
  ARROW_ASSIGN_OR_RAISE(auto stored, ReadStoredWatermark(dataset, &main_ok));
  if (!stored || stored->empty() || (day && *day < *stored->first_day)) {
    return RebuildWatermarkLocked(dataset);
  }
  Watermark w = *stored;
  const auto cal = CalendarForDataset(dataset);
  bool changed = false;
  for (;;) {
    auto next = NextExpectedDay(cal, *w.last_contiguous);
    if (!next.ok()) break;
    ARROW_ASSIGN_OR_RAISE(auto info,
                          fs_->GetFileInfo(PathOf(CommitRecordPath(dataset, *next))));
    if (info.type() != fs::FileType::File) break;
    w.last_contiguous = *next;
    changed = true;
  }
  // Rewrite also when only the backup was readable, so the main file is good again.
  if (changed || !main_ok) {
    w.updated_at = UtcNowIso8601();
    ARROW_RETURN_NOT_OK(StoreWatermark(w));
  }
  return w;
}

arrow::Result<Watermark> Lake::GetWatermark(std::string_view dataset_view) {
  ARROW_RETURN_NOT_OK(ValidateDatasetName(dataset_view));
  std::string dataset(dataset_view);
  std::lock_guard<std::mutex> lock(watermark_mu_);
  bool main_ok = false;
  ARROW_ASSIGN_OR_RAISE(auto stored, ReadStoredWatermark(dataset, &main_ok));
  if (stored) return *stored;
  // Both copies missing or damaged: derive it. Storing it is a courtesy; a read-only
  // lake still gets the right answer.
  ARROW_ASSIGN_OR_RAISE(auto days, ListCommittedDays(dataset));
  Watermark w = ComputeWatermark(dataset, CalendarForDataset(dataset), std::move(days));
  w.updated_at = UtcNowIso8601();
  if (!w.empty()) {
    if (auto st = StoreWatermark(w); !st.ok()) {
      spdlog::warn("lake: could not store the rebuilt watermark of {}: {}", dataset,
                   st.ToString());
    }
  }
  return w;
}

}  // namespace qlake::lake

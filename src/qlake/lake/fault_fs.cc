#include "qlake/lake/fault_fs.h"

#include <arrow/buffer.h>
#include <arrow/io/interfaces.h>

namespace qlake::lake::testing {

namespace fs = arrow::fs;

class FaultInjectingFileSystem::FaultyOutputStream final
    : public arrow::io::OutputStream {
 public:
  FaultyOutputStream(FaultInjectingFileSystem* owner,
                     std::shared_ptr<arrow::io::OutputStream> inner, std::string path)
      : owner_(owner), inner_(std::move(inner)), path_(std::move(path)) {}

  arrow::Status Close() override {
    if (closed_) return arrow::Status::OK();
    if (owner_->Next() != Verdict::kProceed) {
      // The bytes never became a complete file: leave it as it is (a crashed process
      // does not close its files either), but stop using it.
      closed_ = true;
      return owner_->InjectedError("Close", path_);
    }
    closed_ = true;
    return inner_->Close();
  }
  arrow::Status Abort() override {
    closed_ = true;
    if (owner_->crashed()) return owner_->InjectedError("Abort", path_);
    return inner_->Abort();
  }
  arrow::Result<int64_t> Tell() const override { return inner_->Tell(); }
  bool closed() const override { return closed_; }

  arrow::Status Write(const void* data, int64_t nbytes) override {
    switch (owner_->Next()) {
      case Verdict::kProceed:
        return inner_->Write(data, nbytes);
      case Verdict::kFailAfterPartialEffect:
        ARROW_RETURN_NOT_OK(inner_->Write(data, nbytes / 2));
        ARROW_RETURN_NOT_OK(inner_->Flush());
        return owner_->InjectedError("Write", path_);
      case Verdict::kFail:
        break;
    }
    return owner_->InjectedError("Write", path_);
  }
  arrow::Status Write(const std::shared_ptr<arrow::Buffer>& data) override {
    return Write(data->data(), data->size());
  }
  arrow::Status Flush() override {
    if (owner_->Next() != Verdict::kProceed) return owner_->InjectedError("Flush", path_);
    return inner_->Flush();
  }

 private:
  FaultInjectingFileSystem* owner_;  // outlives its streams in tests
  std::shared_ptr<arrow::io::OutputStream> inner_;
  std::string path_;
  bool closed_ = false;
};

FaultInjectingFileSystem::FaultInjectingFileSystem(std::shared_ptr<fs::FileSystem> base)
    : base_(std::move(base)) {}

FaultInjectingFileSystem::~FaultInjectingFileSystem() = default;

void FaultInjectingFileSystem::Arm(int64_t fail_at, Mode mode) {
  calls_ = 0;
  fail_at_ = fail_at;
  mode_ = static_cast<int>(mode);
  crashed_ = false;
  fired_ = false;
}

void FaultInjectingFileSystem::Heal() {
  fail_at_ = 0;
  crashed_ = false;
}

FaultInjectingFileSystem::Verdict FaultInjectingFileSystem::Next() {
  const int64_t n = ++calls_;
  if (crashed_) return Verdict::kFail;
  const int64_t at = fail_at_;
  if (at == 0 || n != at) return Verdict::kProceed;
  fired_ = true;
  const auto mode = static_cast<Mode>(mode_.load());
  if (mode == Mode::kFailOnce) return Verdict::kFail;
  crashed_ = true;
  return Verdict::kFailAfterPartialEffect;
}

arrow::Status FaultInjectingFileSystem::InjectedError(const char* what,
                                                      const std::string& path) const {
  return arrow::Status::IOError("injected fault in ", what, " of '", path, "'",
                                crashed_ ? " (crashed)" : "");
}

bool FaultInjectingFileSystem::Equals(const fs::FileSystem& other) const {
  return this == &other;
}

arrow::Result<std::string> FaultInjectingFileSystem::NormalizePath(std::string path) {
  return base_->NormalizePath(std::move(path));
}

arrow::Result<fs::FileInfo> FaultInjectingFileSystem::GetFileInfo(
    const std::string& path) {
  return base_->GetFileInfo(path);
}

arrow::Result<fs::FileInfoVector> FaultInjectingFileSystem::GetFileInfo(
    const fs::FileSelector& select) {
  return base_->GetFileInfo(select);
}

arrow::Status FaultInjectingFileSystem::CreateDir(const std::string& path,
                                                  bool recursive) {
  if (Next() != Verdict::kProceed) return InjectedError("CreateDir", path);
  return base_->CreateDir(path, recursive);
}

arrow::Status FaultInjectingFileSystem::DeleteDir(const std::string& path) {
  if (Next() != Verdict::kProceed) return InjectedError("DeleteDir", path);
  return base_->DeleteDir(path);
}

arrow::Status FaultInjectingFileSystem::DeleteDirContents(const std::string& path,
                                                          bool missing_dir_ok) {
  if (Next() != Verdict::kProceed) return InjectedError("DeleteDirContents", path);
  return base_->DeleteDirContents(path, missing_dir_ok);
}

arrow::Status FaultInjectingFileSystem::DeleteRootDirContents() {
  if (Next() != Verdict::kProceed) return InjectedError("DeleteRootDirContents", "/");
  return base_->DeleteRootDirContents();
}

arrow::Status FaultInjectingFileSystem::DeleteFile(const std::string& path) {
  if (Next() != Verdict::kProceed) return InjectedError("DeleteFile", path);
  return base_->DeleteFile(path);
}

arrow::Status FaultInjectingFileSystem::Move(const std::string& src,
                                             const std::string& dest) {
  switch (Next()) {
    case Verdict::kProceed:
      return base_->Move(src, dest);
    case Verdict::kFailAfterPartialEffect:
      if (static_cast<Mode>(mode_.load()) == Mode::kCrashMidMove) {
        ARROW_RETURN_NOT_OK(base_->CopyFile(src, dest));
      }
      break;
    case Verdict::kFail:
      break;
  }
  return InjectedError("Move", src);
}

arrow::Status FaultInjectingFileSystem::CopyFile(const std::string& src,
                                                 const std::string& dest) {
  if (Next() != Verdict::kProceed) return InjectedError("CopyFile", src);
  return base_->CopyFile(src, dest);
}

arrow::Result<std::shared_ptr<arrow::io::InputStream>>
FaultInjectingFileSystem::OpenInputStream(const std::string& path) {
  return base_->OpenInputStream(path);
}

arrow::Result<std::shared_ptr<arrow::io::RandomAccessFile>>
FaultInjectingFileSystem::OpenInputFile(const std::string& path) {
  return base_->OpenInputFile(path);
}

arrow::Result<std::shared_ptr<arrow::io::OutputStream>>
FaultInjectingFileSystem::OpenOutputStream(
    const std::string& path, const std::shared_ptr<const arrow::KeyValueMetadata>& md) {
  if (Next() != Verdict::kProceed) return InjectedError("OpenOutputStream", path);
  ARROW_ASSIGN_OR_RAISE(auto inner, base_->OpenOutputStream(path, md));
  return std::make_shared<FaultyOutputStream>(this, std::move(inner), path);
}

arrow::Result<std::shared_ptr<arrow::io::OutputStream>>
FaultInjectingFileSystem::OpenAppendStream(
    const std::string& path, const std::shared_ptr<const arrow::KeyValueMetadata>& md) {
  if (Next() != Verdict::kProceed) return InjectedError("OpenAppendStream", path);
  ARROW_ASSIGN_OR_RAISE(auto inner, base_->OpenAppendStream(path, md));
  return std::make_shared<FaultyOutputStream>(this, std::move(inner), path);
}

}  // namespace qlake::lake::testing

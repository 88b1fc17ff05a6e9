#include "qlake/lake/fs_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/filesystem/localfs.h>
#include <arrow/io/interfaces.h>
#include <date/date.h>
#include <fmt/format.h>
#include <isa-l/crc.h>

namespace qlake::lake {

namespace fs = arrow::fs;

std::string JoinPath(std::string_view a, std::string_view b) {
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  if (a.empty()) return std::string(b);
  std::string out(a);
  if (b.empty()) return out;
  if (out.back() != '/') out.push_back('/');
  out.append(b);
  return out;
}

std::string ParentPath(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return "";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string_view BaseName(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::optional<std::string> LocalPathOf(const fs::FileSystem& filesystem,
                                       const std::string& path) {
  if (dynamic_cast<const fs::LocalFileSystem*>(&filesystem) != nullptr) return path;
  if (const auto* sub = dynamic_cast<const fs::SubTreeFileSystem*>(&filesystem)) {
    return LocalPathOf(*sub->base_fs(), JoinPath(sub->base_path(), path));
  }
  return std::nullopt;
}

namespace {

enum class SyncKind { kFile, kDir, kFileSystem };

// Opens `local` and flushes it: fsync of the file or folder, or syncfs(2) of the file
// system it is on (Linux; elsewhere an fsync of `local`). Directories on some file
// systems reject fsync with EINVAL or EROFS (nothing to sync there); that is not an error
// for our purposes.
arrow::Status SyncPath(const std::string& local, SyncKind kind) {
  const bool directory = kind == SyncKind::kDir;
  const bool whole_fs = kind == SyncKind::kFileSystem;
  int flags = O_RDONLY | O_CLOEXEC;
  if (directory) flags |= O_DIRECTORY;
  int fd = ::open(local.c_str(), flags);
  if (fd < 0) {
    return arrow::Status::IOError("cannot open '", local, "' to ",
                                  whole_fs ? "sync its file system" : "fsync it", ": ",
                                  std::strerror(errno));
  }
#ifdef __linux__
  int rc = whole_fs ? ::syncfs(fd) : ::fsync(fd);
#else
  int rc = ::fsync(fd);
#endif
  int err = errno;
  ::close(fd);
  if (rc != 0 && !(directory && (err == EINVAL || err == EROFS))) {
    return arrow::Status::IOError(
        whole_fs ? "syncfs of the file system of '" : "fsync of '", local,
        "' failed: ", std::strerror(err), "; the disk may be full or failing");
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Status SyncFile(const fs::FileSystem& filesystem, const std::string& path) {
  auto local = LocalPathOf(filesystem, path);
  if (!local) return arrow::Status::OK();
  return SyncPath(*local, SyncKind::kFile);
}

arrow::Status SyncDir(const fs::FileSystem& filesystem, const std::string& path) {
  auto local = LocalPathOf(filesystem, path);
  if (!local) return arrow::Status::OK();
  return SyncPath(local->empty() ? std::string("/") : *local, SyncKind::kDir);
}

arrow::Status SyncFileSystem(const fs::FileSystem& filesystem, const std::string& path) {
  auto local = LocalPathOf(filesystem, path);
  if (!local) return arrow::Status::OK();
  return SyncPath(local->empty() ? std::string("/") : *local, SyncKind::kFileSystem);
}

arrow::Result<std::vector<fs::FileInfo>> ListFiles(fs::FileSystem& filesystem,
                                                   const fs::FileSelector& selector) {
  constexpr int kTries = 8;
  auto listed = filesystem.GetFileInfo(selector);
  for (int i = 1; i < kTries && !listed.ok() && selector.allow_not_found &&
                  listed.status().IsIOError();
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    listed = filesystem.GetFileInfo(selector);
  }
  return listed;
}

arrow::Status EnsureDir(fs::FileSystem& filesystem, const std::string& dir,
                        std::unordered_set<std::string>* known) {
  if (dir.empty() || dir == "/" || known->count(dir) > 0) return arrow::Status::OK();
  // Most calls find the folder or its parent in place: try the leaf first.
  if (filesystem.CreateDir(dir, /*recursive=*/false).ok()) {
    known->insert(dir);
    return arrow::Status::OK();
  }
  ARROW_RETURN_NOT_OK(EnsureDir(filesystem, ParentPath(dir), known));
  ARROW_RETURN_NOT_OK(filesystem.CreateDir(dir, /*recursive=*/false));
  known->insert(dir);
  return arrow::Status::OK();
}

arrow::Status WriteFileAtomic(fs::FileSystem& filesystem, const std::string& path,
                              std::string_view bytes, const AtomicWriteOptions& options) {
  const std::string parent = ParentPath(path);
  const std::string tmp = path + std::string(kTempMarker) + RandomHex64();
  auto fail = [&](const arrow::Status& st) {
    // Best effort: a leftover temp file is harmless (its name marks it) and recovery
    // removes it.
    (void)DeleteFileIfExists(filesystem, tmp);
    return st.WithMessage("cannot write '", path, "': ", st.message(),
                          "; check that the lake is writable and has free space");
  };
  if (options.create_parent && !parent.empty()) {
    auto st = filesystem.CreateDir(parent, /*recursive=*/true);
    if (!st.ok()) return fail(st);
  }
  {
    auto out = filesystem.OpenOutputStream(tmp);
    if (!out.ok()) return fail(out.status());
    auto st = (*out)->Write(bytes.data(), static_cast<int64_t>(bytes.size()));
    if (st.ok()) st = (*out)->Close();
    if (!st.ok()) {
      (void)(*out)->Abort();
      return fail(st);
    }
  }
  if (options.sync) {
    auto st = SyncFile(filesystem, tmp);
    if (!st.ok()) return fail(st);
  }
  if (auto st = filesystem.Move(tmp, path); !st.ok()) return fail(st);
  if (options.sync && !parent.empty()) {
    auto st = SyncDir(filesystem, parent);
    if (!st.ok()) {
      return st.WithMessage("wrote '", path,
                            "' but could not make it durable: ", st.message());
    }
  }
  return arrow::Status::OK();
}

arrow::Result<std::optional<std::string>> ReadFileIfExists(fs::FileSystem& filesystem,
                                                           const std::string& path) {
  ARROW_ASSIGN_OR_RAISE(auto info, filesystem.GetFileInfo(path));
  if (info.type() == fs::FileType::NotFound) return std::nullopt;
  if (info.type() != fs::FileType::File) {
    return arrow::Status::IOError("'", path, "' is not a file");
  }
  ARROW_ASSIGN_OR_RAISE(auto in, filesystem.OpenInputStream(info));
  std::string out;
  if (info.size() > 0) out.reserve(static_cast<std::size_t>(info.size()));
  constexpr int64_t kChunk = 1 << 16;
  for (;;) {
    ARROW_ASSIGN_OR_RAISE(auto buf, in->Read(kChunk));
    if (buf->size() == 0) break;
    out.append(reinterpret_cast<const char*>(buf->data()),
               static_cast<std::size_t>(buf->size()));
  }
  ARROW_RETURN_NOT_OK(in->Close());
  return std::optional<std::string>(std::move(out));
}

arrow::Status DeleteFileIfExists(fs::FileSystem& filesystem, const std::string& path) {
  auto st = filesystem.DeleteFile(path);
  if (st.ok()) return st;
  // DeleteFile of a missing file is an error on most file systems; distinguish that case
  // afterwards rather than paying a GetFileInfo on every delete.
  ARROW_ASSIGN_OR_RAISE(auto info, filesystem.GetFileInfo(path));
  if (info.type() == fs::FileType::NotFound) return arrow::Status::OK();
  return st;
}

arrow::Status DeleteDirIfExists(fs::FileSystem& filesystem, const std::string& path) {
  ARROW_ASSIGN_OR_RAISE(auto info, filesystem.GetFileInfo(path));
  if (info.type() == fs::FileType::NotFound) return arrow::Status::OK();
  return filesystem.DeleteDir(path);
}

uint32_t Crc32Update(uint32_t crc, const void* data, int64_t size) {
  if (size <= 0) return crc;
  return crc32_gzip_refl(crc, static_cast<const unsigned char*>(data),
                         static_cast<uint64_t>(size));
}

std::string FormatCrc32(uint32_t crc) { return fmt::format("{:08x}", crc); }

arrow::Result<uint32_t> ParseCrc32(std::string_view text) {
  if (text.size() != 8) {
    return arrow::Status::Invalid("checksum '", text, "' is not 8 hex digits");
  }
  uint32_t value = 0;
  for (char c : text) {
    uint32_t digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return arrow::Status::Invalid("checksum '", text, "' is not 8 hex digits");
    }
    value = (value << 4) | digit;
  }
  return value;
}

arrow::Result<FileDigest> DigestFile(fs::FileSystem& filesystem, const std::string& path,
                                     int64_t buffer_size) {
  ARROW_ASSIGN_OR_RAISE(auto in, filesystem.OpenInputStream(path));
  FileDigest digest;
  for (;;) {
    ARROW_ASSIGN_OR_RAISE(auto buf, in->Read(buffer_size));
    if (buf->size() == 0) break;
    digest.crc32 = Crc32Update(digest.crc32, buf->data(), buf->size());
    digest.size += buf->size();
  }
  ARROW_RETURN_NOT_OK(in->Close());
  return digest;
}

std::string RandomHex64() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }();
  return fmt::format("{:016x}", rng());
}

std::string UtcNowIso8601() {
  auto now =
      std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
  return date::format("%FT%TZ", now);
}

}  // namespace qlake::lake

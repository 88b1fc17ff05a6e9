#include "qlake/pipeline/lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "qlake/lake/fs_util.h"

namespace qlake::pipeline {

namespace {

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  if (lseek(fd, 0, SEEK_SET) < 0) return out;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

arrow::Status WriteAll(int fd, const std::string& text, const std::string& path) {
  if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) < 0) {
    return arrow::Status::IOError("cannot rewrite lock file ", path, ": ",
                                  std::strerror(errno));
  }
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return arrow::Status::IOError("cannot write lock file ", path, ": ",
                                    std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  fsync(fd);
  return arrow::Status::OK();
}

bool IsLocalPath(const std::string& lake) {
  return lake.find("://") == std::string::npos || lake.rfind("file://", 0) == 0;
}

}  // namespace

std::string LockHolder::ToJson() const {
  nlohmann::json j = {
      {"pid", pid}, {"host", host}, {"started_at", started_at}, {"command", command}};
  return j.dump() + "\n";
}

std::optional<LockHolder> LockHolder::FromJson(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("pid") || !j["pid"].is_number_integer()) {
    return std::nullopt;
  }
  LockHolder h;
  h.pid = j["pid"].get<int64_t>();
  h.host = j.value("host", "");
  h.started_at = j.value("started_at", "");
  h.command = j.value("command", "");
  return h;
}

std::string LockHolder::Describe() const {
  return fmt::format("pid {} on host {} since {}{}", pid, host.empty() ? "?" : host,
                     started_at.empty() ? "?" : started_at,
                     command.empty() ? "" : " (qlake " + command + ")");
}

LockHolder CurrentProcess(const std::string& command) {
  LockHolder h;
  h.pid = getpid();
  h.host = HostName();
  h.started_at = lake::UtcNowIso8601();
  h.command = command;
  return h;
}

bool ProcessAlive(int64_t pid) {
  if (pid <= 0) return false;
  if (kill(static_cast<pid_t>(pid), 0) == 0) return true;
  return errno == EPERM;  // exists, owned by someone else
}

LakeLock::LakeLock(std::string path, int fd, LockMode mode)
    : path_(std::move(path)), fd_(fd), mode_(mode) {}

LakeLock::~LakeLock() { Release(); }

void LakeLock::Release() {
  if (fd_ < 0) return;
  // Clear the content first (an exclusive holder owns it), then drop the flock. The file
  // stays: unlinking a flock'ed file races with a process that just opened it.
  if (mode_ == LockMode::kExclusive) {
    if (ftruncate(fd_, 0) != 0) {
      spdlog::warn("cannot clear lock file {}: {}", path_, std::strerror(errno));
    }
  }
  flock(fd_, LOCK_UN);
  close(fd_);
  fd_ = -1;
}

arrow::Result<std::unique_ptr<LakeLock>> LakeLock::Acquire(const std::string& path,
                                                           LockMode mode,
                                                           const LockHolder& me) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return arrow::Status::IOError("cannot open lock file ", path, ": ",
                                  std::strerror(errno),
                                  "; check that the lake folder is writable");
  }
  const int op = (mode == LockMode::kExclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  bool flock_ok = true;
  while (flock(fd, op) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      auto holder = LockHolder::FromJson(ReadAll(fd));
      close(fd);
      return arrow::Status::AlreadyExists(
          "the lake is locked by another qlake run: ",
          holder ? holder->Describe() : std::string("a process (shared lock)"),
          "; lock file ", path,
          ". Wait for it to finish; a lock of a process that died is taken over "
          "automatically");
    }
    if (errno == ENOLCK || errno == EOPNOTSUPP || errno == ENOSYS) {
      flock_ok = false;
      break;
    }
    int err = errno;
    close(fd);
    return arrow::Status::IOError("cannot lock ", path, ": ", std::strerror(err));
  }
  std::unique_ptr<LakeLock> lock(new LakeLock(path, fd, mode));
  auto previous = LockHolder::FromJson(ReadAll(fd));
  if (!flock_ok && previous) {
    // No kernel lock: the content alone decides.
    bool held = previous->host != me.host || ProcessAlive(previous->pid);
    if (held && previous->pid != me.pid) {
      lock->fd_ = -1;
      close(fd);
      return arrow::Status::AlreadyExists(
          "the lake is locked by another qlake run: ", previous->Describe(),
          "; lock file ", path,
          " (file system without flock: delete the file if that "
          "process is gone)");
    }
  }
  if (mode == LockMode::kExclusive) {
    if (previous && previous->pid != me.pid) {
      // We hold the flock, so whoever wrote this is gone without releasing it.
      spdlog::warn("taking over the stale lock {} of {}, which is no longer running",
                   path, previous->Describe());
      lock->took_over_ = previous;
    }
    ARROW_RETURN_NOT_OK(WriteAll(fd, me.ToJson(), path));
  }
  return lock;
}

std::string LockPathFor(const std::string& lake, const std::string& suffix) {
  std::string name = suffix.empty() ? "lock" : "lock." + suffix;
  if (IsLocalPath(lake)) {
    std::string root = lake.rfind("file://", 0) == 0 ? lake.substr(7) : lake;
    auto p = std::filesystem::absolute(root) / "_qlake" / name;
    return p.lexically_normal().string();
  }
  auto h = std::hash<std::string>{}(lake);
  return (std::filesystem::temp_directory_path() /
          fmt::format("qlake-{:016x}.{}", h, name))
      .string();
}

std::optional<LockHolder> ReadHolderIfHeld(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<LockHolder> out;
  if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    out = LockHolder::FromJson(ReadAll(fd));
    if (!out) out = LockHolder{};
  } else {
    flock(fd, LOCK_UN);
  }
  close(fd);
  return out;
}

}  // namespace qlake::pipeline

#include "qlake/fetch/manifest.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace qlake::fetch {

namespace {

constexpr const char* kMetaDir = "_qlake";
constexpr const char* kManifestName = "manifest.jsonl";

nlohmann::ordered_json VersionJson(const ObjectVersion& v, bool with_key) {
  nlohmann::ordered_json j;
  if (with_key) j["key"] = v.key;
  j["size"] = v.size;
  j["etag"] = v.etag;
  j["last_modified"] = v.last_modified;
  return j;
}

arrow::Result<ObjectVersion> VersionFrom(const nlohmann::json& j, bool with_key) {
  ObjectVersion v;
  try {
    if (with_key) v.key = j.at("key").get<std::string>();
    v.size = j.at("size").get<int64_t>();
    v.etag = j.value("etag", "");
    v.last_modified = j.value("last_modified", "");
  } catch (const nlohmann::json::exception& e) {
    return arrow::Status::Invalid(e.what());
  }
  if (with_key && v.key.empty()) return arrow::Status::Invalid("empty key");
  return v;
}

std::string EntryLine(const ManifestEntry& e) {
  nlohmann::ordered_json j = VersionJson(e.version, true);
  j["sha256"] = e.sha256;
  j["fetched_at"] = e.fetched_at;
  if (e.replaced) j["replaced"] = VersionJson(*e.replaced, false);
  return j.dump() + "\n";
}

arrow::Result<ManifestEntry> ParseEntry(const std::string& line) {
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return arrow::Status::Invalid("not JSON");
  ManifestEntry e;
  ARROW_ASSIGN_OR_RAISE(e.version, VersionFrom(j, true));
  e.sha256 = j.value("sha256", "");
  e.fetched_at = j.value("fetched_at", "");
  if (j.contains("replaced") && j["replaced"].is_object()) {
    ARROW_ASSIGN_OR_RAISE(auto r, VersionFrom(j["replaced"], false));
    r.key = e.version.key;
    e.replaced = r;
  }
  return e;
}

arrow::Result<std::map<std::string, ManifestEntry>> ParseFile(const std::string& path,
                                                              int64_t* lines_out) {
  std::map<std::string, ManifestEntry> out;
  std::ifstream in(path);
  if (!in) return out;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    auto e = ParseEntry(lines[i]);
    if (!e.ok()) {
      if (i + 1 == lines.size()) {
        spdlog::warn("{}: ignoring a torn last line (an interrupted write)", path);
        break;
      }
      return arrow::Status::Invalid(path, ":", i + 1,
                                    ": damaged manifest line: ", e.status().message(),
                                    " (delete the manifest to re-verify the cache)");
    }
    out[e->version.key] = *e;
  }
  if (lines_out) *lines_out = static_cast<int64_t>(lines.size());
  return out;
}

arrow::Status Errno(const std::string& what) {
  return arrow::Status::IOError(what, ": ", std::strerror(errno));
}

}  // namespace

bool SameVersion(const ObjectVersion& a, const ObjectVersion& b) {
  if (a.size != b.size || a.last_modified != b.last_modified) return false;
  if (!a.etag.empty() && !b.etag.empty() && a.etag != b.etag) return false;
  return true;
}

std::string FormatUtc(int64_t s) {
  std::time_t t = static_cast<std::time_t>(s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

arrow::Result<int64_t> ParseUtc(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end != '\0') {
    return arrow::Status::Invalid("'", text, "' is not a UTC time YYYY-MM-DDTHH:MM:SSZ");
  }
  return static_cast<int64_t>(timegm(&tm));
}

std::string Manifest::PathFor(const std::string& cache_dir) {
  return (std::filesystem::path(cache_dir) / kMetaDir / kManifestName).string();
}

arrow::Result<std::map<std::string, ManifestEntry>> Manifest::Read(
    const std::string& cache_dir) {
  return ParseFile(PathFor(cache_dir), nullptr);
}

arrow::Result<std::unique_ptr<Manifest>> Manifest::Open(const std::string& cache_dir) {
  std::unique_ptr<Manifest> m(new Manifest());
  m->dir_ = (std::filesystem::path(cache_dir) / kMetaDir).string();
  m->path_ = PathFor(cache_dir);
  std::error_code ec;
  std::filesystem::create_directories(m->dir_, ec);
  if (ec) {
    return arrow::Status::IOError("cannot create ", m->dir_, ": ", ec.message());
  }
  std::string lock = m->dir_ + "/lock";
  m->lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (m->lock_fd_ < 0) return Errno("cannot open " + lock);
  if (::flock(m->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return arrow::Status::AlreadyExists("another qlake fetch is using the cache ",
                                          cache_dir, " (", lock, " is locked)");
    }
    return Errno("cannot lock " + lock);
  }
  ARROW_RETURN_NOT_OK(m->Load());
  return m;
}

Manifest::~Manifest() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

arrow::Status Manifest::Load() {
  ARROW_ASSIGN_OR_RAISE(entries_, ParseFile(path_, &lines_));
  if (lines_ > 2 * static_cast<int64_t>(entries_.size()) + 16) {
    ARROW_RETURN_NOT_OK(Compact());
  }
  return arrow::Status::OK();
}

arrow::Status Manifest::Compact() {
  std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [key, e] : entries_) out << EntryLine(e);
    out.flush();
    if (!out) return arrow::Status::IOError("cannot write ", tmp);
  }
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return Errno("cannot replace " + path_);
  lines_ = static_cast<int64_t>(entries_.size());
  return arrow::Status::OK();
}

std::optional<ManifestEntry> Manifest::Get(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

arrow::Status Manifest::Put(const ManifestEntry& entry) {
  std::string line = EntryLine(entry);
  std::lock_guard lock(mu_);
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot open " + path_);
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto st = Errno("cannot append to " + path_);
      ::close(fd);
      return st;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  entries_[entry.version.key] = entry;
  ++lines_;
  return arrow::Status::OK();
}

std::vector<ManifestEntry> Manifest::Entries() const {
  std::lock_guard lock(mu_);
  std::vector<ManifestEntry> out;
  out.reserve(entries_.size());
  for (const auto& [k, e] : entries_) out.push_back(e);
  return out;
}

}  // namespace qlake::fetch

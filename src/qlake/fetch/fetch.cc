#include "qlake/fetch/fetch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <arrow/io/file.h>
#include <arrow/util/key_value_metadata.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "qlake/core/logging.h"
#include "qlake/core/progress.h"
#include "qlake/ingest/gzip_stream.h"
#include "qlake/io/filesystem.h"
#include "qlake/lake/lake.h"

namespace qlake::fetch {

namespace {

namespace stdfs = std::filesystem;

constexpr std::string_view kPartSuffix = ".qlake-part";

int64_t ToUnixSeconds(arrow::fs::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string Ymd(Date d) { return FormatDate(d); }

// Runs `fn` with the retry policy of FetchOptions: transient errors up to `retries`
// attempts, 403 up to `forbidden_retries`, backoff with jitter in between.
template <typename Fn>
auto WithRetries(const FetchOptions& o, const std::string& what, Fn&& fn)
    -> decltype(fn()) {
  int transient = 0, forbidden = 0;
  for (int attempt = 0;; ++attempt) {
    auto r = fn();
    if (r.ok()) return r;
    const arrow::Status& st = r.status();
    auto cls = io::ClassifyError(st);
    if (cls == io::ErrorClass::kForbidden) {
      if (++forbidden >= o.forbidden_retries) {
        return arrow::Status::IOError(what, ": access denied (HTTP 403) ", forbidden,
                                      " times: not in your plan or bad credentials (",
                                      MaskSecrets(st.message()), ")");
      }
    } else if (cls == io::ErrorClass::kTransient) {
      if (++transient >= o.retries) {
        return st.WithMessage(what, ": gave up after ", transient,
                              " attempts: ", MaskSecrets(st.message()));
      }
    } else {
      return st;
    }
    spdlog::debug("{}: attempt {} failed ({}): {}", what, attempt + 1,
                  io::ErrorClassName(cls), MaskSecrets(st.message()));
    std::this_thread::sleep_for(std::chrono::milliseconds(
        io::BackoffMs(attempt, o.backoff_ms, o.backoff_max_ms)));
  }
}

std::string Hex(const unsigned char* p, unsigned n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 15]);
  }
  return out;
}

// SHA-256 and MD5 of a byte stream (OpenSSL EVP).
class Hashes {
 public:
  Hashes() : sha_(EVP_MD_CTX_new()), md5_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr);
    EVP_DigestInit_ex(md5_, EVP_md5(), nullptr);
  }
  ~Hashes() {
    EVP_MD_CTX_free(sha_);
    EVP_MD_CTX_free(md5_);
  }
  Hashes(const Hashes&) = delete;
  Hashes& operator=(const Hashes&) = delete;
  void Update(const uint8_t* p, std::size_t n) {
    EVP_DigestUpdate(sha_, p, n);
    EVP_DigestUpdate(md5_, p, n);
  }
  void Final(std::string* sha_hex, std::string* md5_hex) {
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(sha_, buf, &n);
    *sha_hex = Hex(buf, n);
    EVP_DigestFinal_ex(md5_, buf, &n);
    *md5_hex = Hex(buf, n);
  }

 private:
  EVP_MD_CTX* sha_;
  EVP_MD_CTX* md5_;
};

// The MD5 inside a single-part ETag ("\"<32 hex>\""), or "" for multipart ETags.
std::string EtagMd5(const std::string& etag) {
  std::string e = etag;
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  if (e.size() != 32) return {};
  for (char c : e) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return {};
  }
  std::transform(e.begin(), e.end(), e.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e;
}

arrow::Status Errno(const std::string& what) {
  return arrow::Status::IOError(what, ": ", std::strerror(errno));
}

arrow::Status WriteAll(int fd, const uint8_t* p, int64_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, static_cast<std::size_t>(n));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write " + path);
    }
    p += w;
    n -= w;
  }
  return arrow::Status::OK();
}

void FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

arrow::Status CheckGzip(const std::string& path, int64_t buffer_bytes) {
  ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(path));
  ingest::GzipStreamOptions gz;
  gz.source_name = path;
  gz.input_buffer_size = std::min<int64_t>(buffer_bytes, int64_t{4} << 20);
  ARROW_ASSIGN_OR_RAISE(auto stream, ingest::GzipInputStream::Make(file, gz));
  std::vector<uint8_t> out(int64_t{1} << 20);
  while (true) {
    ARROW_ASSIGN_OR_RAISE(int64_t n,
                          stream->Read(static_cast<int64_t>(out.size()), out.data()));
    if (n == 0) break;
  }
  return stream->Close();
}

nlohmann::json VersionJson(const ObjectVersion& v) {
  return {{"key", v.key},
          {"size", v.size},
          {"etag", v.etag},
          {"last_modified", v.last_modified}};
}

std::optional<ObjectVersion> ReadPartMeta(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  ObjectVersion v;
  v.key = j.value("key", "");
  v.size = j.value("size", int64_t{-1});
  v.etag = j.value("etag", "");
  v.last_modified = j.value("last_modified", "");
  return v;
}

std::string NowUtc() {
  return FormatUtc(std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count());
}

// "2026-11-25T14:54:17Z", "2026-11-25T14:54:17.123Z" or an HTTP date
// ("Wed, 25 Nov 2026 14:54:17 GMT") -> Unix seconds.
std::optional<int64_t> ParseAnyUtc(const std::string& text) {
  std::tm tm{};
  for (const char* f : {"%Y-%m-%dT%H:%M:%S", "%a, %d %b %Y %H:%M:%S"}) {
    tm = std::tm{};
    if (strptime(text.c_str(), f, &tm)) return static_cast<int64_t>(timegm(&tm));
  }
  return std::nullopt;
}

// Opens `key` for reading with one HEAD request and returns its version (size, ETag,
// LastModified) from that response. Falls back to GetFileInfo (a second HEAD) for a
// file system that reports no metadata (a local mirror).
arrow::Result<ObjectVersion> OpenWithVersion(
    arrow::fs::FileSystem& fs, const std::string& bucket_root, const std::string& key,
    std::shared_ptr<arrow::io::RandomAccessFile>* file_out) {
  const std::string remote = bucket_root + "/" + key;
  ARROW_ASSIGN_OR_RAISE(auto file, fs.OpenInputFile(remote));
  ObjectVersion v;
  v.key = key;
  ARROW_ASSIGN_OR_RAISE(v.size, file->GetSize());
  std::optional<int64_t> mtime;
  ARROW_ASSIGN_OR_RAISE(auto md, file->ReadMetadata());
  if (md) {
    if (auto etag = md->Get("ETag"); etag.ok()) v.etag = *etag;
    if (auto lm = md->Get("Last-Modified"); lm.ok()) mtime = ParseAnyUtc(*lm);
  }
  if (!mtime) {
    ARROW_ASSIGN_OR_RAISE(auto info, fs.GetFileInfo(remote));
    mtime = ToUnixSeconds(info.mtime());
  }
  v.last_modified = FormatUtc(*mtime);
  if (file_out) *file_out = std::move(file);
  return v;
}

struct Task {
  std::size_t index;  // into report.files
  ListedObject listed;
  std::optional<ManifestEntry> previous;
};

class Downloader {
 public:
  Downloader(arrow::fs::FileSystem& fs, const FetchOptions& o, Manifest& manifest,
             ProgressReporter* progress)
      : fs_(fs), o_(o), manifest_(manifest), progress_(progress) {}

  void Run(const Task& task, FileReport* r, std::vector<uint8_t>* buf) {
    auto start = std::chrono::steady_clock::now();
    int transient = 0, forbidden = 0;
    arrow::Status st;
    for (int attempt = 0;; ++attempt) {
      r->attempts = attempt + 1;
      st = Attempt(task, r, buf);
      if (st.ok()) break;
      auto cls = io::ClassifyError(st);
      std::string msg = MaskSecrets(st.message());
      if (cls == io::ErrorClass::kNotFound) {
        r->status = FileStatus::kNotPublished;
        r->message = "not published yet (listed, but gone when fetched)";
        break;
      }
      if (cls == io::ErrorClass::kForbidden) {
        if (++forbidden >= o_.forbidden_retries) {
          r->status = FileStatus::kFailed;
          r->message = fmt::format(
              "access denied (HTTP 403) {} times: not in your plan or bad credentials",
              forbidden);
          break;
        }
      } else if (cls == io::ErrorClass::kTransient) {
        if (++transient >= o_.retries) {
          r->status = FileStatus::kFailed;
          r->message = fmt::format("gave up after {} attempts: {}", transient, msg);
          break;
        }
      } else {
        r->status = FileStatus::kFailed;
        r->message = msg;
        break;
      }
      spdlog::warn("fetch {}: attempt {} failed ({}), retrying: {}",
                   task.listed.version.key, attempt + 1, io::ErrorClassName(cls), msg);
      std::this_thread::sleep_for(std::chrono::milliseconds(
          io::BackoffMs(attempt, o_.backoff_ms, o_.backoff_max_ms)));
    }
    if (st.ok()) {
      bool republished =
          task.previous && !SameVersion(task.previous->version, r->version);
      r->status = republished ? FileStatus::kRepublished : FileStatus::kDownloaded;
      if (republished) r->replaced = task.previous->version;
    }
    r->seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (progress_) progress_->Add(1, 0);
  }

 private:
  arrow::Result<ObjectVersion> Head(const std::string& key,
                                    std::shared_ptr<arrow::io::RandomAccessFile>* file) {
    ARROW_ASSIGN_OR_RAISE(auto v, OpenWithVersion(fs_, o_.bucket_root, key, file));
    return v;
  }

  arrow::Status Attempt(const Task& task, FileReport* r, std::vector<uint8_t>* buf) {
    const std::string& key = task.listed.version.key;
    const std::string final_path = (stdfs::path(o_.cache) / key).string();
    const std::string part = final_path + std::string(kPartSuffix);
    const std::string meta = part + ".json";
    std::error_code ec;
    stdfs::create_directories(stdfs::path(final_path).parent_path(), ec);
    if (ec) return arrow::Status::IOError("cannot create folder for ", final_path);

    std::shared_ptr<arrow::io::RandomAccessFile> file;
    ARROW_ASSIGN_OR_RAISE(ObjectVersion v, Head(key, &file));

    // Resume a part file of the same version; otherwise start over.
    int64_t have = 0;
    auto part_meta = ReadPartMeta(meta);
    if (part_meta && stdfs::exists(part, ec) && SameVersion(*part_meta, v) &&
        part_meta->etag == v.etag) {
      have = static_cast<int64_t>(stdfs::file_size(part, ec));
      if (ec || have > v.size) have = 0;
    }
    Hashes hashes;
    if (have > 0) {
      // Re-hash what is there (cheap next to downloading it again).
      std::ifstream in(part, std::ios::binary);
      int64_t left = have;
      while (left > 0 && in) {
        auto n = std::min<int64_t>(left, static_cast<int64_t>(buf->size()));
        in.read(reinterpret_cast<char*>(buf->data()), n);
        hashes.Update(buf->data(), static_cast<std::size_t>(in.gcount()));
        left -= in.gcount();
      }
      if (left != 0) return arrow::Status::IOError("cannot re-read ", part);
      r->resumed = true;
      spdlog::info("fetch {}: resuming at byte {} of {}", key, have, v.size);
    } else {
      stdfs::remove(part, ec);
      std::ofstream(meta, std::ios::trunc) << VersionJson(v).dump() << "\n";
    }

    int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("cannot open " + part);
    auto close_fd = [&] {
      if (fd >= 0) ::close(fd);
      fd = -1;
    };
    while (have < v.size) {
      int64_t want = std::min<int64_t>(v.size - have, static_cast<int64_t>(buf->size()));
      auto n = file->ReadAt(have, want, buf->data());
      if (!n.ok()) {
        close_fd();
        return n.status();
      }
      if (*n <= 0) {
        close_fd();
        return arrow::Status::IOError("short read: the body ended at byte ", have, " of ",
                                      v.size, " (truncated)");
      }
      if (auto st = WriteAll(fd, buf->data(), *n, part); !st.ok()) {
        close_fd();
        return st;
      }
      hashes.Update(buf->data(), static_cast<std::size_t>(*n));
      have += *n;
      r->bytes += *n;
      if (progress_) progress_->Add(0, static_cast<uint64_t>(*n));
    }
    if (::fsync(fd) != 0) {
      auto st = Errno("cannot fsync " + part);
      close_fd();
      return st;
    }
    close_fd();

    // Verify: size, MD5 against a single-part ETag, gzip CRCs.
    std::string sha, md5;
    hashes.Final(&sha, &md5);
    auto size_now = static_cast<int64_t>(stdfs::file_size(part, ec));
    auto discard = [&] {
      stdfs::remove(part, ec);
      stdfs::remove(meta, ec);
    };
    if (ec || size_now != v.size) {
      discard();
      return arrow::Status::IOError("downloaded ", size_now, " bytes, expected ", v.size,
                                    " (truncated)");
    }
    std::string want_md5 = EtagMd5(v.etag);
    if (!want_md5.empty() && want_md5 != md5) {
      discard();
      return arrow::Status::IOError(
          "the bytes do not match the object's ETag (corrupted "
          "in transfer, or replaced while downloading)");
    }
    if (o_.verify_gzip) {
      if (auto st = CheckGzip(part, static_cast<int64_t>(buf->size())); !st.ok()) {
        discard();
        return arrow::Status::IOError("gzip check failed (corrupted in transfer): ",
                                      st.message());
      }
    }
    // The object's LastModified becomes the file's mtime: ingest records it as the
    // source version, so re-ingest can tell a republished file (fetch.h).
    ARROW_ASSIGN_OR_RAISE(int64_t mtime, ParseUtc(v.last_modified));
    struct timespec times[2];
    times[0].tv_sec = times[1].tv_sec = static_cast<time_t>(mtime);
    times[0].tv_nsec = times[1].tv_nsec = 0;
    if (::utimensat(AT_FDCWD, part.c_str(), times, 0) != 0) {
      return Errno("cannot set the mtime of " + part);
    }
    if (::rename(part.c_str(), final_path.c_str()) != 0) {
      return Errno("cannot rename " + part);
    }
    FsyncDir(stdfs::path(final_path).parent_path().string());
    stdfs::remove(meta, ec);

    ManifestEntry e;
    e.version = v;
    e.sha256 = sha;
    e.fetched_at = NowUtc();
    if (task.previous && !SameVersion(task.previous->version, v)) {
      e.replaced = task.previous->version;
    } else if (task.previous) {
      e.replaced = task.previous->replaced;
    }
    ARROW_RETURN_NOT_OK(manifest_.Put(e));
    r->version = v;
    r->sha256 = sha;
    return arrow::Status::OK();
  }

  arrow::fs::FileSystem& fs_;
  const FetchOptions& o_;
  Manifest& manifest_;
  ProgressReporter* progress_;
};

}  // namespace

arrow::Status ApplyTransferConfig(const Config& config, FetchOptions* options) {
  ARROW_ASSIGN_OR_RAISE(auto retries, config.GetInt("fetch.retries"));
  options->retries = static_cast<int>(retries);
  ARROW_ASSIGN_OR_RAISE(auto forbidden, config.GetInt("fetch.forbidden_retries"));
  options->forbidden_retries = static_cast<int>(forbidden);
  ARROW_ASSIGN_OR_RAISE(options->backoff_ms, config.GetInt("fetch.backoff_ms"));
  ARROW_ASSIGN_OR_RAISE(options->backoff_max_ms, config.GetInt("fetch.backoff_max_ms"));
  ARROW_ASSIGN_OR_RAISE(options->chunk_bytes, config.GetInt("fetch.chunk_bytes"));
  ARROW_ASSIGN_OR_RAISE(options->verify_gzip, config.GetBool("fetch.verify_gzip"));
  return arrow::Status::OK();
}

arrow::Status FetchOptions::Validate() const {
  ARROW_RETURN_NOT_OK(catalog::FindDataset(dataset).status());
  if (selection == Selection::kRange && from > to) {
    return arrow::Status::Invalid("--from ", Ymd(from), " is after --to ", Ymd(to));
  }
  if (selection == Selection::kLastN && (last_n < 1 || last_n > 10000)) {
    return arrow::Status::Invalid("--last must be 1..10000, got ", last_n);
  }
  if (bucket_root.empty()) return arrow::Status::Invalid("no bucket given");
  if (cache.empty()) return arrow::Status::Invalid("no cache folder given (--cache DIR)");
  if (jobs < 1 || jobs > 256) return arrow::Status::Invalid("jobs must be 1..256");
  if (retries < 1 || forbidden_retries < 1) {
    return arrow::Status::Invalid("retries must be at least 1");
  }
  if (chunk_bytes < 4096 || chunk_bytes > (int64_t{1} << 30)) {
    return arrow::Status::Invalid("chunk size must be 4 KiB..1 GiB");
  }
  return arrow::Status::OK();
}

std::string_view FileStatusName(FileStatus s) {
  switch (s) {
    case FileStatus::kDownloaded:
      return "downloaded";
    case FileStatus::kRepublished:
      return "republished";
    case FileStatus::kUnchanged:
      return "unchanged";
    case FileStatus::kNotPublished:
      return "not-published";
    case FileStatus::kSkipped:
      return "skipped";
    case FileStatus::kFailed:
      return "failed";
    case FileStatus::kPlanned:
      return "planned";
  }
  return "?";
}

int64_t FetchReport::Count(FileStatus s) const {
  return std::count_if(files.begin(), files.end(),
                       [&](const FileReport& f) { return f.status == s; });
}

std::vector<Date> FetchReport::RepublishedDays() const {
  std::vector<Date> out;
  for (const auto& f : files) {
    if (f.status == FileStatus::kRepublished) out.push_back(f.day);
  }
  return out;
}

arrow::Status FetchReport::Summary() const {
  std::vector<const FileReport*> bad;
  int64_t considered = 0;
  for (const auto& f : files) {
    if (f.status == FileStatus::kSkipped) continue;
    ++considered;
    if (f.status == FileStatus::kFailed ||
        (f.status == FileStatus::kNotPublished && !f.tolerated)) {
      bad.push_back(&f);
    }
  }
  if (bad.empty()) return arrow::Status::OK();
  std::string detail;
  for (std::size_t i = 0; i < bad.size() && i < 10; ++i) {
    detail += fmt::format("\n  {} {}: {}", Ymd(bad[i]->day),
                          FileStatusName(bad[i]->status), bad[i]->message);
  }
  if (bad.size() > 10) detail += fmt::format("\n  ... and {} more", bad.size() - 10);
  std::string head =
      fmt::format("{} of {} {} files failed", bad.size(), considered, dataset);
  if (static_cast<int64_t>(bad.size()) == considered) {
    bool all_missing = std::all_of(bad.begin(), bad.end(), [](const FileReport* f) {
      return f->status == FileStatus::kNotPublished;
    });
    if (all_missing) return arrow::Status::KeyError(head, detail);
    return arrow::Status::IOError(head, detail);
  }
  return arrow::Status::Cancelled(head, " (the others are in the cache)", detail);
}

Date TodayNewYork() {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  return ToNewYork(ns).date;
}

arrow::Result<std::map<Date, ListedObject>> ListDays(arrow::fs::FileSystem& fs,
                                                     const std::string& bucket_root,
                                                     const catalog::DatasetSpec& spec,
                                                     Date from, Date to) {
  std::map<Date, ListedObject> out;
  if (from > to) return out;
  date::year_month ym{date::year_month_day{from}.year(),
                      date::year_month_day{from}.month()};
  const date::year_month last{date::year_month_day{to}.year(),
                              date::year_month_day{to}.month()};
  const std::string root_slash = bucket_root + "/";
  for (; ym <= last; ym += date::months{1}) {
    arrow::fs::FileSelector sel;
    sel.base_dir =
        fmt::format("{}{}/{:04d}/{:02d}", root_slash, spec.Prefix(),
                    static_cast<int>(ym.year()), static_cast<unsigned>(ym.month()));
    sel.allow_not_found = true;
    sel.recursive = false;
    ARROW_ASSIGN_OR_RAISE(auto infos, fs.GetFileInfo(sel));
    for (const auto& info : infos) {
      if (info.type() != arrow::fs::FileType::File) continue;
      const std::string& p = info.path();
      if (p.rfind(root_slash, 0) != 0) continue;
      std::string key = p.substr(root_slash.size());
      auto parsed = catalog::ParseKey(key);
      if (!parsed.ok() || parsed->spec != &spec) continue;
      if (parsed->date < from || parsed->date > to) continue;
      ListedObject o;
      o.day = parsed->date;
      o.version.key = key;
      o.version.size = info.size();
      o.version.last_modified = FormatUtc(ToUnixSeconds(info.mtime()));
      out[o.day] = std::move(o);
    }
  }
  return out;
}

arrow::Result<std::optional<Date>> LatestListedDay(arrow::fs::FileSystem& fs,
                                                   const std::string& bucket_root,
                                                   const catalog::DatasetSpec& spec,
                                                   Date until) {
  int last_year = static_cast<int>(date::year_month_day{until}.year());
  int first_year = last_year - 30;
  if (!spec.first_date.empty()) {
    ARROW_ASSIGN_OR_RAISE(Date first, ParseDate(spec.first_date));
    first_year = static_cast<int>(date::year_month_day{first}.year());
  }
  for (int y = last_year; y >= first_year; --y) {
    Date from = date::year{y} / 1 / 1;
    Date to = std::min(until, Date{date::year{y} / 12 / 31});
    ARROW_ASSIGN_OR_RAISE(auto days, ListDays(fs, bucket_root, spec, from, to));
    if (!days.empty()) return days.rbegin()->first;
  }
  return std::nullopt;
}

arrow::Result<ObjectVersion> HeadObject(arrow::fs::FileSystem& fs,
                                        const std::string& bucket_root,
                                        const std::string& key) {
  return OpenWithVersion(fs, bucket_root, key, nullptr);
}

arrow::Result<FetchReport> Fetch(arrow::fs::FileSystem& fs, const FetchOptions& o,
                                 ProgressReporter* progress) {
  ARROW_RETURN_NOT_OK(o.Validate());
  ARROW_ASSIGN_OR_RAISE(const catalog::DatasetSpec* spec,
                        catalog::FindDataset(o.dataset));
  auto t0 = std::chrono::steady_clock::now();
  FetchReport report;
  report.dataset = o.dataset;
  report.cache = o.cache;
  std::unique_ptr<Manifest> owned_manifest;
  Manifest* manifest = o.manifest;
  if (!manifest) {
    ARROW_ASSIGN_OR_RAISE(owned_manifest, Manifest::Open(o.cache));
    manifest = owned_manifest.get();
  }

  auto expect = [&](Date d) {
    auto e = catalog::ExpectFile(*spec, d);
    return e.ok() ? *e : catalog::DayExpectation{};
  };

  // Which days.
  Date from = o.from, to = o.to;
  std::optional<Date> newest_listed;
  const std::string what = fmt::format("listing {} in {}", o.dataset, o.bucket_root);
  if (o.selection != Selection::kRange) {
    const Date today = o.as_of.value_or(TodayNewYork());
    ARROW_ASSIGN_OR_RAISE(newest_listed, WithRetries(o, what, [&] {
                            return LatestListedDay(fs, o.bucket_root, *spec, today);
                          }));
    // Walk back over the calendar: the newest expected day, or the last N of them.
    int want = o.selection == Selection::kLatest ? 1 : o.last_n;
    Date d = today;
    int found = 0;
    for (int guard = 0; guard < 40000 && found < want; ++guard, d -= date::days{1}) {
      if (expect(d).kind != catalog::DayExpectation::Kind::kNotExpected) {
        ++found;
        from = d;
        if (found == 1) to = d;
      }
    }
    if (o.selection == Selection::kLatest) {
      if (!newest_listed) {
        return arrow::Status::KeyError("no ", o.dataset, " file in ", o.bucket_root,
                                       " up to ", Ymd(today));
      }
      from = std::min(from, *newest_listed);
      to = std::max(to, *newest_listed);
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto listed, WithRetries(o, what, [&] {
                          return ListDays(fs, o.bucket_root, *spec, from, to);
                        }));

  std::vector<Task> tasks;
  uint64_t planned_bytes = 0;
  for (Date d = from; d <= to; d += date::days{1}) {
    if (o.selection == Selection::kLatest && newest_listed && d < *newest_listed)
      continue;
    FileReport r;
    r.day = d;
    r.key = catalog::KeyFor(*spec, d);
    auto it = listed.find(d);
    auto exp = expect(d);
    if (it == listed.end()) {
      if (exp.kind == catalog::DayExpectation::Kind::kExpected) {
        r.status = FileStatus::kNotPublished;
        r.message = "not published yet (no file in the listing on an expected day)";
        // The newest days of --latest / --last are normal to be late.
        r.tolerated =
            o.selection != Selection::kRange && (!newest_listed || d > *newest_listed);
      } else {
        r.status = FileStatus::kSkipped;
        r.message = exp.reason.empty() ? "no file listed" : std::string(exp.reason);
      }
      report.files.push_back(std::move(r));
      continue;
    }
    const ListedObject& obj = it->second;
    auto prev = manifest->Get(obj.version.key);
    std::error_code ec;
    const auto local = stdfs::path(o.cache) / obj.version.key;
    bool have_local = stdfs::exists(local, ec) && static_cast<int64_t>(stdfs::file_size(
                                                      local, ec)) == obj.version.size;
    if (!o.force && prev && SameVersion(prev->version, obj.version) && have_local) {
      r.status = FileStatus::kUnchanged;
      r.version = prev->version;
      r.sha256 = prev->sha256;
      report.files.push_back(std::move(r));
      continue;
    }
    r.status = FileStatus::kPlanned;
    r.version = obj.version;
    if (prev && !SameVersion(prev->version, obj.version)) r.replaced = prev->version;
    planned_bytes += static_cast<uint64_t>(std::max<int64_t>(0, obj.version.size));
    tasks.push_back(Task{report.files.size(), obj, prev});
    report.files.push_back(std::move(r));
  }

  if (!o.dry_run && !tasks.empty()) {
    if (progress) progress->SetTotals(tasks.size(), planned_bytes);
    Downloader dl(fs, o, *manifest, progress);
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
      std::vector<uint8_t> buf(static_cast<std::size_t>(o.chunk_bytes));
      for (std::size_t i = next++; i < tasks.size(); i = next++) {
        dl.Run(tasks[i], &report.files[tasks[i].index], &buf);
      }
    };
    std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(o.jobs), tasks.size());
    std::vector<std::thread> threads;
    for (std::size_t t = 1; t < n; ++t) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
  }
  for (const auto& f : report.files) report.bytes += f.bytes;
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (progress) progress->Finish();
  return report;
}

arrow::Result<std::vector<Date>> StaleDays(
    lake::Lake& lake, const std::string& dataset,
    const std::map<Date, ObjectVersion>& versions) {
  std::vector<Date> out;
  for (const auto& [day, v] : versions) {
    ARROW_ASSIGN_OR_RAISE(auto record, lake.GetCommit(dataset, day));
    if (!record) {
      out.push_back(day);
      continue;
    }
    auto secs = ParseUtc(v.last_modified);
    std::string lm = secs.ok() ? std::to_string(*secs) : v.last_modified;
    if (record->source.size != v.size || record->source.last_modified != lm) {
      out.push_back(day);
    }
  }
  return out;
}

}  // namespace qlake::fetch

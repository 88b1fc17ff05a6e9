#include "qlake/qlib/export.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <arrow/array.h>
#include <arrow/chunked_array.h>
#include <arrow/filesystem/filesystem.h>
#include <arrow/io/interfaces.h>
#include <arrow/table.h>
#include <arrow/type.h>
#include <arrow/visit_type_inline.h>
#include <fmt/format.h>
#include <parquet/arrow/reader.h>
#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>
#include "qlake/catalog/nyse_calendar.h"

#include "qlake/lake/lake.h"
#include "qlake/qlib/symbol_map.h"

namespace qlake::qlib {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kManifestFormat = "qlake.qlib.v1";
constexpr std::string_view kJournalFormat = "qlake.qlib.journal.v1";
constexpr std::string_view kInputsFormat = "qlake.qlib.inputs.v1";
constexpr std::string_view kNewSuffix = ".qlake-new";
constexpr std::string_view kMetaDir = ".qlake";
constexpr int64_t kMaxCalendarRows = int64_t{1} << 24;  // float32 start index is exact
constexpr int64_t kNsPerMinute = 60'000'000'000LL;

// Source value slots of a buffered bar; output fields add factor and change.
enum Slot : int { kOpen, kHigh, kLow, kClose, kVolume, kVwap, kNumBaseSlots };
constexpr std::string_view kBaseFields[] = {"open",   "high", "low",    "close",
                                            "volume", "vwap", "factor", "change"};

float QuietNaN() { return std::bit_cast<float>(uint32_t{0x7FC00000}); }

arrow::Status Errno(std::string_view what, const std::string& path) {
  return arrow::Status::IOError(what, " ", path, ": ", std::strerror(errno));
}

// ---------------------------------------------------------------------------------------
// Small file helpers (local file system).

arrow::Status WriteAll(int fd, const void* data, std::size_t size, int64_t offset,
                       const std::string& path) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write", path);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
    offset += n;
  }
  return arrow::Status::OK();
}

arrow::Status WriteFile(const std::string& path, std::string_view data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("create", path);
  auto st = WriteAll(fd, data.data(), data.size(), 0, path);
  if (::close(fd) != 0 && st.ok()) st = Errno("close", path);
  return st;
}

arrow::Status RenameFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return Errno("rename to " + to, from);
  return arrow::Status::OK();
}

arrow::Status WriteFileAtomic(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  ARROW_RETURN_NOT_OK(WriteFile(tmp, data));
  return RenameFile(tmp, path);
}

arrow::Result<std::optional<std::string>> ReadFileIfExists(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!fs::exists(path)) return std::nullopt;
    return arrow::Status::IOError("cannot read ", path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

arrow::Status MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return arrow::Status::IOError("mkdir ", path, ": ", ec.message());
  return arrow::Status::OK();
}

arrow::Status RemoveAll(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return arrow::Status::IOError("remove ", path, ": ", ec.message());
  return arrow::Status::OK();
}

void SyncFs(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::syncfs(fd);
  ::close(fd);
}

// ---------------------------------------------------------------------------------------
// The store's calendar: sessions from the first day, and per day the minute window.

struct Calendar {
  Freq freq = Freq::kDay;
  std::vector<catalog::Session> sessions;
  std::vector<int> m0, m1;    // minute window [m0, m1) per session (1min)
  std::vector<int64_t> base;  // first row of each session; base.back() = rows

  int64_t rows() const { return base.empty() ? 0 : base.back(); }
  // Index of `d` in sessions, or -1.
  int64_t IndexOf(Date d) const {
    auto it =
        std::lower_bound(sessions.begin(), sessions.end(), d,
                         [](const catalog::Session& s, Date x) { return s.date < x; });
    if (it == sessions.end() || it->date != d) return -1;
    return it - sessions.begin();
  }
  // Session index of a row.
  int64_t DayOfRow(int64_t row) const {
    auto it = std::upper_bound(base.begin(), base.end(), row);
    return (it - base.begin()) - 1;
  }
  std::string Text(std::size_t num_sessions) const {
    std::string out;
    for (std::size_t i = 0; i < num_sessions; ++i) {
      std::string day = FormatDate(sessions[i].date);
      if (freq == Freq::kDay) {
        out += day;
        out += '\n';
        continue;
      }
      for (int m = m0[i]; m < m1[i]; ++m) {
        out += fmt::format("{} {:02}:{:02}:00\n", day, m / 60, m % 60);
      }
    }
    return out;
  }
};

arrow::Result<Calendar> BuildCalendar(Freq freq, SessionMode mode, Date first,
                                      Date last) {
  Calendar cal;
  cal.freq = freq;
  ARROW_ASSIGN_OR_RAISE(cal.sessions, catalog::NyseCalendar::Get().Sessions(first, last));
  cal.base.push_back(0);
  for (const auto& s : cal.sessions) {
    int a = 0, b = 1;
    if (freq == Freq::kMinute) {
      if (mode == SessionMode::kRegular) {
        a = s.open_minute;
        b = s.close_minute;
      } else {
        a = catalog::Session::kExtendedOpenMinute;
        b = catalog::Session::kExtendedCloseMinute;
      }
    }
    cal.m0.push_back(a);
    cal.m1.push_back(b);
    cal.base.push_back(cal.base.back() + (b - a));
  }
  if (cal.rows() >= kMaxCalendarRows) {
    return arrow::Status::Invalid("calendar of ", cal.rows(),
                                  " rows is too long for Qlib's float32 start index");
  }
  return cal;
}

// ---------------------------------------------------------------------------------------
// Reading lake files.

struct LakeReader {
  std::shared_ptr<lake::Lake> lake;

  // Files of a committed day, or nullopt. A dataset name the lake does not accept (an
  // older lake without dataset groups) counts as not committed.
  arrow::Result<std::optional<lake::CommitRecord>> Commit(const std::string& dataset,
                                                          Date day) {
    auto r = lake->GetCommit(dataset, day);
    if (!r.ok()) {
      if (r.status().IsInvalid() && dataset.find('/') != std::string::npos) {
        return std::nullopt;
      }
      return r.status();
    }
    return *r;
  }

  // Reads the named columns of every data file of the day's commit; columns missing from
  // a file are an error unless `optional` lists them (they are then skipped).
  arrow::Result<std::vector<std::shared_ptr<arrow::Table>>> Read(
      const std::string& dataset, const lake::CommitRecord& record,
      const std::vector<std::string>& columns) {
    std::vector<std::shared_ptr<arrow::Table>> out;
    for (const auto& f : record.files) {
      std::string path = lake->PathOf(dataset + "/" + f.path);
      ARROW_ASSIGN_OR_RAISE(auto file, lake->filesystem()->OpenInputFile(path));
      ARROW_ASSIGN_OR_RAISE(auto reader,
                            parquet::arrow::OpenFile(file, arrow::default_memory_pool()));
      std::shared_ptr<arrow::Schema> schema;
      ARROW_RETURN_NOT_OK(reader->GetSchema(&schema));
      std::vector<int> idx;
      for (const auto& c : columns) {
        int i = schema->GetFieldIndex(c);
        if (i < 0) {
          return arrow::Status::Invalid(dataset, " file ", path, " has no column '", c,
                                        "'");
        }
        idx.push_back(i);
      }
      // Top-level columns map to leaf columns one to one for these flat schemas.
      ARROW_ASSIGN_OR_RAISE(auto table, reader->ReadTable(idx));
      out.push_back(table);
    }
    return out;
  }
};

// A column flattened to floats or doubles (nulls -> NaN).
template <typename Out = float>
arrow::Result<std::vector<Out>> ColumnAs(const arrow::ChunkedArray& col,
                                         std::string_view name) {
  std::vector<Out> out;
  out.reserve(static_cast<std::size_t>(col.length()));
  for (const auto& chunk : col.chunks()) {
    auto add = [&]<typename ArrayT>(const ArrayT& a) {
      for (int64_t i = 0; i < a.length(); ++i) {
        out.push_back(a.IsNull(i) ? std::numeric_limits<Out>::quiet_NaN()
                                  : static_cast<Out>(a.Value(i)));
      }
    };
    switch (chunk->type_id()) {
#define QLAKE_CASE(ID, T)                      \
  case arrow::Type::ID:                        \
    add(static_cast<const arrow::T&>(*chunk)); \
    break;
      QLAKE_CASE(FLOAT, FloatArray)
      QLAKE_CASE(DOUBLE, DoubleArray)
      QLAKE_CASE(INT8, Int8Array)
      QLAKE_CASE(INT16, Int16Array)
      QLAKE_CASE(INT32, Int32Array)
      QLAKE_CASE(INT64, Int64Array)
      QLAKE_CASE(UINT8, UInt8Array)
      QLAKE_CASE(UINT16, UInt16Array)
      QLAKE_CASE(UINT32, UInt32Array)
      QLAKE_CASE(UINT64, UInt64Array)
#undef QLAKE_CASE
      default:
        return arrow::Status::Invalid("column '", name, "' has type ",
                                      chunk->type()->ToString(),
                                      "; only numeric columns can be Qlib fields");
    }
  }
  return out;
}

arrow::Result<std::vector<int64_t>> ColumnAsInt64(const arrow::ChunkedArray& col) {
  std::vector<int64_t> out;
  out.reserve(static_cast<std::size_t>(col.length()));
  for (const auto& chunk : col.chunks()) {
    if (chunk->type_id() != arrow::Type::TIMESTAMP &&
        chunk->type_id() != arrow::Type::INT64) {
      return arrow::Status::Invalid("window_start has type ", chunk->type()->ToString());
    }
    const auto* raw = chunk->data()->GetValues<int64_t>(1);
    out.insert(out.end(), raw, raw + chunk->length());
  }
  return out;
}

// Strings of a ticker column (dictionary or plain), resolved through `resolve` once per
// distinct value of each chunk.
template <typename Resolve>
arrow::Result<std::vector<int32_t>> TickerIds(const arrow::ChunkedArray& col,
                                              Resolve&& resolve) {
  std::vector<int32_t> out;
  out.reserve(static_cast<std::size_t>(col.length()));
  for (const auto& chunk : col.chunks()) {
    if (chunk->type_id() == arrow::Type::DICTIONARY) {
      const auto& d = static_cast<const arrow::DictionaryArray&>(*chunk);
      const auto& dict = static_cast<const arrow::StringArray&>(*d.dictionary());
      std::vector<int32_t> map(static_cast<std::size_t>(dict.length()));
      for (int64_t i = 0; i < dict.length(); ++i) {
        ARROW_ASSIGN_OR_RAISE(map[static_cast<std::size_t>(i)], resolve(dict.GetView(i)));
      }
      for (int64_t i = 0; i < d.length(); ++i) {
        out.push_back(d.IsNull(i) ? -1
                                  : map[static_cast<std::size_t>(d.GetValueIndex(i))]);
      }
    } else if (chunk->type_id() == arrow::Type::STRING) {
      const auto& s = static_cast<const arrow::StringArray&>(*chunk);
      for (int64_t i = 0; i < s.length(); ++i) {
        if (s.IsNull(i)) {
          out.push_back(-1);
        } else {
          ARROW_ASSIGN_OR_RAISE(auto id, resolve(s.GetView(i)));
          out.push_back(id);
        }
      }
    } else {
      return arrow::Status::Invalid("ticker column has type ", chunk->type()->ToString());
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Symbols and their bins.

struct Symbol {
  std::string ticker, code, dir;
  bool in_store = false;  // has bins on disk from before this run's current batch
  bool loaded = false;    // start/n/last_close read from disk
  int64_t start = -1;     // calendar row of the first value
  int64_t n = 0;          // values in each bin
  float last_close = std::numeric_limits<float>::quiet_NaN();
  std::optional<Date> first_day, last_day;  // span (first/last day with a bar)
};

struct Bars {
  std::vector<int32_t> rows;
  std::vector<float> vals;  // stride = slots
};

struct Journal {
  std::vector<std::pair<std::string, int64_t>> appended;  // dir, old n
  std::vector<std::string> created;                       // new dirs
  std::vector<std::string> replaced;                      // dirs with .qlake-new bins
  std::vector<std::string> removed;                       // dirs to delete at commit
  // Values written in place at commit (a redo log: bins are not touched before the commit
  // point, so rolling back needs nothing): dir, field index, [row, float bits]...
  struct Patch {
    std::string dir;
    int field = 0;
    std::vector<uint32_t> values;  // pairs: value index (after the start), bits
  };
  std::vector<Patch> patched;
  std::vector<std::string> fields;
  std::string freq;
  bool committed = false;

  nlohmann::json ToJson() const {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& [d, n] : appended) a.push_back({d, n});
    nlohmann::json p = nlohmann::json::array();
    for (const auto& x : patched) p.push_back({x.dir, x.field, x.values});
    return {{"format", kJournalFormat},
            {"patched", p},
            {"state", committed ? "committed" : "prepared"},
            {"freq", freq},
            {"fields", fields},
            {"appended", a},
            {"created", created},
            {"replaced", replaced},
            {"removed", removed}};
  }
  static arrow::Result<Journal> FromJson(const std::string& text,
                                         const std::string& where) {
    Journal j;
    try {
      auto v = nlohmann::json::parse(text);
      if (v.at("format") != kJournalFormat) {
        return arrow::Status::Invalid(where, ": not a ", kJournalFormat, " journal");
      }
      j.committed = v.at("state") == "committed";
      j.freq = v.at("freq");
      j.fields = v.at("fields").get<std::vector<std::string>>();
      for (const auto& e : v.at("appended")) j.appended.emplace_back(e.at(0), e.at(1));
      j.created = v.at("created").get<std::vector<std::string>>();
      j.replaced = v.at("replaced").get<std::vector<std::string>>();
      j.removed = v.at("removed").get<std::vector<std::string>>();
      for (const auto& e : v.value("patched", nlohmann::json::array())) {
        j.patched.push_back({e.at(0).get<std::string>(), e.at(1).get<int>(),
                             e.at(2).get<std::vector<uint32_t>>()});
      }
    } catch (const std::exception& e) {
      return arrow::Status::Invalid(where, ": damaged journal: ", e.what());
    }
    return j;
  }
};

struct Manifest {
  std::string freq, session;
  std::vector<std::string> fields;  // all output fields, in order
  std::string lake;
  std::optional<Date> first_day, last_day;
  std::vector<std::string> markets;

  nlohmann::json ToJson() const {
    return {{"format", kManifestFormat},
            {"freq", freq},
            {"session", session},
            {"fields", fields},
            {"lake", lake},
            {"first_day", first_day ? FormatDate(*first_day) : ""},
            {"last_day", last_day ? FormatDate(*last_day) : ""},
            {"markets", markets}};
  }
  static arrow::Result<Manifest> FromJson(const std::string& text,
                                          const std::string& where) {
    Manifest m;
    try {
      auto v = nlohmann::json::parse(text);
      if (v.at("format") != kManifestFormat) {
        return arrow::Status::Invalid(where, ": not a ", kManifestFormat, " manifest");
      }
      m.freq = v.at("freq");
      m.session = v.at("session");
      m.fields = v.at("fields").get<std::vector<std::string>>();
      m.lake = v.value("lake", "");
      std::string f = v.at("first_day"), l = v.at("last_day");
      if (!f.empty()) {
        ARROW_ASSIGN_OR_RAISE(m.first_day, ParseDate(f));
        ARROW_ASSIGN_OR_RAISE(m.last_day, ParseDate(l));
      }
      m.markets = v.at("markets").get<std::vector<std::string>>();
    } catch (const std::exception& e) {
      return arrow::Status::Invalid(where, ": damaged manifest: ", e.what());
    }
    return m;
  }
};

// Which lake commit each exported day was built from, per input dataset (the source, the
// minute bars a day store's vwap reads, the features dataset of extra fields):
// .qlake/inputs.json. The transaction id identifies the commit; the record file's size
// and mtime (from one listing of the commits folder) let an unchanged day be recognised
// without reading its record.
struct Stamp {
  std::string txn;  // "" when only listed
  int64_t size = -1;
  int64_t mtime_ns = -1;

  bool SameFile(const Stamp& o) const { return size == o.size && mtime_ns == o.mtime_ns; }
};

struct Inputs {
  // dataset -> day -> stamp of the commit the exported day was built from. A dataset's
  // day without an entry had no commit when the day was exported.
  std::map<std::string, std::map<Date, Stamp>> days;

  std::string ToText() const {
    // One line per day, so the file reads (and diffs) well.
    std::string out =
        "{\"format\": " + nlohmann::json(kInputsFormat).dump() + ",\n \"days\": {";
    bool first_ds = true;
    for (const auto& [ds, m] : days) {
      out += first_ds ? "\n" : ",\n";
      first_ds = false;
      out += "  " + nlohmann::json(ds).dump() + ": {";
      bool first = true;
      for (const auto& [d, st] : m) {
        out += first ? "\n" : ",\n";
        first = false;
        out += "   \"" + FormatDate(d) +
               "\": " + nlohmann::json::array({st.txn, st.size, st.mtime_ns}).dump();
      }
      out += "}";
    }
    out += "}}\n";
    return out;
  }
  static arrow::Result<Inputs> FromText(const std::string& text,
                                        const std::string& where) {
    Inputs in;
    try {
      auto v = nlohmann::json::parse(text);
      if (v.at("format") != kInputsFormat) {
        return arrow::Status::Invalid(where, ": not a ", kInputsFormat, " file");
      }
      for (const auto& [ds, m] : v.at("days").items()) {
        auto& out = in.days[ds];
        for (const auto& [d, e] : m.items()) {
          ARROW_ASSIGN_OR_RAISE(auto day, ParseDate(d));
          out[day] = Stamp{e.at(0).get<std::string>(), e.at(1).get<int64_t>(),
                           e.at(2).get<int64_t>()};
        }
      }
    } catch (const std::exception& e) {
      return arrow::Status::Invalid(where, ": damaged inputs file: ", e.what());
    }
    return in;
  }
};

// Size and mtime of every commit record of `dataset`, from one listing.
arrow::Result<std::map<Date, Stamp>> ListRecordStamps(lake::Lake& lake,
                                                      const std::string& dataset) {
  std::string rel = lake::Lake::CommitRecordPath(dataset, Date{});
  arrow::fs::FileSelector sel;
  sel.base_dir = lake.PathOf(rel.substr(0, rel.rfind('/')));
  sel.allow_not_found = true;
  ARROW_ASSIGN_OR_RAISE(auto infos, lake.filesystem()->GetFileInfo(sel));
  std::map<Date, Stamp> out;
  for (const auto& f : infos) {
    if (f.type() != arrow::fs::FileType::File) continue;
    std::string name = f.base_name();
    if (name.size() != 15 || !name.ends_with(".json")) continue;
    auto day = ParseDate(name.substr(0, 10));
    if (!day.ok()) continue;
    Stamp st;
    st.size = f.size();
    if (f.mtime() != arrow::fs::kNoTime) {
      st.mtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        f.mtime().time_since_epoch())
                        .count();
    }
    out[*day] = st;
  }
  return out;
}

std::string BinName(const std::string& field, Freq freq) {
  return field + "." + std::string(FreqName(freq)) + ".bin";
}

// Undo or finish an interrupted transaction of the store at `root`.
arrow::Status ApplyJournal(const std::string& root, const Journal& j) {
  const std::string feat = root + "/features/";
  Freq freq = j.freq == "1min" ? Freq::kMinute : Freq::kDay;
  auto remove_new = [&](const std::string& dir) -> arrow::Status {
    for (const auto& f : j.fields) {
      std::string p = feat + dir + "/" + BinName(f, freq) + std::string(kNewSuffix);
      if (::unlink(p.c_str()) != 0 && errno != ENOENT) return Errno("unlink", p);
    }
    return arrow::Status::OK();
  };
  std::vector<std::string> tops;  // top-level temps: instruments, calendar, manifest
  if (fs::exists(root + "/instruments")) {
    for (const auto& e : fs::directory_iterator(root + "/instruments")) {
      if (e.path().string().ends_with(kNewSuffix)) tops.push_back(e.path().string());
    }
  }
  std::string cal_new = root + "/calendars/" + j.freq + ".txt" + std::string(kNewSuffix);
  std::string man_new =
      root + "/" + std::string(kMetaDir) + "/qlib.json" + std::string(kNewSuffix);
  std::string inputs_new =
      root + "/" + std::string(kMetaDir) + "/inputs.json" + std::string(kNewSuffix);
  if (!j.committed) {
    for (const auto& [dir, n] : j.appended) {
      for (const auto& f : j.fields) {
        std::string p = feat + dir + "/" + BinName(f, freq);
        if (::truncate(p.c_str(), 4 * (n + 1)) != 0 && errno != ENOENT) {
          return Errno("truncate", p);
        }
      }
    }
    for (const auto& d : j.created) ARROW_RETURN_NOT_OK(RemoveAll(feat + d));
    for (const auto& d : j.replaced) ARROW_RETURN_NOT_OK(remove_new(d));
    tops.push_back(cal_new);
    tops.push_back(man_new);
    tops.push_back(inputs_new);
    for (const auto& p : tops) ::unlink(p.c_str());
    return arrow::Status::OK();
  }
  for (const auto& dir : j.replaced) {
    for (const auto& f : j.fields) {
      std::string p = feat + dir + "/" + BinName(f, freq);
      std::string pn = p + std::string(kNewSuffix);
      if (::rename(pn.c_str(), p.c_str()) != 0 && errno != ENOENT) {
        return Errno("rename", pn);
      }
    }
  }
  // In-place values (idempotent: a roll forward writes them again).
  for (const auto& x : j.patched) {
    if (x.field < 0 || static_cast<std::size_t>(x.field) >= j.fields.size()) {
      return arrow::Status::Invalid("journal of ", root, ": bad field index ", x.field);
    }
    std::string p =
        feat + x.dir + "/" + BinName(j.fields[static_cast<std::size_t>(x.field)], freq);
    int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return Errno("open", p);
    arrow::Status st;
    for (std::size_t i = 0; i + 1 < x.values.size() && st.ok(); i += 2) {
      st = WriteAll(fd, &x.values[i + 1], 4, 4 * (int64_t{x.values[i]} + 1), p);
    }
    if (::close(fd) != 0 && st.ok()) st = Errno("close", p);
    ARROW_RETURN_NOT_OK(st);
  }
  for (const auto& d : j.removed) ARROW_RETURN_NOT_OK(RemoveAll(feat + d));
  std::sort(tops.begin(), tops.end());
  for (const auto& p : tops) {
    ARROW_RETURN_NOT_OK(RenameFile(p, p.substr(0, p.size() - kNewSuffix.size())));
  }
  if (fs::exists(inputs_new)) {
    ARROW_RETURN_NOT_OK(RenameFile(
        inputs_new, inputs_new.substr(0, inputs_new.size() - kNewSuffix.size())));
  }
  if (fs::exists(cal_new)) {
    ARROW_RETURN_NOT_OK(
        RenameFile(cal_new, cal_new.substr(0, cal_new.size() - kNewSuffix.size())));
  }
  if (fs::exists(man_new)) {
    ARROW_RETURN_NOT_OK(
        RenameFile(man_new, man_new.substr(0, man_new.size() - kNewSuffix.size())));
  }
  return arrow::Status::OK();
}

std::string JournalPath(const std::string& root) {
  return root + "/" + std::string(kMetaDir) + "/journal.json";
}

// Sibling folders used to build a new store and to swap it in.
std::string SiblingPath(const std::string& out, std::string_view tag) {
  fs::path p(out);
  return (p.parent_path() / ("." + p.filename().string() + ".qlake-" + std::string(tag)))
      .string();
}

// Cleans up after a crash: a half-done swap, stale build folders, a journal.
arrow::Result<int64_t> Recover(const std::string& out) {
  int64_t actions = 0;
  std::string old = SiblingPath(out, "old");
  if (fs::exists(old)) {
    if (!fs::exists(out)) {
      ARROW_RETURN_NOT_OK(RenameFile(old, out));  // crashed between the two renames
    } else {
      ARROW_RETURN_NOT_OK(RemoveAll(old));
    }
    ++actions;
  }
  fs::path parent = fs::path(out).parent_path();
  std::string prefix = "." + fs::path(out).filename().string() + ".qlake-build-";
  if (fs::exists(parent)) {
    for (const auto& e : fs::directory_iterator(parent)) {
      if (e.path().filename().string().starts_with(prefix)) {
        ARROW_RETURN_NOT_OK(RemoveAll(e.path().string()));
        ++actions;
      }
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto text, ReadFileIfExists(JournalPath(out)));
  if (text) {
    ARROW_ASSIGN_OR_RAISE(auto j, Journal::FromJson(*text, JournalPath(out)));
    spdlog::warn("qlib export: {} an interrupted update of {}",
                 j.committed ? "finishing" : "rolling back", out);
    ARROW_RETURN_NOT_OK(ApplyJournal(out, j));
    if (::unlink(JournalPath(out).c_str()) != 0) return Errno("unlink", JournalPath(out));
    ++actions;
  }
  return actions;
}

// ---------------------------------------------------------------------------------------
// The exporter.

class Exporter {
 public:
  explicit Exporter(ExportOptions o) : o_(std::move(o)) {}

  arrow::Result<ExportReport> Run();
  // After a failed Run: removes a half-built store, or rolls back (or finishes) an
  // interrupted transaction, so a failed run leaves the previous store as it was.
  void CleanUpAfterFailure() {
    if (root_.empty()) return;
    if (root_ != o_.out) {
      (void)RemoveAll(root_);
    } else if (auto r = Recover(o_.out); !r.ok()) {
      spdlog::warn("qlib export: cleanup of {} failed ({}); the next run retries", o_.out,
                   r.status().ToString());
    }
  }

 private:
  arrow::Status Plan();
  arrow::Status LoadStore();
  arrow::Result<int32_t> Resolve(std::string_view ticker);
  arrow::Status ReadDay(std::size_t session_index);
  arrow::Status ReadDayVwap(const lake::CommitRecord& rec,
                            std::unordered_map<int32_t, std::pair<double, double>>* sums);
  // Records which commit of `dataset` the day is exported from (nullopt: none).
  void NoteInput(const std::string& dataset, Date day,
                 const std::optional<lake::CommitRecord>& rec);
  // Days inside the store whose lake commit changed since they were exported.
  arrow::Result<std::set<Date>> FindRecommitted();
  arrow::Status ReadExtras(Date day, const std::vector<int32_t>& ids,
                           const std::vector<int64_t>& ws,
                           std::vector<std::vector<float>>* cols,
                           const std::vector<std::string>& names);
  arrow::Status FlushAppend(bool journal);
  arrow::Status FlushRewrite(int64_t first_session, int64_t last_session);
  arrow::Status Load(Symbol& s);
  arrow::Status WriteMeta(bool journal, const std::string& root);
  arrow::Status BeginTxn(const Journal& j);
  arrow::Status CommitTxn(Journal& j);
  void ResetBatch();
  std::string InstrumentsText(const std::vector<int32_t>& members) const;

  ExportOptions o_;
  ExportReport report_;
  LakeReader reader_;
  std::string source_;               // stocks_daily / stocks_minute
  std::string features_source_;      // features/<source>
  std::vector<std::string> fields_;  // output fields
  int slots_ = kNumBaseSlots;
  std::vector<std::string> extra_lake_, extra_features_;  // extras by origin
  std::vector<int> extra_slot_lake_, extra_slot_features_;

  bool have_store_ = false;
  Manifest manifest_;
  std::string root_;  // folder being written (out, or the build folder)
  Calendar cal_;
  std::vector<Symbol> syms_;
  std::unordered_map<std::string, int32_t> by_ticker_;
  std::unordered_set<std::string> filter_;
  std::set<std::string> markets_;
  std::map<std::string, std::set<int32_t>> market_members_;
  std::set<int32_t> run_symbols_;

  std::vector<std::size_t> append_days_, rewrite_days_;  // session indexes
  // Input datasets (source first), their commit records' stamps listed by Plan, and the
  // store's record of the commits its days were built from.
  std::vector<std::string> input_datasets_;
  std::map<std::string, std::map<Date, Stamp>> listed_;
  Inputs inputs_;
  bool inputs_known_ = false;        // the store has .qlake/inputs.json
  bool inputs_dirty_ = false;        // inputs_ changed without a transaction to write it
  std::size_t stored_sessions_ = 0;  // sessions in the store's calendar

  std::optional<Date> exported_last_;  // last day appended so far
  std::vector<Bars> batch_;
  std::vector<int32_t> batch_syms_;
  int64_t batch_bytes_ = 0;
};

arrow::Result<int32_t> Exporter::Resolve(std::string_view ticker) {
  auto it = by_ticker_.find(std::string(ticker));
  if (it != by_ticker_.end()) return it->second;
  if (!filter_.empty() && !filter_.count(std::string(ticker))) return -1;
  Symbol s;
  s.ticker = std::string(ticker);
  ARROW_ASSIGN_OR_RAISE(s.code, TickerToCode(ticker));
  s.dir = CodeToDir(s.code);
  auto id = static_cast<int32_t>(syms_.size());
  syms_.push_back(std::move(s));
  by_ticker_.emplace(std::string(ticker), id);
  return id;
}

arrow::Status Exporter::LoadStore() {
  std::string man_path = o_.out + "/" + std::string(kMetaDir) + "/qlib.json";
  ARROW_ASSIGN_OR_RAISE(auto text, ReadFileIfExists(man_path));
  if (!text) {
    if (fs::exists(o_.out) && !fs::is_empty(o_.out)) {
      return arrow::Status::Invalid("output folder ", o_.out,
                                    " is not empty and is not a qlake Qlib store (no "
                                    ".qlake/qlib.json); refusing to "
                                    "overwrite it: pass an empty or new folder");
    }
    return arrow::Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(manifest_, Manifest::FromJson(*text, man_path));
  have_store_ = manifest_.first_day.has_value();
  if (o_.rebuild || !have_store_) {
    manifest_.markets.clear();   // a rebuild keeps only the --market of this run
    manifest_.last_day.reset();  // first_day stays: the rebuild's default start
    return arrow::Status::OK();
  }
  for (const auto& m : manifest_.markets) markets_.insert(m);
  if (manifest_.freq != FreqName(o_.freq)) {
    return arrow::Status::Invalid("store ", o_.out, " holds freq ", manifest_.freq,
                                  ", not ", FreqName(o_.freq), "; use another --out");
  }
  if (o_.freq == Freq::kMinute && manifest_.session != SessionModeName(o_.session)) {
    return arrow::Status::Invalid("store ", o_.out, " holds the ", manifest_.session,
                                  " session; pass --rebuild to change it");
  }
  if (manifest_.fields != fields_) {
    return arrow::Status::Invalid("store ", o_.out, " has fields ",
                                  fmt::format("{}", fmt::join(manifest_.fields, ",")),
                                  "; this run asks for ",
                                  fmt::format("{}", fmt::join(fields_, ",")),
                                  ": pass the same --fields, or --rebuild");
  }
  // Symbols and spans from all.txt, market memberships from the market files.
  auto parse_instruments = [&](const std::string& path,
                               std::set<int32_t>* members) -> arrow::Status {
    ARROW_ASSIGN_OR_RAISE(auto body, ReadFileIfExists(path));
    if (!body) return arrow::Status::Invalid("store ", o_.out, " lacks ", path);
    std::istringstream in(*body);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto t1 = line.find('\t');
      auto t2 = line.find('\t', t1 + 1);
      if (t1 == std::string::npos || t2 == std::string::npos) {
        return arrow::Status::Invalid(path, ": malformed line '", line, "'");
      }
      std::string code = line.substr(0, t1);
      ARROW_ASSIGN_OR_RAISE(auto ticker, CodeToTicker(code));
      ARROW_ASSIGN_OR_RAISE(auto first, ParseDate(line.substr(t1 + 1, 10)));
      ARROW_ASSIGN_OR_RAISE(auto last, ParseDate(line.substr(t2 + 1, 10)));
      auto it = by_ticker_.find(ticker);
      int32_t id;
      if (it == by_ticker_.end()) {
        Symbol s;
        s.ticker = ticker;
        s.code = code;
        s.dir = CodeToDir(code);
        s.in_store = true;
        s.first_day = first;
        s.last_day = last;
        id = static_cast<int32_t>(syms_.size());
        syms_.push_back(std::move(s));
        by_ticker_.emplace(ticker, id);
      } else {
        id = it->second;
      }
      if (members) members->insert(id);
    }
    return arrow::Status::OK();
  };
  ARROW_RETURN_NOT_OK(parse_instruments(o_.out + "/instruments/all.txt", nullptr));
  for (const auto& m : manifest_.markets) {
    ARROW_RETURN_NOT_OK(
        parse_instruments(o_.out + "/instruments/" + m + ".txt", &market_members_[m]));
  }
  std::string inputs_path = o_.out + "/" + std::string(kMetaDir) + "/inputs.json";
  ARROW_ASSIGN_OR_RAISE(auto inputs_text, ReadFileIfExists(inputs_path));
  if (inputs_text) {
    ARROW_ASSIGN_OR_RAISE(inputs_, Inputs::FromText(*inputs_text, inputs_path));
    inputs_known_ = true;
  }
  return arrow::Status::OK();
}

arrow::Status Exporter::Plan() {
  source_ = o_.freq == Freq::kDay ? "stocks_daily" : "stocks_minute";
  features_source_ = "features/" + source_;
  for (auto f : kBaseFields) fields_.emplace_back(f);
  std::set<std::string> seen(fields_.begin(), fields_.end());
  for (const auto& f : o_.fields) {
    ARROW_RETURN_NOT_OK(ValidateFieldName(f));
    if (!seen.insert(f).second) {
      return arrow::Status::Invalid("field '", f,
                                    "' is given twice or is a built-in field");
    }
    fields_.push_back(f);
  }
  if (!o_.market.empty()) {
    if (!ValidateFieldName(o_.market).ok()) {
      return arrow::Status::Invalid("market name '", o_.market,
                                    "' must be [a-z0-9_] starting with a letter");
    }
    if (o_.market == "all")
      return arrow::Status::Invalid("market 'all' is always written");
  }
  for (const auto& s : o_.symbols) filter_.insert(s);
  if (o_.batch_bytes < (1 << 20))
    return arrow::Status::Invalid("batch_bytes below 1 MiB");

  ARROW_RETURN_NOT_OK(LoadStore());
  std::string lake_uri = o_.lake;
  if (lake_uri.find("://") == std::string::npos) {
    lake_uri = fs::absolute(lake_uri).lexically_normal().string();
  }
  ARROW_ASSIGN_OR_RAISE(reader_.lake, lake::Lake::Open(lake_uri));

  // Extra fields: columns of the source dataset, else of its features dataset.
  if (!o_.fields.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto days, reader_.lake->ListCommittedDays(source_));
    if (days.empty()) return arrow::Status::Invalid("lake has no ", source_, " days");
    ARROW_ASSIGN_OR_RAISE(auto rec, reader_.Commit(source_, days.back()));
    std::shared_ptr<arrow::Schema> schema;
    if (rec && !rec->files.empty()) {
      ARROW_ASSIGN_OR_RAISE(
          auto file, reader_.lake->filesystem()->OpenInputFile(
                         reader_.lake->PathOf(source_ + "/" + rec->files[0].path)));
      ARROW_ASSIGN_OR_RAISE(auto r,
                            parquet::arrow::OpenFile(file, arrow::default_memory_pool()));
      ARROW_RETURN_NOT_OK(r->GetSchema(&schema));
    }
    for (std::size_t i = 0; i < o_.fields.size(); ++i) {
      const auto& f = o_.fields[i];
      int slot = kNumBaseSlots + static_cast<int>(i);
      bool in_lake = schema && schema->GetFieldIndex(f) >= 0 && f != "ticker" &&
                     f != "window_start" && f != "date";
      if (in_lake) {
        extra_lake_.push_back(f);
        extra_slot_lake_.push_back(slot);
      } else {
        extra_features_.push_back(f);
        extra_slot_features_.push_back(slot);
      }
    }
    slots_ = kNumBaseSlots + static_cast<int>(o_.fields.size());
  }

  input_datasets_ = {source_};
  if (o_.freq == Freq::kDay) input_datasets_.push_back("stocks_minute");
  if (!extra_features_.empty()) input_datasets_.push_back(features_source_);
  for (const auto& ds : input_datasets_) {
    ARROW_ASSIGN_OR_RAISE(listed_[ds], ListRecordStamps(*reader_.lake, ds));
  }

  // Range.
  ARROW_ASSIGN_OR_RAISE(auto wm, reader_.lake->GetWatermark(source_));
  if (wm.empty() && !o_.to) {
    return arrow::Status::Invalid("lake ", o_.lake, " has no committed ", source_,
                                  " days; ingest first");
  }
  Date to = o_.to ? *o_.to : *wm.last_contiguous;
  bool incremental = have_store_ && !o_.rebuild;
  Date first;
  if (incremental) {
    first = *manifest_.first_day;
    if (o_.from && *o_.from < first) {
      return arrow::Status::Invalid(
          "--from ", FormatDate(*o_.from), " is before the store's first day ",
          FormatDate(first), ": moving the calendar's start needs --rebuild");
    }
  } else if (o_.from) {
    first = *o_.from;
  } else if (have_store_) {
    first = *manifest_.first_day;
  } else {
    if (!wm.first_day) return arrow::Status::Invalid("lake has no ", source_, " days");
    first = *wm.first_day;
  }
  Date last = to;
  if (incremental && *manifest_.last_day > last) last = *manifest_.last_day;
  if (first > last) {
    return arrow::Status::Invalid("empty range: ", FormatDate(first), " > ",
                                  FormatDate(last));
  }
  ARROW_ASSIGN_OR_RAISE(cal_, BuildCalendar(o_.freq, o_.session, first, last));
  if (cal_.sessions.empty()) {
    return arrow::Status::Invalid("no NYSE session between ", FormatDate(first), " and ",
                                  FormatDate(last));
  }
  if (incremental) {
    int64_t i = cal_.IndexOf(*manifest_.last_day);
    if (i < 0) return arrow::Status::Invalid("store's last day is not a NYSE session");
    stored_sessions_ = static_cast<std::size_t>(i + 1);
    for (std::size_t k = 0; k < cal_.sessions.size(); ++k) {
      Date d = cal_.sessions[k].date;
      if (k < stored_sessions_) {
        // Only an explicit --from re-exports days the store already has.
        if (o_.from && d >= *o_.from && d <= to) rewrite_days_.push_back(k);
      } else if (d <= to) {
        append_days_.push_back(k);
      }
    }
    if (o_.check_recommits) {
      ARROW_ASSIGN_OR_RAISE(auto recommitted, FindRecommitted());
      std::set<std::size_t> all(rewrite_days_.begin(), rewrite_days_.end());
      for (Date d : recommitted) {
        all.insert(static_cast<std::size_t>(cal_.IndexOf(d)));
        report_.recommitted_days.push_back(FormatDate(d));
      }
      report_.days_recommitted = static_cast<int64_t>(recommitted.size());
      rewrite_days_.assign(all.begin(), all.end());
    }
  } else {
    inputs_ = Inputs{};
    for (std::size_t k = 0; k < cal_.sessions.size(); ++k) append_days_.push_back(k);
  }
  // Every session to read must be committed.
  std::vector<std::string> missing;
  std::size_t n_missing = 0;
  const auto& have = listed_[source_];
  for (auto list : {&rewrite_days_, &append_days_}) {
    for (auto k : *list) {
      if (!have.count(cal_.sessions[k].date)) {
        if (missing.size() < 5) missing.push_back(FormatDate(cal_.sessions[k].date));
        ++n_missing;
      }
    }
  }
  if (n_missing) {
    return arrow::Status::Invalid("lake ", o_.lake, " lacks ", n_missing, " ", source_,
                                  " session(s) of the range (",
                                  fmt::format("{}", fmt::join(missing, ", ")),
                                  n_missing > missing.size() ? ", ..." : "",
                                  "): ingest them first (the calendar has no holes)");
  }
  return arrow::Status::OK();
}

void Exporter::NoteInput(const std::string& dataset, Date day,
                         const std::optional<lake::CommitRecord>& rec) {
  auto& m = inputs_.days[dataset];
  if (!rec) {
    m.erase(day);
    return;
  }
  Stamp st;
  auto& listed = listed_[dataset];
  if (auto it = listed.find(day); it != listed.end()) st = it->second;
  st.txn = rec->txn;
  m[day] = st;
}

arrow::Result<std::set<Date>> Exporter::FindRecommitted() {
  std::set<Date> out;
  if (!inputs_known_) {
    // A store written before inputs.json existed: adopt the lake's current commits
    // (one read of each stored day's records, once; nothing is rewritten).
    for (std::size_t k = 0; k < stored_sessions_; ++k) {
      Date d = cal_.sessions[k].date;
      for (const auto& ds : input_datasets_) {
        if (!listed_[ds].count(d)) continue;
        ARROW_ASSIGN_OR_RAISE(auto rec, reader_.Commit(ds, d));
        NoteInput(ds, d, rec);
      }
    }
    inputs_known_ = inputs_dirty_ = true;
    return out;
  }
  for (const auto& ds : input_datasets_) {
    auto& stored = inputs_.days[ds];
    const auto& listed = listed_[ds];
    for (std::size_t k = 0; k < stored_sessions_; ++k) {
      Date d = cal_.sessions[k].date;
      auto s = stored.find(d);
      auto l = listed.find(d);
      if (s == stored.end() && l == listed.end()) continue;
      if (s == stored.end() || l == listed.end()) {
        out.insert(d);  // committed since, or no longer committed
        continue;
      }
      if (s->second.SameFile(l->second)) continue;
      // The record file changed: the transaction id says whether the commit did.
      ARROW_ASSIGN_OR_RAISE(auto rec, reader_.Commit(ds, d));
      if (rec && rec->txn == s->second.txn) {
        s->second.size = l->second.size;
        s->second.mtime_ns = l->second.mtime_ns;
        inputs_dirty_ = true;
      } else {
        out.insert(d);
      }
    }
  }
  return out;
}

arrow::Status Exporter::ReadDayVwap(
    const lake::CommitRecord& rec,
    std::unordered_map<int32_t, std::pair<double, double>>* sums) {
  ARROW_ASSIGN_OR_RAISE(
      auto tables,
      reader_.Read("stocks_minute", rec, {"ticker", "volume", "high", "low", "close"}));
  for (const auto& t : tables) {
    // Only tickers already known from the day bars matter; others resolve to -1.
    ARROW_ASSIGN_OR_RAISE(
        auto ids,
        TickerIds(*t->column(0), [&](std::string_view tk) -> arrow::Result<int32_t> {
          auto it = by_ticker_.find(std::string(tk));
          return it == by_ticker_.end() ? -1 : it->second;
        }));
    ARROW_ASSIGN_OR_RAISE(auto v, ColumnAs<double>(*t->column(1), "volume"));
    ARROW_ASSIGN_OR_RAISE(auto h, ColumnAs<float>(*t->column(2), "high"));
    ARROW_ASSIGN_OR_RAISE(auto l, ColumnAs<float>(*t->column(3), "low"));
    ARROW_ASSIGN_OR_RAISE(auto c, ColumnAs<float>(*t->column(4), "close"));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0) continue;
      double w = v[i];
      double tp = (static_cast<double>(h[i]) + l[i] + c[i]) / 3.0;
      auto& s = (*sums)[ids[i]];
      s.first += w * tp;
      s.second += w;
    }
  }
  return arrow::Status::OK();
}

arrow::Status Exporter::ReadExtras(Date day, const std::vector<int32_t>& ids,
                                   const std::vector<int64_t>& ws,
                                   std::vector<std::vector<float>>* cols,
                                   const std::vector<std::string>& names) {
  cols->assign(names.size(), std::vector<float>(ids.size(), QuietNaN()));
  ARROW_ASSIGN_OR_RAISE(auto rec, reader_.Commit(features_source_, day));
  if (!rec) {
    return arrow::Status::Invalid("field '", names[0], "' is not a column of ", source_,
                                  " and ", features_source_, " has no commit for ",
                                  FormatDate(day), " (compute features first)");
  }
  std::vector<std::string> cols_wanted = {"ticker"};
  bool minute = o_.freq == Freq::kMinute;
  if (minute) cols_wanted.push_back("window_start");
  for (const auto& n : names) cols_wanted.push_back(n);
  ARROW_ASSIGN_OR_RAISE(auto tables, reader_.Read(features_source_, *rec, cols_wanted));
  // (symbol, window_start) -> row of the source day.
  std::unordered_map<int64_t, std::size_t> where;
  where.reserve(ids.size());
  auto key = [&](int32_t id, int64_t w) -> int64_t {
    return minute ? (w / kNsPerMinute) * (int64_t{1} << 22) + id : id;
  };
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] >= 0) where[key(ids[i], minute ? ws[i] : 0)] = i;
  }
  for (const auto& t : tables) {
    ARROW_ASSIGN_OR_RAISE(
        auto fid,
        TickerIds(*t->column(0), [&](std::string_view tk) -> arrow::Result<int32_t> {
          auto it = by_ticker_.find(std::string(tk));
          return it == by_ticker_.end() ? -1 : it->second;
        }));
    std::vector<int64_t> fws;
    if (minute) {
      ARROW_ASSIGN_OR_RAISE(fws, ColumnAsInt64(*t->column(1)));
    }
    int off = minute ? 2 : 1;
    std::vector<std::vector<float>> vals;
    for (std::size_t k = 0; k < names.size(); ++k) {
      ARROW_ASSIGN_OR_RAISE(
          auto v, ColumnAs<float>(*t->column(off + static_cast<int>(k)), names[k]));
      vals.push_back(std::move(v));
    }
    for (std::size_t i = 0; i < fid.size(); ++i) {
      if (fid[i] < 0) continue;
      auto it = where.find(key(fid[i], minute ? fws[i] : 0));
      if (it == where.end()) continue;
      for (std::size_t k = 0; k < names.size(); ++k) (*cols)[k][it->second] = vals[k][i];
    }
  }
  return arrow::Status::OK();
}

arrow::Status Exporter::ReadDay(std::size_t k) {
  const auto& session = cal_.sessions[k];
  Date day = session.date;
  ARROW_ASSIGN_OR_RAISE(auto rec, reader_.Commit(source_, day));
  if (!rec)
    return arrow::Status::Invalid(source_, " ", FormatDate(day), " is not committed");
  NoteInput(source_, day, rec);
  bool minute = o_.freq == Freq::kMinute;
  std::optional<lake::CommitRecord> minute_rec;
  if (!minute) {
    ARROW_ASSIGN_OR_RAISE(minute_rec, reader_.Commit("stocks_minute", day));
    NoteInput("stocks_minute", day, minute_rec);
  }
  if (!extra_features_.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto frec, reader_.Commit(features_source_, day));
    NoteInput(features_source_, day, frec);
  }
  std::vector<std::string> cols = {"ticker", "open", "high", "low", "close", "volume"};
  if (minute) cols.push_back("window_start");
  for (const auto& e : extra_lake_) cols.push_back(e);
  ARROW_ASSIGN_OR_RAISE(auto tables, reader_.Read(source_, *rec, cols));
  std::unordered_map<int32_t, std::pair<double, double>> vwap;
  bool vwap_read = false;
  const int64_t midnight = FromNewYork(day, 0);
  const int m0 = cal_.m0[k], m1 = cal_.m1[k];
  for (const auto& t : tables) {
    ARROW_ASSIGN_OR_RAISE(auto ids, TickerIds(*t->column(0), [&](std::string_view tk) {
                            return Resolve(tk);
                          }));
    // Resolve may have added more symbols than the headroom reserved before the day.
    if (batch_.size() < syms_.size()) batch_.resize(syms_.size() + (1 << 17));
    std::array<std::vector<float>, 5> v;
    for (int c = 0; c < 5; ++c) {
      ARROW_ASSIGN_OR_RAISE(v[c], ColumnAs<float>(*t->column(1 + c), cols[1 + c]));
    }
    std::vector<int64_t> ws;
    int off = 6;
    if (minute) {
      ARROW_ASSIGN_OR_RAISE(ws, ColumnAsInt64(*t->column(6)));
      off = 7;
    }
    std::vector<std::vector<float>> extra(extra_lake_.size());
    for (std::size_t e = 0; e < extra_lake_.size(); ++e) {
      ARROW_ASSIGN_OR_RAISE(
          extra[e],
          ColumnAs<float>(*t->column(off + static_cast<int>(e)), extra_lake_[e]));
    }
    std::vector<std::vector<float>> fextra;
    if (!extra_features_.empty()) {
      ARROW_RETURN_NOT_OK(ReadExtras(day, ids, ws, &fextra, extra_features_));
    }
    if (!minute && !vwap_read) {
      if (minute_rec) ARROW_RETURN_NOT_OK(ReadDayVwap(*minute_rec, &vwap));
      vwap_read = true;
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
      int32_t id = ids[i];
      if (id < 0) continue;
      int64_t row;
      if (minute) {
        int64_t rel = ws[i] - midnight;
        if (rel < 0 || rel % kNsPerMinute) continue;
        int m = static_cast<int>(rel / kNsPerMinute);
        if (m < m0 || m >= m1) continue;  // outside the exported session
        row = cal_.base[k] + (m - m0);
      } else {
        row = cal_.base[k];
      }
      auto& b = batch_[static_cast<std::size_t>(id)];
      if (b.rows.empty()) batch_syms_.push_back(id);
      if (!b.rows.empty() && b.rows.back() >= row) {
        return arrow::Status::Invalid(source_, " ", FormatDate(day), ": ticker '",
                                      syms_[static_cast<std::size_t>(id)].ticker,
                                      "' has rows out of order or duplicated");
      }
      b.rows.push_back(static_cast<int32_t>(row));
      float o = v[0][i], h = v[1][i], l = v[2][i], c = v[3][i], vol = v[4][i];
      float tp = static_cast<float>((static_cast<double>(h) + l + c) / 3.0);
      float vw = tp;
      if (!minute) {
        auto it = vwap.find(id);
        if (it != vwap.end() && it->second.second > 0) {
          vw = static_cast<float>(it->second.first / it->second.second);
        }
      }
      std::size_t at = b.vals.size();
      b.vals.resize(at + static_cast<std::size_t>(slots_), QuietNaN());
      float* p = b.vals.data() + at;
      p[kOpen] = o;
      p[kHigh] = h;
      p[kLow] = l;
      p[kClose] = c;
      p[kVolume] = vol;
      p[kVwap] = vw;
      for (std::size_t e = 0; e < extra_lake_.size(); ++e)
        p[extra_slot_lake_[e]] = extra[e][i];
      for (std::size_t e = 0; e < extra_features_.size(); ++e) {
        p[extra_slot_features_[e]] = fextra[e][i];
      }
      batch_bytes_ += 4 * (1 + slots_);
      ++report_.bars;
    }
  }
  return arrow::Status::OK();
}

void Exporter::ResetBatch() {
  for (auto id : batch_syms_) {
    batch_[static_cast<std::size_t>(id)].rows.clear();
    batch_[static_cast<std::size_t>(id)].vals.clear();
    batch_[static_cast<std::size_t>(id)].rows.shrink_to_fit();
    batch_[static_cast<std::size_t>(id)].vals.shrink_to_fit();
  }
  batch_syms_.clear();
  batch_bytes_ = 0;
}

arrow::Status Exporter::Load(Symbol& s) {
  if (s.loaded || !s.in_store) {
    s.loaded = true;
    return arrow::Status::OK();
  }
  std::string p = root_ + "/features/" + s.dir + "/" + BinName("close", o_.freq);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", p);
  struct stat st {};
  float head = 0, tail = 0;
  bool ok = ::fstat(fd, &st) == 0 && st.st_size >= 8 && st.st_size % 4 == 0 &&
            ::pread(fd, &head, 4, 0) == 4 && ::pread(fd, &tail, 4, st.st_size - 4) == 4;
  ::close(fd);
  if (!ok) return arrow::Status::IOError("damaged bin ", p, " (size ", st.st_size, ")");
  s.start = static_cast<int64_t>(head);
  s.n = st.st_size / 4 - 1;
  s.last_close = tail;
  s.loaded = true;
  return arrow::Status::OK();
}

arrow::Status Exporter::BeginTxn(const Journal& j) {
  ARROW_RETURN_NOT_OK(MakeDirs(root_ + "/" + std::string(kMetaDir)));
  return WriteFileAtomic(JournalPath(root_), j.ToJson().dump() + "\n");
}

// Test hook: QLAKE_QLIB_CRASH=before_commit|after_commit ends the process abruptly at
// that point of the first transaction (tests/python/test_qlib.py checks recovery).
void MaybeCrash(std::string_view where) {
  const char* env = std::getenv("QLAKE_QLIB_CRASH");
  if (env && where == env) ::_exit(86);
}

arrow::Status Exporter::CommitTxn(Journal& j) {
  if (o_.fsync) SyncFs(root_);
  MaybeCrash("before_commit");
  j.committed = true;
  ARROW_RETURN_NOT_OK(WriteFileAtomic(JournalPath(root_), j.ToJson().dump() + "\n"));
  MaybeCrash("after_commit");
  ARROW_RETURN_NOT_OK(ApplyJournal(root_, j));
  // Values written in place must reach the disk before the journal that redoes them goes.
  if (o_.fsync && !j.patched.empty()) SyncFs(root_);
  if (::unlink(JournalPath(root_).c_str()) != 0)
    return Errno("unlink", JournalPath(root_));
  return arrow::Status::OK();
}

// Writes the field values of rows [first_row, first_row + len) of one symbol's batch
// bars into per-field buffers (NaN where there is no bar), computing factor and change.
// `prev_close` is the close before first_row (NaN if none) and is updated.
void FillBuffers(const Bars& b, int slots, int64_t first_row, std::size_t len,
                 int nfields, float* prev_close, std::vector<std::vector<float>>* bufs) {
  bufs->resize(static_cast<std::size_t>(nfields));
  for (auto& buf : *bufs) buf.assign(len, QuietNaN());
  float prev = *prev_close;
  for (std::size_t i = 0; i < b.rows.size(); ++i) {
    auto off = static_cast<std::size_t>(b.rows[i] - first_row);
    const float* p = b.vals.data() + i * static_cast<std::size_t>(slots);
    for (int f = 0; f < kNumBaseSlots; ++f)
      (*bufs)[static_cast<std::size_t>(f)][off] = p[f];
    (*bufs)[6][off] = 1.0f;
    float c = p[kClose];
    (*bufs)[7][off] = std::isnan(prev)
                          ? QuietNaN()
                          : static_cast<float>(static_cast<double>(c) / prev - 1.0);
    if (!std::isnan(c)) prev = c;
    for (int e = kNumBaseSlots; e < slots; ++e) {
      (*bufs)[static_cast<std::size_t>(e + 2)][off] = p[e];
    }
  }
  *prev_close = prev;
}

arrow::Status Exporter::FlushAppend(bool journal) {
  Journal j;
  j.fields = fields_;
  j.freq = std::string(FreqName(o_.freq));
  std::sort(batch_syms_.begin(), batch_syms_.end());
  for (auto id : batch_syms_) {
    auto& s = syms_[static_cast<std::size_t>(id)];
    ARROW_RETURN_NOT_OK(Load(s));
    if (s.in_store) {
      j.appended.emplace_back(s.dir, s.n);
    } else if (s.n == 0) {
      j.created.push_back(s.dir);
    } else {
      j.appended.emplace_back(s.dir, s.n);  // created by an earlier batch of this run
    }
  }
  if (journal) ARROW_RETURN_NOT_OK(BeginTxn(j));
  std::vector<std::vector<float>> bufs;
  std::vector<float> out;
  const int nfields = static_cast<int>(fields_.size());
  for (auto id : batch_syms_) {
    auto& s = syms_[static_cast<std::size_t>(id)];
    const auto& b = batch_[static_cast<std::size_t>(id)];
    int64_t fb = b.rows.front(), lb = b.rows.back();
    bool fresh = s.n == 0;
    int64_t first_row = fresh ? fb : s.start + s.n;
    if (!fresh && fb < first_row) {
      return arrow::Status::Invalid("internal: append of row ", fb, " to ", s.ticker,
                                    " whose bins end at row ", first_row - 1);
    }
    auto len = static_cast<std::size_t>(lb - first_row + 1);
    FillBuffers(b, slots_, first_row, len, nfields, &s.last_close, &bufs);
    std::string dir = root_ + "/features/" + s.dir;
    if (fresh) ARROW_RETURN_NOT_OK(MakeDirs(dir));
    for (int f = 0; f < nfields; ++f) {
      std::string p = dir + "/" + BinName(fields_[static_cast<std::size_t>(f)], o_.freq);
      const auto& buf = bufs[static_cast<std::size_t>(f)];
      int fd;
      int64_t offset;
      if (fresh) {
        fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) return Errno("create", p);
        out.resize(len + 1);
        out[0] = static_cast<float>(fb);
        std::memcpy(out.data() + 1, buf.data(), len * 4);
        offset = 0;
      } else {
        fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) return Errno("open", p);
        offset = 4 * (s.n + 1);
        if (::ftruncate(fd, offset) != 0) {
          ::close(fd);
          return Errno("truncate", p);
        }
        out.assign(buf.begin(), buf.end());
      }
      auto st = WriteAll(fd, out.data(), out.size() * 4, offset, p);
      ::close(fd);
      ARROW_RETURN_NOT_OK(st);
      report_.bytes_written += static_cast<int64_t>(out.size() * 4);
    }
    if (fresh) s.start = fb;
    s.n = lb - s.start + 1;
    if (!s.first_day)
      s.first_day = cal_.sessions[static_cast<std::size_t>(cal_.DayOfRow(fb))].date;
    s.last_day = cal_.sessions[static_cast<std::size_t>(cal_.DayOfRow(lb))].date;
    run_symbols_.insert(id);
  }
  report_.symbols_touched += static_cast<int64_t>(batch_syms_.size());
  ResetBatch();
  if (journal) {
    ARROW_RETURN_NOT_OK(WriteMeta(true, root_));
    ARROW_RETURN_NOT_OK(CommitTxn(j));
    for (auto& s : syms_) {
      if (s.n > 0) s.in_store = true;
    }
  }
  return arrow::Status::OK();
}

arrow::Status Exporter::FlushRewrite(int64_t first_session, int64_t last_session) {
  const int64_t ra = cal_.base[static_cast<std::size_t>(first_session)];
  const int64_t rb = cal_.base[static_cast<std::size_t>(last_session) + 1] - 1;
  const Date da = cal_.sessions[static_cast<std::size_t>(first_session)].date;
  const Date db = cal_.sessions[static_cast<std::size_t>(last_session)].date;
  std::set<int32_t> affected(batch_syms_.begin(), batch_syms_.end());
  for (std::size_t i = 0; i < syms_.size(); ++i) {
    const auto& s = syms_[i];
    if (s.in_store && s.first_day && *s.first_day <= db && *s.last_day >= da) {
      affected.insert(static_cast<int32_t>(i));
    }
  }
  Journal j;
  j.fields = fields_;
  j.freq = std::string(FreqName(o_.freq));
  // Which symbols get whole new bins (.qlake-new) and which in-place values is known only
  // after computing them: the journal lists every affected symbol as replaced first (a
  // crash before the final journal removes their temps), then the final lists.
  for (auto id : affected) {
    auto& s = syms_[static_cast<std::size_t>(id)];
    if (!s.in_store) j.created.push_back(s.dir);
    j.replaced.push_back(s.dir);
  }
  ARROW_RETURN_NOT_OK(BeginTxn(j));
  std::vector<std::string> replaced;
  const int nfields = static_cast<int>(fields_.size());
  std::vector<std::vector<float>> cols(static_cast<std::size_t>(nfields));
  std::vector<std::string> removed;
  for (auto id : affected) {
    auto& s = syms_[static_cast<std::size_t>(id)];
    const auto& b = batch_[static_cast<std::size_t>(id)];
    std::string dir = root_ + "/features/" + s.dir;
    // The whole series over [lo, hi].
    int64_t lo = ra, hi = rb;
    std::vector<std::vector<float>> old(static_cast<std::size_t>(nfields));
    int64_t old_start = 0;
    if (s.in_store) {
      ARROW_RETURN_NOT_OK(Load(s));
      old_start = s.start;
      lo = std::min(lo, s.start);
      hi = std::max(hi, s.start + s.n - 1);
      for (int f = 0; f < nfields; ++f) {
        std::string p =
            dir + "/" + BinName(fields_[static_cast<std::size_t>(f)], o_.freq);
        ARROW_ASSIGN_OR_RAISE(auto body, ReadFileIfExists(p));
        if (!body || static_cast<int64_t>(body->size()) != 4 * (s.n + 1)) {
          return arrow::Status::IOError("bin ", p, " is missing or has the wrong size");
        }
        auto& v = old[static_cast<std::size_t>(f)];
        v.resize(static_cast<std::size_t>(s.n));
        std::memcpy(v.data(), body->data() + 4, static_cast<std::size_t>(s.n) * 4);
      }
    }
    auto len = static_cast<std::size_t>(hi - lo + 1);
    for (int f = 0; f < nfields; ++f) {
      auto& c = cols[static_cast<std::size_t>(f)];
      c.assign(len, QuietNaN());
      const auto& v = old[static_cast<std::size_t>(f)];
      for (std::size_t i = 0; i < v.size(); ++i) {
        int64_t row = old_start + static_cast<int64_t>(i);
        if (row >= ra && row <= rb) continue;  // replaced by this export
        c[static_cast<std::size_t>(row - lo)] = v[i];
      }
    }
    for (std::size_t i = 0; i < b.rows.size(); ++i) {
      auto off = static_cast<std::size_t>(b.rows[i] - lo);
      const float* p = b.vals.data() + i * static_cast<std::size_t>(slots_);
      for (int f = 0; f < kNumBaseSlots; ++f)
        cols[static_cast<std::size_t>(f)][off] = p[f];
      for (int e = kNumBaseSlots; e < slots_; ++e)
        cols[static_cast<std::size_t>(e + 2)][off] = p[e];
    }
    // Trim to the first and last bar; recompute factor and change over the series.
    const auto& close = cols[kClose];
    std::size_t a = 0, z = len;
    while (a < len && std::isnan(close[a])) ++a;
    while (z > a && std::isnan(close[z - 1])) --z;
    if (a == z) {
      removed.push_back(s.dir);
      s.n = 0;
      s.first_day.reset();
      s.last_day.reset();
      continue;
    }
    float prev = QuietNaN();
    for (std::size_t i = a; i < z; ++i) {
      float c = close[i];
      cols[6][i] = std::isnan(c) ? QuietNaN() : 1.0f;
      cols[7][i] = (std::isnan(c) || std::isnan(prev))
                       ? QuietNaN()
                       : static_cast<float>(static_cast<double>(c) / prev - 1.0);
      if (!std::isnan(c)) prev = c;
    }
    const int64_t new_start = lo + static_cast<int64_t>(a);
    const auto new_n = static_cast<int64_t>(z - a);
    if (s.in_store && new_start == old_start && new_n == s.n) {
      // Same span: only changed values are written, in place at commit. Replacing whole
      // files (rename over each bin) costs ~1 ms a file on ext4 with discard; a
      // re-committed day touches every symbol of that day.
      for (int f = 0; f < nfields; ++f) {
        const auto& c = cols[static_cast<std::size_t>(f)];
        const auto& v = old[static_cast<std::size_t>(f)];
        Journal::Patch patch{s.dir, f, {}};
        for (std::size_t i = 0; i < v.size(); ++i) {
          auto nb = std::bit_cast<uint32_t>(c[a + i]);
          if (nb != std::bit_cast<uint32_t>(v[i])) {
            patch.values.push_back(static_cast<uint32_t>(i));
            patch.values.push_back(nb);
          }
        }
        if (!patch.values.empty()) {
          report_.bytes_written += static_cast<int64_t>(patch.values.size() / 2 * 4);
          j.patched.push_back(std::move(patch));
        }
      }
      s.last_close = close[z - 1];
      run_symbols_.insert(id);
      continue;
    }
    replaced.push_back(s.dir);
    ARROW_RETURN_NOT_OK(MakeDirs(dir));
    std::vector<float> out(z - a + 1);
    out[0] = static_cast<float>(lo + static_cast<int64_t>(a));
    for (int f = 0; f < nfields; ++f) {
      const auto& c = cols[static_cast<std::size_t>(f)];
      std::memcpy(out.data() + 1, c.data() + a, (z - a) * 4);
      std::string p = dir + "/" + BinName(fields_[static_cast<std::size_t>(f)], o_.freq) +
                      std::string(kNewSuffix);
      ARROW_RETURN_NOT_OK(WriteFile(
          p,
          std::string_view(reinterpret_cast<const char*>(out.data()), out.size() * 4)));
      report_.bytes_written += static_cast<int64_t>(out.size() * 4);
    }
    s.start = lo + static_cast<int64_t>(a);
    s.n = static_cast<int64_t>(z - a);
    s.last_close = close[z - 1];
    s.first_day = cal_.sessions[static_cast<std::size_t>(cal_.DayOfRow(s.start))].date;
    s.last_day =
        cal_.sessions[static_cast<std::size_t>(cal_.DayOfRow(s.start + s.n - 1))].date;
    run_symbols_.insert(id);
  }
  report_.symbols_touched += static_cast<int64_t>(affected.size());
  j.removed = removed;
  j.replaced = replaced;
  // Rewrite the journal with the removals and patches before the commit point.
  ARROW_RETURN_NOT_OK(BeginTxn(j));
  ResetBatch();
  ARROW_RETURN_NOT_OK(WriteMeta(true, root_));
  ARROW_RETURN_NOT_OK(CommitTxn(j));
  for (auto& s : syms_) s.in_store = s.n > 0 || (s.in_store && s.first_day.has_value());
  return arrow::Status::OK();
}

std::string Exporter::InstrumentsText(const std::vector<int32_t>& members) const {
  std::vector<std::pair<std::string, std::string>> lines;
  for (auto id : members) {
    const auto& s = syms_[static_cast<std::size_t>(id)];
    if (!s.first_day || !s.last_day) continue;
    std::string end = FormatDate(*s.last_day);
    if (o_.freq == Freq::kMinute) end += " 23:59:59";
    lines.emplace_back(s.code,
                       s.code + "\t" + FormatDate(*s.first_day) + "\t" + end + "\n");
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& [code, line] : lines) out += line;
  return out;
}

// Writes calendar, instruments and manifest: as .qlake-new temps (journal) or in place.
arrow::Status Exporter::WriteMeta(bool journal, const std::string& root) {
  std::string suffix = journal ? std::string(kNewSuffix) : "";
  // The store's range: sessions up to the last day any symbol reaches, at least the
  // sessions exported so far.
  std::optional<Date> last = manifest_.last_day;
  for (const auto& s : syms_) {
    if (s.last_day && (!last || *s.last_day > *last)) last = s.last_day;
  }
  if (exported_last_ && (!last || *exported_last_ > *last)) last = exported_last_;
  if (!last) return arrow::Status::Invalid("nothing exported: no bars in the range");
  std::size_t nsessions = static_cast<std::size_t>(cal_.IndexOf(*last) + 1);
  ARROW_RETURN_NOT_OK(MakeDirs(root + "/calendars"));
  ARROW_RETURN_NOT_OK(MakeDirs(root + "/instruments"));
  ARROW_RETURN_NOT_OK(MakeDirs(root + "/features"));
  ARROW_RETURN_NOT_OK(MakeDirs(root + "/" + std::string(kMetaDir)));
  std::vector<int32_t> all;
  for (std::size_t i = 0; i < syms_.size(); ++i) all.push_back(static_cast<int32_t>(i));
  ARROW_RETURN_NOT_OK(
      WriteFile(root + "/instruments/all.txt" + suffix, InstrumentsText(all)));
  for (const auto& m : markets_) {
    auto& members = market_members_[m];
    if (m == o_.market) members.insert(run_symbols_.begin(), run_symbols_.end());
    ARROW_RETURN_NOT_OK(WriteFile(root + "/instruments/" + m + ".txt" + suffix,
                                  InstrumentsText({members.begin(), members.end()})));
  }
  Manifest m = manifest_;
  m.freq = std::string(FreqName(o_.freq));
  m.session = std::string(SessionModeName(o_.session));
  m.fields = fields_;
  m.lake = o_.lake;
  m.first_day = cal_.sessions.front().date;
  m.last_day = *last;
  m.markets.assign(markets_.begin(), markets_.end());
  ARROW_RETURN_NOT_OK(
      WriteFile(root + "/" + std::string(kMetaDir) + "/qlib.json" + suffix,
                m.ToJson().dump(2) + "\n"));
  manifest_ = m;
  ARROW_RETURN_NOT_OK(WriteFile(
      root + "/" + std::string(kMetaDir) + "/inputs.json" + suffix, inputs_.ToText()));
  inputs_dirty_ = false;
  // The calendar last: renamed last, it makes the new rows visible.
  ARROW_RETURN_NOT_OK(
      WriteFile(root + "/calendars/" + std::string(FreqName(o_.freq)) + ".txt" + suffix,
                cal_.Text(nsessions)));
  report_.calendar_rows = cal_.base[nsessions];
  report_.first_day = FormatDate(*m.first_day);
  report_.last_day = FormatDate(*last);
  return arrow::Status::OK();
}

arrow::Result<ExportReport> Exporter::Run() {
  auto t0 = std::chrono::steady_clock::now();
  if (o_.out.empty()) return arrow::Status::Invalid("no output folder (--out)");
  o_.out = fs::absolute(o_.out).lexically_normal().string();
  while (o_.out.size() > 1 && o_.out.back() == '/') o_.out.pop_back();
  report_.out = o_.out;
  report_.freq = std::string(FreqName(o_.freq));
  ARROW_ASSIGN_OR_RAISE(report_.recovered, Recover(o_.out));
  ARROW_RETURN_NOT_OK(Plan());
  if (!o_.market.empty()) markets_.insert(o_.market);
  bool incremental = have_store_ && !o_.rebuild;
  if (append_days_.empty() && rewrite_days_.empty()) {
    if (incremental) {
      if (inputs_dirty_) {
        // Only the record of the lake's commits changed (adopted, or record files
        // rewritten with the same transaction): one atomic file write.
        ARROW_RETURN_NOT_OK(WriteFileAtomic(
            o_.out + "/" + std::string(kMetaDir) + "/inputs.json", inputs_.ToText()));
      }
      report_.first_day = FormatDate(*manifest_.first_day);
      report_.last_day = FormatDate(*manifest_.last_day);
      report_.symbols = 0;
      for (const auto& s : syms_) report_.symbols += s.first_day ? 1 : 0;
      report_.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return report_;
    }
  }
  if (incremental) {
    root_ = o_.out;
  } else {
    root_ = SiblingPath(o_.out, "build-" + std::to_string(::getpid()));
    ARROW_RETURN_NOT_OK(RemoveAll(root_));
    ARROW_RETURN_NOT_OK(MakeDirs(root_ + "/features"));
    report_.rebuilt = true;
  }
  // Rewrites first (days inside the store), then appends, each in batches.
  std::size_t i = 0;
  while (i < rewrite_days_.size()) {
    std::size_t j = i;
    while (j < rewrite_days_.size() && (j == i || batch_bytes_ < o_.batch_bytes) &&
           (j == i || rewrite_days_[j] == rewrite_days_[j - 1] + 1)) {
      batch_.resize(std::max(batch_.size(), syms_.size() + (1 << 17)));
      ARROW_RETURN_NOT_OK(ReadDay(rewrite_days_[j]));
      ++j;
    }
    ARROW_RETURN_NOT_OK(FlushRewrite(static_cast<int64_t>(rewrite_days_[i]),
                                     static_cast<int64_t>(rewrite_days_[j - 1])));
    report_.days_rewritten += static_cast<int64_t>(j - i);
    i = j;
  }
  i = 0;
  while (i < append_days_.size()) {
    std::size_t j = i;
    while (j < append_days_.size() && (j == i || batch_bytes_ < o_.batch_bytes)) {
      batch_.resize(std::max(batch_.size(), syms_.size() + (1 << 17)));
      ARROW_RETURN_NOT_OK(ReadDay(append_days_[j]));
      ++j;
    }
    exported_last_ = cal_.sessions[append_days_[j - 1]].date;
    ARROW_RETURN_NOT_OK(FlushAppend(incremental));
    report_.days_appended += static_cast<int64_t>(j - i);
    i = j;
  }
  if (!incremental) {
    ARROW_RETURN_NOT_OK(WriteMeta(false, root_));
    if (o_.fsync) SyncFs(root_);
    // Swap: out -> old, build -> out, remove old. Recover() finishes a crash in between.
    std::string old = SiblingPath(o_.out, "old");
    bool had = fs::exists(o_.out);
    if (had) ARROW_RETURN_NOT_OK(RenameFile(o_.out, old));
    ARROW_RETURN_NOT_OK(RenameFile(root_, o_.out));
    if (had) ARROW_RETURN_NOT_OK(RemoveAll(old));
  }
  for (const auto& s : syms_) report_.symbols += s.first_day ? 1 : 0;
  report_.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report_;
}

}  // namespace

std::string_view FreqName(Freq f) { return f == Freq::kDay ? "day" : "1min"; }

arrow::Result<Freq> ParseFreq(std::string_view s) {
  if (s == "day") return Freq::kDay;
  if (s == "1min") return Freq::kMinute;
  return arrow::Status::Invalid("freq '", s,
                                "' must be day or 1min (exactly: Qlib does not "
                                "normalise the freq of feature file names)");
}

std::string_view SessionModeName(SessionMode s) {
  return s == SessionMode::kRegular ? "regular" : "extended";
}

arrow::Result<SessionMode> ParseSessionMode(std::string_view s) {
  if (s == "regular") return SessionMode::kRegular;
  if (s == "extended") return SessionMode::kExtended;
  return arrow::Status::Invalid("session '", s, "' must be regular or extended");
}

arrow::Result<ExportReport> Export(const ExportOptions& options) {
  Exporter e(options);
  auto r = e.Run();
  if (!r.ok()) e.CleanUpAfterFailure();
  return r;
}

}  // namespace qlake::qlib

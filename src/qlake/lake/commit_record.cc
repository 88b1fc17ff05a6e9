#include "qlake/lake/commit_record.h"

#include <algorithm>

#include "qlake/lake/fs_util.h"

namespace qlake::lake {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxDatasetName = 64;
constexpr std::size_t kMaxDataPath = 1024;

// Field access without exceptions: each getter returns Invalid naming the record and the
// field when the field is missing or has the wrong type.
class Reader {
 public:
  Reader(const json& obj, std::string_view where, std::string prefix = "")
      : obj_(obj), where_(where), prefix_(std::move(prefix)) {}

  arrow::Status CheckObject() const {
    if (!obj_.is_object()) return Bad(prefix_.empty() ? "record" : prefix_, "an object");
    return arrow::Status::OK();
  }

  const json* Find(std::string_view key) const {
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }

  arrow::Result<std::string> String(std::string_view key) const {
    const json* v = Find(key);
    if (v == nullptr || !v->is_string()) return Bad(key, "a string");
    return v->get<std::string>();
  }

  arrow::Result<int64_t> Int(std::string_view key) const {
    const json* v = Find(key);
    if (v == nullptr || !v->is_number_integer()) return Bad(key, "an integer");
    return v->get<int64_t>();
  }

  arrow::Result<Date> Day(std::string_view key) const {
    ARROW_ASSIGN_OR_RAISE(auto text, String(key));
    auto d = ParseDate(text);
    if (!d.ok()) return Bad(key, "a YYYY-MM-DD date");
    return *d;
  }

  arrow::Result<const json*> Object(std::string_view key) const {
    const json* v = Find(key);
    if (v == nullptr || !v->is_object()) return Bad(key, "an object");
    return v;
  }

  arrow::Result<const json*> Array(std::string_view key) const {
    const json* v = Find(key);
    if (v == nullptr || !v->is_array()) return Bad(key, "an array");
    return v;
  }

  Reader Sub(const json& obj, std::string_view key) const {
    return Reader(obj, where_, Field(key));
  }

  arrow::Status Bad(std::string_view key, std::string_view what) const {
    return arrow::Status::Invalid(where_, ": field '", Field(key), "' is missing or not ",
                                  what);
  }

 private:
  std::string Field(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
  }
  const json& obj_;
  std::string_view where_;
  std::string prefix_;
};

json FileEntryToJson(const FileEntry& f) {
  return json{{"path", f.path},
              {"size", f.size},
              {"rows", f.rows},
              {"crc32", FormatCrc32(f.crc32)}};
}

arrow::Result<FileEntry> FileEntryFromJson(const Reader& r) {
  ARROW_RETURN_NOT_OK(r.CheckObject());
  FileEntry f;
  ARROW_ASSIGN_OR_RAISE(f.path, r.String("path"));
  ARROW_ASSIGN_OR_RAISE(f.size, r.Int("size"));
  ARROW_ASSIGN_OR_RAISE(f.rows, r.Int("rows"));
  ARROW_ASSIGN_OR_RAISE(auto crc, r.String("crc32"));
  auto parsed = ParseCrc32(crc);
  if (!parsed.ok()) return r.Bad("crc32", "8 hex digits");
  f.crc32 = *parsed;
  if (f.size < 0) return r.Bad("size", "a non-negative integer");
  if (f.rows < -1) return r.Bad("rows", "a row count or -1");
  return f;
}

arrow::Result<json> ParseJson(std::string_view text, std::string_view where) {
  json j = json::parse(text.begin(), text.end(), /*cb=*/nullptr,
                       /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return arrow::Status::Invalid(where, ": not valid JSON (truncated or damaged)");
  }
  return j;
}

}  // namespace

arrow::Status RowCounts::Validate() const {
  if (read < 0 || written < 0 || quarantined < 0 || filtered < 0) {
    return arrow::Status::Invalid("row counts must not be negative (read ", read,
                                  ", written ", written, ", quarantined ", quarantined,
                                  ", filtered ", filtered, ")");
  }
  if (read != written + quarantined + filtered) {
    return arrow::Status::Invalid(
        "row counts do not reconcile: read ", read, " != written ", written,
        " + quarantined ", quarantined, " + filtered ", filtered, " (",
        written + quarantined + filtered,
        "); every row read must be written, quarantined or filtered exactly once");
  }
  return arrow::Status::OK();
}

json CommitRecordToJson(const CommitRecord& r) {
  json files = json::array();
  for (const auto& f : r.files) files.push_back(FileEntryToJson(f));
  return json{
      {"format", CommitRecord::kFormat},
      {"dataset", r.dataset},
      {"day", FormatDate(r.day)},
      {"txn", r.txn},
      {"committed_at", r.committed_at},
      {"qlake_version", r.qlake_version},
      {"source",
       {{"key", r.source.key},
        {"etag", r.source.etag},
        {"size", r.source.size},
        {"last_modified", r.source.last_modified}}},
      {"rows",
       {{"read", r.rows.read},
        {"written", r.rows.written},
        {"quarantined", r.rows.quarantined},
        {"filtered", r.rows.filtered}}},
      {"files", std::move(files)},
      {"quarantine", r.quarantine ? FileEntryToJson(*r.quarantine) : json(nullptr)},
      {"validation", r.validation.is_object() ? r.validation : json::object()},
  };
}

arrow::Result<CommitRecord> CommitRecordFromJson(const json& j, std::string_view where) {
  Reader r(j, where);
  ARROW_RETURN_NOT_OK(r.CheckObject());
  ARROW_ASSIGN_OR_RAISE(auto format, r.String("format"));
  if (format != CommitRecord::kFormat) {
    return arrow::Status::Invalid(where, ": format '", format, "' is not '",
                                  CommitRecord::kFormat,
                                  "' (written by a newer or older qlake?)");
  }
  CommitRecord rec;
  ARROW_ASSIGN_OR_RAISE(rec.dataset, r.String("dataset"));
  ARROW_ASSIGN_OR_RAISE(rec.day, r.Day("day"));
  ARROW_ASSIGN_OR_RAISE(rec.txn, r.String("txn"));
  ARROW_ASSIGN_OR_RAISE(rec.committed_at, r.String("committed_at"));
  ARROW_ASSIGN_OR_RAISE(rec.qlake_version, r.String("qlake_version"));

  ARROW_ASSIGN_OR_RAISE(const json* source, r.Object("source"));
  Reader s = r.Sub(*source, "source");
  ARROW_ASSIGN_OR_RAISE(rec.source.key, s.String("key"));
  ARROW_ASSIGN_OR_RAISE(rec.source.etag, s.String("etag"));
  ARROW_ASSIGN_OR_RAISE(rec.source.size, s.Int("size"));
  ARROW_ASSIGN_OR_RAISE(rec.source.last_modified, s.String("last_modified"));

  ARROW_ASSIGN_OR_RAISE(const json* rows, r.Object("rows"));
  Reader c = r.Sub(*rows, "rows");
  ARROW_ASSIGN_OR_RAISE(rec.rows.read, c.Int("read"));
  ARROW_ASSIGN_OR_RAISE(rec.rows.written, c.Int("written"));
  ARROW_ASSIGN_OR_RAISE(rec.rows.quarantined, c.Int("quarantined"));
  ARROW_ASSIGN_OR_RAISE(rec.rows.filtered, c.Int("filtered"));
  if (auto st = rec.rows.Validate(); !st.ok()) {
    return arrow::Status::Invalid(where, ": ", st.message());
  }

  ARROW_ASSIGN_OR_RAISE(const json* files, r.Array("files"));
  for (const auto& f : *files) {
    ARROW_ASSIGN_OR_RAISE(auto entry, FileEntryFromJson(r.Sub(f, "files[]")));
    rec.files.push_back(std::move(entry));
  }
  const json* q = r.Find("quarantine");
  if (q != nullptr && !q->is_null()) {
    ARROW_ASSIGN_OR_RAISE(auto entry, FileEntryFromJson(r.Sub(*q, "quarantine")));
    rec.quarantine = std::move(entry);
  }
  ARROW_ASSIGN_OR_RAISE(const json* validation, r.Object("validation"));
  rec.validation = *validation;
  return rec;
}

std::string SerializeCommitRecord(const CommitRecord& record) {
  return CommitRecordToJson(record).dump(2) + "\n";
}

arrow::Result<CommitRecord> ParseCommitRecord(std::string_view text,
                                              std::string_view where) {
  ARROW_ASSIGN_OR_RAISE(auto j, ParseJson(text, where));
  return CommitRecordFromJson(j, where);
}

std::string SerializeIntentRecord(const IntentRecord& intent) {
  json moves = json::array();
  for (const auto& m : intent.moves) {
    moves.push_back({{"staged", m.staged}, {"path", m.final_path}});
  }
  json j{{"format", IntentRecord::kFormat},
         {"moves", std::move(moves)},
         {"previous_files", intent.previous_files},
         {"previous_txn", intent.previous_txn},
         {"record", CommitRecordToJson(intent.record)}};
  return j.dump(2) + "\n";
}

arrow::Result<IntentRecord> ParseIntentRecord(std::string_view text,
                                              std::string_view where) {
  ARROW_ASSIGN_OR_RAISE(auto j, ParseJson(text, where));
  Reader r(j, where);
  ARROW_RETURN_NOT_OK(r.CheckObject());
  ARROW_ASSIGN_OR_RAISE(auto format, r.String("format"));
  if (format != IntentRecord::kFormat) {
    return arrow::Status::Invalid(where, ": format '", format, "' is not '",
                                  IntentRecord::kFormat, "'");
  }
  IntentRecord intent;
  ARROW_ASSIGN_OR_RAISE(const json* moves, r.Array("moves"));
  for (const auto& m : *moves) {
    Reader mr = r.Sub(m, "moves[]");
    ARROW_RETURN_NOT_OK(mr.CheckObject());
    StagedMove move;
    ARROW_ASSIGN_OR_RAISE(move.staged, mr.String("staged"));
    ARROW_ASSIGN_OR_RAISE(move.final_path, mr.String("path"));
    intent.moves.push_back(std::move(move));
  }
  ARROW_ASSIGN_OR_RAISE(const json* previous, r.Array("previous_files"));
  for (const auto& p : *previous) {
    if (!p.is_string()) return r.Bad("previous_files[]", "a string");
    intent.previous_files.push_back(p.get<std::string>());
  }
  ARROW_ASSIGN_OR_RAISE(intent.previous_txn, r.String("previous_txn"));
  ARROW_ASSIGN_OR_RAISE(const json* record, r.Object("record"));
  ARROW_ASSIGN_OR_RAISE(intent.record, CommitRecordFromJson(*record, where));
  return intent;
}

arrow::Status ValidateDatasetName(std::string_view dataset) {
  auto bad = [&](std::string_view why) {
    return arrow::Status::Invalid("dataset name '", dataset, "' ", why,
                                  "; use 1-64 characters of a-z, 0-9 and '_', starting "
                                  "with a letter or digit (e.g. stocks_minute), or "
                                  "<group>/<name> for a group such as features/");
  };
  std::string_view name = dataset;
  if (auto slash = dataset.find('/'); slash != std::string_view::npos) {
    std::string_view group = dataset.substr(0, slash);
    bool known = false;
    for (std::string_view g : kDatasetGroups) known = known || g == group;
    if (!known) return bad("has a '/' after something other than a dataset group");
    name = dataset.substr(slash + 1);
  } else {
    for (std::string_view g : kDatasetGroups) {
      if (g == dataset) return bad("is a dataset group's name");
    }
  }
  if (name.empty() || dataset.size() > kMaxDatasetName) return bad("has a bad length");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return bad("has a character other than a-z, 0-9 and '_'");
  }
  if (name.front() == '_') return bad("starts with '_'");
  // The pipeline keeps its own bookkeeping beside the datasets' under _qlake/.
  if (dataset == "runs" || dataset == "pipeline") {
    return bad(
        "is reserved (_qlake/runs and _qlake/pipeline hold the pipeline's reports)");
  }
  return arrow::Status::OK();
}

arrow::Status ValidateDataPath(std::string_view path) {
  auto bad = [&](std::string_view why) {
    return arrow::Status::Invalid("data file path '", path, "' ", why,
                                  "; the layout must produce a relative path below the "
                                  "dataset folder ending in .parquet");
  };
  constexpr std::string_view kSuffix = ".parquet";
  if (path.empty()) return bad("is empty");
  if (path.size() > kMaxDataPath) return bad("is longer than 1024 bytes");
  if (path.front() == '/') return bad("is absolute");
  if (path.size() <= kSuffix.size() ||
      path.substr(path.size() - kSuffix.size()) != kSuffix) {
    return bad("does not end in .parquet");
  }
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\\') return bad("contains a backslash");
    if (u < 0x20 || u == 0x7f) return bad("contains a control character");
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty()) return bad("has an empty component");
    if (part == "." || part == "..") return bad("has a '.' or '..' component");
    if (part.front() == '.' || part.front() == '_') {
      return bad("has a component starting with '.' or '_' (readers skip those)");
    }
    if (part.back() == ' ' || part.back() == '.') {
      return bad("has a component ending in a space or '.' (not portable)");
    }
    start = end + 1;
  }
  return arrow::Status::OK();
}

}  // namespace qlake::lake

#include "qlake/ingest/layout.h"

#include <arrow/array.h>
#include <arrow/chunked_array.h>
#include <fmt/format.h>
#include <map>

#include "qlake/catalog/symbols.h"
#include "qlake/ingest/parquet_out.h"

namespace qlake::ingest {

namespace {

// Contiguous runs of equal values of a sorted dictionary column: (value, offset, length).
struct Run {
  std::string value;
  int64_t offset;
  int64_t length;
};

arrow::Result<std::vector<Run>> Runs(const std::shared_ptr<arrow::Table>& t,
                                     const std::string& column) {
  ARROW_ASSIGN_OR_RAISE(auto batch, t->CombineChunksToBatch());
  auto arr =
      std::static_pointer_cast<arrow::DictionaryArray>(batch->GetColumnByName(column));
  if (!arr) return arrow::Status::Invalid("layout: no column '", column, "'");
  auto dict = std::static_pointer_cast<arrow::StringArray>(arr->dictionary());
  std::vector<Run> runs;
  for (int64_t i = 0; i < arr->length(); ++i) {
    std::string_view v = dict->GetView(arr->GetValueIndex(i));
    if (runs.empty() || runs.back().value != v) {
      runs.push_back(Run{std::string(v), i, 0});
    }
    ++runs.back().length;
  }
  return runs;
}

}  // namespace

std::string DayFilePath(Date day) {
  const std::string ymd = FormatDate(day);
  return fmt::format("year={}/month={}/{}.parquet", ymd.substr(0, 4), ymd.substr(5, 2),
                     ymd);
}

std::string_view LayoutName(LayoutKind k) {
  return k == LayoutKind::kDaily ? "daily" : "original";
}

arrow::Result<LayoutKind> ParseLayout(std::string_view name) {
  if (name == "daily") return LayoutKind::kDaily;
  if (name == "original") return LayoutKind::kOriginal;
  return arrow::Status::Invalid("unknown layout '", name, "'; use daily or original");
}

arrow::Result<std::vector<OutputFile>> PartitionDay(
    const catalog::DatasetSpec& spec, LayoutKind layout, Date day,
    const std::shared_ptr<arrow::Table>& table) {
  const std::string ymd = FormatDate(day);
  const std::string year_month =
      fmt::format("year={}/month={}", ymd.substr(0, 4), ymd.substr(5, 2));
  const std::string file = ymd + ".parquet";
  const bool minute = spec.granularity == catalog::Granularity::kMinute;

  std::string by;  // partition column, if any
  if (layout == LayoutKind::kOriginal) {
    if (spec.options) {
      by = "underlying";
    } else if (minute) {
      by = "ticker";
    }
  }
  std::vector<OutputFile> out;
  if (by.empty()) {
    out.push_back(OutputFile{DayFilePath(day), table});
    return out;
  }
  const std::string dir_key = spec.options ? "underlying" : "symbol";
  // The day table is sorted by ticker; options contracts of one underlying are contiguous
  // because OCC tickers start with the root... except when one root is a prefix of
  // another
  // ("O:SPY..." vs "O:SPYG..."), so group by value, not by run.
  ARROW_ASSIGN_OR_RAISE(auto runs, Runs(table, by));
  std::map<std::string, std::vector<std::shared_ptr<arrow::Table>>> groups;
  for (const auto& r : runs) groups[r.value].push_back(table->Slice(r.offset, r.length));
  for (auto& [value, pieces] : groups) {
    ARROW_ASSIGN_OR_RAISE(auto escaped, catalog::EscapePathComponent(value));
    std::shared_ptr<arrow::Table> piece;
    if (pieces.size() == 1) {
      piece = pieces.front();
    } else {
      ARROW_ASSIGN_OR_RAISE(piece, arrow::ConcatenateTables(pieces));
    }
    ARROW_ASSIGN_OR_RAISE(piece, CompactDictionaries(piece));
    // A partition key lives in the directory name only: a column of the same name inside
    // the file would clash with it in hive-partitioned readers (pyarrow refuses to merge
    // dictionary<utf8> with the inferred string).
    for (const char* key : {"underlying", "date"}) {
      bool in_path = (std::string_view(key) == "underlying" && dir_key == "underlying") ||
                     (std::string_view(key) == "date" && spec.options && minute);
      int idx = piece->schema()->GetFieldIndex(key);
      if (in_path && idx >= 0) {
        ARROW_ASSIGN_OR_RAISE(piece, piece->RemoveColumn(idx));
      }
    }
    std::string dir = (spec.options && minute)
                          ? fmt::format("{}={}/date={}", dir_key, escaped, ymd)
                          : fmt::format("{}={}/{}", dir_key, escaped, year_month);
    out.push_back(OutputFile{dir + "/" + file, piece});
  }
  return out;
}

}  // namespace qlake::ingest

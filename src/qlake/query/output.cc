#include "qlake/query/output.h"

#include <algorithm>
#include <vector>

#include <arrow/array.h>
#include <arrow/compute/api.h>
#include <parquet/arrow/writer.h>
#include <parquet/properties.h>
#include <nlohmann/json.hpp>

namespace qlake::query {

namespace cp = arrow::compute;

namespace {

// A column as text cells (nulls as nullopt-like empty with a flag).
struct TextColumn {
  std::shared_ptr<arrow::StringArray> cells;
  bool numeric = false;
};

arrow::Result<TextColumn> ToText(const std::shared_ptr<arrow::Array>& array) {
  std::shared_ptr<arrow::Array> a = array;
  if (a->type_id() == arrow::Type::DICTIONARY) {
    const auto& dt = static_cast<const arrow::DictionaryType&>(*a->type());
    ARROW_ASSIGN_OR_RAISE(a, cp::Cast(*a, dt.value_type()));
  }
  TextColumn out;
  out.numeric = arrow::is_integer(a->type_id()) || arrow::is_floating(a->type_id());
  std::shared_ptr<arrow::Array> text;
  if (a->type_id() == arrow::Type::TIMESTAMP) {
    const auto& tt = static_cast<const arrow::TimestampType&>(*a->type());
    std::string fmt =
        tt.timezone().empty() ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%dT%H:%M:%S%Ez";
    ARROW_ASSIGN_OR_RAISE(auto d, cp::Strftime(a, cp::StrftimeOptions(fmt)));
    text = d.make_array();
  } else if (a->type_id() == arrow::Type::STRING) {
    text = a;
  } else {
    ARROW_ASSIGN_OR_RAISE(text, cp::Cast(*a, arrow::utf8()));
  }
  out.cells = std::static_pointer_cast<arrow::StringArray>(text);
  return out;
}

std::string CsvQuote(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string r = "\"";
  for (char c : s) {
    if (c == '"') r += '"';
    r += c;
  }
  return r + "\"";
}

}  // namespace

arrow::Result<OutputFormat> ParseOutputFormat(std::string_view name) {
  if (name == "table") return OutputFormat::kTable;
  if (name == "csv") return OutputFormat::kCsv;
  if (name == "json") return OutputFormat::kJson;
  if (name == "parquet") return OutputFormat::kParquet;
  return arrow::Status::Invalid("unknown format '", name,
                                "'; use table, csv, json or parquet");
}

arrow::Status WriteText(const arrow::Table& table, OutputFormat format,
                        std::ostream& out) {
  if (format == OutputFormat::kParquet) {
    return arrow::Status::Invalid("parquet output needs --out FILE");
  }
  const auto& schema = *table.schema();
  const int ncol = schema.num_fields();
  ARROW_ASSIGN_OR_RAISE(auto combined, table.CombineChunksToBatch());
  std::vector<TextColumn> cols;
  for (int c = 0; c < ncol; ++c) {
    ARROW_ASSIGN_OR_RAISE(auto tc, ToText(combined->column(c)));
    cols.push_back(std::move(tc));
  }
  const int64_t n = combined->num_rows();
  if (format == OutputFormat::kCsv) {
    for (int c = 0; c < ncol; ++c)
      out << (c ? "," : "") << CsvQuote(schema.field(c)->name());
    out << "\n";
    std::string line;
    for (int64_t r = 0; r < n; ++r) {
      line.clear();
      for (int c = 0; c < ncol; ++c) {
        if (c) line += ',';
        if (cols[c].cells->IsValid(r)) line += CsvQuote(cols[c].cells->GetView(r));
      }
      line += '\n';
      out << line;
    }
    return arrow::Status::OK();
  }
  if (format == OutputFormat::kJson) {
    out << "[";
    std::string line;
    for (int64_t r = 0; r < n; ++r) {
      line = r ? ",\n{" : "\n{";
      for (int c = 0; c < ncol; ++c) {
        if (c) line += ", ";
        line += nlohmann::json(schema.field(c)->name()).dump();
        line += ": ";
        if (!cols[c].cells->IsValid(r)) {
          line += "null";
        } else if (cols[c].numeric) {
          std::string_view v = cols[c].cells->GetView(r);
          // JSON has no nan/inf.
          if (v == "nan" || v == "inf" || v == "-inf") {
            line += "null";
          } else {
            line += v;
          }
        } else {
          line += nlohmann::json(std::string(cols[c].cells->GetView(r))).dump();
        }
      }
      line += "}";
      out << line;
    }
    out << (n ? "\n]\n" : "]\n");
    return arrow::Status::OK();
  }
  // Aligned table: numbers right-aligned, text left-aligned.
  std::vector<std::size_t> width(ncol);
  for (int c = 0; c < ncol; ++c) {
    width[c] = schema.field(c)->name().size();
    for (int64_t r = 0; r < n; ++r) {
      if (cols[c].cells->IsValid(r)) {
        width[c] = std::max(width[c], cols[c].cells->GetView(r).size());
      } else {
        width[c] = std::max<std::size_t>(width[c], 4);
      }
    }
  }
  auto cell = [&](std::string& line, int c, std::string_view v) {
    std::string pad(width[c] - std::min(width[c], v.size()), ' ');
    if (c) line += "  ";
    if (cols[c].numeric) {
      line += pad;
      line += v;
    } else {
      line += v;
      if (c + 1 < ncol) line += pad;
    }
  };
  std::string line;
  for (int c = 0; c < ncol; ++c) cell(line, c, schema.field(c)->name());
  out << line << "\n";
  line.clear();
  for (int c = 0; c < ncol; ++c) {
    if (c) line += "  ";
    line += std::string(width[c], '-');
  }
  out << line << "\n";
  for (int64_t r = 0; r < n; ++r) {
    line.clear();
    for (int c = 0; c < ncol; ++c) {
      cell(line, c, cols[c].cells->IsValid(r) ? cols[c].cells->GetView(r) : "null");
    }
    out << line << "\n";
  }
  out << "(" << n << (n == 1 ? " row" : " rows") << ")\n";
  return arrow::Status::OK();
}

arrow::Status WriteParquetResult(const std::shared_ptr<arrow::Table>& table,
                                 std::shared_ptr<arrow::io::OutputStream> sink) {
  auto props =
      parquet::WriterProperties::Builder().compression(arrow::Compression::ZSTD)->build();
  auto arrow_props = parquet::ArrowWriterProperties::Builder().store_schema()->build();
  ARROW_RETURN_NOT_OK(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(),
                                                 sink, 1 << 20, props, arrow_props));
  return sink->Close();
}

}  // namespace qlake::query

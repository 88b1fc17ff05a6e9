#include "qlake/ingest/agg_reader.h"

#include <array>
#include <set>
#include <vector>

#include <arrow/array/array_binary.h>
#include <arrow/csv/api.h>
#include <arrow/io/memory.h>
#include <arrow/record_batch.h>

namespace qlake::ingest {

namespace {

constexpr std::size_t kMaxFields = 64;

std::string_view StripCr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

arrow::Result<AggDay> ReadFast(arrow::io::InputStream& in, const DayContext& ctx,
                               const AggReaderOptions& options) {
  std::vector<char> buf;
  std::size_t used = 0;  // bytes of buf holding unprocessed data
  bool eof = false;
  int64_t line_no = 0;
  std::optional<AggDayBuilder> builder;
  std::array<std::string_view, kMaxFields> fields;

  auto handle_line = [&](std::string_view line) -> arrow::Status {
    ++line_no;
    line = StripCr(line);
    if (!builder) {
      ARROW_ASSIGN_OR_RAISE(auto map, ColumnMap::FromHeader(line, *ctx.spec, ctx.source));
      builder.emplace(ctx, map);
      return arrow::Status::OK();
    }
    if (line.empty()) return arrow::Status::OK();  // blank line: not a row
    std::size_t n = SplitCsvLine(line, fields);
    builder->AddRow(
        line_no, line,
        std::span<const std::string_view>(fields.data(), std::min(n, kMaxFields)));
    return arrow::Status::OK();
  };

  const auto block = static_cast<std::size_t>(options.block_size);
  while (!eof) {
    if (buf.size() < used + block) buf.resize(used + block);
    ARROW_ASSIGN_OR_RAISE(int64_t got,
                          in.Read(static_cast<int64_t>(block), buf.data() + used));
    if (got == 0) eof = true;
    used += static_cast<std::size_t>(got);
    std::string_view data(buf.data(), used);
    std::size_t start = 0;
    while (true) {
      std::size_t nl = data.find('\n', start);
      if (nl == std::string_view::npos) break;
      ARROW_RETURN_NOT_OK(handle_line(data.substr(start, nl - start)));
      start = nl + 1;
    }
    if (eof && start < used) {  // last line without a newline
      ARROW_RETURN_NOT_OK(handle_line(data.substr(start)));
      start = used;
    }
    std::memmove(buf.data(), buf.data() + start, used - start);
    used -= start;
  }
  if (!builder) {
    return arrow::Status::Invalid(ctx.source,
                                  ": empty file (no header line); re-fetch it");
  }
  return builder->Finish();
}

arrow::Result<AggDay> ReadWithArrow(std::shared_ptr<arrow::io::InputStream> in,
                                    const DayContext& ctx,
                                    const AggReaderOptions& options) {
  // Peek the header to declare every column as a string (the validator does the typing).
  auto read = arrow::csv::ReadOptions::Defaults();
  read.use_threads = false;
  read.block_size = static_cast<int32_t>(std::min<int64_t>(options.block_size, 1 << 30));
  auto parse = arrow::csv::ParseOptions::Defaults();
  std::set<int64_t> bad_lines;
  std::vector<std::pair<int64_t, std::string>> bad_rows;
  parse.invalid_row_handler = [&](const arrow::csv::InvalidRow& row) {
    bad_lines.insert(row.number);
    bad_rows.emplace_back(row.number, std::string(row.text));
    return arrow::csv::InvalidRowResult::Skip;
  };
  auto convert = arrow::csv::ConvertOptions::Defaults();
  convert.strings_can_be_null = false;
  convert.quoted_strings_can_be_null = false;
  convert.null_values.clear();
  convert.default_column_type = arrow::utf8();

  auto reader_or = arrow::csv::StreamingReader::Make(arrow::io::default_io_context(), in,
                                                     read, parse, convert);
  if (!reader_or.ok()) {
    if (reader_or.status().message().find("Empty CSV file") != std::string::npos) {
      return arrow::Status::Invalid(ctx.source,
                                    ": empty file (no header line); re-fetch it");
    }
    return reader_or.status().WithMessage(ctx.source, ": ", reader_or.status().message());
  }
  auto reader = *reader_or;
  std::string header;
  for (const auto& f : reader->schema()->fields()) {
    if (!header.empty()) header += ',';
    header += f->name();
  }
  ARROW_ASSIGN_OR_RAISE(auto map, ColumnMap::FromHeader(header, *ctx.spec, ctx.source));
  AggDayBuilder builder(ctx, map);

  // Rows Arrow accepted come in order; their line numbers are the ones not skipped.
  int64_t next_line = 2;
  std::size_t bad_idx = 0;
  auto flush_bad_before = [&](int64_t line) {
    while (bad_idx < bad_rows.size() && bad_rows[bad_idx].first < line) {
      std::vector<std::string_view> f;
      std::array<std::string_view, kMaxFields> tmp;
      std::size_t n = SplitCsvLine(bad_rows[bad_idx].second, tmp);
      builder.AddRow(
          bad_rows[bad_idx].first, bad_rows[bad_idx].second,
          std::span<const std::string_view>(tmp.data(), std::min(n, kMaxFields)));
      ++bad_idx;
    }
  };
  std::vector<std::string_view> fields(static_cast<std::size_t>(map.num_fields));
  std::string raw;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    ARROW_RETURN_NOT_OK(reader->ReadNext(&batch));
    if (!batch) break;
    std::vector<const arrow::StringArray*> cols;
    for (int c = 0; c < batch->num_columns(); ++c) {
      cols.push_back(static_cast<const arrow::StringArray*>(batch->column(c).get()));
    }
    for (int64_t r = 0; r < batch->num_rows(); ++r) {
      while (bad_lines.count(next_line)) ++next_line;
      flush_bad_before(next_line);
      raw.clear();
      for (std::size_t c = 0; c < cols.size(); ++c) {
        fields[c] = cols[c]->GetView(r);
        if (c) raw += ',';
        raw.append(fields[c]);
      }
      builder.AddRow(next_line, raw, fields);
      ++next_line;
    }
  }
  flush_bad_before(std::numeric_limits<int64_t>::max());
  return builder.Finish();
}

}  // namespace

arrow::Status AggReaderOptions::Validate() const {
  if (block_size < 4096 || block_size > (int64_t{1} << 30)) {
    return arrow::Status::Invalid(
        "reader block_size must be between 4 KiB and 1 GiB, got ", block_size);
  }
  return arrow::Status::OK();
}

arrow::Result<AggDay> ReadAggDay(std::shared_ptr<arrow::io::InputStream> csv,
                                 const DayContext& ctx, const AggReaderOptions& options) {
  ARROW_RETURN_NOT_OK(options.Validate());
  if (ctx.spec == nullptr) return arrow::Status::Invalid("ReadAggDay: no dataset");
  if (options.use_arrow_csv) return ReadWithArrow(std::move(csv), ctx, options);
  return ReadFast(*csv, ctx, options);
}

}  // namespace qlake::ingest

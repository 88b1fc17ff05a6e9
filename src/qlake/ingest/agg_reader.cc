#include "qlake/ingest/agg_reader.h"

#include <array>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
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

// Reads `in` on a background thread, `block` bytes at a time, keeping at most `depth`
// blocks ahead: decompression (the stream is usually a GzipInputStream) overlaps parsing
// on a second core, and memory stays bounded at depth x block.
class BlockReadahead {
 public:
  BlockReadahead(arrow::io::InputStream& in, std::size_t block, std::size_t depth)
      : in_(in), block_(block), depth_(depth), thread_([this] { Produce(); }) {}
  ~BlockReadahead() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  BlockReadahead(const BlockReadahead&) = delete;
  BlockReadahead& operator=(const BlockReadahead&) = delete;

  /// The next block; an empty vector at the end of the stream.
  arrow::Result<std::vector<char>> Next() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !queue_.empty() || done_; });
    if (!queue_.empty()) {
      std::vector<char> b = std::move(queue_.front());
      queue_.pop_front();
      cv_.notify_all();
      return b;
    }
    if (!status_.ok()) return status_;
    return std::vector<char>();
  }

 private:
  void Produce() {
    while (true) {
      std::vector<char> b(block_);
      auto got = in_.Read(static_cast<int64_t>(block_), b.data());
      std::unique_lock lock(mu_);
      if (!got.ok() || *got == 0) {
        if (!got.ok()) status_ = got.status();
        done_ = true;
        cv_.notify_all();
        return;
      }
      b.resize(static_cast<std::size_t>(*got));
      cv_.wait(lock, [&] { return queue_.size() < depth_ || stop_; });
      if (stop_) return;
      queue_.push_back(std::move(b));
      cv_.notify_all();
    }
  }

  arrow::io::InputStream& in_;
  const std::size_t block_;
  const std::size_t depth_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<char>> queue_;
  bool done_ = false;
  bool stop_ = false;
  arrow::Status status_;
  std::thread thread_;  // last: starts after the members it uses
};

arrow::Result<AggDay> ReadFast(arrow::io::InputStream& in, const DayContext& ctx,
                               const AggReaderOptions& options) {
  std::vector<char> carry;  // an incomplete line from the previous block
  int64_t line_no = 0;
  std::optional<AggDayBuilder> builder;
  std::array<std::string_view, kMaxFields> fields;
  const bool chunked = options.chunk_rows > 0 && options.on_chunk != nullptr;
  const auto chunk_rows = static_cast<std::size_t>(options.chunk_rows);

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
    if (chunked && builder->buffered_rows() >= chunk_rows) {
      ARROW_ASSIGN_OR_RAISE(AggDay chunk, builder->TakeChunk());
      ARROW_RETURN_NOT_OK(options.on_chunk(std::move(chunk)));
    }
    return arrow::Status::OK();
  };

  BlockReadahead blocks(in, static_cast<std::size_t>(options.block_size), /*depth=*/2);
  while (true) {
    ARROW_ASSIGN_OR_RAISE(std::vector<char> block, blocks.Next());
    if (block.empty()) break;
    std::string_view data(block.data(), block.size());
    std::size_t start = 0;
    if (!carry.empty()) {
      // Complete the line that straddles the two blocks.
      const void* nl = std::memchr(data.data(), '\n', data.size());
      if (nl == nullptr) {
        carry.insert(carry.end(), block.begin(), block.end());
        continue;
      }
      std::size_t end =
          static_cast<std::size_t>(static_cast<const char*>(nl) - data.data());
      carry.insert(carry.end(), data.begin(),
                   data.begin() + static_cast<std::ptrdiff_t>(end));
      ARROW_RETURN_NOT_OK(handle_line(std::string_view(carry.data(), carry.size())));
      carry.clear();
      start = end + 1;
    }
    while (start < data.size()) {
      const void* nl = std::memchr(data.data() + start, '\n', data.size() - start);
      if (nl == nullptr) break;
      std::size_t end =
          static_cast<std::size_t>(static_cast<const char*>(nl) - data.data());
      ARROW_RETURN_NOT_OK(handle_line(data.substr(start, end - start)));
      start = end + 1;
    }
    carry.insert(carry.end(), data.begin() + static_cast<std::ptrdiff_t>(start),
                 data.end());
  }
  if (!carry.empty()) {  // last line without a newline
    ARROW_RETURN_NOT_OK(handle_line(std::string_view(carry.data(), carry.size())));
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
  if (chunk_rows < 0) return arrow::Status::Invalid("chunk_rows must be >= 0");
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

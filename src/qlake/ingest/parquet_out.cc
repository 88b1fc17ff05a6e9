#include "qlake/ingest/parquet_out.h"

#include <arrow/array.h>
#include <arrow/chunked_array.h>
#include <arrow/util/key_value_metadata.h>
#include <parquet/arrow/writer.h>
#include <parquet/properties.h>

namespace qlake::ingest {

arrow::Result<std::shared_ptr<arrow::Table>> CompactDictionaries(
    const std::shared_ptr<arrow::Table>& table) {
  std::vector<std::shared_ptr<arrow::ChunkedArray>> cols;
  for (int c = 0; c < table->num_columns(); ++c) {
    auto col = table->column(c);
    if (col->type()->id() != arrow::Type::DICTIONARY) {
      cols.push_back(col);
      continue;
    }
    arrow::ArrayVector chunks;
    for (const auto& chunk : col->chunks()) {
      ARROW_ASSIGN_OR_RAISE(
          auto compact, std::static_pointer_cast<arrow::DictionaryArray>(chunk)->Compact(
                            arrow::default_memory_pool()));
      chunks.push_back(compact);
    }
    cols.push_back(std::make_shared<arrow::ChunkedArray>(chunks, col->type()));
  }
  return arrow::Table::Make(table->schema(), cols, table->num_rows());
}

arrow::Result<arrow::Compression::type> ParseCompression(const std::string& name) {
  if (name == "zstd") return arrow::Compression::ZSTD;
  if (name == "snappy") return arrow::Compression::SNAPPY;
  if (name == "lz4") return arrow::Compression::LZ4;
  if (name == "none") return arrow::Compression::UNCOMPRESSED;
  return arrow::Status::Invalid("unknown Parquet compression '", name,
                                "'; use zstd, snappy, lz4 or none");
}

arrow::Result<ParquetOutOptions> ParquetOutOptionsFromConfig(const Config& config) {
  ParquetOutOptions o;
  ARROW_ASSIGN_OR_RAISE(o.compression, config.GetString("ingest.compression"));
  ARROW_ASSIGN_OR_RAISE(auto level, config.GetInt("ingest.compression_level"));
  o.compression_level = static_cast<int>(level);
  ARROW_ASSIGN_OR_RAISE(o.row_group_rows, config.GetInt("ingest.row_group_rows"));
  return o;
}

arrow::Status ParquetOutOptions::Validate() const {
  ARROW_RETURN_NOT_OK(ParseCompression(compression).status());
  if (row_group_rows < 1000) {
    return arrow::Status::Invalid("row_group_rows must be at least 1000, got ",
                                  row_group_rows);
  }
  if (page_rows < 100) {
    return arrow::Status::Invalid("page_rows must be at least 100, got ", page_rows);
  }
  return arrow::Status::OK();
}

struct ParquetStreamWriter::State {
  std::shared_ptr<arrow::io::OutputStream> sink;
  std::unique_ptr<parquet::arrow::FileWriter> writer;
  int64_t row_group_rows = 0;
};

ParquetStreamWriter::ParquetStreamWriter(std::unique_ptr<State> state)
    : state_(std::move(state)) {}
ParquetStreamWriter::~ParquetStreamWriter() = default;

arrow::Result<std::unique_ptr<ParquetStreamWriter>> ParquetStreamWriter::Open(
    std::shared_ptr<arrow::Schema> schema, std::shared_ptr<arrow::io::OutputStream> sink,
    const ParquetOutOptions& options) {
  ARROW_RETURN_NOT_OK(options.Validate());
  ARROW_ASSIGN_OR_RAISE(auto codec, ParseCompression(options.compression));
  parquet::WriterProperties::Builder props;
  props.compression(codec)
      ->max_row_group_length(options.row_group_rows)
      ->max_rows_per_page(options.page_rows)
      ->enable_statistics()
      ->enable_write_page_index()
      ->created_by("qlake");
  if (codec == arrow::Compression::ZSTD)
    props.compression_level(options.compression_level);
  // Prices and volumes hardly repeat within a page: dictionary encoding them cost ~25 %
  // of the ingest time and made zstd files ~20 % larger on a synthetic stocks-minute day
  // (docs/benchmarks.md). Tickers, timestamps, sessions, flags, strikes keep it.
  for (const char* name : {"open", "close", "high", "low", "volume"}) {
    if (schema->GetFieldIndex(name) >= 0) props.disable_dictionary(name);
  }
  for (const auto& name : options.plain_columns) {
    if (schema->GetFieldIndex(name) >= 0) props.disable_dictionary(name);
  }
  std::vector<parquet::SortingColumn> sorting;
  for (const char* name : {"ticker", "window_start"}) {
    int idx = schema->GetFieldIndex(name);
    if (idx >= 0) sorting.push_back(parquet::SortingColumn{idx, false, false});
  }
  if (!sorting.empty()) props.set_sorting_columns(sorting);
  auto arrow_props = parquet::ArrowWriterProperties::Builder()
                         .store_schema()
                         ->set_use_threads(options.use_threads)
                         ->build();
  auto state = std::make_unique<State>();
  state->sink = sink;
  state->row_group_rows = options.row_group_rows;
  ARROW_ASSIGN_OR_RAISE(state->writer, parquet::arrow::FileWriter::Open(
                                           *schema, arrow::default_memory_pool(), sink,
                                           props.build(), arrow_props));
  return std::unique_ptr<ParquetStreamWriter>(new ParquetStreamWriter(std::move(state)));
}

arrow::Status ParquetStreamWriter::Write(const arrow::Table& table) {
  if (table.num_rows() == 0) return arrow::Status::OK();
  rows_ += table.num_rows();
  // One row group at a time, each with only the dictionary values it uses: Arrow writes a
  // sliced dictionary array's whole dictionary into every row group (a 1M-row chunk's
  // ticker dictionary was repeated in each of its 20 row groups).
  const int64_t step = state_->row_group_rows;
  for (int64_t offset = 0; offset < table.num_rows(); offset += step) {
    ARROW_ASSIGN_OR_RAISE(auto piece, CompactDictionaries(table.Slice(offset, step)));
    ARROW_RETURN_NOT_OK(state_->writer->WriteTable(*piece, step));
  }
  return arrow::Status::OK();
}

arrow::Status ParquetStreamWriter::Close(
    const std::vector<std::pair<std::string, std::string>>& metadata) {
  if (!metadata.empty()) {
    auto kv = std::make_shared<arrow::KeyValueMetadata>();
    for (const auto& [k, v] : metadata) kv->Append(k, v);
    ARROW_RETURN_NOT_OK(state_->writer->AddKeyValueMetadata(kv));
  }
  ARROW_RETURN_NOT_OK(state_->writer->Close());
  return state_->sink->Close();
}

arrow::Status WriteParquet(
    const arrow::Table& table, std::shared_ptr<arrow::io::OutputStream> sink,
    const ParquetOutOptions& options,
    const std::vector<std::pair<std::string, std::string>>& metadata) {
  ARROW_ASSIGN_OR_RAISE(auto writer,
                        ParquetStreamWriter::Open(table.schema(), sink, options));
  // An empty table gives a valid file with no row groups.
  ARROW_RETURN_NOT_OK(writer->Write(table));
  return writer->Close(metadata);
}

}  // namespace qlake::ingest

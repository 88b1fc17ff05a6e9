#include "qlake/query/engine.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <set>
#include <utility>

#include <arrow/array.h>
#include <arrow/array/array_dict.h>
#include <arrow/array/concatenate.h>
#include <arrow/builder.h>
#include <arrow/compute/api.h>
#include <arrow/compute/initialize.h>
#include <arrow/dataset/file_parquet.h>
#include <arrow/filesystem/filesystem.h>
#include <arrow/io/interfaces.h>
#include <arrow/record_batch.h>
#include <arrow/scalar.h>
#include <fmt/format.h>
#include <parquet/arrow/reader.h>
#include <parquet/file_reader.h>
#include <parquet/metadata.h>
#include <parquet/statistics.h>

#include "qlake/catalog/datasets.h"
#include "qlake/catalog/symbols.h"
#include "qlake/ingest/agg_day.h"
#include "qlake/io/filesystem.h"
#include "qlake/lake/fs_util.h"
#include "qlake/query/where.h"

namespace qlake::query {

namespace cp = arrow::compute;

namespace {

// Counts the bytes a reader pulls from storage.
class CountingFile final : public arrow::io::RandomAccessFile {
 public:
  CountingFile(std::shared_ptr<arrow::io::RandomAccessFile> f, std::atomic<int64_t>* n)
      : f_(std::move(f)), n_(n) {}
  arrow::Status Close() override { return f_->Close(); }
  bool closed() const override { return f_->closed(); }
  arrow::Result<int64_t> Tell() const override { return f_->Tell(); }
  arrow::Status Seek(int64_t position) override { return f_->Seek(position); }
  arrow::Result<int64_t> GetSize() override { return f_->GetSize(); }
  arrow::Result<int64_t> Read(int64_t nbytes, void* out) override {
    ARROW_ASSIGN_OR_RAISE(auto r, f_->Read(nbytes, out));
    *n_ += r;
    return r;
  }
  arrow::Result<std::shared_ptr<arrow::Buffer>> Read(int64_t nbytes) override {
    ARROW_ASSIGN_OR_RAISE(auto b, f_->Read(nbytes));
    *n_ += b->size();
    return b;
  }
  arrow::Result<int64_t> ReadAt(int64_t position, int64_t nbytes, void* out) override {
    ARROW_ASSIGN_OR_RAISE(auto r, f_->ReadAt(position, nbytes, out));
    *n_ += r;
    return r;
  }
  arrow::Result<std::shared_ptr<arrow::Buffer>> ReadAt(int64_t position,
                                                       int64_t nbytes) override {
    ARROW_ASSIGN_OR_RAISE(auto b, f_->ReadAt(position, nbytes));
    *n_ += b->size();
    return b;
  }

 private:
  std::shared_ptr<arrow::io::RandomAccessFile> f_;
  std::atomic<int64_t>* n_;
};

std::string JoinNames(const arrow::Schema& s) {
  std::string out;
  for (const auto& f : s.fields()) out += (out.empty() ? "" : ", ") + f->name();
  return out;
}

// The partition values in a data file's path ("symbol=AAPL/year=.../x.parquet").
arrow::Result<std::vector<std::pair<std::string, std::string>>> PathPartitions(
    std::string_view rel) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t pos = 0;
  while (true) {
    auto slash = rel.find('/', pos);
    if (slash == std::string_view::npos) break;
    std::string_view comp = rel.substr(pos, slash - pos);
    auto eq = comp.find('=');
    if (eq != std::string_view::npos) {
      ARROW_ASSIGN_OR_RAISE(auto v, catalog::UnescapePathComponent(comp.substr(eq + 1)));
      out.emplace_back(std::string(comp.substr(0, eq)), std::move(v));
    }
    pos = slash + 1;
  }
  return out;
}

// A constant column of `n` rows holding `value` as `type` (the partition columns of the
// original layout: dictionary<int32, utf8> underlyings and date32 dates).
arrow::Result<std::shared_ptr<arrow::ChunkedArray>> ConstantColumn(
    const std::shared_ptr<arrow::DataType>& type, const std::string& value, int64_t n) {
  if (type->id() == arrow::Type::DICTIONARY) {
    const auto& dt = static_cast<const arrow::DictionaryType&>(*type);
    ARROW_ASSIGN_OR_RAISE(auto dict,
                          arrow::MakeArrayFromScalar(
                              *arrow::MakeScalar(dt.value_type(), value)
                                   .ValueOr(std::make_shared<arrow::StringScalar>(value)),
                              1));
    ARROW_ASSIGN_OR_RAISE(auto zero, arrow::MakeScalar(dt.index_type(), 0));
    ARROW_ASSIGN_OR_RAISE(auto idx, arrow::MakeArrayFromScalar(*zero, n));
    ARROW_ASSIGN_OR_RAISE(auto arr, arrow::DictionaryArray::FromArrays(type, idx, dict));
    return std::make_shared<arrow::ChunkedArray>(arr);
  }
  ARROW_ASSIGN_OR_RAISE(auto scalar, arrow::Scalar::Parse(type, value));
  ARROW_ASSIGN_OR_RAISE(auto arr, arrow::MakeArrayFromScalar(*scalar, n));
  return std::make_shared<arrow::ChunkedArray>(arr);
}

// The needed columns of one row group (shared by the pieces cut from it).
using RowGroupColumns = std::vector<std::shared_ptr<arrow::ChunkedArray>>;

// One piece of the result: a row range of one row group, with its sort position.
struct Piece {
  std::size_t symbol_order;
  std::size_t file_order;
  int rg;
  std::shared_ptr<const RowGroupColumns> cols;
  int64_t offset;
  int64_t length;
  int symbol;                // >= 0: every row is symbols[symbol] (binary-search slice)
  bool needs_symbol_filter;  // a whole row group, not narrowed by a binary search
};

// Pieces shorter than this are copied together into one chunk (a year of daily bars is
// one row per symbol and file: 2,520 one-row slices for 10 symbols, whose per-slice
// batches and per-chunk hand-off to Python cost 100x the rows). Longer pieces are passed
// on as zero-copy slices of the cached column chunks.
constexpr int64_t kCopyBelowRows = 256;
// Rows of a chunk assembled from short pieces.
constexpr int64_t kChunkRows = int64_t{1} << 16;

// Column `i` of pieces [first, last) copied into one array, for fixed-width types of
// whole bytes without nulls whose pieces each lie in one chunk of that type (prices,
// volumes, timestamps): one allocation and a memcpy per piece instead of a slice per
// piece and a concatenation. Null when the column does not qualify.
arrow::Result<std::shared_ptr<arrow::Array>> GatherFixedWidth(
    const std::vector<Piece>& pieces, std::size_t first, std::size_t last, std::size_t i,
    const std::shared_ptr<arrow::DataType>& type) {
  if (!arrow::is_fixed_width(type->id()) || type->id() == arrow::Type::DICTIONARY ||
      type->bit_width() % 8 != 0 || type->bit_width() == 0) {
    return nullptr;
  }
  const int64_t width = type->bit_width() / 8;
  int64_t rows = 0;
  for (std::size_t k = first; k < last; ++k) {
    const auto& col = *(*pieces[k].cols)[i];
    if (col.num_chunks() != 1 || !col.type()->Equals(*type) || col.null_count() != 0) {
      return nullptr;
    }
    rows += pieces[k].length;
  }
  ARROW_ASSIGN_OR_RAISE(auto buf, arrow::AllocateBuffer(rows * width));
  uint8_t* out = buf->mutable_data();
  for (std::size_t k = first; k < last; ++k) {
    const auto& data = *(*pieces[k].cols)[i]->chunk(0)->data();
    const uint8_t* src =
        data.buffers[1]->data() + (data.offset + pieces[k].offset) * width;
    std::memcpy(out, src, static_cast<std::size_t>(pieces[k].length * width));
    out += pieces[k].length * width;
  }
  return arrow::MakeArray(
      arrow::ArrayData::Make(type, rows, {nullptr, std::move(buf)}, /*null_count=*/0));
}

// `n` rows of a dictionary column whose every value is dictionary entry `index`.
arrow::Result<std::shared_ptr<arrow::Array>> ConstantDictionary(
    const std::shared_ptr<arrow::DataType>& type,
    const std::shared_ptr<arrow::Array>& dictionary, int index, int64_t n) {
  const auto& dt = static_cast<const arrow::DictionaryType&>(*type);
  ARROW_ASSIGN_OR_RAISE(auto i, arrow::MakeScalar(dt.index_type(), index));
  ARROW_ASSIGN_OR_RAISE(auto idx, arrow::MakeArrayFromScalar(*i, n));
  return arrow::DictionaryArray::FromArrays(type, idx, dictionary);
}

// The int32 indices of a run of binary-search pieces (piece i: `lengths[i]` rows of
// dictionary entry `symbols[i]`), as one dictionary array.
arrow::Result<std::shared_ptr<arrow::Array>> SymbolRuns(
    const std::shared_ptr<arrow::DataType>& type,
    const std::shared_ptr<arrow::Array>& dictionary, const std::vector<int>& symbols,
    const std::vector<int64_t>& lengths, int64_t total) {
  ARROW_ASSIGN_OR_RAISE(auto buf, arrow::AllocateBuffer(total * sizeof(int32_t)));
  auto* out = reinterpret_cast<int32_t*>(buf->mutable_data());
  for (std::size_t i = 0; i < symbols.size(); ++i) {
    out = std::fill_n(out, lengths[i], symbols[i]);
  }
  auto idx = std::make_shared<arrow::Int32Array>(total, std::move(buf));
  return arrow::DictionaryArray::FromArrays(type, idx, dictionary);
}

}  // namespace

struct Engine::FileState {
  std::string path;
  int64_t size = 0;
  std::shared_ptr<parquet::FileMetaData> metadata;
  std::shared_ptr<arrow::Schema> schema;  // the file's Arrow schema
  std::string key;
};

arrow::Status InitializeQueryEngine() {
  static const arrow::Status st = arrow::compute::Initialize();
  return st;
}

arrow::Status QueryOptions::Validate() const {
  if (dataset.empty()) return arrow::Status::Invalid("query: no dataset");
  if (to < from) {
    return arrow::Status::Invalid("query: --from ", FormatDate(from), " is after --to ",
                                  FormatDate(to));
  }
  for (const auto& s : symbols) {
    if (s.empty()) return arrow::Status::Invalid("query: empty symbol in the list");
  }
  static const std::set<std::string> kParts = {"pre", "regular", "post", "outside"};
  for (const auto& s : sessions) {
    if (!kParts.count(s)) {
      return arrow::Status::Invalid("query: unknown session '", s,
                                    "'; use pre, regular, post or outside");
    }
  }
  return arrow::Status::OK();
}

Engine::Engine(std::shared_ptr<lake::Lake> lake, EngineOptions options)
    : lake_(std::move(lake)), options_(std::move(options)) {
  cache_ = options_.cache ? options_.cache
                          : std::make_shared<ColumnChunkCache>(options_.cache_bytes);
}

Engine::~Engine() = default;

namespace {

arrow::Status CheckLakeFolder(const lake::Lake& lake, const std::string& uri_or_path) {
  ARROW_ASSIGN_OR_RAISE(auto info, lake.filesystem()->GetFileInfo(lake.base_path()));
  if (!lake.base_path().empty() && info.type() != arrow::fs::FileType::Directory) {
    // S3 has no folders: a prefix "exists" when objects lie below it.
    if (lake.filesystem()->type_name() == "s3" &&
        info.type() == arrow::fs::FileType::NotFound) {
      arrow::fs::FileSelector sel;
      sel.base_dir = lake.base_path();
      sel.allow_not_found = true;
      sel.max_recursion = 0;
      ARROW_ASSIGN_OR_RAISE(auto below, lake.filesystem()->GetFileInfo(sel));
      if (!below.empty()) return arrow::Status::OK();
    }
    return arrow::Status::IOError(
        "query: no lake at '", uri_or_path, "' (",
        info.type() == arrow::fs::FileType::NotFound ? "no such folder" : "not a folder",
        ")");
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<std::shared_ptr<Engine>> Engine::Open(const std::string& uri_or_path,
                                                    EngineOptions options) {
  lake::LakeOptions lo;
  lo.create_root = false;
  ARROW_ASSIGN_OR_RAISE(auto lake, lake::Lake::Open(uri_or_path, lo));
  ARROW_RETURN_NOT_OK(CheckLakeFolder(*lake, uri_or_path));
  return Make(std::move(lake), std::move(options));
}

arrow::Result<std::shared_ptr<Engine>> Engine::Open(const std::string& uri_or_path,
                                                    const Config& config,
                                                    EngineOptions options) {
  lake::LakeOptions lo;
  lo.create_root = false;
  std::string path;
  ARROW_ASSIGN_OR_RAISE(auto fs, io::OpenFileSystem(uri_or_path, config, &path));
  ARROW_ASSIGN_OR_RAISE(auto lake, lake::Lake::Make(std::move(fs), path, lo));
  ARROW_RETURN_NOT_OK(CheckLakeFolder(*lake, uri_or_path));
  return Make(std::move(lake), std::move(options));
}

arrow::Result<std::shared_ptr<Engine>> Engine::Make(std::shared_ptr<lake::Lake> lake,
                                                    EngineOptions options) {
  ARROW_RETURN_NOT_OK(InitializeQueryEngine());
  return std::shared_ptr<Engine>(new Engine(std::move(lake), std::move(options)));
}

arrow::Result<std::shared_ptr<const Engine::Listing>> Engine::ListRecords(
    const std::string& dataset) {
  std::string rel = lake::Lake::CommitRecordPath(dataset, Date{});
  rel = rel.substr(0, rel.rfind('/'));
  const std::string dir = lake_->PathOf(rel);
  auto& fs = *lake_->filesystem();
  // On a local file system the folder's modification time changes with every record
  // written, replaced or deleted (records are written to a temp file and renamed), so an
  // unchanged time means an unchanged listing -- provided the listing was taken well
  // after that time: time stamps are coarse (a kernel tick), and a change within the
  // same tick as the previous one would keep the time.
  const bool local = fs.type_name() == "local";
  int64_t dir_mtime = 0;
  if (local) {
    ARROW_ASSIGN_OR_RAISE(auto info, fs.GetFileInfo(dir));
    if (info.type() == arrow::fs::FileType::Directory) {
      dir_mtime = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      info.mtime().time_since_epoch())
                      .count();
      std::lock_guard<std::mutex> lock(mu_);
      auto it = listings_.find(dataset);
      if (it != listings_.end() && it->second->trusted &&
          it->second->dir_mtime_ns == dir_mtime) {
        return it->second;
      }
    }
  }
  const int64_t listed_at = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
  arrow::fs::FileSelector sel;
  sel.base_dir = dir;
  sel.allow_not_found = true;
  ARROW_ASSIGN_OR_RAISE(auto infos, lake::ListFiles(fs, sel));
  auto listing = std::make_shared<Listing>();
  for (const auto& info : infos) {
    if (!info.IsFile()) continue;
    std::string name = info.base_name();
    if (name.size() != 15 || name.substr(10) != ".json") continue;
    auto day = ParseDate(name.substr(0, 10));
    if (!day.ok()) continue;
    listing->entries.push_back(
        Listing::Entry{*day, info.path(), info.size(),
                       std::chrono::duration_cast<std::chrono::nanoseconds>(
                           info.mtime().time_since_epoch())
                           .count()});
  }
  std::sort(listing->entries.begin(), listing->entries.end(),
            [](const auto& a, const auto& b) { return a.day < b.day; });
  if (dir_mtime != 0) {
    listing->dir_mtime_ns = dir_mtime;
    listing->trusted = listed_at - dir_mtime > int64_t{2'000'000'000};
    std::lock_guard<std::mutex> lock(mu_);
    listings_[dataset] = listing;
  }
  return listing;
}

arrow::Result<std::vector<Engine::RecordPtr>> Engine::Records(const std::string& dataset,
                                                              Date from, Date to,
                                                              QueryStats* stats) {
  ARROW_ASSIGN_OR_RAISE(auto listing, ListRecords(dataset));
  auto it = std::lower_bound(listing->entries.begin(), listing->entries.end(), from,
                             [](const auto& e, Date d) { return e.day < d; });
  std::vector<RecordPtr> out;
  for (; it != listing->entries.end() && !(to < it->day); ++it) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto r = records_.find(it->path);
      if (r != records_.end() && r->second.size == it->size &&
          r->second.mtime_ns == it->mtime_ns) {
        out.push_back(r->second.record);
        continue;
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto rec, lake_->GetCommit(dataset, it->day));
    if (!rec) continue;  // removed since the listing
    auto ptr = std::make_shared<const lake::CommitRecord>(std::move(*rec));
    {
      std::lock_guard<std::mutex> lock(mu_);
      records_[it->path] = CachedRecord{it->size, it->mtime_ns, ptr};
    }
    out.push_back(std::move(ptr));
  }
  stats->days = static_cast<int64_t>(out.size());
  return out;
}

arrow::Result<std::shared_ptr<Engine::FileState>> Engine::GetFile(const std::string& key,
                                                                  const std::string& path,
                                                                  QueryStats* stats) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(key);
    if (it != files_.end()) return it->second;
  }
  std::atomic<int64_t> bytes{0};
  ARROW_ASSIGN_OR_RAISE(auto raw, lake_->filesystem()->OpenInputFile(path));
  auto file = std::make_shared<CountingFile>(raw, &bytes);
  auto st = std::make_shared<FileState>();
  st->path = path;
  st->key = key;
  std::unique_ptr<parquet::ParquetFileReader> pq;
  try {
    pq = parquet::ParquetFileReader::Open(file);
  } catch (const std::exception& e) {
    return arrow::Status::IOError("query: cannot read the Parquet footer of ", path, ": ",
                                  e.what());
  }
  st->metadata = pq->metadata();
  ARROW_ASSIGN_OR_RAISE(auto reader, parquet::arrow::FileReader::Make(
                                         arrow::default_memory_pool(), std::move(pq)));
  ARROW_RETURN_NOT_OK(reader->GetSchema(&st->schema));
  ARROW_ASSIGN_OR_RAISE(st->size, file->GetSize());
  stats->bytes_read += bytes.load();
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int64_t>(files_.size()) >= options_.max_open_files) files_.clear();
  files_[key] = st;
  return st;
}

namespace {

// `lake_schema` restricted to `columns` in their order (all if empty).
arrow::Result<std::shared_ptr<arrow::Schema>> Project(
    const std::shared_ptr<arrow::Schema>& lake_schema, const QueryOptions& options) {
  if (options.columns.empty()) return lake_schema;
  arrow::FieldVector fields;
  std::set<std::string> seen;
  for (const auto& c : options.columns) {
    auto f = lake_schema->GetFieldByName(c);
    if (!f) {
      return arrow::Status::Invalid("query: unknown column '", c, "' of ",
                                    options.dataset,
                                    " (columns: ", JoinNames(*lake_schema), ")");
    }
    if (!seen.insert(c).second) {
      return arrow::Status::Invalid("query: column '", c, "' given twice");
    }
    fields.push_back(f);
  }
  return arrow::schema(fields);
}

constexpr std::string_view kFeaturesPrefix = "features/";

}  // namespace

arrow::Result<std::shared_ptr<arrow::Schema>> Engine::DatasetSchema(
    const std::string& dataset, const std::vector<RecordPtr>& records,
    QueryStats* stats) {
  if (dataset.rfind(kFeaturesPrefix, 0) != 0) {
    ARROW_ASSIGN_OR_RAISE(auto spec, catalog::FindDataset(dataset));
    return ingest::LakeSchema(*spec);
  }
  // Feature datasets: the schema of a committed file (features.md lists the columns).
  std::optional<lake::CommitRecord> any;
  for (const auto& r : records) {
    if (!r->files.empty()) {
      any = *r;
      break;
    }
  }
  if (!any) {
    ARROW_ASSIGN_OR_RAISE(auto days, lake_->ListCommittedDays(dataset));
    for (auto it = days.rbegin(); it != days.rend() && !any; ++it) {
      ARROW_ASSIGN_OR_RAISE(auto r, lake_->GetCommit(dataset, *it));
      if (r && !r->files.empty()) any = std::move(r);
    }
  }
  if (!any) {
    return arrow::Status::Invalid(
        "query: ", dataset, " has no committed days in the lake (run qlake features)");
  }
  const auto& entry = any->files.front();
  const std::string path = lake_->PathOf(dataset + "/" + entry.path);
  ARROW_ASSIGN_OR_RAISE(
      auto fs,
      GetFile(fmt::format("{}@{}:{:08x}", path, entry.size, entry.crc32), path, stats));
  return fs->schema;
}

arrow::Result<std::shared_ptr<arrow::Schema>> Engine::OutputSchema(
    const QueryOptions& options) {
  QueryStats stats;
  ARROW_ASSIGN_OR_RAISE(auto lake_schema, DatasetSchema(options.dataset, {}, &stats));
  return Project(lake_schema, options);
}

arrow::Result<QueryResult> Engine::Query(const QueryOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  ARROW_RETURN_NOT_OK(options.Validate());
  const bool feature = options.dataset.rfind(kFeaturesPrefix, 0) == 0;
  ARROW_ASSIGN_OR_RAISE(
      auto spec,
      catalog::FindDataset(feature ? options.dataset.substr(kFeaturesPrefix.size())
                                   : options.dataset));
  if (!spec->ingestible) {
    return arrow::Status::Invalid("query: dataset ", options.dataset,
                                  " is not in the lake (not ingestible yet)");
  }
  const bool minute = spec->granularity == catalog::Granularity::kMinute;
  QueryResult result;
  QueryStats& stats = result.stats;
  ARROW_ASSIGN_OR_RAISE(auto records,
                        Records(options.dataset, options.from, options.to, &stats));
  ARROW_ASSIGN_OR_RAISE(auto lake_schema,
                        DatasetSchema(options.dataset, records, &stats));
  ARROW_ASSIGN_OR_RAISE(auto out_schema, Project(lake_schema, options));

  // The condition: --where plus the session filter.
  std::optional<cp::Expression> cond;
  if (!options.where.empty()) {
    ARROW_ASSIGN_OR_RAISE(cond, ParseWhere(options.where, *lake_schema));
  }
  if (!options.sessions.empty()) {
    if (!minute) {
      return arrow::Status::Invalid("query: --session needs a minute dataset; ",
                                    options.dataset, " has day bars");
    }
    if (!lake_schema->GetFieldByName("session")) {
      return arrow::Status::Invalid("query: ", options.dataset, " has no session column");
    }
    arrow::StringBuilder b;
    ARROW_RETURN_NOT_OK(b.AppendValues(options.sessions));
    ARROW_ASSIGN_OR_RAISE(auto set, b.Finish());
    auto e = cp::call("is_in", {cp::field_ref("session")}, cp::SetLookupOptions(set));
    cond = cond ? cp::and_(*cond, e) : e;
  }
  std::vector<std::string> cond_cols =
      cond ? ReferencedColumns(*cond) : std::vector<std::string>{};

  // Symbols, sorted and unique: the output order and the binary searches use it.
  std::vector<std::string> symbols = options.symbols;
  std::sort(symbols.begin(), symbols.end());
  symbols.erase(std::unique(symbols.begin(), symbols.end()), symbols.end());
  // Options symbols are underlyings (feature files without that column: tickers).
  const std::string sym_col = spec->options && lake_schema->GetFieldByName("underlying")
                                  ? "underlying"
                                  : "ticker";
  std::shared_ptr<arrow::Array> symbol_set;
  if (!symbols.empty()) {
    arrow::StringBuilder b;
    ARROW_RETURN_NOT_OK(b.AppendValues(symbols));
    ARROW_ASSIGN_OR_RAISE(symbol_set, b.Finish());
  }

  // Columns to read: output, condition, and the symbol column.
  std::vector<std::string> needed;
  for (const auto& f : out_schema->fields()) needed.push_back(f->name());
  auto add = [&](const std::string& c) {
    if (std::find(needed.begin(), needed.end(), c) == needed.end()) needed.push_back(c);
  };
  for (const auto& c : cond_cols) add(c);
  if (!symbols.empty()) add(sym_col);
  const std::size_t sym_pos =
      std::find(needed.begin(), needed.end(), sym_col) - needed.begin();
  // Every piece's columns are brought to the lake schema's types.
  arrow::FieldVector needed_fields;
  for (const auto& c : needed) needed_fields.push_back(lake_schema->GetFieldByName(c));
  auto needed_schema = arrow::schema(needed_fields);

  std::vector<Piece> pieces;
  std::atomic<int64_t> bytes{0};
  std::size_t file_order = 0;
  for (const auto& rec : records) {
    for (const auto& entry : rec->files) {
      ++stats.files;
      const std::size_t this_file = file_order++;
      ARROW_ASSIGN_OR_RAISE(auto parts, PathPartitions(entry.path));
      // Partition pruning (original layout).
      bool skip = false;
      for (const auto& [k, v] : parts) {
        if ((k == "symbol" || k == "underlying") && !symbols.empty() &&
            !std::binary_search(symbols.begin(), symbols.end(), v)) {
          skip = true;
        }
      }
      if (skip) {
        ++stats.files_pruned;
        continue;
      }
      const std::string path = lake_->PathOf(options.dataset + "/" + entry.path);
      const std::string key = fmt::format("{}@{}:{:08x}", path, entry.size, entry.crc32);
      ARROW_ASSIGN_OR_RAISE(auto fs, GetFile(key, path, &stats));
      const auto& md = *fs->metadata;
      const int num_rg = md.num_row_groups();
      stats.row_groups += num_rg;

      // Where each needed column comes from: the file or the path.
      std::vector<int> file_idx(needed.size(), -1);
      std::vector<std::string> path_value(needed.size());
      for (std::size_t i = 0; i < needed.size(); ++i) {
        file_idx[i] = fs->schema->GetFieldIndex(needed[i]);
        if (file_idx[i] >= 0) continue;
        std::string pkey = needed[i] == "underlying" ? "underlying" : needed[i];
        bool found = false;
        for (const auto& [k, v] : parts) {
          if (k == pkey) {
            path_value[i] = v;
            found = true;
          }
        }
        if (!found) {
          return arrow::Status::Invalid("query: ", path, " has no column '", needed[i],
                                        "' (a file of another schema?)");
        }
      }
      const int sym_idx = fs->schema->GetFieldIndex(sym_col);
      // Symbol narrowing applies when the file holds the symbol column.
      const bool by_symbol = !symbols.empty() && sym_idx >= 0;
      const bool sorted_search = by_symbol && sym_col == "ticker";

      std::optional<cp::Expression> bound_cond;
      if (cond) {
        auto read_fields = arrow::FieldVector{};
        for (std::size_t i = 0; i < needed.size(); ++i) {
          read_fields.push_back(file_idx[i] >= 0
                                    ? fs->schema->field(file_idx[i])
                                    : lake_schema->GetFieldByName(needed[i]));
        }
        ARROW_ASSIGN_OR_RAISE(bound_cond, cond->Bind(*arrow::schema(read_fields)));
      }

      std::unique_ptr<parquet::arrow::FileReader> reader;  // opened on the first miss
      for (int rg = 0; rg < num_rg; ++rg) {
        auto rgmd = md.RowGroup(rg);
        const int64_t rg_rows = rgmd->num_rows();
        if (rg_rows == 0) {
          ++stats.row_groups_pruned;
          continue;
        }
        // Row-group pruning by the symbol column's min/max.
        if (by_symbol) {
          auto stat = rgmd->ColumnChunk(sym_idx)->statistics();
          if (stat && stat->HasMinMax()) {
            const std::string lo = stat->EncodeMin(), hi = stat->EncodeMax();
            auto it = std::lower_bound(symbols.begin(), symbols.end(), lo);
            if (it == symbols.end() || *it > hi) {
              ++stats.row_groups_pruned;
              continue;
            }
          }
        }
        // Row-group pruning by the condition's columns' statistics.
        if (bound_cond) {
          cp::Expression guarantee = cp::literal(true);
          for (const auto& c : cond_cols) {
            int ci = fs->schema->GetFieldIndex(c);
            if (ci < 0) continue;
            const auto& field = *fs->schema->field(ci);
            if (field.type()->id() == arrow::Type::DICTIONARY) continue;
            auto stat = rgmd->ColumnChunk(ci)->statistics();
            if (!stat) continue;
            auto g = arrow::dataset::ParquetFileFragment::EvaluateStatisticsAsExpression(
                field, *stat);
            if (g) guarantee = cp::and_(guarantee, *g);
          }
          auto simplified = cp::SimplifyWithGuarantee(*bound_cond, guarantee);
          if (simplified.ok() && simplified->IsSatisfiable() == false) {
            ++stats.row_groups_pruned;
            continue;
          }
        }
        // The needed column chunks, from the cache or the file.
        std::vector<std::shared_ptr<arrow::ChunkedArray>> cols(needed.size());
        std::vector<int> missing;
        std::vector<std::size_t> missing_pos;
        for (std::size_t i = 0; i < needed.size(); ++i) {
          if (file_idx[i] < 0) continue;
          cols[i] = cache_->Get(fmt::format("{}#{}#{}", key, rg, file_idx[i]));
          if (cols[i]) {
            ++stats.cache_hits;
          } else {
            ++stats.cache_misses;
            missing.push_back(file_idx[i]);
            missing_pos.push_back(i);
          }
        }
        if (!missing.empty()) {
          if (!reader) {
            arrow::fs::FileInfo info(path, arrow::fs::FileType::File);
            info.set_size(entry.size);
            ARROW_ASSIGN_OR_RAISE(auto raw, lake_->filesystem()->OpenInputFile(info));
            auto file = std::make_shared<CountingFile>(raw, &bytes);
            parquet::ArrowReaderProperties props;
            props.set_pre_buffer(true);
            std::unique_ptr<parquet::ParquetFileReader> pq;
            try {
              pq = parquet::ParquetFileReader::Open(
                  file, parquet::default_reader_properties(), fs->metadata);
            } catch (const std::exception& e) {
              return arrow::Status::IOError("query: cannot read ", path, ": ", e.what());
            }
            ARROW_ASSIGN_OR_RAISE(
                reader, parquet::arrow::FileReader::Make(arrow::default_memory_pool(),
                                                         std::move(pq), props));
          }
          auto table = reader->ReadRowGroup(rg, missing);
          if (!table.ok()) {
            return arrow::Status::IOError("query: reading row group ", rg, " of ", path,
                                          ": ", table.status().message());
          }
          for (std::size_t j = 0; j < missing.size(); ++j) {
            auto col = (*table)->column(static_cast<int>(j));
            cache_->Put(fmt::format("{}#{}#{}", key, rg, missing[j]), col);
            cols[missing_pos[j]] = col;
          }
        }
        for (std::size_t i = 0; i < needed.size(); ++i) {
          if (file_idx[i] >= 0) continue;
          ARROW_ASSIGN_OR_RAISE(
              cols[i], ConstantColumn(lake_schema->GetFieldByName(needed[i])->type(),
                                      path_value[i], rg_rows));
        }
        auto shared = std::make_shared<const RowGroupColumns>(std::move(cols));

        if (sorted_search) {
          // Binary search for each symbol's contiguous run of rows (the file is sorted by
          // ticker: declared in its sorting columns).
          auto sc = rgmd->sorting_columns();
          const bool declared =
              !sc.empty() && sc.front().column_idx == sym_idx && !sc.front().descending;
          const auto& tick = (*shared)[sym_pos];
          if (declared && tick->num_chunks() == 1 &&
              tick->type()->id() == arrow::Type::DICTIONARY) {
            const auto& dict_arr =
                static_cast<const arrow::DictionaryArray&>(*tick->chunk(0));
            const auto& dict =
                static_cast<const arrow::StringArray&>(*dict_arr.dictionary());
            auto value = [&](int64_t row) {
              return dict.GetView(dict_arr.GetValueIndex(row));
            };
            bool any = false;
            for (std::size_t s = 0; s < symbols.size(); ++s) {
              int64_t lo = 0, hi = rg_rows;
              while (lo < hi) {
                int64_t mid = (lo + hi) / 2;
                if (value(mid) < symbols[s])
                  lo = mid + 1;
                else
                  hi = mid;
              }
              int64_t begin = lo;
              hi = rg_rows;
              while (lo < hi) {
                int64_t mid = (lo + hi) / 2;
                if (value(mid) <= symbols[s])
                  lo = mid + 1;
                else
                  hi = mid;
              }
              if (lo > begin) {
                // The piece's symbol column is rebuilt as indices into the requested
                // symbols, so results do not carry (and unify) row-group dictionaries.
                pieces.push_back(Piece{s, this_file, rg, shared, begin, lo - begin,
                                       static_cast<int>(s), false});
                stats.rows_scanned += lo - begin;
                any = true;
              }
            }
            if (!any) ++stats.row_groups_pruned;
            continue;
          }
        }
        stats.rows_scanned += rg_rows;
        pieces.push_back(
            Piece{0, this_file, rg, std::move(shared), 0, rg_rows, -1, by_symbol});
      }
    }
  }
  stats.bytes_read += bytes.load();

  std::stable_sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) {
    if (a.symbol_order != b.symbol_order) return a.symbol_order < b.symbol_order;
    if (a.file_order != b.file_order) return a.file_order < b.file_order;
    return a.rg < b.rg;
  });

  // Assemble chunks: each long piece is one chunk (zero-copy slices); runs of short
  // pieces are concatenated into one chunk of up to kChunkRows.
  // Binary-search pieces' symbol column: indices into the requested symbols.
  std::shared_ptr<arrow::Array> symbol_dict = symbol_set;
  const bool sym_is_dict =
      sym_pos < needed.size() &&
      needed_fields[sym_pos]->type()->id() == arrow::Type::DICTIONARY;
  if (sym_is_dict && symbol_set) {
    const auto& dt =
        static_cast<const arrow::DictionaryType&>(*needed_fields[sym_pos]->type());
    if (!dt.value_type()->Equals(*symbol_set->type())) {
      ARROW_ASSIGN_OR_RAISE(symbol_dict, cp::Cast(*symbol_set, dt.value_type()));
    }
  }
  auto piece_column = [&](const Piece& p, std::size_t i,
                          arrow::ArrayVector* out) -> arrow::Status {
    const auto& type = needed_fields[i]->type();
    if (i == sym_pos && p.symbol >= 0 && sym_is_dict) {
      ARROW_ASSIGN_OR_RAISE(auto a,
                            ConstantDictionary(type, symbol_dict, p.symbol, p.length));
      out->push_back(std::move(a));
      return arrow::Status::OK();
    }
    const auto& col = (*p.cols)[i];
    arrow::ArrayVector chunks;
    if (col->num_chunks() == 1) {
      chunks.push_back(col->chunk(0)->Slice(p.offset, p.length));
    } else {
      chunks = col->Slice(p.offset, p.length)->chunks();
    }
    for (const auto& chunk : chunks) {
      if (chunk->length() == 0) continue;
      if (chunk->type()->Equals(*type)) {
        out->push_back(chunk);
      } else {
        ARROW_ASSIGN_OR_RAISE(auto cast, cp::Cast(*chunk, type));
        out->push_back(std::move(cast));
      }
    }
    return arrow::Status::OK();
  };

  // Filter: the condition, and the symbol set for pieces no binary search narrowed.
  std::optional<cp::Expression> filter_cond, filter_sym;
  if (cond) {
    ARROW_ASSIGN_OR_RAISE(filter_cond, cond->Bind(*needed_schema));
  }
  if (symbol_set) {
    auto e =
        cp::call("is_in", {cp::field_ref(sym_col)}, cp::SetLookupOptions(symbol_set));
    if (cond) e = cp::and_(*cond, e);
    ARROW_ASSIGN_OR_RAISE(filter_sym, e.Bind(*needed_schema));
  }
  std::vector<int> out_idx;
  for (const auto& f : out_schema->fields()) {
    out_idx.push_back(static_cast<int>(
        std::find(needed.begin(), needed.end(), f->name()) - needed.begin()));
  }
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  auto emit = [&](std::size_t first, std::size_t last) -> arrow::Status {
    if (first == last) return arrow::Status::OK();
    int64_t rows = 0;
    bool all_symbol = true, needs_symbol_filter = false;
    for (std::size_t k = first; k < last; ++k) {
      rows += pieces[k].length;
      all_symbol = all_symbol && pieces[k].symbol >= 0;
      needs_symbol_filter = needs_symbol_filter || pieces[k].needs_symbol_filter;
    }
    const std::optional<cp::Expression>& filter =
        needs_symbol_filter ? filter_sym : filter_cond;
    arrow::ArrayVector arrays(needed.size());
    for (std::size_t i = 0; i < needed.size(); ++i) {
      // Columns neither returned nor filtered on (the symbol column read for the binary
      // search) are not assembled.
      const bool used = std::find(out_idx.begin(), out_idx.end(), static_cast<int>(i)) !=
                            out_idx.end() ||
                        filter.has_value();
      if (!used) continue;
      const auto& type = needed_fields[i]->type();
      if (i == sym_pos && all_symbol && sym_is_dict && last - first > 1 &&
          static_cast<const arrow::DictionaryType&>(*type).index_type()->id() ==
              arrow::Type::INT32) {
        std::vector<int> syms;
        std::vector<int64_t> lengths;
        for (std::size_t k = first; k < last; ++k) {
          syms.push_back(pieces[k].symbol);
          lengths.push_back(pieces[k].length);
        }
        ARROW_ASSIGN_OR_RAISE(arrays[i],
                              SymbolRuns(type, symbol_dict, syms, lengths, rows));
        continue;
      }
      if (last - first > 1) {
        ARROW_ASSIGN_OR_RAISE(arrays[i], GatherFixedWidth(pieces, first, last, i, type));
        if (arrays[i]) continue;
      }
      arrow::ArrayVector parts;
      for (std::size_t k = first; k < last; ++k) {
        ARROW_RETURN_NOT_OK(piece_column(pieces[k], i, &parts));
      }
      if (parts.size() == 1) {
        arrays[i] = std::move(parts.front());
      } else {
        ARROW_ASSIGN_OR_RAISE(arrays[i], arrow::Concatenate(parts));
      }
    }
    for (std::size_t i = 0; i < needed.size(); ++i) {
      if (!arrays[i]) {
        // Unused: a null placeholder keeps the batch well-formed for the filter.
        ARROW_ASSIGN_OR_RAISE(arrays[i],
                              arrow::MakeArrayOfNull(needed_fields[i]->type(), rows));
      }
    }
    auto batch = arrow::RecordBatch::Make(needed_schema, rows, std::move(arrays));
    if (filter) {
      ARROW_ASSIGN_OR_RAISE(auto mask,
                            cp::ExecuteScalarExpression(*filter, cp::ExecBatch(*batch)));
      if (mask.is_scalar()) {
        const auto& s = mask.scalar_as<arrow::BooleanScalar>();
        if (!s.is_valid || !s.value) return arrow::Status::OK();
      } else {
        ARROW_ASSIGN_OR_RAISE(auto filtered, cp::Filter(batch, mask));
        batch = filtered.record_batch();
      }
    }
    if (batch->num_rows() == 0) return arrow::Status::OK();
    arrow::ArrayVector cols;
    for (int i : out_idx) cols.push_back(batch->column(i));
    batches.push_back(arrow::RecordBatch::Make(out_schema, batch->num_rows(), cols));
    return arrow::Status::OK();
  };
  std::size_t run_start = 0;
  int64_t run_rows = 0;
  for (std::size_t k = 0; k < pieces.size(); ++k) {
    if (pieces[k].length >= kCopyBelowRows) {
      ARROW_RETURN_NOT_OK(emit(run_start, k));
      ARROW_RETURN_NOT_OK(emit(k, k + 1));
      run_start = k + 1;
      run_rows = 0;
      continue;
    }
    run_rows += pieces[k].length;
    if (run_rows >= kChunkRows) {
      ARROW_RETURN_NOT_OK(emit(run_start, k + 1));
      run_start = k + 1;
      run_rows = 0;
    }
  }
  ARROW_RETURN_NOT_OK(emit(run_start, pieces.size()));

  std::shared_ptr<arrow::Table> table;
  if (batches.empty()) {
    ARROW_ASSIGN_OR_RAISE(table, arrow::Table::MakeEmpty(out_schema));
  } else {
    ARROW_ASSIGN_OR_RAISE(table, arrow::Table::FromRecordBatches(out_schema, batches));
    bool has_dict = false;
    for (const auto& f : out_schema->fields()) {
      has_dict = has_dict || f->type()->id() == arrow::Type::DICTIONARY;
    }
    if (has_dict && batches.size() > 1) {
      ARROW_ASSIGN_OR_RAISE(table, arrow::DictionaryUnifier::UnifyTable(*table));
    }
  }
  stats.rows = table->num_rows();
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result.table = std::move(table);
  return result;
}

}  // namespace qlake::query

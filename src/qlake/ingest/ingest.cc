#include "qlake/ingest/ingest.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <arrow/array.h>
#include <arrow/filesystem/filesystem.h>
#include <arrow/io/interfaces.h>
#include <arrow/io/memory.h>
#include <arrow/util/parallel.h>
#include <fmt/format.h>
#include <parquet/arrow/reader.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "qlake/catalog/datasets.h"
#include "qlake/catalog/nyse_calendar.h"
#include "qlake/core/progress.h"
#include "qlake/core/version.h"
#include "qlake/ingest/gzip_stream.h"
#include "qlake/lake/lake.h"

namespace qlake::ingest {

namespace {

// Relative local paths are made absolute (Arrow's URI parser wants absolute paths).
std::string AbsoluteUnlessUri(const std::string& uri_or_path) {
  if (uri_or_path.find("://") != std::string::npos) return uri_or_path;
  return std::filesystem::absolute(uri_or_path).lexically_normal().string();
}

struct Source {
  std::shared_ptr<arrow::fs::FileSystem> fs;
  std::string root;  // path inside fs
  int64_t read_bytes = int64_t{1} << 20;
};

arrow::Result<Source> OpenSource(const IngestOptions& o) {
  const std::string& uri_or_path = o.source;
  Source s;
  if (o.source_fs) {
    s.fs = o.source_fs;
    s.root = o.source;
  } else {
    auto fs = arrow::fs::FileSystemFromUriOrPath(AbsoluteUnlessUri(uri_or_path), &s.root);
    if (!fs.ok()) {
      return arrow::Status::Invalid(
          "source '", uri_or_path,
          "' is neither a folder nor a file system URI: ", fs.status().message());
    }
    s.fs = *fs;
  }
  s.read_bytes = o.source_read_bytes;
  if (s.fs->type_name() == "s3") s.read_bytes = std::max(s.read_bytes, int64_t{8} << 20);
  // An S3 bucket or prefix is not checked here: HeadBucket may be refused where reading
  // objects is allowed, and a missing object fails its day with a clear message.
  if (s.fs->type_name() == "s3") return s;
  ARROW_ASSIGN_OR_RAISE(auto info, s.fs->GetFileInfo(s.root));
  if (info.type() != arrow::fs::FileType::Directory) {
    return arrow::Status::IOError(
        "source '", uri_or_path,
        "' is not a folder (write one with qlake synth or qlake fetch)");
  }
  return s;
}

// One DayCounts -> the validation summary stored in the commit record and file footers.
nlohmann::json ValidationSummary(const DayCounts& c) {
  nlohmann::json rejected = nlohmann::json::object();
  for (std::size_t r = 0; r < kNumRejectReasons; ++r) {
    if (c.by_reason[r] > 0) {
      rejected[std::string(RejectReasonName(static_cast<RejectReason>(r)))] =
          c.by_reason[r];
    }
  }
  return {{"rejected", rejected}, {"flagged_big_move", c.flagged}};
}

using CloseMap = std::unordered_map<std::string, double>;

// Files of a partitioned day encoded in memory at once (see IngestDay).
constexpr std::size_t kEncodeBatchFiles = 512;

// Runs `write` on chunks on its own thread, one chunk in flight: parsing chunk k+1
// overlaps encoding and writing chunk k, and memory stays at two chunks. The first error
// of `write` is returned by every later Push and by Finish.
class ChunkPipeline {
 public:
  explicit ChunkPipeline(std::function<arrow::Status(const AggDay&)> write)
      : write_(std::move(write)), thread_([this] { Run(); }) {}
  ~ChunkPipeline() { (void)Finish(); }
  ChunkPipeline(const ChunkPipeline&) = delete;
  ChunkPipeline& operator=(const ChunkPipeline&) = delete;

  arrow::Status Push(AggDay&& chunk) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !slot_ || !status_.ok(); });
    if (!status_.ok()) return status_;
    slot_ = std::move(chunk);
    cv_.notify_all();
    return arrow::Status::OK();
  }

  /// Waits for the chunks pushed so far to be written. Idempotent.
  arrow::Status Finish() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    return status_;
  }

 private:
  void Run() {
    while (true) {
      std::optional<AggDay> chunk;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return slot_.has_value() || closing_; });
        if (!slot_) return;
        chunk = std::move(slot_);
        slot_.reset();
      }
      arrow::Status st = write_(*chunk);
      std::lock_guard lock(mu_);
      if (!st.ok() && status_.ok()) status_ = st;
      cv_.notify_all();
      if (!status_.ok()) return;
    }
  }

  std::function<arrow::Status(const AggDay&)> write_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<AggDay> slot_;
  bool closing_ = false;
  arrow::Status status_;
  std::thread thread_;  // last: starts after the members it uses
};

// Adds (ticker, close) of every row of a lake table to `out`.
arrow::Status CollectCloses(const arrow::Table& t, CloseMap* out) {
  ARROW_ASSIGN_OR_RAISE(auto batch, t.CombineChunksToBatch());
  auto tickers = batch->GetColumnByName("ticker");
  auto closes =
      std::dynamic_pointer_cast<arrow::FloatArray>(batch->GetColumnByName("close"));
  auto dict = std::dynamic_pointer_cast<arrow::DictionaryArray>(tickers);
  if (!dict || !closes) return arrow::Status::Invalid("lake table without ticker/close");
  auto values = std::static_pointer_cast<arrow::StringArray>(dict->dictionary());
  for (int64_t i = 0; i < batch->num_rows(); ++i) {
    (*out)[std::string(values->GetView(dict->GetValueIndex(i)))] = closes->Value(i);
  }
  return arrow::Status::OK();
}

// Day bars: the closes of the previous trading day, so a ticker's (only) bar can be
// checked for a > 50 % move. Taken from the source's previous file when it is there (the
// result then depends only on the source, whatever order days are ingested in), else
// from the lake's commit of that day, else none.
arrow::Result<std::shared_ptr<const CloseMap>> PreviousCloses(
    const catalog::DatasetSpec& spec, const catalog::Session& session, const Source& src,
    lake::Lake& lake) {
  auto prev_or = catalog::NyseCalendar::Get().PreviousTradingDay(session.date);
  if (!prev_or.ok()) return nullptr;  // before the calendar's range
  ARROW_ASSIGN_OR_RAISE(auto prev, catalog::NyseCalendar::Get().SessionOn(*prev_or));
  if (!prev) return nullptr;
  auto closes = std::make_shared<CloseMap>();
  const std::string path = src.root + "/" + catalog::KeyFor(spec, prev->date);
  auto info = src.fs->GetFileInfo(path);
  if (info.ok() && info->type() == arrow::fs::FileType::File) {
    ARROW_ASSIGN_OR_RAISE(auto raw, src.fs->OpenInputStream(*info));
    GzipStreamOptions gz_opts;
    gz_opts.source_name = path;
    gz_opts.input_buffer_size = src.read_bytes;
    ARROW_ASSIGN_OR_RAISE(auto gz, GzipInputStream::Make(raw, gz_opts));
    DayContext ctx;
    ctx.spec = &spec;
    ctx.session = *prev;
    ctx.source = path;
    auto day = ReadAggDay(gz, ctx, AggReaderOptions{});
    if (day.ok()) {
      ARROW_RETURN_NOT_OK(CollectCloses(*day->table, closes.get()));
      return closes;
    }
    spdlog::debug("previous day {} unreadable for the big-move check: {}", path,
                  day.status().message());
  }
  ARROW_ASSIGN_OR_RAISE(auto record, lake.GetCommit(spec.name, prev->date));
  if (!record) return nullptr;
  for (const auto& f : record->files) {
    ARROW_ASSIGN_OR_RAISE(auto file, lake.filesystem()->OpenInputFile(lake.PathOf(
                                         std::string(spec.name) + "/" + f.path)));
    ARROW_ASSIGN_OR_RAISE(auto reader,
                          parquet::arrow::OpenFile(file, arrow::default_memory_pool()));
    ARROW_ASSIGN_OR_RAISE(auto table, reader->ReadTable());
    ARROW_RETURN_NOT_OK(CollectCloses(*table, closes.get()));
  }
  return closes;
}

arrow::Status IngestDay(const IngestOptions& o, const catalog::DatasetSpec& spec,
                        const catalog::Session& session, const Source& src,
                        lake::Lake& lake, DayReport* report) {
  report->key = catalog::KeyFor(spec, session.date);
  const std::string path = src.root + "/" + report->key;
  auto info = src.fs->GetFileInfo(path);
  ARROW_RETURN_NOT_OK(info.status());
  if (info->type() != arrow::fs::FileType::File) {
    return arrow::Status::KeyError(
        spec.name, " ", FormatDate(session.date), ": no file at ", path,
        " (not fetched yet, or not published: run qlake fetch)");
  }
  report->source_bytes = info->size();
  DayContext ctx;
  ctx.spec = &spec;
  ctx.session = session;
  ctx.source = path;
  ctx.symbols = o.symbols;
  lake::SourceVersion version;
  version.key = report->key;
  version.size = info->size();
  auto mtime = info->mtime();
  if (mtime != arrow::fs::kNoTime) {
    version.last_modified = std::to_string(
        std::chrono::duration_cast<std::chrono::seconds>(mtime.time_since_epoch())
            .count());
  }
  if (o.skip_unchanged) {
    // The commit record names the source version it was made from; the same size and
    // LastModified (qlake fetch gives cached files the object's LastModified as mtime)
    // means the file was not republished since.
    ARROW_ASSIGN_OR_RAISE(auto record, lake.GetCommit(spec.name, session.date));
    if (record && record->source.size == version.size &&
        record->source.last_modified == version.last_modified &&
        !version.last_modified.empty()) {
      report->unchanged = true;
      report->counts.read = record->rows.read;
      report->counts.written = record->rows.written;
      report->counts.quarantined = record->rows.quarantined;
      report->counts.filtered = record->rows.filtered;
      return arrow::Status::OK();
    }
  }
  if (spec.granularity == catalog::Granularity::kDay) {
    ARROW_ASSIGN_OR_RAISE(ctx.previous_close, PreviousCloses(spec, session, src, lake));
  }
  auto open_source = [&]() -> arrow::Result<std::shared_ptr<GzipInputStream>> {
    ARROW_ASSIGN_OR_RAISE(auto raw, src.fs->OpenInputStream(*info));
    GzipStreamOptions gz_opts;
    gz_opts.source_name = path;
    gz_opts.input_buffer_size = src.read_bytes;
    return GzipInputStream::Make(raw, gz_opts);
  };
  // Footer metadata: everything here is a function of the input, so reruns are
  // byte-identical (no clocks, no paths of this machine).
  auto footer = [&](const DayCounts& c, const nlohmann::json& validation) {
    return std::vector<std::pair<std::string, std::string>>{
        {"qlake.version", QLAKE_VERSION},
        {"qlake.dataset", std::string(spec.name)},
        {"qlake.date", FormatDate(session.date)},
        {"qlake.source.key", version.key},
        {"qlake.source.size", std::to_string(version.size)},
        {"qlake.rows.read", std::to_string(c.read)},
        {"qlake.rows.written", std::to_string(c.written)},
        {"qlake.rows.quarantined", std::to_string(c.quarantined)},
        {"qlake.rows.filtered", std::to_string(c.filtered)},
        {"qlake.validation", validation.dump()},
    };
  };
  auto finish = [&](lake::DayTransaction& txn, const DayCounts& counts,
                    const nlohmann::json& validation,
                    std::map<std::string, int64_t> file_rows) -> arrow::Status {
    lake::CommitInfo commit;
    commit.source = version;
    commit.rows = {counts.read, counts.written, counts.quarantined, counts.filtered};
    commit.validation = validation;
    commit.file_rows = std::move(file_rows);
    ARROW_ASSIGN_OR_RAISE(auto record, txn.Commit(commit));
    report->files = static_cast<int64_t>(record.files.size());
    for (const auto& f : record.files) report->output_bytes += f.size;
    report->counts = counts;
    return arrow::Status::OK();
  };

  // Streaming: sorted chunks go straight into the day's single file, so memory is bounded
  // by the chunk size whatever the file size. Needs the daily layout (one file) and a
  // sorted source; an unsorted source is re-read whole (logged).
  if (o.reader.chunk_rows > 0 && o.layout == LayoutKind::kDaily) {
    ARROW_ASSIGN_OR_RAISE(auto gz, open_source());
    ARROW_ASSIGN_OR_RAISE(auto txn, lake.BeginDay(spec.name, session.date));
    const std::string rel = DayFilePath(session.date);
    ARROW_ASSIGN_OR_RAISE(auto out, txn->OpenFile(rel));
    ARROW_ASSIGN_OR_RAISE(auto data,
                          ParquetStreamWriter::Open(LakeSchema(spec), out, o.parquet));
    std::unique_ptr<ParquetStreamWriter> quarantine;
    bool unsorted = false;
    auto write_chunk = [&](const AggDay& c) -> arrow::Status {
      ARROW_RETURN_NOT_OK(data->Write(*c.table));
      if (c.quarantine->num_rows() > 0) {
        if (!quarantine) {
          ARROW_ASSIGN_OR_RAISE(auto qout, txn->OpenQuarantineFile());
          ARROW_ASSIGN_OR_RAISE(
              quarantine, ParquetStreamWriter::Open(QuarantineSchema(), qout, o.parquet));
        }
        ARROW_RETURN_NOT_OK(quarantine->Write(*c.quarantine));
      }
      return arrow::Status::OK();
    };
    // Chunks are encoded and written on a second thread while the next one is parsed.
    ChunkPipeline pipeline(write_chunk);
    AggReaderOptions ropts = o.reader;
    ropts.on_chunk = [&](AggDay&& c) -> arrow::Status {
      if (c.out_of_order) {
        unsorted = true;
        return arrow::Status::Cancelled("source is not sorted by (ticker, window_start)");
      }
      return pipeline.Push(std::move(c));
    };
    auto last = ReadAggDay(gz, ctx, ropts);
    if (last.ok() && last->out_of_order) unsorted = true;
    arrow::Status written = pipeline.Finish();
    if (!unsorted) {
      ARROW_RETURN_NOT_OK(last.status());
      ARROW_RETURN_NOT_OK(written);
      report->uncompressed_bytes = gz->stats().uncompressed_bytes;
      ARROW_RETURN_NOT_OK(gz->Close());
      ARROW_RETURN_NOT_OK(write_chunk(*last));
      nlohmann::json validation = ValidationSummary(last->counts);
      auto meta = footer(last->counts, validation);
      ARROW_RETURN_NOT_OK(data->Close(meta));
      if (quarantine) ARROW_RETURN_NOT_OK(quarantine->Close(meta));
      return finish(*txn, last->counts, validation, {{rel, data->rows_written()}});
    }
    ARROW_RETURN_NOT_OK(txn->Abort());
    ARROW_RETURN_NOT_OK(gz->Abort());
    spdlog::warn(
        "{}: rows are not sorted by (ticker, window_start); reading the whole day "
        "in memory instead of streaming it",
        path);
  }

  ARROW_ASSIGN_OR_RAISE(auto gz, open_source());
  AggReaderOptions whole = o.reader;
  whole.chunk_rows = 0;
  whole.on_chunk = nullptr;
  ARROW_ASSIGN_OR_RAISE(AggDay day, ReadAggDay(gz, ctx, whole));
  report->uncompressed_bytes = gz->stats().uncompressed_bytes;
  ARROW_RETURN_NOT_OK(gz->Close());

  ARROW_ASSIGN_OR_RAISE(auto files,
                        PartitionDay(spec, o.layout, session.date, day.table));
  nlohmann::json validation = ValidationSummary(day.counts);
  auto meta = footer(day.counts, validation);
  ARROW_ASSIGN_OR_RAISE(auto txn, lake.BeginDay(spec.name, session.date));
  std::map<std::string, int64_t> file_rows;
  if (files.size() == 1) {
    ARROW_ASSIGN_OR_RAISE(auto out, txn->OpenFile(files[0].relative_path));
    ARROW_RETURN_NOT_OK(WriteParquet(*files[0].table, out, o.parquet, meta));
    file_rows[files[0].relative_path] = files[0].table->num_rows();
  } else {
    // Partitioned layouts: thousands of small files a day. They are encoded into memory
    // on the CPU pool, a batch at a time (memory stays at one batch of encoded files),
    // and staged by this thread, which owns the transaction.
    ParquetOutOptions per_file = o.parquet;
    per_file.use_threads = false;
    const bool parallel = o.parquet.use_threads;
    for (std::size_t begin = 0; begin < files.size(); begin += kEncodeBatchFiles) {
      const std::size_t n = std::min(kEncodeBatchFiles, files.size() - begin);
      std::vector<std::shared_ptr<arrow::Buffer>> encoded(n);
      ARROW_RETURN_NOT_OK(arrow::internal::OptionalParallelFor(
          parallel, static_cast<int>(n), [&](int i) -> arrow::Status {
            ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
            ARROW_RETURN_NOT_OK(
                WriteParquet(*files[begin + i].table, sink, per_file, meta));
            ARROW_ASSIGN_OR_RAISE(encoded[i], sink->Finish());
            return arrow::Status::OK();
          }));
      for (std::size_t i = 0; i < n; ++i) {
        const OutputFile& f = files[begin + i];
        ARROW_ASSIGN_OR_RAISE(auto out, txn->OpenFile(f.relative_path));
        ARROW_RETURN_NOT_OK(out->Write(encoded[i]));
        ARROW_RETURN_NOT_OK(out->Close());
        file_rows[f.relative_path] = f.table->num_rows();
      }
    }
  }
  if (day.quarantine->num_rows() > 0) {
    ARROW_ASSIGN_OR_RAISE(auto out, txn->OpenQuarantineFile());
    ARROW_RETURN_NOT_OK(WriteParquet(*day.quarantine, out, o.parquet, meta));
  }
  return finish(*txn, day.counts, validation, std::move(file_rows));
}

}  // namespace

arrow::Status IngestOptions::Validate() const {
  ARROW_ASSIGN_OR_RAISE(auto spec, catalog::FindDataset(dataset));
  if (!spec->ingestible) {
    return arrow::Status::Invalid("dataset ", dataset,
                                  " cannot be ingested yet; ingestible: stocks_daily, "
                                  "stocks_minute, options_daily, options_minute");
  }
  if (from > to) {
    return arrow::Status::Invalid("--from ", FormatDate(from), " is after --to ",
                                  FormatDate(to));
  }
  if (source.empty()) return arrow::Status::Invalid("no source given (--source DIR|URI)");
  if (lake.empty()) return arrow::Status::Invalid("no lake given (--lake DIR|URI)");
  if (reader.chunk_rows != 0 && reader.chunk_rows < 10'000) {
    return arrow::Status::Invalid(
        "chunk rows must be 0 (whole day) or at least 10000, got ", reader.chunk_rows);
  }
  if (source_read_bytes < 4096 || source_read_bytes > (int64_t{1} << 30)) {
    return arrow::Status::Invalid("source read size must be 4 KiB..1 GiB, got ",
                                  source_read_bytes);
  }
  if (parallel_days < 1 || parallel_days > 256) {
    return arrow::Status::Invalid("parallel days must be 1..256, got ", parallel_days);
  }
  ARROW_RETURN_NOT_OK(parquet.Validate());
  return reader.Validate();
}

int64_t IngestReport::failed() const {
  int64_t n = 0;
  for (const auto& d : days) n += d.status.ok() ? 0 : 1;
  return n;
}

arrow::Status IngestReport::Summary() const {
  int64_t bad = failed();
  if (bad == 0) return arrow::Status::OK();
  if (bad == static_cast<int64_t>(days.size())) {
    for (const auto& d : days) {
      if (!d.status.ok()) {
        if (bad == 1) return d.status;
        return d.status.WithMessage("all ", bad,
                                    " days failed; first: ", d.status.message());
      }
    }
  }
  return arrow::Status::Cancelled(
      bad, " of ", days.size(), " ", dataset,
      " days failed; the others are committed (see the report)");
}

arrow::Result<IngestReport> Ingest(const IngestOptions& o, ProgressReporter* progress) {
  ARROW_RETURN_NOT_OK(o.Validate());
  ARROW_ASSIGN_OR_RAISE(const catalog::DatasetSpec* spec,
                        catalog::FindDataset(o.dataset));
  ARROW_ASSIGN_OR_RAISE(auto sessions,
                        catalog::NyseCalendar::Get().Sessions(o.from, o.to));
  ARROW_ASSIGN_OR_RAISE(Source src, OpenSource(o));
  lake::LakeOptions lake_opts;
  lake_opts.fsync = o.fsync;
  std::shared_ptr<lake::Lake> lake;
  if (o.lake_fs) {
    ARROW_ASSIGN_OR_RAISE(lake, lake::Lake::Make(o.lake_fs, o.lake, lake_opts));
  } else {
    ARROW_ASSIGN_OR_RAISE(lake, lake::Lake::Open(AbsoluteUnlessUri(o.lake), lake_opts));
  }
  IngestOptions opts = o;
  // Column-parallel encoding only when one day is written at a time.
  opts.parquet.use_threads = o.parquet.use_threads && o.parallel_days == 1;

  IngestReport report;
  report.dataset = o.dataset;
  {
    std::size_t si = 0;
    for (Date d = o.from; d <= o.to; d += date::days{1}) {
      if (si < sessions.size() && sessions[si].date == d) {
        ++si;
      } else {
        report.skipped.push_back(d);
      }
    }
  }
  report.days.resize(sessions.size());
  if (progress) progress->SetTotals(sessions.size(), 0);

  auto t0 = std::chrono::steady_clock::now();
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i = next++; i < sessions.size(); i = next++) {
      DayReport& r = report.days[i];
      r.day = sessions[i].date;
      auto start = std::chrono::steady_clock::now();
      r.status = IngestDay(opts, *spec, sessions[i], src, *lake, &r);
      r.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (r.status.ok()) {
        spdlog::debug("ingest {} {}: {} read, {} written, {} quarantined, {:.2f}s",
                      o.dataset, FormatDate(r.day), r.counts.read, r.counts.written,
                      r.counts.quarantined, r.seconds);
      } else {
        spdlog::error("ingest {} {} failed: {}", o.dataset, FormatDate(r.day),
                      r.status.message());
      }
      if (progress) progress->Add(1, static_cast<uint64_t>(r.source_bytes));
    }
  };
  std::size_t nthreads =
      std::min<std::size_t>(static_cast<std::size_t>(o.parallel_days), sessions.size());
  std::vector<std::thread> threads;
  for (std::size_t t = 1; t < nthreads; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (progress) progress->Finish();
  return report;
}

}  // namespace qlake::ingest

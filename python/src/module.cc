// The native part of the Python module `qlake` (python/qlake/__init__.py wraps it).
//
// Results cross into Python through the Arrow C stream interface: the C++ table is
// exported with arrow::ExportRecordBatchReader into an ArrowArrayStream held by a
// PyCapsule named "arrow_array_stream", which pyarrow imports without copying a buffer.
// The query runs with the GIL released; the exported stream never calls into Python.
//
// Errors: arrow::Status becomes ValueError (Invalid, KeyError, TypeError, IndexError),
// OSError (IOError), MemoryError (OutOfMemory) or RuntimeError, with the message the CLI
// prints after "qlake: error: ".

#include <Python.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <arrow/array.h>
#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>
#include <arrow/filesystem/s3fs.h>
#include <arrow/table.h>
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "qlake/core/config.h"
#include "qlake/core/memory_monitor.h"
#include "qlake/core/status.h"
#include "qlake/core/strings.h"
#include "qlake/core/system_profile.h"
#include "qlake/core/version.h"
#include "qlake/ingest/ingest.h"
#include "qlake/pipeline/options.h"
#include "qlake/pipeline/pipeline.h"
#include "qlake/qlib/export.h"
#include "qlake/query/engine.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

[[noreturn]] void Raise(const arrow::Status& st) {
  std::string msg = qlake::FormatCliError(st);
  constexpr std::string_view kPrefix = "qlake: error: ";
  if (msg.rfind(kPrefix, 0) == 0) msg = msg.substr(kPrefix.size());
  PyObject* type = PyExc_RuntimeError;
  if (st.IsInvalid() || st.IsKeyError() || st.IsTypeError() || st.IsIndexError()) {
    type = PyExc_ValueError;
  } else if (st.IsIOError()) {
    type = PyExc_OSError;
  } else if (st.IsOutOfMemory()) {
    type = PyExc_MemoryError;
  }
  PyErr_SetString(type, msg.c_str());
  throw nb::python_error();
}

template <typename T>
T Check(arrow::Result<T> r) {
  if (!r.ok()) Raise(r.status());
  return std::move(r).ValueUnsafe();
}

void CapsuleRelease(PyObject* capsule) {
  auto* stream =
      static_cast<ArrowArrayStream*>(PyCapsule_GetPointer(capsule, "arrow_array_stream"));
  if (stream == nullptr) {
    PyErr_Clear();
    return;
  }
  if (stream->release != nullptr) stream->release(stream);
  delete stream;
}

// An "arrow_array_stream" capsule over the table's batches (no copy).
nb::object ExportTable(const std::shared_ptr<arrow::Table>& table) {
  auto reader = std::make_shared<arrow::TableBatchReader>(table);
  auto* stream = new ArrowArrayStream;
  auto st = arrow::ExportRecordBatchReader(reader, stream);
  if (!st.ok()) {
    delete stream;
    Raise(st);
  }
  PyObject* cap = PyCapsule_New(stream, "arrow_array_stream", CapsuleRelease);
  if (cap == nullptr) {
    stream->release(stream);
    delete stream;
    throw nb::python_error();
  }
  return nb::steal(cap);
}

// Process-wide state: one decoded-chunk cache for every Lake of the process, sized by the
// configuration (query.cache_bytes: file, environment, machine profile), and a memory
// monitor (memory.limit, memory.warn_fraction, memory.act_fraction,
// memory.sample_interval_ms) that shrinks it under pressure: half its budget at the warn
// tier, empty and a quarter at critical (ColumnChunkCache::OnMemoryTier). Made on first
// use; the monitor's thread is stopped by _finalize (atexit), never by a static
// destructor. Leaked on purpose: Python may still hold tables whose buffers the cache
// shares.
struct Process {
  qlake::Config config = qlake::Config::Defaults();  // S3 settings of the lakes opened
  std::shared_ptr<qlake::query::ColumnChunkCache> cache;
  std::unique_ptr<qlake::MemoryMonitor> monitor;
  qlake::MemoryMonitor::Registration registration;
  uint64_t budget = 0;
  std::string monitor_error;  // why there is no monitor, if there is none
};

std::mutex g_process_mu;
Process* g_process = nullptr;

Process& GetProcess() {
  std::lock_guard<std::mutex> lock(g_process_mu);
  if (g_process != nullptr) return *g_process;
  auto* p = new Process;
  auto profile = qlake::ProbeSystem();
  qlake::Config cfg = qlake::Config::Defaults();
  if (profile.ok()) {
    qlake::ConfigLoadOptions load;
    load.profile = *profile;
    auto loaded = qlake::Config::Load(load);
    if (loaded.ok()) {
      cfg = std::move(*loaded);
    } else {
      p->monitor_error = loaded.status().ToString();
    }
  } else {
    p->monitor_error = profile.status().ToString();
  }
  p->config = cfg;
  p->cache = std::make_shared<qlake::query::ColumnChunkCache>(
      cfg.GetInt("query.cache_bytes").ValueOr(int64_t{512} << 20));
  if (profile.ok() && p->monitor_error.empty()) {
    auto run = [&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto mo,
                            qlake::MemoryMonitorOptions::FromConfig(cfg, *profile));
      p->budget = mo.budget_bytes;
      ARROW_ASSIGN_OR_RAISE(p->monitor, qlake::MemoryMonitor::Make(std::move(mo)));
      auto cache = p->cache;
      p->registration = p->monitor->Register(
          [cache](const qlake::MemoryEvent& e) { cache->OnMemoryTier(e.tier); });
      return p->monitor->Start();
    };
    if (auto st = run(); !st.ok()) {
      p->monitor_error = st.ToString();
      p->registration.Reset();
      p->monitor.reset();
    }
  }
  g_process = p;
  return *p;
}

std::shared_ptr<qlake::query::ColumnChunkCache> SharedCache() {
  return GetProcess().cache;
}

nb::dict MemoryStats() {
  Process& p = GetProcess();
  nb::dict d;
  d["monitor"] = p.monitor != nullptr;
  d["budget"] = p.budget;
  d["error"] = p.monitor_error;
  if (p.monitor) {
    auto s = p.monitor->stats();
    d["tier"] = std::string(qlake::MemoryTierName(s.tier));
    d["rss"] = s.rss;
    d["peak_rss"] = s.peak_rss;
    d["pressure"] = s.pressure;
    d["escalations"] = s.escalations;
    d["samples"] = s.samples;
  }
  return d;
}

void StopMonitor() {
  std::lock_guard<std::mutex> lock(g_process_mu);
  if (g_process == nullptr) return;
  g_process->registration.Reset();
  g_process->monitor.reset();  // joins the sampling thread
  g_process->monitor_error = "stopped";
}

nb::dict StatsDict(const qlake::query::QueryStats& s) {
  nb::dict d;
  d["days"] = s.days;
  d["files"] = s.files;
  d["files_pruned"] = s.files_pruned;
  d["row_groups"] = s.row_groups;
  d["row_groups_pruned"] = s.row_groups_pruned;
  d["rows_scanned"] = s.rows_scanned;
  d["rows"] = s.rows;
  d["bytes_read"] = s.bytes_read;
  d["cache_hits"] = s.cache_hits;
  d["cache_misses"] = s.cache_misses;
  d["seconds"] = s.seconds;
  return d;
}

class PyLake {
 public:
  explicit PyLake(const std::string& uri) : uri_(uri) {
    Process& p = GetProcess();
    qlake::query::EngineOptions eo;
    eo.cache = p.cache;
    arrow::Result<std::shared_ptr<qlake::query::Engine>> engine;
    {
      nb::gil_scoped_release release;
      engine = qlake::query::Engine::Open(uri, p.config, eo);
    }
    engine_ = Check(std::move(engine));
  }

  // Returns (capsule, stats, buffer addresses of the first batch's columns' data
  // buffers).
  nb::tuple Read(const std::string& dataset, const std::vector<std::string>& symbols,
                 const std::string& start, const std::string& end,
                 const std::vector<std::string>& columns, const std::string& where,
                 const std::vector<std::string>& sessions) {
    qlake::query::QueryOptions q;
    q.dataset = dataset;
    q.symbols = symbols;
    q.from = Check(qlake::ParseDate(start));
    q.to = Check(qlake::ParseDate(end));
    q.columns = columns;
    q.where = where;
    q.sessions = sessions;
    arrow::Result<qlake::query::QueryResult> r;
    {
      nb::gil_scoped_release release;
      r = engine_->Query(q);
    }
    auto result = Check(std::move(r));
    nb::list addresses;
    if (result.table->num_rows() > 0) {
      for (const auto& col : result.table->columns()) {
        const auto& data = col->chunk(0)->data();
        auto buf = data->buffers.size() > 1 ? data->buffers[1] : nullptr;
        addresses.append(buf ? reinterpret_cast<uintptr_t>(buf->data()) : 0);
      }
    }
    return nb::make_tuple(ExportTable(result.table), StatsDict(result.stats), addresses);
  }

  std::vector<std::string> Datasets() { return Check(engine_->lake()->ListDatasets()); }

  const std::string& uri() const { return uri_; }

 private:
  std::string uri_;
  std::shared_ptr<qlake::query::Engine> engine_;
};

nb::dict CacheStats() {
  auto s = SharedCache()->stats();
  nb::dict d;
  d["hits"] = s.hits;
  d["misses"] = s.misses;
  d["evictions"] = s.evictions;
  d["entries"] = s.entries;
  d["bytes"] = s.bytes;
  d["capacity"] = s.capacity;
  d["hit_rate"] = s.hit_rate();
  return d;
}

nb::dict Ingest(const std::string& dataset, const std::string& start,
                const std::string& end, const std::string& source,
                const std::string& lake, const std::string& layout,
                const std::vector<std::string>& symbols, const std::string& mode,
                int64_t parallel, bool reference_reader) {
  qlake::ingest::IngestReport report;
  arrow::Status summary;
  {
    nb::gil_scoped_release release;
    auto run = [&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto profile, qlake::ProbeSystem());
      qlake::ConfigLoadOptions load;
      load.profile = profile;
      ARROW_ASSIGN_OR_RAISE(auto cfg, qlake::Config::Load(load));
      using qlake::ConfigSource;
      if (!mode.empty()) {
        ARROW_RETURN_NOT_OK(cfg.Set("system.mode", mode, ConfigSource::kFlag, "mode="));
      }
      ARROW_RETURN_NOT_OK(cfg.ApplyModeDefaults(profile.usable_cores));
      if (parallel > 0) {
        ARROW_RETURN_NOT_OK(cfg.Set("ingest.parallel_files", std::to_string(parallel),
                                    ConfigSource::kFlag, "parallel="));
      }
      if (!source.empty()) {
        ARROW_RETURN_NOT_OK(
            cfg.Set("source.root", source, ConfigSource::kFlag, "source="));
      }
      if (!lake.empty()) {
        ARROW_RETURN_NOT_OK(cfg.Set("lake.root", lake, ConfigSource::kFlag, "lake="));
      }
      qlake::ingest::IngestOptions o;
      o.dataset = dataset;
      ARROW_ASSIGN_OR_RAISE(o.from, qlake::ParseDate(start));
      ARROW_ASSIGN_OR_RAISE(o.to, qlake::ParseDate(end));
      ARROW_ASSIGN_OR_RAISE(o.source, cfg.GetString("source.root"));
      if (o.source.empty()) {
        return arrow::Status::Invalid("no source: pass source= or set source.root");
      }
      ARROW_ASSIGN_OR_RAISE(o.lake, cfg.GetString("lake.root"));
      if (o.lake.empty()) {
        return arrow::Status::Invalid("no lake: pass lake= or set lake.root");
      }
      ARROW_ASSIGN_OR_RAISE(o.layout, qlake::ingest::ParseLayout(layout));
      o.symbols = symbols;
      ARROW_ASSIGN_OR_RAISE(o.parquet, qlake::ingest::ParquetOutOptionsFromConfig(cfg));
      ARROW_ASSIGN_OR_RAISE(auto par, cfg.GetInt("ingest.parallel_files"));
      o.parallel_days = static_cast<int>(par);
      o.reader.use_arrow_csv = reference_reader;
      ARROW_ASSIGN_OR_RAISE(o.reader.chunk_rows, cfg.GetInt("ingest.chunk_rows"));
      ARROW_ASSIGN_OR_RAISE(report, qlake::ingest::Ingest(o));
      return arrow::Status::OK();
    };
    summary = run();
  }
  if (!summary.ok()) Raise(summary);
  nb::list days;
  for (const auto& d : report.days) {
    nb::dict day;
    day["date"] = qlake::FormatDate(d.day);
    day["key"] = d.key;
    day["ok"] = d.status.ok();
    day["error"] = d.status.ok() ? std::string() : d.status.message();
    day["read"] = d.counts.read;
    day["written"] = d.counts.written;
    day["quarantined"] = d.counts.quarantined;
    day["filtered"] = d.counts.filtered;
    day["flagged"] = d.counts.flagged;
    day["source_bytes"] = d.source_bytes;
    day["output_bytes"] = d.output_bytes;
    day["files"] = d.files;
    day["seconds"] = d.seconds;
    days.append(day);
  }
  nb::list skipped;
  for (auto d : report.skipped) skipped.append(qlake::FormatDate(d));
  nb::dict out;
  out["dataset"] = report.dataset;
  out["days"] = days;
  out["skipped"] = skipped;
  out["failed"] = report.failed();
  out["seconds"] = report.seconds;
  auto st = report.Summary();
  out["ok"] = st.ok();
  out["error"] = st.ok() ? std::string() : st.message();
  return out;
}

// Loads the configuration as the CLI does (file, environment, machine profile), with
// `lake` (if not empty) set as a flag.
arrow::Result<std::pair<qlake::Config, qlake::SystemProfile>> LoadConfig(
    const std::string& lake) {
  ARROW_ASSIGN_OR_RAISE(auto profile, qlake::ProbeSystem());
  qlake::ConfigLoadOptions load;
  load.profile = profile;
  ARROW_ASSIGN_OR_RAISE(auto cfg, qlake::Config::Load(load));
  ARROW_RETURN_NOT_OK(cfg.ApplyModeDefaults(profile.usable_cores));
  if (!lake.empty()) {
    ARROW_RETURN_NOT_OK(cfg.Set("lake.root", lake, qlake::ConfigSource::kFlag, "lake="));
  }
  return std::make_pair(std::move(cfg), std::move(profile));
}

nb::dict QlibExport(const std::string& out, const std::string& lake,
                    const std::string& freq, const std::string& start,
                    const std::string& end, const std::vector<std::string>& symbols,
                    const std::string& market, const std::string& session,
                    const std::vector<std::string>& fields, bool rebuild,
                    int64_t batch_mb, bool fsync, bool recommit_check) {
  qlake::qlib::ExportReport r;
  arrow::Status st;
  {
    nb::gil_scoped_release release;
    auto run = [&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto loaded, LoadConfig(lake));
      qlake::qlib::ExportOptions o;
      ARROW_ASSIGN_OR_RAISE(o.lake, loaded.first.GetString("lake.root"));
      if (out.empty()) return arrow::Status::Invalid("qlib export: no out folder");
      o.out = out;
      ARROW_ASSIGN_OR_RAISE(o.freq, qlake::qlib::ParseFreq(freq));
      if (!start.empty()) {
        ARROW_ASSIGN_OR_RAISE(o.from, qlake::ParseDate(start));
      }
      if (!end.empty()) {
        ARROW_ASSIGN_OR_RAISE(o.to, qlake::ParseDate(end));
      }
      o.symbols = symbols;
      o.market = market;
      ARROW_ASSIGN_OR_RAISE(o.session, qlake::qlib::ParseSessionMode(session));
      o.fields = fields;
      o.rebuild = rebuild;
      if (batch_mb < 1 || batch_mb > 65536) {
        return arrow::Status::Invalid("batch_mb ", batch_mb, " not in [1, 65536]");
      }
      o.batch_bytes = batch_mb << 20;
      o.fsync = fsync;
      o.check_recommits = recommit_check;
      ARROW_ASSIGN_OR_RAISE(r, qlake::qlib::Export(o));
      return arrow::Status::OK();
    };
    st = run();
  }
  if (!st.ok()) Raise(st);
  nb::dict d;
  d["out"] = r.out;
  d["freq"] = r.freq;
  d["rebuilt"] = r.rebuilt;
  d["days_appended"] = r.days_appended;
  d["days_rewritten"] = r.days_rewritten;
  d["days_recommitted"] = r.days_recommitted;
  nb::list recommitted;
  for (const auto& day : r.recommitted_days) recommitted.append(day);
  d["recommitted_days"] = recommitted;
  d["symbols"] = r.symbols;
  d["symbols_touched"] = r.symbols_touched;
  d["bars"] = r.bars;
  d["bytes_written"] = r.bytes_written;
  d["calendar_rows"] = r.calendar_rows;
  d["first_day"] = r.first_day;
  d["last_day"] = r.last_day;
  d["recovered"] = r.recovered;
  d["seconds"] = r.seconds;
  return d;
}

// Returns (report as JSON text, status message or "" when the run succeeded); raises for
// errors before the run (bad options, lock held) and, with `check`, for a failed run.
nb::tuple Sync(const std::string& project, const std::string& source,
               const std::string& lake, const std::string& cache,
               const std::string& datasets, const std::vector<std::string>& qlib,
               const std::string& metrics_file, int jobs, const std::string& now,
               bool check) {
  std::string json;
  arrow::Status st, run_status;
  {
    nb::gil_scoped_release release;
    auto run = [&]() -> arrow::Status {
      ARROW_ASSIGN_OR_RAISE(auto loaded, LoadConfig(""));
      qlake::pipeline::PipelineArgs args;
      args.project = project;
      args.source = source;
      args.lake = lake;
      args.cache = cache;
      args.datasets = datasets;
      args.metrics_file = metrics_file;
      args.now = now;
      args.jobs = jobs;
      args.qlib = qlib;
      ARROW_ASSIGN_OR_RAISE(auto o, qlake::pipeline::MakePipelineOptions(
                                        args, loaded.first, loaded.second));
      std::vector<std::string> only;
      if (!o.project.file.empty()) only = qlake::SplitCommaList(datasets);
      ARROW_ASSIGN_OR_RAISE(auto report, qlake::pipeline::Sync(o, only));
      json = report.ToJson().dump();
      run_status = report.ToStatus();
      return arrow::Status::OK();
    };
    st = run();
  }
  if (!st.ok()) Raise(st);
  if (check && !run_status.ok()) Raise(run_status);
  std::string error;
  if (!run_status.ok()) {
    error = qlake::FormatCliError(run_status);
    constexpr std::string_view kPrefix = "qlake: error: ";
    if (error.rfind(kPrefix, 0) == 0) error = error.substr(kPrefix.size());
  }
  return nb::make_tuple(json, error);
}

}  // namespace

NB_MODULE(_qlake, m) {
  m.doc() = "Native part of qlake (see the qlake package).";
  m.attr("__version__") = QLAKE_VERSION;
  if (auto st = qlake::query::InitializeQueryEngine(); !st.ok()) Raise(st);

  nb::class_<PyLake>(m, "Lake")
      .def(nb::init<const std::string&>(), "uri"_a)
      .def_prop_ro("uri", &PyLake::uri)
      .def("read", &PyLake::Read, "dataset"_a, "symbols"_a, "start"_a, "end"_a,
           "columns"_a, "where"_a, "sessions"_a)
      .def("datasets", &PyLake::Datasets);
  m.def("cache_stats", &CacheStats);
  m.def(
      "set_cache_bytes", [](int64_t n) { SharedCache()->SetCapacity(n); }, "n"_a);
  m.def("clear_cache", []() { SharedCache()->Clear(); });
  m.def("reset_cache_counters", []() { SharedCache()->ResetCounters(); });
  m.def("ingest", &Ingest, "dataset"_a, "start"_a, "end"_a, "source"_a, "lake"_a,
        "layout"_a, "symbols"_a, "mode"_a, "parallel"_a, "reference_reader"_a);
  // S3 must be finalized before the interpreter unloads the module (never from a C++
  // static destructor): the package registers this with atexit.
  m.def("memory_stats", &MemoryStats);
  m.def("qlib_export", &QlibExport, "out"_a, "lake"_a, "freq"_a, "start"_a, "end"_a,
        "symbols"_a, "market"_a, "session"_a, "fields"_a, "rebuild"_a, "batch_mb"_a,
        "fsync"_a, "recommit_check"_a);
  m.def("sync", &Sync, "project"_a, "source"_a, "lake"_a, "cache"_a, "datasets"_a,
        "qlib"_a, "metrics_file"_a, "jobs"_a, "now"_a, "check"_a);
  m.def("_finalize", []() {
    StopMonitor();
    auto st = arrow::fs::EnsureS3Finalized();
    (void)st;
  });
}

#include "qlake/pipeline/pipeline.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <arrow/filesystem/filesystem.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "qlake/catalog/nyse_calendar.h"
#include "qlake/core/memory_monitor.h"
#include "qlake/lake/fs_util.h"
#include "qlake/lake/lake.h"
#include "qlake/pipeline/alerts.h"
#include "qlake/pipeline/lock.h"
#include "qlake/pipeline/stage.h"

namespace qlake::pipeline {

namespace {

constexpr std::string_view kRunsDir = "_qlake/runs";
constexpr std::string_view kStatePath = "_qlake/pipeline/state.json";

std::string AbsoluteUnlessUri(const std::string& p) {
  if (p.find("://") != std::string::npos) return p;
  return std::filesystem::absolute(p).lexically_normal().string();
}

int64_t NowUnix(const PipelineOptions& o) {
  if (o.now_unix) return *o.now_unix;
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t PeakRss() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return std::stoull(line.substr(6)) * 1024;
    }
  }
  return 0;
}

// Expected days of the dataset's calendar in [from, to].
std::vector<Date> ExpectedDays(std::string_view dataset, Date from, Date to) {
  std::vector<Date> out;
  auto cal = lake::CalendarForDataset(dataset);
  Date prev = from - date::days{1};
  for (;;) {
    auto next = lake::NextExpectedDay(cal, prev);
    if (!next.ok() || *next > to) break;
    out.push_back(*next);
    prev = *next;
  }
  return out;
}

Date UtcDateOf(int64_t unix_s) {
  return Date{
      date::floor<date::days>(std::chrono::sys_seconds{std::chrono::seconds{unix_s}})};
}

// Expected days in [start, today] past their publish deadline that the source does not
// list and the lake does not have.
std::vector<Date> MissingDays(std::string_view dataset, Date start,
                              const std::map<Date, SourceObject>* listed,
                              const std::set<Date>& committed, int64_t now,
                              int deadline_minute) {
  std::vector<Date> out;
  for (Date d : ExpectedDays(dataset, start, UtcDateOf(now))) {
    if (PublishDeadline(d, deadline_minute) > now) break;
    if (committed.count(d)) continue;
    if (listed && listed->count(d)) continue;
    out.push_back(d);
  }
  return out;
}

std::optional<Date> ConfiguredStart(const Project& p, const std::string& dataset) {
  for (const auto& d : p.datasets) {
    if (d.name == dataset && d.start) return d.start;
  }
  return p.start;
}

struct Task {
  DayTask task;
  std::size_t dataset_index = 0;
};

// The source's file system: the one the caller opened with the config (S3), else
// Arrow's factory on the project's source.
arrow::Result<std::shared_ptr<arrow::fs::FileSystem>> OpenSource(const PipelineOptions& o,
                                                                 std::string* root) {
  if (o.source_fs) {
    *root = o.source_root;
    return o.source_fs;
  }
  auto fs = arrow::fs::FileSystemFromUriOrPath(AbsoluteUnlessUri(o.project.source), root);
  if (!fs.ok()) {
    return arrow::Status::Invalid(
        "source '", o.project.source,
        "' is neither a folder nor a file system URI: ", fs.status().message());
  }
  return *fs;
}

class Runner {
 public:
  Runner(const PipelineOptions& o, std::string command) : o_(o) {
    report_.run_id = MakeRunId();
    report_.command = std::move(command);
    report_.started_at = lake::UtcNowIso8601();
    report_.pid = getpid();
    report_.lake = o.project.lake;
    report_.source = o.project.source;
    report_.memory_budget_bytes = o.memory_budget;
    t0_ = std::chrono::steady_clock::now();
  }

  RunReport& report() { return report_; }
  lake::Lake& lake() { return *lake_; }
  const StageContext& context() const { return ctx_; }

  // Lock, open the lake, recover (exclusive runs), start the monitor, write "running".
  arrow::Status Start(bool shard, const std::string& shard_suffix) {
    auto me = CurrentProcess(report_.command);
    report_.host = me.host;
    const std::string lake_uri = AbsoluteUnlessUri(o_.project.lake);
    if (shard) {
      ARROW_ASSIGN_OR_RAISE(
          lock_, LakeLock::Acquire(LockPathFor(lake_uri), LockMode::kShared, me));
      ARROW_ASSIGN_OR_RAISE(shard_lock_,
                            LakeLock::Acquire(LockPathFor(lake_uri, shard_suffix),
                                              LockMode::kExclusive, me));
      if (shard_lock_->took_over())
        report_.lock_taken_over = shard_lock_->took_over()->Describe();
    } else {
      ARROW_ASSIGN_OR_RAISE(
          lock_, LakeLock::Acquire(LockPathFor(lake_uri), LockMode::kExclusive, me));
      if (lock_->took_over()) report_.lock_taken_over = lock_->took_over()->Describe();
    }
    lake::LakeOptions lo;
    lo.fsync = o_.ingest.fsync;
    ARROW_ASSIGN_OR_RAISE(lake_, lake::Lake::Open(lake_uri, lo));
    ctx_.source = o_.project.source;
    ARROW_ASSIGN_OR_RAISE(ctx_.source_fs, OpenSource(o_, &ctx_.source_root));
    ctx_.cache = o_.project.cache;
    ctx_.fetch = o_.fetch;
    if (!ctx_.cache.empty()) {
      // Held for the whole run: the days fetch into it concurrently through one
      // manifest, and no `qlake fetch` (or other run) writes the cache meanwhile.
      auto m = fetch::Manifest::Open(ctx_.cache);
      if (!m.ok()) {
        return m.status().WithMessage(
            "cannot use the cache ", ctx_.cache, ": ", m.status().message(),
            m.status().IsAlreadyExists()
                ? " (each sync, backfill shard or qlake fetch running at the same time "
                  "needs its own cache folder)"
                : "");
      }
      ctx_.manifest = std::shared_ptr<fetch::Manifest>(std::move(*m));
    }
    ctx_.lake_uri = lake_uri;
    ctx_.lake = lake_;
    ctx_.ingest = o_.ingest;
    ctx_.features = o_.features;
    ctx_.features.fsync = o_.ingest.fsync;
    ctx_.recheck_days = o_.project.recheck_days;
    ctx_.qlib = o_.project.qlib;
    stages_ = BuildStages(o_.project);
    for (const auto& s : stages_.stages) report_.stages.emplace_back(s->name());
    report_.stages_missing = stages_.missing;
    for (const auto& m : stages_.missing) report_.warnings.push_back(m);

    if (!shard) {
      // One writer holds the lake: finish or undo every interrupted commit, and mark
      // reports of runs that died as interrupted.
      ARROW_ASSIGN_OR_RAISE(auto rec, lake_->RecoverAll());
      report_.recovered_forward = rec.Count(lake::RecoveryAction::Kind::kRolledForward);
      report_.recovered_back = rec.Count(lake::RecoveryAction::Kind::kRolledBack);
      report_.recovered_dropped = rec.Count(lake::RecoveryAction::Kind::kDropped);
      report_.temp_files_removed = rec.temp_files_removed;
      for (const auto& a : rec.actions) {
        if (a.kind == lake::RecoveryAction::Kind::kDropped) {
          report_.warnings.push_back(fmt::format("recovery dropped {} {}: {}", a.dataset,
                                                 FormatDate(a.day), a.detail));
        }
      }
      if (!rec.empty()) {
        spdlog::warn(
            "recovered interrupted commits: {} rolled forward, {} rolled back, "
            "{} dropped, {} temp files removed",
            report_.recovered_forward, report_.recovered_back, report_.recovered_dropped,
            report_.temp_files_removed);
      }
      MarkInterruptedRuns();
    }
    if (o_.memory_budget > 0) {
      MemoryMonitorOptions mo;
      mo.budget_bytes = o_.memory_budget;
      mo.warn_fraction = o_.memory_warn_fraction;
      mo.act_fraction = o_.memory_act_fraction;
      auto m = MemoryMonitor::Make(std::move(mo));
      if (m.ok()) {
        monitor_ = std::move(*m);
        reg_ = monitor_->Register([this](const MemoryEvent& e) {
          int t = static_cast<int>(e.tier);
          int cur = max_tier_.load();
          while (t > cur && !max_tier_.compare_exchange_weak(cur, t)) {
          }
        });
        if (auto st = monitor_->Start(); !st.ok()) {
          report_.warnings.push_back("memory monitor not started: " + st.ToString());
        }
      } else {
        report_.warnings.push_back("memory monitor not started: " +
                                   m.status().ToString());
      }
    }
    WriteReport(false);
    return arrow::Status::OK();
  }

  // Runs `body`; an error ends the run as failed (recorded, alerted) instead of escaping.
  void Guarded(const std::function<arrow::Status()>& body) {
    auto st = body();
    if (!st.ok()) {
      report_.error = st.ToString();
      spdlog::error("{} failed: {}", report_.command, st.ToString());
    }
  }

  DatasetRun& AddDataset(const std::string& name) {
    DatasetRun d;
    d.dataset = name;
    auto w = lake_->GetWatermark(name);
    if (w.ok()) d.watermark_before = w->last_contiguous;
    report_.datasets.push_back(std::move(d));
    return report_.datasets.back();
  }

  arrow::Result<std::set<Date>> Committed(const std::string& dataset) {
    ARROW_ASSIGN_OR_RAISE(auto days, lake_->ListCommittedDays(dataset));
    return std::set<Date>(days.begin(), days.end());
  }

  // Runs the day-scoped stages over `tasks` on o_.jobs workers.
  void RunDays(const std::vector<Task>& tasks) {
    std::atomic<std::size_t> next{0};
    std::atomic<int> active{0};
    auto worker = [&](int id) {
      for (;;) {
        // Under memory pressure, only worker 0 keeps taking days.
        while (id > 0 && monitor_ && monitor_->tier() != MemoryTier::kNormal &&
               next.load() < tasks.size()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        std::size_t i = next++;
        if (i >= tasks.size()) return;
        ++active;
        const Task& t = tasks[i];
        DayRun day;
        day.day = t.task.day;
        day.reason = t.task.reason;
        auto d0 = std::chrono::steady_clock::now();
        for (const auto& stage : stages_.stages) {
          if (stage->scope() != Stage::Scope::kDay) continue;
          StageRun sr;
          sr.stage = std::string(stage->name());
          auto s0 = std::chrono::steady_clock::now();
          auto st = stage->RunDay(ctx_, t.task, &sr);
          sr.seconds = Seconds(s0);
          if (!st.ok()) {
            sr.status = "failed";
            sr.error = st.ToString();
            day.status = "failed";
            day.error = sr.stage + ": " + st.ToString();
          }
          day.stages.push_back(std::move(sr));
          if (!st.ok()) break;
        }
        day.seconds = Seconds(d0);
        --active;
        {
          std::lock_guard<std::mutex> lock(mu_);
          auto& ds = report_.datasets[t.dataset_index];
          ds.days.push_back(day);
          if (o_.on_day) o_.on_day(ds.dataset, day);
          WriteReport(false);
        }
      }
    };
    int n = std::max(1, std::min<int>(o_.jobs, static_cast<int>(tasks.size())));
    std::vector<std::thread> threads;
    for (int i = 1; i < n; ++i) threads.emplace_back(worker, i);
    worker(0);
    for (auto& th : threads) th.join();
    for (auto& ds : report_.datasets) {
      std::sort(ds.days.begin(), ds.days.end(),
                [](const DayRun& a, const DayRun& b) { return a.day < b.day; });
    }
  }

  // Dataset-scoped stages (features, qlib) for the days each dataset changed.
  void RunDatasetStages() {
    std::map<std::string, std::vector<Date>> changed;
    for (const auto& ds : report_.datasets) {
      auto& days = changed[ds.dataset];
      for (const auto& d : ds.days) {
        if (d.status == "ok") days.push_back(d.day);
      }
    }
    if (monitor_ && (max_tier_.load() > 0 || monitor_->tier() != MemoryTier::kNormal) &&
        ctx_.features.parallel_days > 1) {
      // The days already pushed memory past the warn line: one feature chunk at a time.
      ctx_.features.parallel_days = 1;
      report_.warnings.push_back(
          "memory pressure: features computed one chunk at a time");
    }
    for (auto& ds : report_.datasets) {
      for (const auto& stage : stages_.stages) {
        if (stage->scope() != Stage::Scope::kDataset) continue;
        StageRun sr;
        sr.stage = std::string(stage->name());
        auto s0 = std::chrono::steady_clock::now();
        auto st = stage->RunDataset(ctx_, ds.dataset, changed, &sr);
        sr.seconds = Seconds(s0);
        if (!st.ok()) {
          sr.status = "failed";
          sr.error = st.ToString();
          spdlog::error("{} stage {} failed: {}", ds.dataset, sr.stage, sr.error);
        }
        if (sr.status == "skipped") {
          // Nothing changed: keep what the stage says ("store ... up to date").
          for (auto& n : sr.notes) report_.notes.push_back(sr.stage + ": " + n);
        } else {
          ds.stages.push_back(std::move(sr));
        }
        WriteReport(false);
      }
    }
  }

  arrow::Result<RunReport> Finish() {
    for (auto& ds : report_.datasets) {
      auto w = lake_->GetWatermark(ds.dataset);
      if (w.ok()) ds.watermark_after = w->last_contiguous;
    }
    if (monitor_) {
      reg_.Reset();
      monitor_->Stop();
    }
    static constexpr std::string_view kTiers[] = {"normal", "warn", "critical"};
    report_.max_memory_tier = std::string(kTiers[std::clamp(max_tier_.load(), 0, 2)]);
    bool any_work = false;
    for (const auto& ds : report_.datasets) {
      any_work = any_work || !ds.days.empty() || !ds.stages.empty();
    }
    if (!report_.error.empty()) {
      report_.status = "failed";
    } else if (report_.failed_days() > 0) {
      report_.status = report_.committed_days() > 0 ? "partial" : "failed";
    } else {
      report_.status = any_work ? "ok" : "nothing_to_do";
    }
    report_.alerts = EvaluateAlerts(o_.project.alerts, report_);
    report_.deliveries = DeliverAlerts(o_.project.alerts, report_);
    report_.finished_at = lake::UtcNowIso8601();
    report_.seconds = Seconds(t0_);
    report_.peak_rss_bytes = PeakRss();
    WriteReport(true);
    PruneRuns();
    auto last_success = UpdateState();
    WriteMetrics(last_success);
    ctx_.manifest.reset();  // unlocks the cache
    if (shard_lock_) shard_lock_->Release();
    if (lock_) lock_->Release();
    return report_;
  }

 private:
  static double Seconds(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  std::string RunPath(const std::string& id) const {
    return lake_->PathOf(std::string(kRunsDir) + "/" + id + ".json");
  }

  void WriteReport(bool final) {
    lake::AtomicWriteOptions wo;
    wo.sync = final && o_.ingest.fsync;
    auto st = lake::WriteFileAtomic(*lake_->filesystem(), RunPath(report_.run_id),
                                    report_.ToJson().dump(2) + "\n", wo);
    if (!st.ok()) spdlog::warn("cannot write the run report: {}", st.ToString());
  }

  void MarkInterruptedRuns() {
    auto runs = ListRunReports(AbsoluteUnlessUri(o_.project.lake), 20);
    if (!runs.ok()) return;
    for (auto& j : *runs) {
      if (j.value("status", "") != "running") continue;
      j["status"] = "interrupted";
      j["error"] =
          "the process ended before the run finished (killed or crashed); its "
          "committed days are kept, the rest is redone by the next run";
      auto id = j.value("run_id", "");
      if (id.empty()) continue;
      auto st =
          lake::WriteFileAtomic(*lake_->filesystem(), RunPath(id), j.dump(2) + "\n");
      if (st.ok()) ++report_.runs_marked_interrupted;
    }
  }

  void PruneRuns() {
    arrow::fs::FileSelector sel;
    sel.base_dir = lake_->PathOf(kRunsDir);
    sel.allow_not_found = true;
    auto infos = lake::ListFiles(*lake_->filesystem(), sel);
    if (!infos.ok()) return;
    std::vector<std::string> paths;
    for (const auto& f : *infos) {
      if (f.type() == arrow::fs::FileType::File && f.extension() == "json") {
        paths.push_back(f.path());
      }
    }
    std::sort(paths.begin(), paths.end());
    const std::size_t keep = static_cast<std::size_t>(std::max(1, o_.project.runs_keep));
    for (std::size_t i = 0; i + keep < paths.size(); ++i) {
      (void)lake_->filesystem()->DeleteFile(paths[i]);
    }
  }

  std::map<std::string, double> UpdateState() {
    std::map<std::string, double> last_success;
    auto& fs = *lake_->filesystem();
    const std::string path = lake_->PathOf(kStatePath);
    nlohmann::json state = nlohmann::json::object();
    auto text = lake::ReadFileIfExists(fs, path);
    if (text.ok() && *text) {
      auto j = nlohmann::json::parse(**text, nullptr, false);
      if (j.is_object()) state = std::move(j);
    }
    if (!state.contains("datasets") || !state["datasets"].is_object()) {
      state["datasets"] = nlohmann::json::object();
    }
    const double now =
        static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count()) /
        1000.0;
    for (const auto& ds : report_.datasets) {
      auto& s = state["datasets"][ds.dataset];
      s["last_run_id"] = report_.run_id;
      s["last_run_at"] = report_.finished_at;
      s["last_run_unix"] = now;
      bool ok = report_.error.empty() && ds.failed() == 0;
      s["last_status"] = ok ? "ok" : "failed";
      if (ok) {
        s["last_success_at"] = report_.finished_at;
        s["last_success_unix"] = now;
      }
    }
    state["format"] = "qlake.pipeline_state.v1";
    state["last_run_id"] = report_.run_id;
    for (const auto& [name, s] : state["datasets"].items()) {
      if (s.contains("last_success_unix") && s["last_success_unix"].is_number()) {
        last_success[name] = s["last_success_unix"].get<double>();
      }
    }
    auto st = lake::WriteFileAtomic(fs, path, state.dump(2) + "\n");
    if (!st.ok()) spdlog::warn("cannot write the pipeline state: {}", st.ToString());
    return last_success;
  }

  void WriteMetrics(const std::map<std::string, double>& last_success) {
    std::string file =
        o_.metrics_file.empty() ? o_.project.metrics_file : o_.metrics_file;
    if (file.empty()) return;
    const double now =
        static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count()) /
        1000.0;
    std::string text = report_.PrometheusText(last_success, now);
    // Local file, atomic (node_exporter must never read half a file).
    std::string root;
    auto fs = arrow::fs::FileSystemFromUriOrPath(AbsoluteUnlessUri(file), &root);
    arrow::Status st = fs.status();
    if (fs.ok()) st = lake::WriteFileAtomic(**fs, root, text);
    if (!st.ok()) {
      spdlog::error("cannot write the metrics file {}: {}", file, st.ToString());
      report_.warnings.push_back("metrics file not written: " + st.ToString());
    }
  }

  const PipelineOptions& o_;
  RunReport report_;
  std::chrono::steady_clock::time_point t0_;
  std::unique_ptr<LakeLock> lock_, shard_lock_;
  std::shared_ptr<lake::Lake> lake_;
  StageContext ctx_;
  StageCatalog stages_;
  std::unique_ptr<MemoryMonitor> monitor_;
  MemoryMonitor::Registration reg_;
  std::atomic<int> max_tier_{0};
  std::mutex mu_;
};

std::vector<std::string> DatasetNames(const Project& p) {
  std::vector<std::string> out;
  for (const auto& d : p.datasets) out.push_back(d.name);
  return out;
}

}  // namespace

arrow::Status ParseShard(std::string_view text, int* index, int* count) {
  auto slash = text.find('/');
  auto bad = [&] {
    return arrow::Status::Invalid("--shard '", text,
                                  "': expected i/n with 1 <= i <= n <= 100000, e.g. 2/4");
  };
  if (slash == std::string_view::npos) return bad();
  try {
    std::size_t u1 = 0, u2 = 0;
    std::string a(text.substr(0, slash)), b(text.substr(slash + 1));
    int i = std::stoi(a, &u1), n = std::stoi(b, &u2);
    if (u1 != a.size() || u2 != b.size() || n < 1 || n > 100000 || i < 1 || i > n) {
      return bad();
    }
    *index = i - 1;
    *count = n;
  } catch (const std::exception&) {
    return bad();
  }
  return arrow::Status::OK();
}

std::vector<Date> ShardDays(const std::vector<Date>& days, int index, int count) {
  std::vector<Date> out;
  for (std::size_t k = 0; k < days.size(); ++k) {
    if (static_cast<int>(k % static_cast<std::size_t>(count)) == index)
      out.push_back(days[k]);
  }
  return out;
}

arrow::Result<RunReport> Sync(const PipelineOptions& o,
                              const std::vector<std::string>& only_datasets) {
  ARROW_RETURN_NOT_OK(o.project.Validate());
  std::vector<std::string> names = DatasetNames(o.project);
  if (!only_datasets.empty()) {
    for (const auto& n : only_datasets) {
      if (std::find(names.begin(), names.end(), n) == names.end()) {
        return arrow::Status::Invalid(
            "dataset ", n, " is not in the project's datasets (add it to ",
            o.project.file.empty() ? "qlake.yaml" : o.project.file, ")");
      }
    }
    names = only_datasets;
  }
  if (names.empty()) {
    return arrow::Status::Invalid("no datasets to sync: list them under 'datasets' in ",
                                  o.project.file.empty() ? "qlake.yaml" : o.project.file,
                                  " or pass --datasets");
  }
  Runner r(o, "sync");
  ARROW_RETURN_NOT_OK(r.Start(false, ""));
  r.Guarded([&]() -> arrow::Status {
    const auto& ctx = r.context();
    ARROW_ASSIGN_OR_RAISE(auto listing,
                          ListSource(*ctx.source_fs, ctx.source_root, names));
    const int64_t now = NowUnix(o);
    std::vector<Task> tasks;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const std::string& name = names[i];
      ARROW_ASSIGN_OR_RAISE(auto spec, catalog::FindDataset(name));
      DatasetRun& dr = r.AddDataset(name);
      dr.latest_published = listing.Latest(name);
      ARROW_ASSIGN_OR_RAISE(auto committed, r.Committed(name));
      const auto& listed = listing.objects[name];
      std::optional<Date> start = ConfiguredStart(o.project, name);
      if (!start && !committed.empty()) start = *committed.begin();
      if (!start && !listed.empty()) start = listed.begin()->first;
      if (!start) continue;  // nothing listed, nothing committed, no start: nothing to do
      std::set<Date> expected;
      if (dr.latest_published) {
        for (Date d : ExpectedDays(name, *start, *dr.latest_published))
          expected.insert(d);
      }
      // Committed days re-checked for republished files: the most recent ones.
      std::set<Date> recheck;
      for (auto it = committed.rbegin();
           it != committed.rend() &&
           static_cast<int>(recheck.size()) < o.project.recheck_days;
           ++it) {
        recheck.insert(*it);
      }
      for (const auto& [day, obj] : listed) {
        if (day < *start) continue;
        if (!expected.count(day)) {
          r.report().warnings.push_back(fmt::format(
              "{}: source file {} is for a day the calendar has no session on; ignored",
              name, obj.key));
          continue;
        }
        std::string reason;
        if (!committed.count(day)) {
          reason = "new";
        } else if (recheck.count(day)) {
          ARROW_ASSIGN_OR_RAISE(auto rec, r.lake().GetCommit(name, day));
          if (rec && !SameVersion(rec->source, obj)) {
            reason = "republished";
          } else {
            ++dr.up_to_date_days;
          }
        } else {
          ++dr.up_to_date_days;
        }
        if (!reason.empty()) tasks.push_back({{spec, day, reason, obj}, i});
      }
      dr.missing = MissingDays(name, *start, &listed, committed, now,
                               o.project.alerts.publish_deadline_minute);
    }
    r.RunDays(tasks);
    r.RunDatasetStages();
    return arrow::Status::OK();
  });
  return r.Finish();
}

arrow::Result<RunReport> Backfill(const PipelineOptions& o, const BackfillRange& range) {
  ARROW_RETURN_NOT_OK(o.project.Validate());
  ARROW_ASSIGN_OR_RAISE(auto spec, catalog::FindDataset(range.dataset));
  if (!spec->ingestible) {
    return arrow::Status::Invalid("dataset ", range.dataset, " cannot be ingested yet");
  }
  if (range.from > range.to) {
    return arrow::Status::Invalid("--from ", FormatDate(range.from), " is after --to ",
                                  FormatDate(range.to));
  }
  if (range.shard_count < 1 || range.shard_index < 0 ||
      range.shard_index >= range.shard_count) {
    return arrow::Status::Invalid("bad shard ", range.shard_index + 1, "/",
                                  range.shard_count);
  }
  const bool sharded = range.shard_count > 1;
  Runner r(o, "backfill");
  if (sharded) {
    r.report().shard = fmt::format("{}/{}", range.shard_index + 1, range.shard_count);
  }
  ARROW_RETURN_NOT_OK(r.Start(
      sharded, fmt::format("shard-{}-of-{}", range.shard_index + 1, range.shard_count)));
  r.Guarded([&]() -> arrow::Status {
    const auto& ctx = r.context();
    ARROW_ASSIGN_OR_RAISE(auto listing,
                          ListSource(*ctx.source_fs, ctx.source_root, {range.dataset}));
    DatasetRun& dr = r.AddDataset(range.dataset);
    dr.latest_published = listing.Latest(range.dataset);
    ARROW_ASSIGN_OR_RAISE(auto committed, r.Committed(range.dataset));
    auto days = ShardDays(ExpectedDays(range.dataset, range.from, range.to),
                          range.shard_index, range.shard_count);
    std::vector<Task> tasks;
    for (Date day : days) {
      const SourceObject* obj = listing.Find(range.dataset, day);
      if (!obj) {
        if (dr.latest_published && day < *dr.latest_published) {
          DayRun missing;
          missing.day = day;
          missing.reason = "backfill";
          missing.status = "failed";
          missing.error =
              fmt::format("no source file {} although later days are published",
                          catalog::KeyFor(*spec, day));
          dr.days.push_back(std::move(missing));
        } else {
          ++dr.unpublished_days;
        }
        continue;
      }
      std::string reason = range.force ? "forced" : "backfill";
      if (committed.count(day) && !range.force) {
        ARROW_ASSIGN_OR_RAISE(auto rec, r.lake().GetCommit(range.dataset, day));
        if (rec && SameVersion(rec->source, *obj)) {
          ++dr.up_to_date_days;
          continue;
        }
        reason = "republished";
      }
      tasks.push_back({{spec, day, reason, *obj}, 0});
    }
    r.RunDays(tasks);
    if (sharded) {
      // Dataset stages read across days (look-back) that other shards own; the next sync
      // or unsharded backfill catches them up (they follow committed days they lack).
      bool has_dataset_stage = false;
      for (const auto& name : r.report().stages) has_dataset_stage |= name != "ingest";
      if (has_dataset_stage) {
        r.report().warnings.push_back(
            "sharded backfill: dataset stages (features, qlib) are left to the next sync "
            "or unsharded backfill, which catches up every committed day");
      }
    } else {
      r.RunDatasetStages();
    }
    return arrow::Status::OK();
  });
  return r.Finish();
}

// ------------------------------------------------------------------------- status

arrow::Result<std::vector<nlohmann::json>> ListRunReports(const std::string& lake_uri,
                                                          int limit) {
  std::string root;
  ARROW_ASSIGN_OR_RAISE(
      auto fs, arrow::fs::FileSystemFromUriOrPath(AbsoluteUnlessUri(lake_uri), &root));
  arrow::fs::FileSelector sel;
  sel.base_dir = lake::JoinPath(root, kRunsDir);
  sel.allow_not_found = true;
  ARROW_ASSIGN_OR_RAISE(auto infos, fs->GetFileInfo(sel));
  std::vector<std::string> paths;
  for (const auto& f : infos) {
    if (f.type() == arrow::fs::FileType::File && f.extension() == "json") {
      paths.push_back(f.path());
    }
  }
  std::sort(paths.begin(), paths.end());
  if (limit > 0 && paths.size() > static_cast<std::size_t>(limit)) {
    paths.erase(paths.begin(), paths.end() - limit);
  }
  std::vector<nlohmann::json> out;
  for (const auto& p : paths) {
    auto text = lake::ReadFileIfExists(*fs, p);
    if (!text.ok() || !*text) continue;
    auto j = nlohmann::json::parse(**text, nullptr, false);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

namespace {

nlohmann::json RunSummary(const nlohmann::json& run) {
  return {{"run_id", run.value("run_id", "")},
          {"command", run.value("command", "")},
          {"shard", run.value("shard", "")},
          {"status", run.value("status", "")},
          {"started_at", run.value("started_at", "")},
          {"finished_at", run.value("finished_at", "")},
          {"seconds", run.value("seconds", 0.0)},
          {"committed_days", run.value("committed_days", 0)},
          {"failed_days", run.value("failed_days", 0)}};
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

nlohmann::json DateList(const std::vector<Date>& days, std::size_t max_items) {
  nlohmann::json a = nlohmann::json::array();
  std::size_t from = days.size() > max_items ? days.size() - max_items : 0;
  for (std::size_t i = from; i < days.size(); ++i) a.push_back(FormatDate(days[i]));
  return a;
}

nlohmann::json Opt(const std::optional<Date>& d) {
  return d ? nlohmann::json(FormatDate(*d)) : nlohmann::json();
}

}  // namespace

arrow::Result<StatusReport> GetStatus(const PipelineOptions& o) {
  StatusReport s;
  s.lake = o.project.lake;
  s.source = o.project.source;
  const std::string lake_uri = AbsoluteUnlessUri(o.project.lake);
  lake::LakeOptions lo;
  lo.create_root = false;
  ARROW_ASSIGN_OR_RAISE(auto lake, lake::Lake::Open(lake_uri, lo));
  if (auto holder = ReadHolderIfHeld(LockPathFor(lake_uri))) {
    s.locked_by = holder->pid ? holder->Describe() : "a sharded backfill (shared lock)";
  }
  std::vector<std::string> names = DatasetNames(o.project);
  ARROW_ASSIGN_OR_RAISE(auto in_lake, lake->ListDatasets());
  for (const auto& n : in_lake) {
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  SourceListing listing;
  if (!o.project.source.empty()) {
    std::vector<std::string> catalog_names;
    for (const auto& n : names) {
      if (catalog::FindDataset(n).ok()) catalog_names.push_back(n);
    }
    std::string root;
    auto fs = OpenSource(o, &root);
    auto l = fs.ok() ? ListSource(**fs, root, catalog_names)
                     : arrow::Result<SourceListing>(fs.status());
    if (l.ok()) {
      listing = std::move(*l);
    } else {
      s.source_error = l.status().ToString();
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto runs, ListRunReports(lake_uri, 200));
  if (!runs.empty()) s.last_run = RunSummary(runs.back());
  nlohmann::json state;
  {
    auto text = lake::ReadFileIfExists(*lake->filesystem(), lake->PathOf(kStatePath));
    if (text.ok() && *text) state = nlohmann::json::parse(**text, nullptr, false);
  }
  const int64_t now = NowUnix(o);
  for (const auto& name : names) {
    DatasetStatus d;
    d.dataset = name;
    ARROW_ASSIGN_OR_RAISE(auto records, lake->ListCommits(name));
    std::set<Date> committed;
    for (const auto& rec : records) {
      committed.insert(rec.day);
      d.rows_written += rec.rows.written;
      d.rows_quarantined += rec.rows.quarantined;
      if (rec.validation.contains("rejected") && rec.validation["rejected"].is_object()) {
        for (const auto& [k, v] : rec.validation["rejected"].items()) {
          if (v.is_number_integer()) d.quarantine_reasons[k] += v.get<int64_t>();
        }
      }
      if (const SourceObject* obj = listing.Find(name, rec.day)) {
        if (!SameVersion(rec.source, *obj)) d.republished.push_back(rec.day);
      }
    }
    d.committed_days = static_cast<int64_t>(records.size());
    if (!records.empty()) {
      d.first_day = records.front().day;
      d.last_committed = records.back().day;
    }
    auto w = lake->GetWatermark(name);
    if (w.ok()) d.watermark = w->last_contiguous;
    d.latest_published = listing.Latest(name);
    std::optional<Date> start = ConfiguredStart(o.project, name);
    if (!start && d.first_day) start = d.first_day;
    auto lit = listing.objects.find(name);
    const std::map<Date, SourceObject>* listed =
        lit == listing.objects.end() ? nullptr : &lit->second;
    if (!start && listed && !listed->empty()) start = listed->begin()->first;
    // Feature datasets have no source files: nothing can be pending or missing.
    if (start && s.source_error.empty() && catalog::FindDataset(name).ok()) {
      if (listed && d.latest_published) {
        std::set<Date> expected;
        for (Date x : ExpectedDays(name, *start, *d.latest_published)) expected.insert(x);
        for (const auto& [day, obj] : *listed) {
          if (day >= *start && expected.count(day) && !committed.count(day)) {
            d.pending.push_back(day);
          }
        }
      }
      d.missing = MissingDays(name, *start, listed, committed, now,
                              o.project.alerts.publish_deadline_minute);
    }
    for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
      bool touches = false;
      if ((*it).contains("datasets") && (*it)["datasets"].is_array()) {
        for (const auto& x : (*it)["datasets"]) touches |= x.value("dataset", "") == name;
      }
      if (touches) {
        d.last_run = RunSummary(*it);
        break;
      }
    }
    if (state.is_object() && state.contains("datasets") &&
        state["datasets"].contains(name)) {
      const auto& st = state["datasets"][name];
      if (st.contains("last_success_at"))
        d.last_success_at = st["last_success_at"].get<std::string>();
    }
    s.datasets.push_back(std::move(d));
  }
  for (const auto& q : o.project.qlib) {
    QlibStoreStatus qs;
    qs.spec = q;
    std::error_code ec;
    qs.exists = std::filesystem::is_directory(q.path, ec);
    if (qs.exists) {
      auto cal = ReadLines(q.path + "/calendars/" + q.freq + ".txt");
      qs.calendar_rows = static_cast<int64_t>(cal.size());
      std::set<std::string> days;
      for (const auto& row : cal) days.insert(row.substr(0, 10));
      qs.calendar_days = static_cast<int64_t>(days.size());
      if (!cal.empty()) {
        qs.calendar_start = cal.front();
        qs.calendar_end = cal.back();
      }
      qs.symbols =
          static_cast<int64_t>(ReadLines(q.path + "/instruments/all.txt").size());
    }
    // Committed days up to the dataset's watermark that the store does not have yet.
    std::optional<Date> end;
    if (qs.calendar_end) {
      if (auto e = ParseDate(qs.calendar_end->substr(0, 10)); e.ok()) end = *e;
    }
    auto wm = lake->GetWatermark(q.dataset);
    auto committed = lake->ListCommittedDays(q.dataset);
    if (wm.ok() && wm->last_contiguous && committed.ok()) {
      for (Date d : *committed) {
        if (d <= *wm->last_contiguous && (!end || d > *end)) ++qs.behind_days;
      }
    }
    s.qlib.push_back(std::move(qs));
  }
  return s;
}

nlohmann::ordered_json StatusReport::ToJson() const {
  nlohmann::ordered_json ds = nlohmann::ordered_json::array();
  for (const auto& d : datasets) {
    nlohmann::ordered_json reasons = nlohmann::ordered_json::object();
    for (const auto& [k, v] : d.quarantine_reasons) reasons[k] = v;
    ds.push_back(
        {{"dataset", d.dataset},
         {"first_day", Opt(d.first_day)},
         {"watermark", Opt(d.watermark)},
         {"last_committed", Opt(d.last_committed)},
         {"committed_days", d.committed_days},
         {"latest_published", Opt(d.latest_published)},
         {"pending_count", d.pending.size()},
         {"pending", DateList(d.pending, 100)},
         {"missing_count", d.missing.size()},
         {"missing", DateList(d.missing, 100)},
         {"republished_count", d.republished.size()},
         {"republished", DateList(d.republished, 100)},
         {"rows_written", d.rows_written},
         {"rows_quarantined", d.rows_quarantined},
         {"quarantine_reasons", reasons},
         {"last_run", d.last_run},
         {"last_success_at",
          d.last_success_at ? nlohmann::json(*d.last_success_at) : nlohmann::json()}});
  }
  nlohmann::ordered_json qs = nlohmann::ordered_json::array();
  for (const auto& q : qlib) {
    qs.push_back({{"path", q.spec.path},
                  {"freq", q.spec.freq},
                  {"dataset", q.spec.dataset},
                  {"exists", q.exists},
                  {"calendar_start", q.calendar_start ? nlohmann::json(*q.calendar_start)
                                                      : nlohmann::json()},
                  {"calendar_end",
                   q.calendar_end ? nlohmann::json(*q.calendar_end) : nlohmann::json()},
                  {"calendar_days", q.calendar_days},
                  {"calendar_rows", q.calendar_rows},
                  {"behind_days", q.behind_days},
                  {"symbols", q.symbols}});
  }
  return {{"format", "qlake.status.v1"},
          {"lake", lake},
          {"source", source},
          {"source_error", source_error},
          {"locked_by", locked_by ? nlohmann::json(*locked_by) : nlohmann::json()},
          {"last_run", last_run},
          {"datasets", ds},
          {"qlib", qs}};
}

std::string StatusReport::ToText() const {
  std::string out;
  auto opt = [](const std::optional<Date>& d) {
    return d ? FormatDate(*d) : std::string("-");
  };
  out += fmt::format("lake     {}\n", lake);
  out += fmt::format("source   {}{}\n", source,
                     source_error.empty() ? "" : "  (cannot list: " + source_error + ")");
  out += fmt::format("lock     {}\n", locked_by ? "held by " + *locked_by : "free");
  if (last_run.is_object()) {
    out += fmt::format(
        "last run {} {}{} {}: {} day(s) committed, {} failed, {:.1f}s, "
        "finished {}\n",
        last_run.value("run_id", ""), last_run.value("command", ""),
        last_run.value("shard", "").empty() ? ""
                                            : " shard " + last_run.value("shard", ""),
        last_run.value("status", ""), last_run.value("committed_days", 0),
        last_run.value("failed_days", 0), last_run.value("seconds", 0.0),
        last_run.value("finished_at", ""));
  } else {
    out += "last run none\n";
  }
  out += "\n";
  out += fmt::format(
      "{:<22} {:<10}  {:<10}  {:>5}  {:<10}  {:>7}  {:>7}  {:>5}  {:>11}  {}\n",
      "dataset", "first day", "watermark", "days", "published", "pending", "missing",
      "repub", "quarantined", "last run");
  for (const auto& d : datasets) {
    std::string last = "-";
    if (d.last_run.is_object()) {
      last = fmt::format("{} {} ({:.1f}s)", d.last_run.value("status", ""),
                         d.last_run.value("finished_at", ""),
                         d.last_run.value("seconds", 0.0));
    }
    out += fmt::format(
        "{:<22} {:<10}  {:<10}  {:>5}  {:<10}  {:>7}  {:>7}  {:>5}  {:>11}  {}\n",
        d.dataset, opt(d.first_day), opt(d.watermark), d.committed_days,
        opt(d.latest_published), d.pending.size(), d.missing.size(), d.republished.size(),
        d.rows_quarantined, last);
  }
  for (const auto& d : datasets) {
    if (!d.missing.empty()) {
      out += fmt::format("  {}: {} day(s) missing past their publish time, {} .. {}\n",
                         d.dataset, d.missing.size(), FormatDate(d.missing.front()),
                         FormatDate(d.missing.back()));
    }
    if (!d.republished.empty()) {
      out += fmt::format("  {}: republished in the source since committed: {}{}\n",
                         d.dataset, FormatDate(d.republished.front()),
                         d.republished.size() > 1
                             ? fmt::format(" and {} more", d.republished.size() - 1)
                             : "");
    }
  }
  if (!qlib.empty()) {
    out += "\n";
    std::vector<std::string> cals;
    std::size_t pw = 10, cw = 8;
    for (const auto& q : qlib) {
      cals.push_back(q.exists ? (q.calendar_start ? *q.calendar_start + " .. " +
                                                        q.calendar_end.value_or("")
                                                  : "empty")
                              : "not created yet");
      pw = std::max(pw, q.spec.path.size());
      cw = std::max(cw, cals.back().size());
    }
    out +=
        fmt::format("{:<{}} {:<5} {:<14} {:<{}} {:>6}  {:>7}  {:>6}\n", "qlib store", pw,
                    "freq", "dataset", "calendar", cw, "days", "symbols", "behind");
    for (std::size_t i = 0; i < qlib.size(); ++i) {
      const auto& q = qlib[i];
      out += fmt::format("{:<{}} {:<5} {:<14} {:<{}} {:>6}  {:>7}  {:>6}\n", q.spec.path,
                         pw, q.spec.freq, q.spec.dataset, cals[i], cw, q.calendar_days,
                         q.symbols, q.behind_days);
    }
  }
  return out;
}

}  // namespace qlake::pipeline

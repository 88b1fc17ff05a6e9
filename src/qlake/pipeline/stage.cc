#include "qlake/pipeline/stage.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <set>

#include <arrow/filesystem/filesystem.h>
#include <fmt/format.h>

#include "qlake/catalog/nyse_calendar.h"
#include "qlake/lake/fs_util.h"
#include "qlake/lake/lake.h"
#include "qlake/lake/watermark.h"
#include "qlake/qlib/export.h"

namespace qlake::pipeline {

namespace {

std::string AbsoluteUnlessUri(const std::string& p) {
  if (p.find("://") != std::string::npos) return p;
  return std::filesystem::absolute(p).lexically_normal().string();
}

}  // namespace

bool SameVersion(const lake::SourceVersion& c, const SourceObject& l) {
  if (c.size >= 0 && l.size >= 0 && c.size != l.size) return false;
  if (!c.last_modified.empty() && !l.last_modified.empty() &&
      c.last_modified != l.last_modified) {
    return false;
  }
  if (!c.etag.empty() && !l.etag.empty() && c.etag != l.etag) return false;
  return true;
}

std::optional<Date> SourceListing::Latest(const std::string& dataset) const {
  auto it = objects.find(dataset);
  if (it == objects.end() || it->second.empty()) return std::nullopt;
  return it->second.rbegin()->first;
}

const SourceObject* SourceListing::Find(const std::string& dataset, Date day) const {
  auto it = objects.find(dataset);
  if (it == objects.end()) return nullptr;
  auto jt = it->second.find(day);
  return jt == it->second.end() ? nullptr : &jt->second;
}

arrow::Result<SourceListing> ListSource(const std::string& source,
                                        const std::vector<std::string>& datasets) {
  std::string root;
  auto fs = arrow::fs::FileSystemFromUriOrPath(AbsoluteUnlessUri(source), &root);
  if (!fs.ok()) {
    return arrow::Status::Invalid(
        "source '", source,
        "' is neither a folder nor a file system URI: ", fs.status().message());
  }
  return ListSource(**fs, root, datasets);
}

arrow::Result<SourceListing> ListSource(arrow::fs::FileSystem& fs,
                                        const std::string& root,
                                        const std::vector<std::string>& datasets) {
  if (fs.type_name() != "s3") {
    ARROW_ASSIGN_OR_RAISE(auto info, fs.GetFileInfo(root));
    if (info.type() != arrow::fs::FileType::Directory) {
      return arrow::Status::IOError("source '", root,
                                    "' is not a folder (write one with qlake synth or "
                                    "qlake fetch, or fix 'source' in qlake.yaml)");
    }
  }
  SourceListing out;
  for (const auto& name : datasets) {
    ARROW_ASSIGN_OR_RAISE(auto spec, catalog::FindDataset(name));
    auto& days = out.objects[name];
    arrow::fs::FileSelector sel;
    sel.base_dir = lake::JoinPath(root, spec->Prefix());
    sel.recursive = true;
    sel.allow_not_found = true;
    ARROW_ASSIGN_OR_RAISE(auto infos, fs.GetFileInfo(sel));
    for (const auto& f : infos) {
      if (f.type() != arrow::fs::FileType::File) continue;
      std::string key = f.path().substr(root.empty() ? 0 : root.size() + 1);
      if (root.empty() || root == "/") key = f.path();
      auto parsed = catalog::ParseKey(key);
      if (!parsed.ok() || parsed->spec->name != spec->name) continue;
      SourceObject o;
      o.key = key;
      o.size = f.size();
      auto mtime = f.mtime();
      if (mtime != arrow::fs::kNoTime) {
        o.last_modified = std::to_string(
            std::chrono::duration_cast<std::chrono::seconds>(mtime.time_since_epoch())
                .count());
      }
      days[parsed->date] = std::move(o);
    }
  }
  return out;
}

arrow::Status Stage::RunDay(const StageContext&, const DayTask&, StageRun*) {
  return arrow::Status::NotImplemented("stage ", name(), " is not day-scoped");
}

arrow::Status Stage::RunDataset(const StageContext&, const std::string&,
                                const std::map<std::string, std::vector<Date>>&,
                                StageRun*) {
  return arrow::Status::NotImplemented("stage ", name(), " is not dataset-scoped");
}

void FetchKeyLocks::Lock(const std::vector<std::string>& keys) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] {
    return std::none_of(keys.begin(), keys.end(),
                        [&](const std::string& k) { return held_.count(k) > 0; });
  });
  held_.insert(keys.begin(), keys.end());
}

void FetchKeyLocks::Unlock(const std::vector<std::string>& keys) {
  {
    std::lock_guard lock(mu_);
    for (const auto& k : keys) held_.erase(k);
  }
  cv_.notify_all();
}

arrow::Status FetchStage::RunDay(const StageContext& ctx, const DayTask& task,
                                 StageRun* run) {
  if (ctx.cache.empty() || !ctx.source_fs || !ctx.manifest || !ctx.fetch_locks) {
    return arrow::Status::Invalid("the fetch stage needs a cache folder and a source");
  }
  const catalog::DatasetSpec& spec = *task.spec;
  fetch::FetchOptions o = ctx.fetch;
  o.dataset = std::string(spec.name);
  o.selection = fetch::Selection::kRange;
  o.from = o.to = task.day;
  o.bucket_root = ctx.source_root;
  o.cache = ctx.cache;
  o.manifest = ctx.manifest.get();
  o.jobs = 1;
  o.dry_run = false;
  std::vector<std::string> keys = {catalog::KeyFor(spec, task.day)};
  std::optional<Date> previous;
  if (spec.granularity == catalog::Granularity::kDay) {
    auto prev = catalog::NyseCalendar::Get().PreviousTradingDay(task.day);
    if (prev.ok()) {
      previous = *prev;
      o.from = *prev;
      keys.push_back(catalog::KeyFor(spec, *prev));
    }
  }
  ctx.fetch_locks->Lock(keys);
  auto fetched = fetch::Fetch(*ctx.source_fs, o);
  ctx.fetch_locks->Unlock(keys);
  ARROW_ASSIGN_OR_RAISE(auto report, std::move(fetched));
  const fetch::FileReport* file = nullptr;
  for (const auto& f : report.files) {
    if (f.day == task.day) {
      file = &f;
    } else if (previous && f.day == *previous) {
      if (f.status == fetch::FileStatus::kFailed) {
        run->warnings.push_back(fmt::format(
            "previous day {} not fetched ({}): the day's closes check uses the lake",
            FormatDate(f.day), f.message));
      }
    }
  }
  if (!file) {
    return arrow::Status::IOError("fetch of ", spec.name, " ", FormatDate(task.day),
                                  " reported no file");
  }
  run->bytes_in = report.bytes;
  run->bytes_out = file->version.size > 0 ? file->version.size : 0;
  for (const auto& f : report.files) run->retries += std::max(0, f.attempts - 1);
  run->action = std::string(fetch::FileStatusName(file->status));
  if (file->resumed) run->warnings.push_back("resumed a partial download");
  switch (file->status) {
    case fetch::FileStatus::kDownloaded:
    case fetch::FileStatus::kUnchanged:
      return arrow::Status::OK();
    case fetch::FileStatus::kRepublished:
      if (file->replaced) {
        run->warnings.push_back(fmt::format(
            "republished: replaced the cached version of {} bytes, LastModified {}",
            file->replaced->size, file->replaced->last_modified));
      }
      return arrow::Status::OK();
    default:
      // Failed after its attempts, or listed for the plan but gone when fetched.
      return arrow::Status::IOError("fetch ", file->key, ": ", run->action, ": ",
                                    file->message);
  }
}

arrow::Status IngestStage::RunDay(const StageContext& ctx, const DayTask& task,
                                  StageRun* run) {
  ingest::IngestOptions o = ctx.ingest;
  o.dataset = std::string(task.spec->name);
  o.from = o.to = task.day;
  if (!ctx.cache.empty()) {
    // The fetch stage put the day's object into the cache (bucket key layout).
    o.source = ctx.cache;
    o.source_fs = nullptr;
  } else if (ctx.source_fs) {
    o.source = ctx.source_root;
    o.source_fs = ctx.source_fs;
  } else {
    o.source = ctx.source;
  }
  o.lake = ctx.lake_uri;
  o.parallel_days = 1;
  ARROW_ASSIGN_OR_RAISE(auto report, ingest::Ingest(o));
  if (report.days.size() != 1) {
    return arrow::Status::Invalid(task.spec->name, " ", FormatDate(task.day),
                                  " is not a trading day");
  }
  const auto& d = report.days[0];
  run->rows_read = d.counts.read;
  run->rows_written = d.counts.written;
  run->rows_quarantined = d.counts.quarantined;
  run->rows_filtered = d.counts.filtered;
  run->bytes_in = d.source_bytes;
  run->bytes_out = d.output_bytes;
  for (std::size_t i = 0; i < ingest::kNumRejectReasons; ++i) {
    if (d.counts.by_reason[i] > 0) {
      run->reasons[std::string(ingest::RejectReasonName(
          static_cast<ingest::RejectReason>(i)))] = d.counts.by_reason[i];
    }
  }
  if (d.counts.flagged > 0) {
    run->warnings.push_back(std::to_string(d.counts.flagged) +
                            " rows flagged for a > 50 % move");
  }
  return d.status;
}

arrow::Status FeaturesStage::RunDataset(
    const StageContext& ctx, const std::string& dataset,
    const std::map<std::string, std::vector<Date>>& changed, StageRun* run) {
  auto set = features::ParseFeatureSet(dataset);
  if (!set.ok()) {
    run->status = "skipped";
    return arrow::Status::OK();
  }
  // Days whose features may have changed: the dataset's own, plus its inputs'.
  std::set<Date> days;
  auto add = [&](const std::string& name) {
    auto it = changed.find(name);
    if (it != changed.end()) days.insert(it->second.begin(), it->second.end());
  };
  add(dataset);
  if (dataset == "stocks_daily") add("stocks_minute");
  if (dataset.rfind("options_", 0) == 0) {
    add("stocks_daily");
    add("stocks_minute");
  }
  ARROW_ASSIGN_OR_RAISE(auto committed_list, ctx.lake->ListCommittedDays(dataset));
  std::set<Date> committed(committed_list.begin(), committed_list.end());
  ARROW_ASSIGN_OR_RAISE(auto have,
                        ctx.lake->ListCommittedDays(features::FeatureDatasetName(*set)));
  std::set<Date> have_set(have.begin(), have.end());
  for (Date d : committed) {
    if (!have_set.count(d)) days.insert(d);
  }
  int n = 0;
  for (auto it = committed_list.rbegin();
       it != committed_list.rend() && n < ctx.recheck_days; ++it, ++n) {
    days.insert(*it);
  }
  // Runs of consecutive expected days that the dataset has committed.
  std::vector<std::pair<Date, Date>> runs;
  auto cal = lake::CalendarForDataset(dataset);
  for (Date d : days) {
    if (!committed.count(d)) continue;
    if (!runs.empty()) {
      auto next = lake::NextExpectedDay(cal, runs.back().second);
      if (next.ok() && *next == d) {
        runs.back().second = d;
        continue;
      }
    }
    runs.emplace_back(d, d);
  }
  std::string errors;
  int64_t computed = 0;
  for (const auto& [from, to] : runs) {
    features::FeatureOptions o = ctx.features;
    o.set = *set;
    o.from = from;
    o.to = to;
    o.lake = ctx.lake_uri;
    ARROW_ASSIGN_OR_RAISE(auto report, features::ComputeFeatures(o));
    run->rows_read += report.input_rows;
    for (const auto& d : report.days) {
      if (d.action == "computed") {
        run->rows_written += d.rows;
        ++computed;
      }
      if (!d.status.ok()) {
        errors +=
            (errors.empty() ? "" : "; ") + FormatDate(d.day) + ": " + d.status.ToString();
      }
    }
  }
  if (!errors.empty())
    return arrow::Status::IOError("features of ", dataset, ": ", errors);
  if (computed == 0) run->status = "skipped";
  return arrow::Status::OK();
}

arrow::Status QlibStage::RunDataset(
    const StageContext& ctx, const std::string& dataset,
    const std::map<std::string, std::vector<Date>>& changed, StageRun* run) {
  std::string errors;
  bool wrote = false;
  for (const auto& store : ctx.qlib) {
    // A day store's vwap reads stocks_minute: follow it when the run lacks stocks_daily.
    bool mine =
        store.dataset == dataset || (store.freq == "day" && dataset == "stocks_minute" &&
                                     !changed.count(store.dataset));
    if (!mine) continue;
    ARROW_ASSIGN_OR_RAISE(auto days, ctx.lake->ListCommittedDays(store.dataset));
    if (days.empty()) {
      run->notes.push_back(fmt::format("{} ({}): {} has no committed day yet", store.path,
                                       store.freq, store.dataset));
      continue;
    }
    qlib::ExportOptions o;
    o.lake = ctx.lake_uri;
    o.out = store.path;
    ARROW_ASSIGN_OR_RAISE(o.freq, qlib::ParseFreq(store.freq));
    o.fsync = ctx.ingest.fsync;
    auto r = qlib::Export(o);
    if (!r.ok()) {
      errors += fmt::format("{}{}: {}", errors.empty() ? "" : "; ", store.path,
                            r.status().ToString());
      continue;
    }
    run->rows_read += r->bars;
    run->rows_written += r->bars;
    run->bytes_out += r->bytes_written;
    if (r->days_appended == 0 && r->days_rewritten == 0 && !r->rebuilt) {
      run->notes.push_back(fmt::format("{} ({}): up to date through {}, {} instruments",
                                       store.path, store.freq, r->last_day, r->symbols));
      continue;
    }
    wrote = true;
    run->notes.push_back(fmt::format(
        "{} ({}): {}{} day(s) appended, {} rewritten ({} re-committed in the lake); "
        "{} bars, {} instruments, through {}",
        store.path, store.freq, r->rebuilt ? "built, " : "", r->days_appended,
        r->days_rewritten, r->days_recommitted, r->bars, r->symbols, r->last_day));
  }
  if (!errors.empty()) return arrow::Status::IOError("qlib export: ", errors);
  if (!wrote) run->status = "skipped";
  return arrow::Status::OK();
}

StageCatalog BuildStages(const Project& project) {
  StageCatalog c;
  // Without a cache, ingest streams each day from the source (mirror folder or S3).
  if (!project.cache.empty()) c.stages.push_back(std::make_unique<FetchStage>());
  c.stages.push_back(std::make_unique<IngestStage>());
  if (project.features) c.stages.push_back(std::make_unique<FeaturesStage>());
  if (!project.qlib.empty()) c.stages.push_back(std::make_unique<QlibStage>());
  return c;
}

}  // namespace qlake::pipeline

#include "qlake/pipeline/report.h"

#include <unistd.h>

#include <chrono>

#include <fmt/format.h>

#include "qlake/lake/fs_util.h"

namespace qlake::pipeline {

namespace {

nlohmann::ordered_json StageJson(const StageRun& s) {
  nlohmann::ordered_json j = {{"stage", s.stage},
                              {"status", s.status},
                              {"seconds", s.seconds},
                              {"rows_read", s.rows_read},
                              {"rows_written", s.rows_written},
                              {"rows_quarantined", s.rows_quarantined},
                              {"rows_filtered", s.rows_filtered},
                              {"bytes_in", s.bytes_in},
                              {"bytes_out", s.bytes_out}};
  if (!s.action.empty()) {
    j["action"] = s.action;
    j["retries"] = s.retries;
  }
  if (!s.error.empty()) j["error"] = s.error;
  if (!s.reasons.empty()) {
    nlohmann::ordered_json r = nlohmann::ordered_json::object();
    for (const auto& [k, v] : s.reasons) r[k] = v;
    j["quarantine_reasons"] = r;
  }
  if (!s.warnings.empty()) j["warnings"] = s.warnings;
  if (!s.notes.empty()) j["notes"] = s.notes;
  return j;
}

nlohmann::json OptDate(const std::optional<Date>& d) {
  return d ? nlohmann::json(FormatDate(*d)) : nlohmann::json();
}

std::string Esc(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

double Mb(int64_t b) { return static_cast<double>(b) / 1e6; }

}  // namespace

const StageRun* DayRun::Stage(std::string_view name) const {
  for (const auto& s : stages) {
    if (s.stage == name) return &s;
  }
  return nullptr;
}

int64_t DatasetRun::failed() const {
  int64_t n = 0;
  for (const auto& d : days) n += d.status == "ok" ? 0 : 1;
  for (const auto& s : stages) n += s.status == "failed" ? 1 : 0;
  return n;
}

int64_t DatasetRun::committed() const {
  int64_t n = 0;
  for (const auto& d : days) n += d.status == "ok" ? 1 : 0;
  return n;
}

int64_t RunReport::failed_days() const {
  int64_t n = 0;
  for (const auto& d : datasets) n += d.failed();
  return n;
}

int64_t RunReport::committed_days() const {
  int64_t n = 0;
  for (const auto& d : datasets) n += d.committed();
  return n;
}

arrow::Status RunReport::ToStatus() const {
  if (!error.empty()) return arrow::Status::IOError(error);
  int64_t bad = failed_days();
  if (bad == 0) return arrow::Status::OK();
  return arrow::Status::Cancelled(bad, " day(s) or stage(s) failed, ", committed_days(),
                                  " day(s) committed; see the run report ", run_id);
}

nlohmann::ordered_json RunReport::ToJson() const {
  nlohmann::ordered_json ds = nlohmann::ordered_json::array();
  for (const auto& d : datasets) {
    nlohmann::ordered_json days = nlohmann::ordered_json::array();
    for (const auto& day : d.days) {
      nlohmann::ordered_json day_stages = nlohmann::ordered_json::array();
      for (const auto& s : day.stages) day_stages.push_back(StageJson(s));
      nlohmann::ordered_json j = {{"day", FormatDate(day.day)},
                                  {"reason", day.reason},
                                  {"status", day.status},
                                  {"seconds", day.seconds},
                                  {"stages", day_stages}};
      if (!day.error.empty()) j["error"] = day.error;
      days.push_back(std::move(j));
    }
    nlohmann::ordered_json ds_stages = nlohmann::ordered_json::array();
    for (const auto& s : d.stages) ds_stages.push_back(StageJson(s));
    nlohmann::ordered_json missing = nlohmann::ordered_json::array();
    for (auto m : d.missing) missing.push_back(FormatDate(m));
    ds.push_back({{"dataset", d.dataset},
                  {"watermark_before", OptDate(d.watermark_before)},
                  {"watermark_after", OptDate(d.watermark_after)},
                  {"latest_published", OptDate(d.latest_published)},
                  {"committed", d.committed()},
                  {"failed", d.failed()},
                  {"up_to_date_days", d.up_to_date_days},
                  {"unpublished_days", d.unpublished_days},
                  {"missing", missing},
                  {"days", days},
                  {"stages", ds_stages}});
  }
  nlohmann::ordered_json alerts_j = nlohmann::ordered_json::array();
  for (const auto& a : alerts) {
    alerts_j.push_back({{"kind", a.kind},
                        {"dataset", a.dataset},
                        {"day", a.day},
                        {"message", a.message}});
  }
  nlohmann::ordered_json deliveries_j = nlohmann::ordered_json::array();
  for (const auto& d : deliveries) {
    deliveries_j.push_back({{"target", d.target}, {"ok", d.ok}, {"error", d.error}});
  }
  return {{"format", kFormat},
          {"run_id", run_id},
          {"command", command},
          {"status", status},
          {"error", error},
          {"started_at", started_at},
          {"finished_at", finished_at},
          {"seconds", seconds},
          {"pid", pid},
          {"host", host},
          {"lake", lake},
          {"source", source},
          {"shard", shard},
          {"stages", stages},
          {"stages_missing", stages_missing},
          {"recovery",
           {{"rolled_forward", recovered_forward},
            {"rolled_back", recovered_back},
            {"dropped", recovered_dropped},
            {"temp_files_removed", temp_files_removed},
            {"runs_marked_interrupted", runs_marked_interrupted},
            {"lock_taken_over", lock_taken_over}}},
          {"committed_days", committed_days()},
          {"failed_days", failed_days()},
          {"peak_rss_bytes", peak_rss_bytes},
          {"memory_budget_bytes", memory_budget_bytes},
          {"max_memory_tier", max_memory_tier},
          {"datasets", ds},
          {"alerts", alerts_j},
          {"deliveries", deliveries_j},
          {"warnings", warnings},
          {"notes", notes}};
}

std::string RunReport::Summary() const {
  std::string out;
  const std::string who = command + (shard.empty() ? "" : " shard " + shard);
  if (status == "nothing_to_do") {
    std::string names;
    std::optional<Date> latest;
    for (const auto& d : datasets) {
      names += (names.empty() ? "" : ", ") + d.dataset;
      if (d.latest_published && (!latest || *d.latest_published > *latest)) {
        latest = d.latest_published;
      }
    }
    out += fmt::format(
        "qlake {}: nothing to do: {} up to date{} ({:.1f}s)\n", who,
        names.empty() ? "no datasets" : names,
        latest ? " through " + FormatDate(*latest) + " (latest published)" : "", seconds);
  } else {
    out +=
        fmt::format("qlake {} {}: {} day(s) committed, {} failed in {:.1f}s (run {})\n",
                    who, status, committed_days(), failed_days(), seconds, run_id);
  }
  if (recovered_forward + recovered_back + recovered_dropped > 0) {
    out += fmt::format(
        "  recovered interrupted commits: {} rolled forward, {} rolled "
        "back, {} dropped\n",
        recovered_forward, recovered_back, recovered_dropped);
  }
  if (!lock_taken_over.empty())
    out += "  took over a stale lock of " + lock_taken_over + "\n";
  for (const auto& d : datasets) {
    if (d.days.empty() && d.stages.empty() && d.missing.empty()) continue;
    int64_t read = 0, written = 0, quarantined = 0, in = 0, outb = 0;
    int64_t fetched = 0, retries = 0, fetch_days = 0;
    std::map<std::string, double> stage_secs;
    for (const auto& day : d.days) {
      for (const auto& s : day.stages) {
        stage_secs[s.stage] += s.seconds;
        if (s.stage == "fetch") {
          fetched += s.bytes_in;
          retries += s.retries;
          ++fetch_days;
        }
        if (s.stage == "ingest") {
          read += s.rows_read;
          written += s.rows_written;
          quarantined += s.rows_quarantined;
          in += s.bytes_in;
          outb += s.bytes_out;
        }
      }
    }
    for (const auto& s : d.stages) stage_secs[s.stage] += s.seconds;
    std::string secs;
    for (const auto& [k, v] : stage_secs) secs += fmt::format(" {} {:.1f}s", k, v);
    std::string fetch_part;
    if (fetch_days > 0) {
      fetch_part = fmt::format(" fetched {:.1f} MB{};", Mb(fetched),
                               retries > 0 ? fmt::format(" ({} retries)", retries) : "");
    }
    out += fmt::format(
        "  {:<15} {} day(s) ok, {} failed; rows {} read, {} written, {} quarantined;{} "
        "{:.1f} MB -> {:.1f} MB;{}; watermark {}\n",
        d.dataset, d.committed(), d.failed(), read, written, quarantined, fetch_part,
        Mb(in), Mb(outb), secs,
        d.watermark_after ? FormatDate(*d.watermark_after) : std::string("none"));
    for (const auto& day : d.days) {
      if (day.status != "ok") {
        out += fmt::format("    {} FAILED: {}\n", FormatDate(day.day), day.error);
      }
    }
    for (const auto& s : d.stages) {
      if (s.status == "failed")
        out += fmt::format("    {} FAILED: {}\n", s.stage, s.error);
      for (const auto& n : s.notes) out += fmt::format("    {}: {}\n", s.stage, n);
    }
    if (!d.missing.empty()) {
      out += fmt::format("    {} day(s) missing past their publish time, latest {}\n",
                         d.missing.size(), FormatDate(d.missing.back()));
    }
  }
  for (const auto& n : notes) out += "  " + n + "\n";
  for (const auto& w : warnings) out += "  warning: " + w + "\n";
  for (const auto& a : alerts) out += "  alert " + a.kind + ": " + a.message + "\n";
  for (const auto& d : deliveries) {
    if (!d.ok) out += "  alert delivery via " + d.target + " failed: " + d.error + "\n";
  }
  if (!error.empty()) out += "  error: " + error + "\n";
  return out;
}

std::string RunReport::PrometheusText(const std::map<std::string, double>& last_success,
                                      double now_unix) const {
  std::string out;
  auto head = [&](std::string_view name, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
  };
  const std::string cmd = fmt::format("command=\"{}\"", Esc(command));
  head("qlake_last_run_timestamp_seconds", "Unix time the last run finished");
  out += fmt::format("qlake_last_run_timestamp_seconds{{{}}} {:.3f}\n", cmd, now_unix);
  head("qlake_last_run_success", "1 if the last run succeeded (ok or nothing to do)");
  bool ok = status == "ok" || status == "nothing_to_do";
  out += fmt::format("qlake_last_run_success{{{}}} {}\n", cmd, ok ? 1 : 0);
  head("qlake_last_run_duration_seconds", "Duration of the last run");
  out += fmt::format("qlake_last_run_duration_seconds{{{}}} {:.3f}\n", cmd, seconds);
  head("qlake_last_run_peak_rss_bytes", "Peak resident memory of the last run");
  out += fmt::format("qlake_last_run_peak_rss_bytes{{{}}} {}\n", cmd, peak_rss_bytes);
  head("qlake_last_success_timestamp_seconds",
       "Unix time of the last run in which the dataset had no failure");
  for (const auto& [ds, t] : last_success) {
    out += fmt::format("qlake_last_success_timestamp_seconds{{dataset=\"{}\"}} {:.3f}\n",
                       Esc(ds), t);
  }
  struct Row {
    std::string ds;
    int64_t committed, failed, read, written, quarantined, missing;
    double watermark;
    std::map<std::string, double> secs;
    int64_t fetch_days = 0, fetch_bytes = 0, fetch_retries = 0;
  };
  std::vector<Row> rows;
  for (const auto& d : datasets) {
    Row r{d.dataset,
          d.committed(),
          d.failed(),
          0,
          0,
          0,
          static_cast<int64_t>(d.missing.size()),
          -1,
          {}};
    for (const auto& day : d.days) {
      for (const auto& s : day.stages) {
        r.secs[s.stage] += s.seconds;
        if (s.stage == "fetch") {
          ++r.fetch_days;
          r.fetch_bytes += s.bytes_in;
          r.fetch_retries += s.retries;
        }
        if (s.stage == "ingest") {
          r.read += s.rows_read;
          r.written += s.rows_written;
          r.quarantined += s.rows_quarantined;
        }
      }
    }
    for (const auto& s : d.stages) r.secs[s.stage] += s.seconds;
    if (d.watermark_after) {
      r.watermark = static_cast<double>(ToDate32(*d.watermark_after)) * 86400.0;
    }
    rows.push_back(std::move(r));
  }
  auto per_ds = [&](std::string_view name, std::string_view help, auto get) {
    head(name, help);
    for (const auto& r : rows) {
      out += fmt::format("{}{{dataset=\"{}\"}} {}\n", name, Esc(r.ds), get(r));
    }
  };
  per_ds("qlake_run_days_committed", "Days committed by the last run",
         [](const Row& r) { return std::to_string(r.committed); });
  per_ds("qlake_run_days_failed", "Days or stages that failed in the last run",
         [](const Row& r) { return std::to_string(r.failed); });
  per_ds("qlake_run_rows_read", "Source rows read by the last run",
         [](const Row& r) { return std::to_string(r.read); });
  per_ds("qlake_run_rows_written", "Rows written to the lake by the last run",
         [](const Row& r) { return std::to_string(r.written); });
  per_ds("qlake_run_rows_quarantined", "Rows quarantined by the last run",
         [](const Row& r) { return std::to_string(r.quarantined); });
  per_ds("qlake_missing_days", "Days past their publish time that the source lacks",
         [](const Row& r) { return std::to_string(r.missing); });
  head("qlake_watermark_timestamp_seconds",
       "The dataset's watermark (midnight UTC of the day); absent when empty");
  for (const auto& r : rows) {
    if (r.watermark >= 0) {
      out += fmt::format("qlake_watermark_timestamp_seconds{{dataset=\"{}\"}} {:.0f}\n",
                         Esc(r.ds), r.watermark);
    }
  }
  bool any_fetch = false;
  for (const auto& r : rows) any_fetch |= r.fetch_days > 0;
  if (any_fetch) {
    head("qlake_run_fetch_bytes", "Bytes downloaded into the cache by the last run");
    for (const auto& r : rows) {
      if (r.fetch_days > 0) {
        out += fmt::format("qlake_run_fetch_bytes{{dataset=\"{}\"}} {}\n", Esc(r.ds),
                           r.fetch_bytes);
      }
    }
    head("qlake_run_fetch_retries",
         "Download attempts retried after transient failures in the last run");
    for (const auto& r : rows) {
      if (r.fetch_days > 0) {
        out += fmt::format("qlake_run_fetch_retries{{dataset=\"{}\"}} {}\n", Esc(r.ds),
                           r.fetch_retries);
      }
    }
  }
  head("qlake_run_stage_seconds", "Seconds spent per stage in the last run");
  for (const auto& r : rows) {
    for (const auto& [stage, s] : r.secs) {
      out +=
          fmt::format("qlake_run_stage_seconds{{dataset=\"{}\",stage=\"{}\"}} {:.3f}\n",
                      Esc(r.ds), Esc(stage), s);
    }
  }
  return out;
}

std::string MakeRunId() {
  // "2025-11-25T14:00:01.123Z" -> "20251125T140001.123Z"
  std::string iso = lake::UtcNowIso8601();
  std::string compact;
  for (char c : iso) {
    if (c != '-' && c != ':') compact += c;
  }
  return compact + "-" + std::to_string(getpid());
}

}  // namespace qlake::pipeline

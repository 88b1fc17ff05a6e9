// qlake fetch: downloads a dataset's flat files for some days from the bucket into a
// local cache (the bucket's key layout), skipping unchanged files and taking republished
// ones again. A thin view of qlake/fetch/fetch.h.

#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "qlake/core/logging.h"
#include "qlake/core/progress.h"
#include "qlake/fetch/fetch.h"
#include "qlake/io/filesystem.h"

namespace qlake::cli {

namespace {

struct FetchFlags {
  std::string dataset, date, from, to, as_of, cache, profile;
  bool latest = false;
  int last = 0;
  int jobs = 0;
  bool force = false, dry_run = false, json = false, no_verify = false;
};

constexpr const char* kFetchFooter = R"(
Real bucket (Massive, formerly Polygon.io; flat files need a paid plan):
  The flat-file keys are an S3 access key id and secret from the Massive dashboard
  (not the REST API key). Give them to qlake in one of these ways:
    export QLAKE_S3_ACCESS_KEY_ID=...  QLAKE_S3_SECRET_ACCESS_KEY=...
  or a profile in ~/.aws/credentials, used with --profile massive:
    [massive]
    aws_access_key_id = ...
    aws_secret_access_key = ...
  or the standard AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables.
  Never put them in a config file. Defaults: s3.endpoint=https://files.massive.com,
  s3.bucket=flatfiles, path-style requests, s3.region=us-east-1. Another server:
  --set s3.endpoint=http://127.0.0.1:9000 (or QLAKE_S3_ENDPOINT).

  qlake fetch --dataset stocks_daily --latest --cache ~/flatfiles
  qlake fetch --dataset stocks_minute --from 2025-01-02 --to 2025-01-31 --jobs 8
  qlake ingest --dataset stocks_minute --from 2025-01-02 --to 2025-01-31 \
      --source ~/flatfiles --changed-only      # re-commits republished days only

Files go to <cache>/<key>, with <cache>/_qlake/manifest.jsonl (key, size, ETag,
LastModified, sha256). Exit 0 when every expected file is in the cache (the newest
day of --latest/--last may be "not published yet": files appear ~11:00 ET the next
day); 4 on a download failure, 5 when nothing was found, 7 when some files failed.
See docs/fetch.md.)";

double Mb(int64_t b) { return static_cast<double>(b) / 1e6; }

void PrintText(const fetch::FetchReport& r) {
  for (const auto& f : r.files) {
    if (f.status == fetch::FileStatus::kSkipped) continue;
    std::string extra;
    if (f.status == fetch::FileStatus::kDownloaded ||
        f.status == fetch::FileStatus::kRepublished) {
      extra = fmt::format("{:.2f} MB in {:.2f}s{}{}", Mb(f.bytes), f.seconds,
                          f.attempts > 1 ? fmt::format(", {} attempts", f.attempts) : "",
                          f.resumed ? ", resumed" : "");
    } else if (!f.message.empty()) {
      extra = f.message;
    }
    std::cout << fmt::format("{}  {:<13}  {}\n", FormatDate(f.day),
                             fetch::FileStatusName(f.status), MaskSecrets(extra));
  }
  double rate = r.seconds > 0 ? Mb(r.bytes) / r.seconds : 0;
  std::cout << fmt::format(
      "{}: {} downloaded, {} republished, {} unchanged, {} not published, {} skipped "
      "(no file expected), {} failed; {:.1f} MB in {:.2f}s ({:.1f} MB/s) into {}\n",
      r.dataset, r.Count(fetch::FileStatus::kDownloaded),
      r.Count(fetch::FileStatus::kRepublished), r.Count(fetch::FileStatus::kUnchanged),
      r.Count(fetch::FileStatus::kNotPublished), r.Count(fetch::FileStatus::kSkipped),
      r.Count(fetch::FileStatus::kFailed), Mb(r.bytes), r.seconds, rate, r.cache);
  auto rep = r.RepublishedDays();
  if (!rep.empty()) {
    std::string days;
    for (auto d : rep) days += " " + FormatDate(d);
    std::cout << "republished (re-ingest with qlake ingest --changed-only):" << days
              << "\n";
  }
}

nlohmann::ordered_json VersionJson(const fetch::ObjectVersion& v) {
  return {{"size", v.size}, {"etag", v.etag}, {"last_modified", v.last_modified}};
}

void PrintJson(const fetch::FetchReport& r) {
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (const auto& f : r.files) {
    nlohmann::ordered_json j = {{"date", FormatDate(f.day)},
                                {"key", f.key},
                                {"status", std::string(fetch::FileStatusName(f.status))},
                                {"message", MaskSecrets(f.message)},
                                {"tolerated", f.tolerated},
                                {"size", f.version.size},
                                {"etag", f.version.etag},
                                {"last_modified", f.version.last_modified},
                                {"sha256", f.sha256},
                                {"bytes", f.bytes},
                                {"attempts", f.attempts},
                                {"resumed", f.resumed},
                                {"seconds", f.seconds}};
    if (f.replaced) j["replaced"] = VersionJson(*f.replaced);
    files.push_back(j);
  }
  nlohmann::ordered_json counts = nlohmann::ordered_json::object();
  for (auto s : {fetch::FileStatus::kDownloaded, fetch::FileStatus::kRepublished,
                 fetch::FileStatus::kUnchanged, fetch::FileStatus::kNotPublished,
                 fetch::FileStatus::kSkipped, fetch::FileStatus::kFailed,
                 fetch::FileStatus::kPlanned}) {
    counts[std::string(fetch::FileStatusName(s))] = r.Count(s);
  }
  nlohmann::ordered_json rep = nlohmann::ordered_json::array();
  for (auto d : r.RepublishedDays()) rep.push_back(FormatDate(d));
  auto summary = r.Summary();
  nlohmann::ordered_json j = {
      {"dataset", r.dataset},
      {"cache", r.cache},
      {"ok", summary.ok()},
      {"error", summary.ok() ? "" : MaskSecrets(summary.message())},
      {"seconds", r.seconds},
      {"bytes", r.bytes},
      {"counts", counts},
      {"republished_days", rep},
      {"files", files}};
  std::cout << j.dump(2) << "\n";
}

}  // namespace

Runner SetupFetch(CLI::App& app) {
  auto f = std::make_shared<FetchFlags>();
  app.add_option("--dataset", f->dataset, "Dataset (qlake catalog datasets)")->required();
  auto* date = app.add_option("--date", f->date, "One day (YYYY-MM-DD)");
  auto* from = app.add_option("--from", f->from, "First day of a range");
  auto* to = app.add_option("--to", f->to, "Last day of a range (inclusive)");
  auto* latest = app.add_flag("--latest", f->latest,
                              "The newest published day (and say if the newest "
                              "expected day is not published yet)");
  auto* last = app.add_option("--last", f->last, "The last N expected days up to today");
  date->excludes(from)->excludes(to)->excludes(latest)->excludes(last);
  latest->excludes(from)->excludes(to)->excludes(last);
  last->excludes(from)->excludes(to);
  from->needs(to);
  to->needs(from);
  app.add_option("--as-of", f->as_of,
                 "Treat this day as today for --latest/--last (default: today in New "
                 "York)");
  app.add_option("--cache", f->cache, "Cache folder (default: config fetch.cache)");
  app.add_option("--jobs", f->jobs, "Parallel downloads (default: fetch.jobs)");
  app.add_option("--profile", f->profile,
                 "AWS shared-credentials profile with the Massive keys (s3.profile)");
  app.add_flag("--force", f->force, "Download even files the cache already has");
  app.add_flag("--dry-run", f->dry_run, "List and compare only; download nothing");
  app.add_flag("--no-verify-gzip", f->no_verify,
               "Skip the gzip check of downloads (fetch.verify_gzip=false)");
  app.add_flag("--json", f->json, "Print the report as JSON");
  app.footer(kFetchFooter);

  return [f](Context& ctx) -> arrow::Status {
    auto& cfg = ctx.config;
    if (!f->profile.empty()) {
      ARROW_RETURN_NOT_OK(
          cfg.Set("s3.profile", f->profile, ConfigSource::kFlag, "--profile"));
    }
    if (!f->cache.empty()) {
      ARROW_RETURN_NOT_OK(
          cfg.Set("fetch.cache", f->cache, ConfigSource::kFlag, "--cache"));
    }
    if (f->jobs > 0) {
      ARROW_RETURN_NOT_OK(
          cfg.Set("fetch.jobs", std::to_string(f->jobs), ConfigSource::kFlag, "--jobs"));
    }
    if (f->no_verify) {
      ARROW_RETURN_NOT_OK(
          cfg.Set("fetch.verify_gzip", "false", ConfigSource::kFlag, "--no-verify-gzip"));
    }
    fetch::FetchOptions o;
    o.dataset = f->dataset;
    if (!f->date.empty()) {
      ARROW_ASSIGN_OR_RAISE(o.from, ParseDate(f->date));
      o.to = o.from;
    } else if (!f->from.empty()) {
      ARROW_ASSIGN_OR_RAISE(o.from, ParseDate(f->from));
      ARROW_ASSIGN_OR_RAISE(o.to, ParseDate(f->to));
    } else if (f->latest) {
      o.selection = fetch::Selection::kLatest;
    } else if (f->last > 0) {
      o.selection = fetch::Selection::kLastN;
      o.last_n = f->last;
    } else {
      return arrow::Status::Invalid(
          "give --date D, --from D --to D, --latest or --last N");
    }
    if (!f->as_of.empty()) {
      ARROW_ASSIGN_OR_RAISE(o.as_of, ParseDate(f->as_of));
    }
    ARROW_ASSIGN_OR_RAISE(o.cache, cfg.GetString("fetch.cache"));
    ARROW_ASSIGN_OR_RAISE(auto jobs, cfg.GetInt("fetch.jobs"));
    o.jobs = static_cast<int>(jobs);
    ARROW_RETURN_NOT_OK(fetch::ApplyTransferConfig(cfg, &o));
    o.force = f->force;
    o.dry_run = f->dry_run;

    ARROW_ASSIGN_OR_RAISE(auto fs, io::OpenFileSystem("s3://", cfg, &o.bucket_root));
    ARROW_ASSIGN_OR_RAISE(auto creds, io::ResolveS3Credentials(cfg));
    spdlog::info("fetch {}: credentials from {}", o.dataset, creds.source);

    ProgressOptions popts;
    popts.label = "fetch " + o.dataset;
    popts.unit = "files";
    popts.quiet = ctx.quiet || f->json;
    ProgressReporter progress(popts);
    auto report = fetch::Fetch(*fs, o, &progress);
    progress.Finish();
    if (!report.ok()) {
      auto st = report.status();
      if (io::ClassifyError(st) == io::ErrorClass::kForbidden &&
          st.message().find("not in your plan") == std::string::npos) {
        st =
            st.WithMessage(st.message(),
                           " (HTTP 403: not in your plan or bad credentials; credentials "
                           "from ",
                           creds.source, ")");
      }
      return st;
    }
    if (f->json) {
      PrintJson(*report);
    } else if (!ctx.quiet) {
      PrintText(*report);
    }
    auto st = report->Summary();
    if (!st.ok() && st.message().find("403") != std::string::npos) {
      st = st.WithMessage(st.message(), "\n(credentials from ", creds.source, ")");
    }
    return st;
  };
}

}  // namespace qlake::cli

#include "qlake/pipeline/options.h"

#include <cstdio>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "qlake/core/dates.h"
#include "qlake/core/strings.h"
#include "qlake/ingest/layout.h"
#include "qlake/io/filesystem.h"

namespace qlake::pipeline {

namespace {

// "1767225600" or "2026-01-01T00:00:00Z" -> Unix seconds.
arrow::Result<int64_t> ParseNow(const std::string& s) {
  int y, mo, d, h, mi, sec = 0;
  char z = 0;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d%c", &y, &mo, &d, &h, &mi, &sec, &z) >=
      5) {
    ARROW_ASSIGN_OR_RAISE(Date day, ParseDate(s.substr(0, 10)));
    return static_cast<int64_t>(ToDate32(day)) * 86400 + h * 3600 + mi * 60 + sec;
  }
  try {
    std::size_t used = 0;
    int64_t v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  return arrow::Status::Invalid("--now '", s,
                                "': expected Unix seconds or YYYY-MM-DDTHH:MM:SSZ (UTC)");
}

}  // namespace

arrow::Result<QlibStoreSpec> ParseQlibStore(const std::string& text) {
  QlibStoreSpec s;
  auto c1 = text.find(':');
  s.path = text.substr(0, c1);
  if (c1 != std::string::npos) {
    auto c2 = text.find(':', c1 + 1);
    s.freq =
        text.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1);
    if (c2 != std::string::npos) s.dataset = text.substr(c2 + 1);
  }
  if (s.freq != "day" && s.freq != "1min") {
    return arrow::Status::Invalid("--qlib '", text, "': freq must be day or 1min");
  }
  if (s.dataset.empty()) s.dataset = s.freq == "day" ? "stocks_daily" : "stocks_minute";
  return s;
}

arrow::Result<PipelineOptions> MakePipelineOptions(const PipelineArgs& args, Config& cfg,
                                                   const SystemProfile& profile) {
  PipelineOptions o;
  std::string file = args.project;
  if (file.empty() && std::filesystem::exists("qlake.yaml")) file = "qlake.yaml";
  if (!file.empty()) {
    ARROW_ASSIGN_OR_RAISE(o.project, LoadProject(file));
    ARROW_RETURN_NOT_OK(o.project.ApplyConfig(cfg));
    ARROW_RETURN_NOT_OK(cfg.ApplyModeDefaults(profile.usable_cores));
  } else {
    ARROW_ASSIGN_OR_RAISE(o.project.source, cfg.GetString("source.root"));
    ARROW_ASSIGN_OR_RAISE(o.project.lake, cfg.GetString("lake.root"));
  }
  if (!args.source.empty()) o.project.source = args.source;
  if (!args.lake.empty()) o.project.lake = args.lake;
  if (!args.cache.empty()) {
    o.project.cache = std::filesystem::absolute(args.cache).lexically_normal().string();
  }
  if (o.project.lake.empty()) {
    return arrow::Status::Invalid(
        "no lake: pass --lake DIR|URI, set lake.root, or write a "
        "project file with qlake init");
  }
  if (file.empty() && !args.datasets.empty()) {
    for (const auto& n : SplitCommaList(args.datasets))
      o.project.datasets.push_back({n, {}});
  }
  if (!args.metrics_file.empty()) o.metrics_file = args.metrics_file;
  if (!args.now.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto now, ParseNow(args.now));
    o.now_unix = now;
  }
  for (const auto& q : args.qlib) {
    ARROW_ASSIGN_OR_RAISE(auto spec, ParseQlibStore(q));
    o.project.qlib.push_back(std::move(spec));
  }

  auto& in = o.ingest;
  ARROW_ASSIGN_OR_RAISE(in.parquet, ingest::ParquetOutOptionsFromConfig(cfg));
  ARROW_ASSIGN_OR_RAISE(in.reader.chunk_rows, cfg.GetInt("ingest.chunk_rows"));
  in.layout = ingest::LayoutKind::kDaily;
  ARROW_ASSIGN_OR_RAISE(auto parallel, cfg.GetInt("ingest.parallel_files"));
  o.jobs = args.jobs > 0 ? args.jobs : static_cast<int>(parallel);
  auto& fo = o.features;
  ARROW_ASSIGN_OR_RAISE(fo.params, features::FeatureParamsFromConfig(cfg));
  fo.parquet = in.parquet;
  ARROW_ASSIGN_OR_RAISE(auto fpar, cfg.GetInt("features.parallel_days"));
  fo.parallel_days = static_cast<int>(fpar);
  // The fetch stage (project `cache:`): the same settings as `qlake fetch`.
  ARROW_RETURN_NOT_OK(fetch::ApplyTransferConfig(cfg, &o.fetch));
  // An S3 source gets the config's endpoint, timeouts, retries and credentials (the
  // same chain as qlake fetch and ingest); only where they came from is logged.
  if (io::IsS3Uri(o.project.source)) {
    ARROW_ASSIGN_OR_RAISE(o.source_fs,
                          io::OpenFileSystem(o.project.source, cfg, &o.source_root));
    ARROW_ASSIGN_OR_RAISE(auto creds, io::ResolveS3Credentials(cfg));
    spdlog::info("source {}: credentials from {}", o.project.source, creds.source);
  }
  ARROW_ASSIGN_OR_RAISE(auto limit, cfg.GetInt("memory.limit"));
  o.memory_budget = static_cast<uint64_t>(limit);
  ARROW_ASSIGN_OR_RAISE(o.memory_warn_fraction, cfg.GetDouble("memory.warn_fraction"));
  ARROW_ASSIGN_OR_RAISE(o.memory_act_fraction, cfg.GetDouble("memory.act_fraction"));
  return o;
}

}  // namespace qlake::pipeline

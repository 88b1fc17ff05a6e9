#include "qlake/pipeline/project.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "qlake/catalog/datasets.h"

namespace qlake::pipeline {

namespace {

std::string Where(const std::string& file, const YAML::Node& node) {
  return fmt::format("{}:{}", file, node.Mark().line + 1);
}

// Local relative paths are anchored at the project file's folder; URIs stay as they are.
std::string Resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty() || p.find("://") != std::string::npos) return p;
  std::filesystem::path path(p);
  if (path.is_relative()) path = std::filesystem::path(base_dir) / path;
  return path.lexically_normal().string();
}

arrow::Result<std::string> Scalar(const std::string& file, const YAML::Node& node,
                                  std::string_view key) {
  if (!node.IsScalar()) {
    return arrow::Status::Invalid(Where(file, node), ": '", key, "' must be a value");
  }
  return node.Scalar();
}

arrow::Result<bool> Bool(const std::string& file, const YAML::Node& node,
                         std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto s, Scalar(file, node, key));
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  return arrow::Status::Invalid(Where(file, node), ": '", key,
                                "' must be true or false, got '", s, "'");
}

arrow::Result<double> Number(const std::string& file, const YAML::Node& node,
                             std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto s, Scalar(file, node, key));
  try {
    std::size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  return arrow::Status::Invalid(Where(file, node), ": '", key,
                                "' must be a number, got '", s, "'");
}

arrow::Result<Date> DateValue(const std::string& file, const YAML::Node& node,
                              std::string_view key) {
  ARROW_ASSIGN_OR_RAISE(auto s, Scalar(file, node, key));
  auto d = ParseDate(s);
  if (!d.ok())
    return arrow::Status::Invalid(Where(file, node), ": ", d.status().message());
  return *d;
}

arrow::Status Unknown(const std::string& file, const YAML::Node& key,
                      std::string_view section, std::string_view valid) {
  return arrow::Status::Invalid(Where(file, key), ": unknown key '", key.Scalar(), "'",
                                section.empty() ? "" : " in ", section,
                                " (valid: ", valid, ")");
}

arrow::Status ParseAlerts(const std::string& file, const YAML::Node& node,
                          AlertOptions* a) {
  if (!node.IsMap()) {
    return arrow::Status::Invalid(Where(file, node), ": 'alerts' must be a map");
  }
  constexpr std::string_view kValid =
      "command, webhook, timeout_seconds, on_failure, on_missing_day, publish_deadline, "
      "max_quarantine_rate, on_empty_day";
  for (const auto& kv : node) {
    const std::string k = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (k == "command") {
      ARROW_ASSIGN_OR_RAISE(a->command, Scalar(file, v, k));
    } else if (k == "webhook") {
      ARROW_ASSIGN_OR_RAISE(a->webhook, Scalar(file, v, k));
      if (!a->webhook.empty() && a->webhook.rfind("http://", 0) != 0 &&
          a->webhook.rfind("https://", 0) != 0) {
        return arrow::Status::Invalid(
            Where(file, v), ": alerts.webhook must be an http:// or https:// URL");
      }
    } else if (k == "timeout_seconds") {
      ARROW_ASSIGN_OR_RAISE(double t, Number(file, v, k));
      if (t < 1 || t > 3600) {
        return arrow::Status::Invalid(Where(file, v),
                                      ": alerts.timeout_seconds must be 1..3600");
      }
      a->timeout_seconds = static_cast<int>(t);
    } else if (k == "on_failure") {
      ARROW_ASSIGN_OR_RAISE(a->on_failure, Bool(file, v, k));
    } else if (k == "on_missing_day") {
      ARROW_ASSIGN_OR_RAISE(a->on_missing_day, Bool(file, v, k));
    } else if (k == "on_empty_day") {
      ARROW_ASSIGN_OR_RAISE(a->on_empty_day, Bool(file, v, k));
    } else if (k == "publish_deadline") {
      ARROW_ASSIGN_OR_RAISE(auto s, Scalar(file, v, k));
      auto m = ParseClockMinute(s);
      if (!m.ok())
        return arrow::Status::Invalid(Where(file, v), ": ", m.status().message());
      a->publish_deadline_minute = *m;
    } else if (k == "max_quarantine_rate") {
      ARROW_ASSIGN_OR_RAISE(a->max_quarantine_rate, Number(file, v, k));
      if (a->max_quarantine_rate > 1) {
        return arrow::Status::Invalid(
            Where(file, v), ": alerts.max_quarantine_rate is a fraction (0..1)");
      }
    } else {
      return Unknown(file, kv.first, "alerts", kValid);
    }
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<int> ParseClockMinute(std::string_view text) {
  int h = -1, m = -1;
  if (text.size() == 5 && text[2] == ':') {
    auto digit = [&](std::size_t i) { return text[i] >= '0' && text[i] <= '9'; };
    if (digit(0) && digit(1) && digit(3) && digit(4)) {
      h = (text[0] - '0') * 10 + (text[1] - '0');
      m = (text[3] - '0') * 10 + (text[4] - '0');
    }
  }
  if (h < 0 || h > 23 || m < 0 || m > 59) {
    return arrow::Status::Invalid("'", text, "' is not a HH:MM time");
  }
  return h * 60 + m;
}

arrow::Result<Project> ParseProject(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return arrow::Status::Invalid(file, ":", e.mark.line + 1,
                                  ": YAML syntax error: ", e.msg);
  }
  if (!root.IsMap()) {
    return arrow::Status::Invalid(file,
                                  ": a project file is a YAML map (see qlake init)");
  }
  const std::string base =
      std::filesystem::absolute(std::filesystem::path(file)).parent_path().string();
  Project p;
  p.file = std::filesystem::absolute(file).lexically_normal().string();
  constexpr std::string_view kValid =
      "source, lake, cache, start, datasets, features, qlib, schedule, alerts, "
      "metrics_file, runs_keep, recheck_days, config";
  try {
    for (const auto& kv : root) {
      const std::string k = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      if (k == "source") {
        ARROW_ASSIGN_OR_RAISE(auto s, Scalar(file, v, k));
        p.source = Resolve(base, s);
      } else if (k == "lake") {
        ARROW_ASSIGN_OR_RAISE(auto s, Scalar(file, v, k));
        p.lake = Resolve(base, s);
      } else if (k == "cache") {
        ARROW_ASSIGN_OR_RAISE(auto s, Scalar(file, v, k));
        if (!s.empty()) p.cache = Resolve(base, s);
      } else if (k == "start") {
        ARROW_ASSIGN_OR_RAISE(p.start, DateValue(file, v, k));
      } else if (k == "datasets") {
        if (!v.IsSequence()) {
          return arrow::Status::Invalid(Where(file, v), ": 'datasets' must be a list");
        }
        for (const auto& item : v) {
          ProjectDataset d;
          if (item.IsScalar()) {
            d.name = item.Scalar();
          } else if (item.IsMap()) {
            for (const auto& dk : item) {
              const std::string key = dk.first.Scalar();
              if (key == "name") {
                ARROW_ASSIGN_OR_RAISE(d.name, Scalar(file, dk.second, key));
              } else if (key == "start") {
                ARROW_ASSIGN_OR_RAISE(d.start, DateValue(file, dk.second, key));
              } else {
                return Unknown(file, dk.first, "a dataset", "name, start");
              }
            }
          } else {
            return arrow::Status::Invalid(Where(file, item),
                                          ": a dataset is a name or {name, start}");
          }
          auto spec = catalog::FindDataset(d.name);
          if (!spec.ok()) {
            return arrow::Status::Invalid(Where(file, item), ": ",
                                          spec.status().message());
          }
          if (!(*spec)->ingestible) {
            return arrow::Status::Invalid(
                Where(file, item), ": dataset ", d.name,
                " cannot be ingested yet (stocks_daily, stocks_minute, options_daily, "
                "options_minute can)");
          }
          p.datasets.push_back(std::move(d));
        }
      } else if (k == "qlib") {
        if (!v.IsSequence()) {
          return arrow::Status::Invalid(Where(file, v),
                                        ": 'qlib' must be a list of stores");
        }
        for (const auto& item : v) {
          if (!item.IsMap()) {
            return arrow::Status::Invalid(Where(file, item),
                                          ": a qlib store is {path, freq, dataset}");
          }
          QlibStoreSpec q;
          for (const auto& qk : item) {
            const std::string key = qk.first.Scalar();
            if (key == "path") {
              ARROW_ASSIGN_OR_RAISE(auto s, Scalar(file, qk.second, key));
              q.path = Resolve(base, s);
            } else if (key == "freq") {
              ARROW_ASSIGN_OR_RAISE(q.freq, Scalar(file, qk.second, key));
              if (q.freq != "day" && q.freq != "1min") {
                return arrow::Status::Invalid(Where(file, qk.second),
                                              ": qlib freq must be day or 1min");
              }
            } else if (key == "dataset") {
              ARROW_ASSIGN_OR_RAISE(q.dataset, Scalar(file, qk.second, key));
            } else {
              return Unknown(file, qk.first, "a qlib store", "path, freq, dataset");
            }
          }
          if (q.path.empty()) {
            return arrow::Status::Invalid(Where(file, item),
                                          ": a qlib store needs a path");
          }
          if (q.dataset.empty()) {
            q.dataset = q.freq == "day" ? "stocks_daily" : "stocks_minute";
          }
          p.qlib.push_back(std::move(q));
        }
      } else if (k == "schedule") {
        if (!v.IsMap()) {
          return arrow::Status::Invalid(Where(file, v), ": 'schedule' must be a map");
        }
        for (const auto& sk : v) {
          const std::string key = sk.first.Scalar();
          if (key == "cron") {
            ARROW_ASSIGN_OR_RAISE(p.schedule_cron, Scalar(file, sk.second, key));
          } else if (key == "timezone") {
            ARROW_ASSIGN_OR_RAISE(p.schedule_timezone, Scalar(file, sk.second, key));
          } else {
            return Unknown(file, sk.first, "schedule", "cron, timezone");
          }
        }
      } else if (k == "alerts") {
        ARROW_RETURN_NOT_OK(ParseAlerts(file, v, &p.alerts));
      } else if (k == "features") {
        ARROW_ASSIGN_OR_RAISE(p.features, Bool(file, v, k));
      } else if (k == "metrics_file") {
        ARROW_ASSIGN_OR_RAISE(auto s, Scalar(file, v, k));
        p.metrics_file = Resolve(base, s);
      } else if (k == "runs_keep" || k == "recheck_days") {
        ARROW_ASSIGN_OR_RAISE(double n, Number(file, v, k));
        if (n < 1 || n > 100000) {
          return arrow::Status::Invalid(Where(file, v), ": '", k, "' must be 1..100000");
        }
        (k == "runs_keep" ? p.runs_keep : p.recheck_days) = static_cast<int>(n);
      } else if (k == "config") {
        if (!v.IsMap()) {
          return arrow::Status::Invalid(Where(file, v),
                                        ": 'config' must be a map of config keys");
        }
        // Nested maps and dotted keys, as in the user config file.
        std::vector<std::pair<std::string, YAML::Node>> stack;
        for (const auto& ck : v) stack.emplace_back(ck.first.Scalar(), ck.second);
        while (!stack.empty()) {
          auto [key, node] = stack.back();
          stack.pop_back();
          if (node.IsMap()) {
            for (const auto& ck : node) {
              stack.emplace_back(key + "." + ck.first.Scalar(), ck.second);
            }
          } else if (node.IsScalar()) {
            p.config.push_back({key, node.Scalar(), Where(file, node)});
          } else {
            return arrow::Status::Invalid(Where(file, node), ": config '", key,
                                          "' must be a value");
          }
        }
      } else {
        return Unknown(file, kv.first, "", kValid);
      }
    }
  } catch (const YAML::Exception& e) {
    return arrow::Status::Invalid(file, ":", e.mark.line + 1, ": ", e.msg);
  }
  ARROW_RETURN_NOT_OK(p.Validate());
  return p;
}

arrow::Status Project::Validate() const {
  const std::string where = file.empty() ? "project" : file;
  if (lake.empty()) return arrow::Status::Invalid(where, ": no 'lake' given");
  if (source.empty()) return arrow::Status::Invalid(where, ": no 'source' given");
  if (cache.find("://") != std::string::npos) {
    return arrow::Status::Invalid(where, ": 'cache' must be a local folder, not ", cache);
  }
  std::set<std::string> seen;
  for (const auto& d : datasets) {
    if (!seen.insert(d.name).second) {
      return arrow::Status::Invalid(where, ": dataset ", d.name, " is listed twice");
    }
  }
  std::set<std::string> paths;
  for (const auto& q : qlib) {
    // The export reads stocks_daily for day stores and stocks_minute for 1min stores.
    const std::string from = q.freq == "day" ? "stocks_daily" : "stocks_minute";
    if (q.dataset != from) {
      return arrow::Status::Invalid(where, ": qlib store ", q.path, " (freq ", q.freq,
                                    ") is built from ", from, ", not ", q.dataset);
    }
    if (!paths.insert(q.path).second) {
      return arrow::Status::Invalid(where, ": qlib store ", q.path, " is listed twice");
    }
  }
  return arrow::Status::OK();
}

arrow::Status Project::ApplyConfig(Config& cfg) const {
  for (const auto& c : config) {
    auto st = cfg.Set(c.key, c.value, ConfigSource::kFile, c.origin);
    if (!st.ok()) return st.WithMessage(c.origin, ": ", st.message());
  }
  return arrow::Status::OK();
}

arrow::Result<Project> LoadProject(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return arrow::Status::KeyError(
        "no project file at ", file,
        ": run `qlake init` to write a commented one, or pass --project FILE");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseProject(ss.str(), file);
}

std::string ProjectTemplate(const InitOptions& o) {
  std::string datasets;
  for (const auto& d : o.datasets) datasets += "  - " + d + "\n";
  std::string start = o.start ? FormatDate(*o.start) : "";
  return fmt::format(
      R"(# qlake project file. `qlake sync` run in this folder (or `qlake sync --project FILE`)
# brings every dataset below up to the latest published day: fetch -> ingest -> features
# -> Qlib export. Relative paths are relative to this file's folder. docs/pipeline.md
# describes every key; unknown keys are errors.

# Where the flat files come from: a local mirror folder with the bucket's key layout
# (qlake synth writes one), or s3://flatfiles for the Massive bucket (S3 settings and
# credentials come from the environment: docs/config.md).
source: {source}

# The Parquet lake: a local folder or s3://bucket/prefix.
lake: {lake}

# A local copy of the flat files. With it, sync first downloads each day it works on
# into this folder (resumable, verified, retried; republished files are downloaded
# again) and ingests the local file; the folder keeps the bucket's key layout. Without
# it (empty), ingest streams each day straight from the source.
{cache_line}

# First day to ingest for a dataset that has nothing committed yet. Without it, sync
# starts at the first day the source lists. A dataset may override it:
#   - {{name: stocks_minute, start: 2024-01-02}}
{start_line}

# Datasets kept up to date (the four aggregate datasets can be ingested today).
datasets:
{datasets}
# Compute the feature datasets (features/<dataset>: returns, vwap, relative volume,
# moneyness, ...; docs/features.md) for the days each sync commits.
features: true

# Qlib binary stores kept in step with the lake (freq: day or 1min; dataset: the lake
# dataset each is built from). Each store's days follow the lake's watermark.
qlib: []
#  - {{path: ./qlib/day, freq: day, dataset: stocks_daily}}
#  - {{path: ./qlib/1min, freq: 1min, dataset: stocks_minute}}

# Scheduling hints (qlake does not schedule itself). Files appear by about 11:00 New
# York time the next day, so run after that, Tuesday to Saturday:
#   30 11 * * 2-6  cd /data && qlake sync -q --metrics-file /var/lib/prometheus/qlake.prom
# (with CRON_TZ=America/New_York, or the equivalent UTC time).
schedule:
  cron: "30 11 * * 2-6"
  timezone: America/New_York

# Alerts: a command (the alert JSON on stdin) and/or a webhook (JSON POSTed), on a
# failed run, on a day still missing after its publish deadline (New York time, next
# calendar day), and on quality thresholds.
alerts:
  command: ""
  webhook: ""
  timeout_seconds: 30
  on_failure: true
  on_missing_day: true
  publish_deadline: "11:00"
  max_quarantine_rate: 0.01   # quarantined / read rows of a day; -1 disables
  on_empty_day: true          # a committed day without rows

# Prometheus textfile (node_exporter's textfile collector), rewritten after every run.
metrics_file: ""

# Run reports kept under <lake>/_qlake/runs/, and how many recent committed days each
# sync re-checks against the source listing for republished files.
runs_keep: 200
recheck_days: 30

# Any qlake config key for this project (docs/config.md), e.g.
config: {{}}
#  memory.limit: 4GiB
#  ingest.parallel_files: 2
)",
      fmt::arg("source", o.source), fmt::arg("lake", o.lake),
      fmt::arg("cache_line", o.cache.empty() ? "cache: \"\"   # e.g. ./flatfiles"
                                             : "cache: " + o.cache),
      fmt::arg("start_line", start.empty() ? "# start: 2025-01-02" : "start: " + start),
      fmt::arg("datasets", datasets));
}

}  // namespace qlake::pipeline

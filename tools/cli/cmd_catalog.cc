// qlake catalog: the flat-file catalog as data.
//   qlake catalog datasets [--json]      every dataset of the bucket: key prefix, header,
//                                        calendar, first date, ingestible
//   qlake catalog days --dataset X --from D --to D [--lake L] [--no-listing] [--json]
//                                        per day: does the calendar expect a file, does
//                                        the bucket listing have one (size, ETag,
//                                        LastModified), is the day committed in the lake
//                                        (and is that commit stale: its source differs
//                                        from the listing, i.e. the file was republished)

#include <atomic>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "qlake/catalog/datasets.h"
#include "qlake/fetch/fetch.h"
#include "qlake/io/filesystem.h"
#include "qlake/lake/lake.h"

namespace qlake::cli {

namespace {

struct CatalogFlags {
  bool json = false;
  std::string dataset, from, to, lake, profile;
  bool no_listing = false;
};

std::string_view GranularityName(catalog::Granularity g) {
  switch (g) {
    case catalog::Granularity::kDay:
      return "day";
    case catalog::Granularity::kMinute:
      return "minute";
    case catalog::Granularity::kSession:
      return "session";
    case catalog::Granularity::kTick:
      return "tick";
  }
  return "?";
}

arrow::Status RunDatasets(const CatalogFlags& f) {
  if (f.json) {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto& d : catalog::Datasets()) {
      nlohmann::ordered_json cols = nlohmann::ordered_json::array();
      for (auto c : d.Columns()) cols.push_back(std::string(c));
      arr.push_back({{"name", std::string(d.name)},
                     {"prefix", d.Prefix()},
                     {"key_pattern", d.Prefix() + "/YYYY/MM/YYYY-MM-DD.csv.gz"},
                     {"columns", cols},
                     {"calendar", std::string(catalog::FileCalendarName(d.calendar))},
                     {"granularity", std::string(GranularityName(d.granularity))},
                     {"options", d.options},
                     {"first_date", std::string(d.first_date)},
                     {"ingestible", d.ingestible}});
    }
    std::cout << arr.dump(2) << "\n";
    return arrow::Status::OK();
  }
  std::cout << fmt::format("{:<22} {:<33} {:<14} {:<8} {:<11} {}\n", "dataset",
                           "key prefix", "calendar", "grain", "first", "ingest");
  for (const auto& d : catalog::Datasets()) {
    std::cout << fmt::format(
        "{:<22} {:<33} {:<14} {:<8} {:<11} {}\n", d.name, d.Prefix(),
        catalog::FileCalendarName(d.calendar), GranularityName(d.granularity),
        d.first_date.empty() ? "?" : d.first_date, d.ingestible ? "yes" : "no");
  }
  return arrow::Status::OK();
}

struct DayRow {
  Date day;
  catalog::DayExpectation expect;
  std::optional<fetch::ObjectVersion> listed;
  std::string head_error;
  std::string lake;  // "committed", "stale", "-", or "" without a lake
};

arrow::Status RunDays(const CatalogFlags& f, Context& ctx) {
  auto& cfg = ctx.config;
  ARROW_ASSIGN_OR_RAISE(const catalog::DatasetSpec* spec,
                        catalog::FindDataset(f.dataset));
  ARROW_ASSIGN_OR_RAISE(Date from, ParseDate(f.from));
  ARROW_ASSIGN_OR_RAISE(Date to, ParseDate(f.to));
  if (from > to) return arrow::Status::Invalid("--from is after --to");
  if ((to - from).count() > 3700)
    return arrow::Status::Invalid("at most ~10 years at once");
  if (!f.profile.empty()) {
    ARROW_RETURN_NOT_OK(
        cfg.Set("s3.profile", f.profile, ConfigSource::kFlag, "--profile"));
  }
  std::vector<DayRow> rows;
  for (Date d = from; d <= to; d += date::days{1}) {
    DayRow r;
    r.day = d;
    auto e = catalog::ExpectFile(*spec, d);
    if (e.ok()) r.expect = *e;
    rows.push_back(r);
  }

  // The listing (the truth for what exists), then one HEAD per listed day for its ETag.
  if (!f.no_listing) {
    std::string root;
    ARROW_ASSIGN_OR_RAISE(auto fs, io::OpenFileSystem("s3://", cfg, &root));
    auto listed = fetch::ListDays(*fs, root, *spec, from, to);
    if (!listed.ok()) {
      auto st = listed.status();
      if (io::ClassifyError(st) == io::ErrorClass::kForbidden) {
        return st.WithMessage("listing ", spec->Prefix(),
                              ": not in your plan or bad credentials: ", st.message());
      }
      return st;
    }
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      auto it = listed->find(rows[i].day);
      if (it != listed->end()) {
        rows[i].listed = it->second.version;
        idx.push_back(i);
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto jobs, cfg.GetInt("fetch.jobs"));
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
      for (std::size_t k = next++; k < idx.size(); k = next++) {
        DayRow& r = rows[idx[k]];
        auto v = fetch::HeadObject(*fs, root, r.listed->key);
        if (v.ok()) {
          r.listed = *v;
        } else {
          r.head_error = v.status().message();
        }
      }
    };
    std::vector<std::thread> threads;
    std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(jobs), idx.size());
    for (std::size_t t = 1; t < n; ++t) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
  }

  // The lake, if there is one (never created here).
  std::string lake_uri = f.lake;
  if (lake_uri.empty()) {
    ARROW_ASSIGN_OR_RAISE(lake_uri, cfg.GetString("lake.root"));
  }
  std::string lake_path;
  ARROW_ASSIGN_OR_RAISE(auto lake_fs, io::OpenFileSystem(lake_uri, cfg, &lake_path));
  ARROW_ASSIGN_OR_RAISE(auto lake_info, lake_fs->GetFileInfo(lake_path));
  if (lake_info.type() == arrow::fs::FileType::Directory) {
    lake::LakeOptions lo;
    lo.create_root = false;
    ARROW_ASSIGN_OR_RAISE(auto lake, lake::Lake::Make(lake_fs, lake_path, lo));
    for (auto& r : rows) {
      ARROW_ASSIGN_OR_RAISE(auto rec, lake->GetCommit(spec->name, r.day));
      if (!rec) {
        r.lake = "-";
      } else if (r.listed) {
        ARROW_ASSIGN_OR_RAISE(auto stale, fetch::StaleDays(*lake, std::string(spec->name),
                                                           {{r.day, *r.listed}}));
        r.lake = stale.empty() ? "committed" : "stale";
      } else {
        r.lake = "committed";
      }
    }
  }

  auto expected_text = [](const DayRow& r) {
    return std::string(catalog::DayExpectationName(r.expect.kind));
  };
  if (f.json) {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto& r : rows) {
      nlohmann::ordered_json j = {{"date", FormatDate(r.day)},
                                  {"expected", expected_text(r)},
                                  {"reason", std::string(r.expect.reason)}};
      if (r.listed) {
        j["listed"] = {{"key", r.listed->key},
                       {"size", r.listed->size},
                       {"etag", r.listed->etag},
                       {"last_modified", r.listed->last_modified}};
      } else {
        j["listed"] = nullptr;
      }
      if (!r.head_error.empty()) j["head_error"] = r.head_error;
      j["lake"] = r.lake.empty() ? nlohmann::ordered_json(nullptr)
                                 : nlohmann::ordered_json(r.lake);
      arr.push_back(j);
    }
    std::cout << nlohmann::ordered_json{{"dataset", std::string(spec->name)},
                                        {"days", arr}}
                     .dump(2)
              << "\n";
    return arrow::Status::OK();
  }
  std::cout << fmt::format("{:<10}  {:<12}  {:<20}  {:>12}  {:<36}  {:<20}  {}\n", "date",
                           "expected", "reason", "size", "etag", "last_modified", "lake");
  for (const auto& r : rows) {
    std::cout << fmt::format(
        "{:<10}  {:<12}  {:<20}  {:>12}  {:<36}  {:<20}  {}\n", FormatDate(r.day),
        expected_text(r), r.expect.reason,
        r.listed ? std::to_string(r.listed->size) : (f.no_listing ? "?" : "-"),
        r.listed ? r.listed->etag : "", r.listed ? r.listed->last_modified : "",
        r.lake.empty() ? "(no lake)" : r.lake);
  }
  return arrow::Status::OK();
}

}  // namespace

Runner SetupCatalog(CLI::App& app) {
  auto f = std::make_shared<CatalogFlags>();
  app.require_subcommand(1);
  auto* datasets =
      app.add_subcommand("datasets", "Every dataset of the flat-file bucket");
  datasets->add_flag("--json", f->json, "Print as JSON");
  auto* days = app.add_subcommand(
      "days",
      "Per day: expected by the calendar? in the bucket listing (size, ETag, "
      "LastModified)? committed in the lake?");
  days->add_option("--dataset", f->dataset, "Dataset")->required();
  days->add_option("--from", f->from, "First day")->required();
  days->add_option("--to", f->to, "Last day (inclusive)")->required();
  days->add_option("--lake", f->lake, "Lake folder or URI (default: config lake.root)");
  days->add_option("--profile", f->profile, "AWS shared-credentials profile");
  days->add_flag("--no-listing", f->no_listing,
                 "Do not ask the bucket (calendar and lake only; no credentials needed)");
  days->add_flag("--json", f->json, "Print as JSON");
  return [f, datasets, days](Context& ctx) -> arrow::Status {
    if (datasets->parsed()) return RunDatasets(*f);
    if (days->parsed()) return RunDays(*f, ctx);
    return arrow::Status::Invalid("give a catalog subcommand: datasets or days");
  };
}

}  // namespace qlake::cli

#include "command.h"

namespace qlake::cli {

namespace {
constexpr Command kCommands[] = {
    {"synth", "Write deterministic synthetic flat files (a local S3 mirror)", SetupSynth},
    {"catalog",
     "The flat-file datasets, and per day what the calendar, bucket and lake have",
     SetupCatalog},
    {"fetch", "Download flat files from the S3 bucket into a local cache (resumable)",
     SetupFetch},
    {"ingest", "Validate flat files of a day range and commit them to the Parquet lake",
     SetupIngest},
    {"features", "Compute feature days (returns, vwap, relative volume, moneyness, ...)",
     SetupFeatures},
    {"query", "Read symbols x a date range of a lake dataset (table, CSV, JSON, Parquet)",
     SetupQuery},
    {"qlib", "Export the lake as a Qlib provider directory (qlib export)", SetupQlib},
    {"init", "Write a commented project file (qlake.yaml) for qlake sync", SetupInit},
    {"sync", "Bring the project's datasets up to the latest published day (cron-safe)",
     SetupSync},
    {"backfill", "Run the pipeline over a day range of one dataset, optionally one shard",
     SetupBackfill},
    {"status", "Per dataset: watermark, missing/pending/republished days, last run",
     SetupStatus},
    {"report", "Write a self-contained HTML report with plots of the lake's history",
     SetupReport},
    {"calendar", "List NYSE sessions with open/close times in ET and UTC", SetupCalendar},
    {"profile", "Show the machine profile and the processing mode it selects",
     SetupProfile},
    {"config", "Show the merged configuration and where each value came from",
     SetupConfig},
};
}  // namespace

std::span<const Command> Commands() { return kCommands; }

}  // namespace qlake::cli

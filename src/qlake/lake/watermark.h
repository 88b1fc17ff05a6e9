// File: qlake/lake/watermark.h
//
// The watermark of a dataset: the last day D such that every expected day (an NYSE
// trading day for US stocks and options) from the dataset's first committed day through
// D has a commit record. Downstream stages (features, Qlib export) read only up to it.
//
// It is derived state: ComputeWatermark() recomputes it from the set of committed days,
// and the lake stores it (`_qlake/<dataset>/watermark.json` plus `watermark.json.bak`)
// only so readers need not list every record. Committing a day before the first
// committed day restarts the contiguous run there, so the watermark can move back (a
// backfill into the past shows as incomplete until its gap is filled).
//
// Thread safety: pure functions over values.

#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/result.h>

#include "qlake/catalog/datasets.h"
#include "qlake/core/dates.h"

namespace qlake::lake {

struct Watermark {
  static constexpr std::string_view kFormat = "qlake.watermark.v1";

  std::string dataset;
  /// The first committed day; nullopt when nothing is committed.
  std::optional<Date> first_day;
  /// The watermark; nullopt when nothing is committed (else >= first_day).
  std::optional<Date> last_contiguous;
  /// UTC ISO 8601 time it was computed; not compared by ==.
  std::string updated_at;

  bool empty() const { return !last_contiguous.has_value(); }
  bool operator==(const Watermark& o) const {
    return dataset == o.dataset && first_day == o.first_day &&
           last_contiguous == o.last_contiguous;
  }
};

/// The days a dataset has source files on: its catalog calendar when `dataset` is a
/// catalog name, else NYSE trading days. kFutures is approximated by weekdays (futures
/// are not ingestible yet; see docs/lake.md).
catalog::FileCalendar CalendarForDataset(std::string_view dataset);

/// The first expected day strictly after `d` on calendar `cal`. Invalid outside the NYSE
/// calendar's supported years for kNyse.
arrow::Result<Date> NextExpectedDay(catalog::FileCalendar cal, Date d);

/// Recomputes the watermark from the committed days (any order, duplicates allowed).
/// Walks expected days from the earliest committed day while each next expected day is
/// committed. A calendar limit (e.g. past the NYSE calendar's last year) ends the walk.
Watermark ComputeWatermark(std::string_view dataset, catalog::FileCalendar cal,
                           std::vector<Date> committed_days);

std::string SerializeWatermark(const Watermark& w);
/// Invalid (naming `where`) unless `text` is a well-formed watermark of `dataset`.
arrow::Result<Watermark> ParseWatermark(std::string_view text, std::string_view dataset,
                                        std::string_view where);

}  // namespace qlake::lake

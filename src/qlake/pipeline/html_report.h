// File: qlake/pipeline/html_report.h
//
// `qlake report --html OUT`: one self-contained HTML page (no network, no external
// script or style) with plots drawn as inline SVG by a small embedded script from the
// data embedded in the page: rows per day per dataset, committed / missing / pending
// days, quarantine reasons over time, and run durations. Each plot is a <figure
// class="plot" data-plot="..."> whose <svg> the script fills; it then sets
// data-rendered="<marks drawn>" on the figure and data-rendered="1" on <body>, which is
// what the headless-browser test checks.
//
// Thread safety: pure function over the lake (read only).

#pragma once

#include <string>

#include <arrow/result.h>

#include "qlake/pipeline/pipeline.h"

namespace qlake::pipeline {

/// Builds the page for the lake of `options` (source listing used for missing days if
/// reachable). `max_days`: only the most recent days per dataset (0 = all).
arrow::Result<std::string> BuildHtmlReport(const PipelineOptions& options, int max_days);

}  // namespace qlake::pipeline

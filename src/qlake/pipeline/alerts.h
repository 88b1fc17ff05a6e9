// File: qlake/pipeline/alerts.h
//
// Alerts at the end of a run: on failure (the run failed or a day/stage failed), on a day
// still missing from the source past its publish deadline (about 11:00 New York time the
// next calendar day, flatfiles.md section 6), and on quality thresholds (a day's
// quarantine rate above alerts.max_quarantine_rate, a committed day without rows).
//
// All alerts of a run go out together as one JSON document:
//   {"format": "qlake.alert.v1", "run_id", "command", "status", "host", "lake",
//    "summary": "...", "alerts": [{"kind", "dataset", "day", "message"}, ...]}
// to a command (/bin/sh -c, the document on stdin, QLAKE_ALERT_KINDS and
// QLAKE_ALERT_SUMMARY in the environment) and/or POSTed to a webhook (libcurl,
// Content-Type: application/json; any 2xx is success). A failed delivery is recorded in
// the run report and logged; it never changes the run's exit code.
//
// Thread safety: pure functions; DeliverAlerts blocks up to the timeout per target.

#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qlake/pipeline/project.h"
#include "qlake/pipeline/report.h"

namespace qlake::pipeline {

/// The alerts a finished run raises under `options` (missing days come from the report).
std::vector<AlertRecord> EvaluateAlerts(const AlertOptions& options,
                                        const RunReport& report);

/// The JSON document sent for `report.alerts`.
std::string AlertDocument(const RunReport& report);

/// Sends `report.alerts` (if any) to the configured targets.
std::vector<DeliveryRecord> DeliverAlerts(const AlertOptions& options,
                                          const RunReport& report);

/// The Unix time (seconds) by which `day`'s file is expected: `deadline_minute` after New
/// York midnight of the next calendar day.
int64_t PublishDeadline(Date day, int deadline_minute);

}  // namespace qlake::pipeline

// File: qlake/core/progress.h
//
// Progress of long work (downloads, ingest of many days) for a person watching it.
//
//   ProgressOptions opts;
//   opts.label = "ingest";
//   opts.unit = "days";
//   opts.total_units = days.size();
//   ProgressReporter progress(opts);
//   ... from any thread:  progress.Add(/*units=*/1, /*bytes=*/file_size);
//   progress.Finish();
//
// Where stderr is a terminal it keeps one live line, redrawn at most every
// `redraw_interval` (10 times a second):
//   ingest [#######.................] 12/40 days  152.3 MiB  48.1 MiB/s  ETA 0:12
// Elsewhere (a log file, CI) it logs a plain line through spdlog at info every
// `log_interval` (10 s), so logs stay readable. Finish() writes a final line in either
// case. With `quiet` it writes nothing at all. Sizes are binary (MiB = 2^20 bytes), like
// every size qlake prints or parses.
//
// Rates are averages since the reporter was made; the ETA comes from bytes when a byte
// total is known, else from units.
//
// Output happens inside Add()/Tick() on whichever thread finds a redraw due, so nothing
// is drawn while no progress is reported; call Tick() from a loop that waits a long time.
//
// Thread safety: Add, Tick, SetTotals, snapshot and Finish may be called concurrently
// (counters are atomics; drawing is serialized, and a thread that finds another drawing
// skips its own redraw instead of waiting). The output stream must outlive the reporter.

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <mutex>
#include <optional>
#include <string>

namespace qlake {

struct ProgressOptions {
  // What is counted
  /// Prefix of each line ("ingest", "fetch"); may be empty.
  std::string label;
  /// Plural name of a unit of work: "files", "days", "rows".
  std::string unit = "files";
  /// Units expected in total; 0 = unknown (no bar, ETA from bytes only).
  uint64_t total_units = 0;
  /// Bytes expected in total; 0 = unknown.
  uint64_t total_bytes = 0;

  // Output
  /// Write nothing (the CLI's --quiet).
  bool quiet = false;
  /// Live bar (true) or periodic log lines (false); nullopt = whether stderr is a
  /// terminal.
  std::optional<bool> tty;
  /// Where the live bar goes; nullptr = std::cerr. Not owned.
  std::ostream* out = nullptr;
  /// Receives the non-terminal lines; empty = spdlog::info.
  std::function<void(const std::string&)> log;
  /// Minimum time between two redraws of the live bar.
  std::chrono::milliseconds redraw_interval{100};
  /// Time between two log lines when not on a terminal.
  std::chrono::milliseconds log_interval{10000};
  /// Characters between the brackets of the bar.
  int bar_width = 24;
  /// Monotonic clock; empty = std::chrono::steady_clock::now. For tests.
  std::function<std::chrono::steady_clock::time_point()> clock;

  static ProgressOptions Defaults() { return {}; }
};

/// Counters and derived rates at one instant.
struct ProgressSnapshot {
  uint64_t units = 0;
  uint64_t bytes = 0;
  uint64_t total_units = 0;
  uint64_t total_bytes = 0;
  double elapsed_seconds = 0;
  double units_per_second = 0;  ///< 0 until time has passed
  double bytes_per_second = 0;
  /// Seconds left; nullopt when it cannot be estimated yet (nothing done, no totals).
  std::optional<double> eta_seconds;
};

/// "0:12", "12:05", "1:02:03" (hours only when needed). Negative counts as 0.
std::string FormatDuration(double seconds);

class ProgressReporter {
 public:
  explicit ProgressReporter(ProgressOptions options);
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;
  /// Calls Finish(): a line is never left half-drawn.
  ~ProgressReporter();

  /// Counts finished work and redraws or logs if one is due.
  void Add(uint64_t units, uint64_t bytes = 0);
  /// Changes the totals, e.g. once a listing has been read.
  void SetTotals(uint64_t total_units, uint64_t total_bytes = 0);
  /// Redraws or logs if one is due, without counting anything.
  void Tick() { Add(0, 0); }
  /// Writes the final line ("... done in 0:12") and ends the live line. Idempotent; later
  /// Add() calls still count but draw nothing.
  void Finish();

  ProgressSnapshot snapshot() const;
  /// The live-bar line for the current counters, without "\r" or escape codes.
  std::string RenderLine() const;
  /// The line logged when not on a terminal.
  std::string RenderLogLine() const;

 private:
  using Clock = std::chrono::steady_clock;
  int64_t NowNs() const;
  ProgressSnapshot SnapshotAt(int64_t now_ns) const;
  std::string RenderLineAt(const ProgressSnapshot& s, bool final) const;
  std::string RenderLogLineAt(const ProgressSnapshot& s, bool final) const;
  void Emit(int64_t now_ns, bool final);

  ProgressOptions options_;
  bool tty_ = false;
  std::ostream* out_ = nullptr;
  Clock::time_point start_;

  std::atomic<uint64_t> units_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> total_units_{0};
  std::atomic<uint64_t> total_bytes_{0};
  /// Nanoseconds since start_ at which the next redraw or log line is due.
  std::atomic<int64_t> next_emit_ns_{0};
  std::atomic<bool> finished_{false};
  std::mutex emit_mu_;  // serializes writes to out_ / log
};

}  // namespace qlake

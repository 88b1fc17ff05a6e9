#include "qlake/core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <iostream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "qlake/core/system_profile.h"

namespace qlake {
namespace {

// "\r" returns to the start of the line; ESC[K erases what a longer previous line left.
constexpr std::string_view kEraseToEol = "\x1b[K";

std::string Prefix(const std::string& label) { return label.empty() ? "" : label + " "; }

std::string FormatCount(double per_second, const std::string& unit) {
  return fmt::format("{:.1f} {}/s", per_second, unit);
}

}  // namespace

std::string FormatDuration(double seconds) {
  if (!(seconds > 0)) seconds = 0;  // also NaN
  const auto total = static_cast<uint64_t>(std::llround(std::min(seconds, 1e12)));
  const uint64_t h = total / 3600;
  const uint64_t m = (total / 60) % 60;
  const uint64_t s = total % 60;
  if (h > 0) return fmt::format("{}:{:02}:{:02}", h, m, s);
  return fmt::format("{}:{:02}", m, s);
}

ProgressReporter::ProgressReporter(ProgressOptions options)
    : options_(std::move(options)) {
  if (!options_.clock) options_.clock = [] { return Clock::now(); };
  start_ = options_.clock();
  tty_ = options_.tty.value_or(::isatty(STDERR_FILENO) == 1);
  out_ = options_.out ? options_.out : &std::cerr;
  total_units_ = options_.total_units;
  total_bytes_ = options_.total_bytes;
  // A terminal gets its first frame at the first Add; a log waits one full interval, so a
  // job that ends within it logs only the final line.
  next_emit_ns_ =
      tty_ ? 0
           : std::chrono::duration_cast<std::chrono::nanoseconds>(options_.log_interval)
                 .count();
}

ProgressReporter::~ProgressReporter() { Finish(); }

int64_t ProgressReporter::NowNs() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(options_.clock() - start_)
      .count();
}

void ProgressReporter::SetTotals(uint64_t total_units, uint64_t total_bytes) {
  total_units_.store(total_units, std::memory_order_relaxed);
  total_bytes_.store(total_bytes, std::memory_order_relaxed);
}

void ProgressReporter::Add(uint64_t units, uint64_t bytes) {
  if (units) units_.fetch_add(units, std::memory_order_relaxed);
  if (bytes) bytes_.fetch_add(bytes, std::memory_order_relaxed);
  if (options_.quiet || finished_.load(std::memory_order_acquire)) return;
  const int64_t now = NowNs();
  if (now < next_emit_ns_.load(std::memory_order_relaxed)) return;
  // Another thread drawing right now will show our counts too: do not queue behind it.
  std::unique_lock lock(emit_mu_, std::try_to_lock);
  if (!lock.owns_lock() || finished_.load(std::memory_order_acquire)) return;
  if (now < next_emit_ns_.load(std::memory_order_relaxed)) return;  // drawn meanwhile
  const auto interval = tty_ ? options_.redraw_interval : options_.log_interval;
  next_emit_ns_.store(now + std::chrono::nanoseconds(interval).count(),
                      std::memory_order_relaxed);
  Emit(now, /*final=*/false);
}

void ProgressReporter::Finish() {
  std::lock_guard lock(emit_mu_);
  if (finished_.exchange(true, std::memory_order_acq_rel)) return;
  if (options_.quiet) return;
  // Work that never started (e.g. the command failed before its first unit) gets no
  // "done" line.
  const ProgressSnapshot s = SnapshotAt(NowNs());
  if (s.units == 0 && s.bytes == 0 && s.total_units == 0 && s.total_bytes == 0) return;
  Emit(NowNs(), /*final=*/true);
}

// Called with emit_mu_ held.
void ProgressReporter::Emit(int64_t now_ns, bool final) {
  const ProgressSnapshot s = SnapshotAt(now_ns);
  if (tty_) {
    *out_ << '\r' << RenderLineAt(s, final) << kEraseToEol;
    if (final) *out_ << '\n';
    out_->flush();
    return;
  }
  const std::string line = RenderLogLineAt(s, final);
  if (options_.log) {
    options_.log(line);
  } else {
    spdlog::info("{}", line);
  }
}

ProgressSnapshot ProgressReporter::SnapshotAt(int64_t now_ns) const {
  ProgressSnapshot s;
  s.units = units_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.total_units = total_units_.load(std::memory_order_relaxed);
  s.total_bytes = total_bytes_.load(std::memory_order_relaxed);
  s.elapsed_seconds = static_cast<double>(std::max<int64_t>(now_ns, 0)) / 1e9;
  if (s.elapsed_seconds > 0) {
    s.units_per_second = static_cast<double>(s.units) / s.elapsed_seconds;
    s.bytes_per_second = static_cast<double>(s.bytes) / s.elapsed_seconds;
  }
  // Bytes predict better than units when known: days and files vary a lot in size.
  if (s.total_bytes > 0 && s.bytes >= s.total_bytes) {
    s.eta_seconds = 0;
  } else if (s.total_bytes > 0 && s.bytes_per_second > 0) {
    s.eta_seconds = static_cast<double>(s.total_bytes - s.bytes) / s.bytes_per_second;
  } else if (s.total_units > 0 && s.units >= s.total_units) {
    s.eta_seconds = 0;
  } else if (s.total_units > 0 && s.units_per_second > 0) {
    s.eta_seconds = static_cast<double>(s.total_units - s.units) / s.units_per_second;
  }
  return s;
}

ProgressSnapshot ProgressReporter::snapshot() const { return SnapshotAt(NowNs()); }

std::string ProgressReporter::RenderLine() const {
  return RenderLineAt(snapshot(), /*final=*/false);
}

std::string ProgressReporter::RenderLogLine() const {
  return RenderLogLineAt(snapshot(), /*final=*/false);
}

std::string ProgressReporter::RenderLineAt(const ProgressSnapshot& s, bool final) const {
  std::string line = Prefix(options_.label);
  if (s.total_units > 0) {
    const int width = std::max(options_.bar_width, 1);
    const double frac =
        std::min(1.0, static_cast<double>(s.units) / static_cast<double>(s.total_units));
    const int filled = static_cast<int>(frac * width);
    line += '[';
    line.append(static_cast<size_t>(filled), '#');
    line.append(static_cast<size_t>(width - filled), '.');
    line += fmt::format("] {}/{} {}", s.units, s.total_units, options_.unit);
  } else {
    line += fmt::format("{} {}", s.units, options_.unit);
  }
  if (s.bytes > 0 || s.total_bytes > 0) {
    line += "  " + HumanBytes(s.bytes);
    line += "  " + HumanBytes(static_cast<uint64_t>(s.bytes_per_second)) + "/s";
  } else {
    line += "  " + FormatCount(s.units_per_second, options_.unit);
  }
  if (final) {
    line += "  done in " + FormatDuration(s.elapsed_seconds);
  } else {
    line += "  ETA " +
            (s.eta_seconds ? FormatDuration(*s.eta_seconds) : std::string("--:--"));
  }
  return line;
}

std::string ProgressReporter::RenderLogLineAt(const ProgressSnapshot& s,
                                              bool final) const {
  std::string line = options_.label.empty() ? "progress: " : options_.label + ": ";
  if (final) line += "done: ";
  if (s.total_units > 0) {
    line += fmt::format(
        "{}/{} {} ({:.0f} %)", s.units, s.total_units, options_.unit,
        100.0 * static_cast<double>(s.units) / static_cast<double>(s.total_units));
  } else {
    line += fmt::format("{} {}", s.units, options_.unit);
  }
  if (s.bytes > 0 || s.total_bytes > 0) {
    line += fmt::format(", {} at {}/s", HumanBytes(s.bytes),
                        HumanBytes(static_cast<uint64_t>(s.bytes_per_second)));
  } else {
    line += ", " + FormatCount(s.units_per_second, options_.unit);
  }
  if (final) {
    line += ", in " + FormatDuration(s.elapsed_seconds);
  } else {
    line += ", elapsed " + FormatDuration(s.elapsed_seconds);
    if (s.eta_seconds) line += ", ETA " + FormatDuration(*s.eta_seconds);
  }
  return line;
}

}  // namespace qlake

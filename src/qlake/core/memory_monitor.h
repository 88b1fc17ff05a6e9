// File: qlake/core/memory_monitor.h
//
// The memory monitor watches how much memory qlake uses against a budget (config
// memory.limit) and tells the code that holds memory to give some back before the
// kernel's OOM killer does it for us (DESIGN.md section 1: warn at 75 %, act at 85 %).
//
// Every `interval` a background thread takes a sample: the process RSS (and its peak,
// VmHWM) and, when the process runs in a memory cgroup, the cgroup's working set (usage
// minus inactive file cache, which the kernel reclaims by itself). The pressure is the
// larger of RSS / budget and working set / cgroup limit. Three tiers follow from it:
//
//   normal    pressure < warn_fraction
//   warn      pressure >= warn_fraction (0.75): consumers should shrink (smaller batches,
//             fewer files in flight)
//   critical  pressure >= act_fraction (0.85): consumers should also flush what they
//             buffer; after notifying them the monitor calls malloc_trim(0) so freed heap
//             goes back to the kernel
//
// Escalation is immediate. Going down needs the pressure to fall `hysteresis` below the
// tier's threshold and stay there for `calm_period`, so a pipeline hovering at 75 % does
// not flap between tiers. Every tier change (up or down) is delivered once to every
// registered consumer; a change back to normal means "you may grow again". Each
// escalation logs one warning.
//
// Usage:
//   ARROW_ASSIGN_OR_RAISE(auto opts, MemoryMonitorOptions::FromConfig(config, profile));
//   ARROW_ASSIGN_OR_RAISE(auto monitor, MemoryMonitor::Make(std::move(opts)));
//   auto reg = monitor->Register(
//       [&](const MemoryEvent& e) { writer.OnMemoryTier(e.tier); });
//   ARROW_RETURN_NOT_OK(monitor->Start());
//   ...  // reg unregisters when it goes out of scope; ~MemoryMonitor stops the thread
//
// There is deliberately no process-wide instance: the pipeline owns one monitor and hands
// a MemoryMonitor& to the stages that hold memory, which keeps the dependency visible and
// lets tests run monitors side by side.
//
// Tests drive the tiers without threads: inject `sampler`, `clock` and `trim` and call
// SampleOnce().
//
// Thread safety: all public methods may be called from any thread. Callbacks run on the
// sampling thread (the monitor's thread, or the caller of SampleOnce) one at a time; they
// must be quick, must not throw, and must not call Register, destroy a Registration, or
// call Stop (each of those waits for the callbacks to finish: deadlock). Reading tier()
// or stats() from a callback is fine.

#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <arrow/result.h>
#include <arrow/status.h>

#include "qlake/core/config.h"
#include "qlake/core/system_profile.h"

namespace qlake {

enum class MemoryTier { kNormal = 0, kWarn = 1, kCritical = 2 };
std::string_view MemoryTierName(MemoryTier tier);  // "normal", "warn", "critical"

/// One reading of the process's memory.
struct MemorySample {
  uint64_t rss = 0;           ///< resident set size (VmRSS)
  uint64_t peak_rss = 0;      ///< high-water mark of the RSS (VmHWM); 0 if unknown
  uint64_t cgroup_usage = 0;  ///< cgroup working set; 0 if unknown or no cgroup
};

using MemorySampler = std::function<arrow::Result<MemorySample>()>;
using MonotonicClock = std::function<std::chrono::steady_clock::time_point()>;

/// The real sampler: VmRSS and VmHWM from <root>/proc/self/status and, when
/// `cgroup_memory_dir` is not empty, the working set of that cgroup directory (v2:
/// memory.current minus inactive_file of memory.stat; v1: memory.usage_in_bytes minus
/// total_inactive_file). Errors are IOError / Invalid naming the file.
MemorySampler ProcMemorySampler(std::string root = "/",
                                std::string cgroup_memory_dir = "");

/// What a consumer is told when the tier changes.
struct MemoryEvent {
  MemoryTier tier = MemoryTier::kNormal;      ///< the new tier
  MemoryTier previous = MemoryTier::kNormal;  ///< the tier before
  MemorySample sample;                        ///< the sample that caused the change
  double pressure = 0;                        ///< see the file comment
  uint64_t budget = 0;                        ///< MemoryMonitorOptions::budget_bytes
};
using MemoryCallback = std::function<void(const MemoryEvent&)>;

struct MemoryMonitorOptions {
  // Behaviour
  /// The process's memory budget in bytes (config memory.limit). Required (> 0).
  uint64_t budget_bytes = 0;
  /// Limit of the process's memory cgroup (SystemProfile::cgroup_memory_limit); 0 = do
  /// not compare the cgroup's working set with anything.
  uint64_t cgroup_limit_bytes = 0;
  /// Fraction of the budget at which the warn tier starts.
  double warn_fraction = 0.75;
  /// Fraction at which the critical tier starts (flush, malloc_trim). Must be > warn.
  double act_fraction = 0.85;
  /// A tier is left only when the pressure is this far below its threshold...
  double hysteresis = 0.05;
  /// ...and has stayed there this long. 0 = leave at once.
  std::chrono::milliseconds calm_period{1000};

  // Performance
  /// Time between samples of the background thread. Each sample reads one to three small
  /// /proc or /sys files; 100 ms notices a fast-growing batch in time at negligible cost.
  std::chrono::milliseconds interval{100};

  // Injection (tests). Empty = the real thing.
  /// Directory of the process's memory cgroup for the default sampler
  /// (SystemProfile::cgroup_memory_path); empty = RSS only.
  std::string cgroup_memory_dir;
  MemorySampler sampler;       ///< default: ProcMemorySampler("/", cgroup_memory_dir)
  MonotonicClock clock;        ///< default: std::chrono::steady_clock::now
  std::function<void()> trim;  ///< default: malloc_trim(0)

  static MemoryMonitorOptions Defaults() { return {}; }
  /// Options for this machine: the budget plus the cgroup limit and directory of
  /// `profile`.
  static MemoryMonitorOptions ForProfile(const SystemProfile& profile,
                                         uint64_t budget_bytes);
  /// ForProfile with the budget, fractions and interval of the configuration
  /// (memory.limit, memory.warn_fraction, memory.act_fraction,
  /// memory.sample_interval_ms). Errors from the config getters or Validate().
  static arrow::Result<MemoryMonitorOptions> FromConfig(const Config& config,
                                                        const SystemProfile& profile);
  /// Invalid unless budget > 0, 0 < warn < act <= 1, 0 <= hysteresis < warn, interval > 0
  /// and calm_period >= 0.
  arrow::Status Validate() const;
};

/// A snapshot of the monitor's state.
struct MemoryStats {
  MemoryTier tier = MemoryTier::kNormal;
  uint64_t rss = 0;           ///< last sampled RSS
  uint64_t peak_rss = 0;      ///< max of sampled RSS and VmHWM since the monitor was made
  uint64_t cgroup_usage = 0;  ///< last sampled cgroup working set
  double pressure = 0;        ///< last computed pressure
  uint64_t escalations = 0;   ///< changes to a higher tier
  uint64_t samples = 0;       ///< successful samples
  uint64_t sample_errors = 0;
};

class MemoryMonitor {
  struct Registry;

 public:
  /// Keeps a callback registered; unregisters it when destroyed or Reset(). Movable. May
  /// outlive the monitor (it then does nothing). After the destructor or Reset() returns,
  /// the callback is not running and will not be called again.
  class Registration {
   public:
    Registration() = default;
    Registration(Registration&& other) noexcept;
    Registration& operator=(Registration&& other) noexcept;
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration() { Reset(); }

    void Reset();
    bool active() const { return !registry_.expired(); }

   private:
    friend class MemoryMonitor;
    Registration(std::weak_ptr<Registry> registry, uint64_t id)
        : registry_(std::move(registry)), id_(id) {}
    std::weak_ptr<Registry> registry_;
    uint64_t id_ = 0;
  };

  /// Validates the options; the monitor starts in the normal tier, not running.
  static arrow::Result<std::unique_ptr<MemoryMonitor>> Make(MemoryMonitorOptions options);

  MemoryMonitor(const MemoryMonitor&) = delete;
  MemoryMonitor& operator=(const MemoryMonitor&) = delete;
  /// Stops the background thread.
  ~MemoryMonitor();

  /// Registers a consumer. It is not called for the current tier, only for later changes;
  /// read tier() to start in the right state.
  [[nodiscard]] Registration Register(MemoryCallback callback);

  /// Takes one sample, updates the tier and, if it changed, notifies the consumers (and
  /// trims at an escalation to critical) on the calling thread. Returns the tier after
  /// the sample, or the sampler's error (the tier is then unchanged).
  arrow::Result<MemoryTier> SampleOnce();

  /// Starts the background thread that calls SampleOnce() every interval. Sampler errors
  /// are logged (once) and counted, not fatal. Invalid if already running.
  arrow::Status Start();
  /// Stops and joins the thread; returns within about one sample's time. Idempotent.
  void Stop();
  bool running() const;

  MemoryTier tier() const { return tier_.load(std::memory_order_acquire); }
  MemoryStats stats() const;
  const MemoryMonitorOptions& options() const { return options_; }

 private:
  explicit MemoryMonitor(MemoryMonitorOptions options);
  void Run();
  MemoryTier NextTier(MemoryTier current, double pressure,
                      std::chrono::steady_clock::time_point now);
  void Notify(const MemoryEvent& event);

  MemoryMonitorOptions options_;
  std::shared_ptr<Registry> registry_;
  std::atomic<MemoryTier> tier_{MemoryTier::kNormal};

  std::mutex sample_mu_;  // serializes SampleOnce (thread and direct callers)
  // Guarded by sample_mu_: when the pressure first fell below the current tier's band.
  std::optional<std::chrono::steady_clock::time_point> calm_since_;

  mutable std::mutex stats_mu_;
  MemoryStats stats_;  // guarded by stats_mu_

  std::mutex lifecycle_mu_;       // held through Start and Stop (including the join)
  mutable std::mutex thread_mu_;  // guards thread_ and stop_
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace qlake

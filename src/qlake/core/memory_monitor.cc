#include "qlake/core/memory_monitor.h"

#include <malloc.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace qlake {
namespace {

namespace fs = std::filesystem;

arrow::Result<std::string> ReadWholeFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return arrow::Status::IOError(path.string(), ": cannot open for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

std::string_view TrimWs(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::optional<uint64_t> ToU64(std::string_view s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Value of "key<sep>number[ kB]" in a key/value file such as /proc/self/status
// ("VmRSS:    1234 kB") or memory.stat ("inactive_file 1234"). nullopt if the key is
// absent; Invalid if its value is not a number.
arrow::Result<std::optional<uint64_t>> FindValue(const fs::path& path,
                                                 std::string_view text,
                                                 std::string_view key, char sep) {
  size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.size() <= key.size() || line.substr(0, key.size()) != key ||
        line[key.size()] != sep) {
      continue;
    }
    std::string_view value = TrimWs(line.substr(key.size() + 1));
    uint64_t scale = 1;
    if (value.size() > 3 && value.substr(value.size() - 3) == " kB") {
      value = TrimWs(value.substr(0, value.size() - 3));
      scale = 1024;
    }
    const auto v = ToU64(value);
    if (!v) {
      return arrow::Status::Invalid(path.string(), ": ", key, " is not a number: '",
                                    TrimWs(line), "'");
    }
    return *v * scale;
  }
  return std::nullopt;
}

// Reports a sampler error the first time it happens, then only counts it: a broken /proc
// must not fill the log at 10 lines a second.
void LogSampleError(const arrow::Status& st, uint64_t errors_so_far) {
  if (errors_so_far == 0) {
    spdlog::warn("memory monitor: cannot sample memory use ({}); will keep trying",
                 st.ToString());
  }
}

}  // namespace

std::string_view MemoryTierName(MemoryTier tier) {
  switch (tier) {
    case MemoryTier::kNormal:
      return "normal";
    case MemoryTier::kWarn:
      return "warn";
    case MemoryTier::kCritical:
      return "critical";
  }
  return "normal";
}

MemorySampler ProcMemorySampler(std::string root, std::string cgroup_memory_dir) {
  const fs::path status_path = fs::path(root.empty() ? "/" : root) / "proc/self/status";
  // Which cgroup version's files to read is decided once: the directory does not change.
  std::optional<fs::path> usage_path;
  std::optional<fs::path> stat_path;
  std::string inactive_key;
  if (!cgroup_memory_dir.empty()) {
    const fs::path dir(cgroup_memory_dir);
    std::error_code ec;
    if (fs::exists(dir / "memory.current", ec)) {
      usage_path = dir / "memory.current";
      inactive_key = "inactive_file";
    } else {
      usage_path = dir / "memory.usage_in_bytes";
      inactive_key = "total_inactive_file";
    }
    stat_path = dir / "memory.stat";
  }
  return [status_path, usage_path, stat_path,
          inactive_key]() -> arrow::Result<MemorySample> {
    MemorySample s;
    ARROW_ASSIGN_OR_RAISE(const std::string status, ReadWholeFile(status_path));
    ARROW_ASSIGN_OR_RAISE(auto rss, FindValue(status_path, status, "VmRSS", ':'));
    if (!rss) return arrow::Status::Invalid(status_path.string(), ": no VmRSS line");
    s.rss = *rss;
    ARROW_ASSIGN_OR_RAISE(auto hwm, FindValue(status_path, status, "VmHWM", ':'));
    s.peak_rss = hwm.value_or(0);
    if (usage_path) {
      ARROW_ASSIGN_OR_RAISE(const std::string usage_text, ReadWholeFile(*usage_path));
      const auto usage = ToU64(TrimWs(usage_text));
      if (!usage) {
        return arrow::Status::Invalid(usage_path->string(),
                                      ": expected a byte count, got '",
                                      TrimWs(usage_text), "'");
      }
      uint64_t inactive = 0;
      // memory.stat is optional: without it the usage counts the page cache too.
      if (auto stat_text = ReadWholeFile(*stat_path); stat_text.ok()) {
        ARROW_ASSIGN_OR_RAISE(auto v,
                              FindValue(*stat_path, *stat_text, inactive_key, ' '));
        inactive = v.value_or(0);
      }
      s.cgroup_usage = *usage > inactive ? *usage - inactive : 0;
    }
    return s;
  };
}

MemoryMonitorOptions MemoryMonitorOptions::ForProfile(const SystemProfile& profile,
                                                      uint64_t budget_bytes) {
  MemoryMonitorOptions o;
  o.budget_bytes = budget_bytes;
  o.cgroup_limit_bytes = profile.cgroup_memory_limit;
  o.cgroup_memory_dir = profile.cgroup_memory_path;
  return o;
}

arrow::Result<MemoryMonitorOptions> MemoryMonitorOptions::FromConfig(
    const Config& config, const SystemProfile& profile) {
  ARROW_ASSIGN_OR_RAISE(const int64_t limit, config.GetInt("memory.limit"));
  MemoryMonitorOptions o =
      ForProfile(profile, limit > 0 ? static_cast<uint64_t>(limit) : 0);
  ARROW_ASSIGN_OR_RAISE(o.warn_fraction, config.GetDouble("memory.warn_fraction"));
  ARROW_ASSIGN_OR_RAISE(o.act_fraction, config.GetDouble("memory.act_fraction"));
  ARROW_ASSIGN_OR_RAISE(const int64_t interval_ms,
                        config.GetInt("memory.sample_interval_ms"));
  o.interval = std::chrono::milliseconds(interval_ms);
  ARROW_RETURN_NOT_OK(o.Validate());
  return o;
}

arrow::Status MemoryMonitorOptions::Validate() const {
  if (budget_bytes == 0) {
    return arrow::Status::Invalid(
        "memory monitor: the budget must be > 0 bytes (memory.limit)");
  }
  if (!(warn_fraction > 0 && warn_fraction < act_fraction && act_fraction <= 1.0)) {
    return arrow::Status::Invalid("memory monitor: need 0 < warn_fraction (",
                                  warn_fraction, ") < act_fraction (", act_fraction,
                                  ") <= 1");
  }
  if (!(hysteresis >= 0 && hysteresis < warn_fraction)) {
    return arrow::Status::Invalid("memory monitor: need 0 <= hysteresis (", hysteresis,
                                  ") < warn_fraction (", warn_fraction, ")");
  }
  if (interval.count() <= 0) {
    return arrow::Status::Invalid("memory monitor: the sample interval must be > 0 ms");
  }
  if (calm_period.count() < 0) {
    return arrow::Status::Invalid("memory monitor: calm_period must be >= 0 ms");
  }
  return arrow::Status::OK();
}

// Consumers live here, apart from the monitor, so that a Registration can outlive it.
// `mu` is held while callbacks run: that is what guarantees that a callback is not
// running once its Registration is gone.
struct MemoryMonitor::Registry {
  std::mutex mu;
  uint64_t next_id = 1;
  std::vector<std::pair<uint64_t, MemoryCallback>> callbacks;
};

MemoryMonitor::Registration::Registration(Registration&& other) noexcept
    : registry_(std::move(other.registry_)), id_(std::exchange(other.id_, 0)) {
  other.registry_.reset();
}

MemoryMonitor::Registration& MemoryMonitor::Registration::operator=(
    Registration&& other) noexcept {
  if (this != &other) {
    Reset();
    registry_ = std::move(other.registry_);
    other.registry_.reset();
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void MemoryMonitor::Registration::Reset() {
  if (auto reg = registry_.lock()) {
    std::lock_guard lock(reg->mu);
    std::erase_if(reg->callbacks,
                  [this](const auto& entry) { return entry.first == id_; });
  }
  registry_.reset();
  id_ = 0;
}

arrow::Result<std::unique_ptr<MemoryMonitor>> MemoryMonitor::Make(
    MemoryMonitorOptions options) {
  ARROW_RETURN_NOT_OK(options.Validate());
  if (!options.sampler)
    options.sampler = ProcMemorySampler("/", options.cgroup_memory_dir);
  if (!options.clock) options.clock = [] { return std::chrono::steady_clock::now(); };
  if (!options.trim) options.trim = [] { ::malloc_trim(0); };
  return std::unique_ptr<MemoryMonitor>(new MemoryMonitor(std::move(options)));
}

MemoryMonitor::MemoryMonitor(MemoryMonitorOptions options)
    : options_(std::move(options)), registry_(std::make_shared<Registry>()) {}

MemoryMonitor::~MemoryMonitor() { Stop(); }

MemoryMonitor::Registration MemoryMonitor::Register(MemoryCallback callback) {
  std::lock_guard lock(registry_->mu);
  const uint64_t id = registry_->next_id++;
  registry_->callbacks.emplace_back(id, std::move(callback));
  return Registration(registry_, id);
}

MemoryTier MemoryMonitor::NextTier(MemoryTier current, double pressure,
                                   std::chrono::steady_clock::time_point now) {
  const double warn = options_.warn_fraction;
  const double act = options_.act_fraction;
  const double h = options_.hysteresis;
  const MemoryTier raw = pressure >= act    ? MemoryTier::kCritical
                         : pressure >= warn ? MemoryTier::kWarn
                                            : MemoryTier::kNormal;
  if (raw > current) {
    calm_since_.reset();
    return raw;
  }
  // Where we would go down to with the hysteresis band applied.
  MemoryTier lower = current;
  if (current == MemoryTier::kCritical && pressure < act - h) {
    lower = pressure < warn - h ? MemoryTier::kNormal : MemoryTier::kWarn;
  } else if (current == MemoryTier::kWarn && pressure < warn - h) {
    lower = MemoryTier::kNormal;
  }
  if (lower == current) {
    calm_since_.reset();
    return current;
  }
  if (!calm_since_) calm_since_ = now;
  if (now - *calm_since_ < options_.calm_period) return current;
  calm_since_.reset();
  return lower;
}

void MemoryMonitor::Notify(const MemoryEvent& event) {
  std::lock_guard lock(registry_->mu);
  for (const auto& [id, callback] : registry_->callbacks) callback(event);
}

arrow::Result<MemoryTier> MemoryMonitor::SampleOnce() {
  std::lock_guard sample_lock(sample_mu_);
  auto sample = options_.sampler();
  if (!sample.ok()) {
    std::lock_guard lock(stats_mu_);
    LogSampleError(sample.status(), stats_.sample_errors);
    ++stats_.sample_errors;
    return sample.status();
  }
  const MemorySample& s = *sample;
  double pressure =
      static_cast<double>(s.rss) / static_cast<double>(options_.budget_bytes);
  if (options_.cgroup_limit_bytes > 0) {
    pressure = std::max(pressure, static_cast<double>(s.cgroup_usage) /
                                      static_cast<double>(options_.cgroup_limit_bytes));
  }

  const MemoryTier previous = tier_.load(std::memory_order_relaxed);
  const MemoryTier next = NextTier(previous, pressure, options_.clock());
  {
    std::lock_guard lock(stats_mu_);
    stats_.rss = s.rss;
    stats_.peak_rss = std::max({stats_.peak_rss, s.rss, s.peak_rss});
    stats_.cgroup_usage = s.cgroup_usage;
    stats_.pressure = pressure;
    ++stats_.samples;
    stats_.tier = next;
    if (next > previous) ++stats_.escalations;
  }
  tier_.store(next, std::memory_order_release);
  if (next == previous) return next;

  const MemoryEvent event{next, previous, s, pressure, options_.budget_bytes};
  if (next > previous) {
    const std::string cgroup = options_.cgroup_limit_bytes
                                   ? fmt::format(", cgroup working set {} of limit {}",
                                                 HumanBytes(s.cgroup_usage),
                                                 HumanBytes(options_.cgroup_limit_bytes))
                                   : std::string();
    spdlog::warn(
        "memory: {} tier at {:.0f} %: RSS {} of budget {}{}; {}", MemoryTierName(next),
        pressure * 100, HumanBytes(s.rss), HumanBytes(options_.budget_bytes), cgroup,
        next == MemoryTier::kCritical ? "asking consumers to flush and trimming the heap"
                                      : "asking consumers to shrink");
  } else {
    spdlog::info("memory: back to {} tier at {:.0f} % (RSS {})", MemoryTierName(next),
                 pressure * 100, HumanBytes(s.rss));
  }
  Notify(event);
  // After the consumers flushed: hand the heap they freed back to the kernel.
  if (next == MemoryTier::kCritical) options_.trim();
  return next;
}

arrow::Status MemoryMonitor::Start() {
  std::lock_guard lifecycle(lifecycle_mu_);
  std::lock_guard lock(thread_mu_);
  if (thread_.joinable())
    return arrow::Status::Invalid("memory monitor: already running");
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
  return arrow::Status::OK();
}

void MemoryMonitor::Stop() {
  // Held until the join: a Start() racing with us must not reset stop_ for the old
  // thread.
  std::lock_guard lifecycle(lifecycle_mu_);
  std::thread t;
  {
    std::lock_guard lock(thread_mu_);
    stop_ = true;
    t = std::move(thread_);
  }
  stop_cv_.notify_all();
  if (t.joinable()) t.join();
}

bool MemoryMonitor::running() const {
  std::lock_guard lock(thread_mu_);
  return thread_.joinable();
}

void MemoryMonitor::Run() {
  std::unique_lock lock(thread_mu_);
  while (!stop_) {
    lock.unlock();
    (void)SampleOnce();  // errors are logged and counted in stats()
    lock.lock();
    stop_cv_.wait_for(lock, options_.interval, [this] { return stop_; });
  }
}

MemoryStats MemoryMonitor::stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

}  // namespace qlake

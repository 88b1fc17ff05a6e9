#include "qlake/core/system_profile.h"

#include <sched.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace qlake {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kStreamingBelow = 32 * kGiB;
constexpr uint64_t kParallelAbove = 64 * kGiB;
// cgroup v1 reports "no limit" as PAGE_COUNTER_MAX pages (9223372036854771712 with 4 KiB
// pages, other values with other page sizes); anything this large is no limit.
constexpr uint64_t kV1UnlimitedFrom = uint64_t{1} << 62;

// Reads a whole (small, possibly size-0 /proc) file. nullopt when it cannot be opened: a
// missing or unreadable file degrades to "not known" rather than failing the probe, which
// runs at every CLI start.
std::optional<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    spdlog::debug("system profile: cannot read {}", path.string());
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

std::string_view Trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string_view> SplitWs(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<int64_t> ParseI64(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

arrow::Status Malformed(const fs::path& path, std::string_view what,
                        std::string_view got) {
  return arrow::Status::Invalid(path.string(), ": ", what, ", got '", got, "'");
}

// Reads a file holding one unsigned integer (or, when `max_word` is set, the word "max"
// meaning no limit, returned as nullopt). Missing file: nullopt too, with *exists =
// false.
arrow::Result<std::optional<uint64_t>> ReadU64File(const fs::path& path, bool max_word,
                                                   bool* exists) {
  auto text = ReadFile(path);
  *exists = text.has_value();
  if (!text) return std::nullopt;
  const std::string_view t = Trim(*text);
  if (max_word && t == "max") return std::nullopt;
  auto v = ParseU64(t);
  if (!v) {
    return Malformed(
        path, max_word ? "expected a byte count or 'max'" : "expected a byte count", t);
  }
  return v;
}

struct MemInfo {
  uint64_t total = 0;
  uint64_t available = 0;
};

arrow::Result<MemInfo> ReadMemInfo(const fs::path& path) {
  MemInfo info;
  auto text = ReadFile(path);
  if (!text) return info;
  bool have_total = false;
  bool have_available = false;
  std::string_view rest = *text;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, colon);
    if (key != "MemTotal" && key != "MemAvailable") continue;
    const auto words = SplitWs(Trim(line.substr(colon + 1)));
    std::optional<uint64_t> v;
    if (!words.empty() && words.size() <= 2) v = ParseU64(words[0]);
    uint64_t scale = 1;
    if (words.size() == 2) {
      if (words[1] == "kB") {
        scale = 1024;
      } else {
        v.reset();
      }
    }
    if (!v) return Malformed(path, fmt::format("{} is not '<n> kB'", key), Trim(line));
    if (key == "MemTotal") {
      info.total = *v * scale;
      have_total = true;
    } else {
      info.available = *v * scale;
      have_available = true;
    }
  }
  if (!have_total) return arrow::Status::Invalid(path.string(), ": no MemTotal line");
  // Kernels before 3.14 have no MemAvailable; the free memory is unknown then, not zero.
  if (!have_available) info.available = info.total;
  return info;
}

// One line of /proc/self/cgroup: "hierarchy-ID:controller-list:cgroup-path".
struct CgroupLine {
  std::string
      controllers;  // "" for the v2 unified hierarchy, "memory", "cpu,cpuacct", ...
  std::string path;
};

arrow::Result<std::vector<CgroupLine>> ReadProcCgroup(const fs::path& path) {
  std::vector<CgroupLine> lines;
  auto text = ReadFile(path);
  if (!text) return lines;
  std::string_view rest = *text;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (Trim(line).empty()) continue;
    const auto c1 = line.find(':');
    const auto c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos || !ParseU64(line.substr(0, c1)) ||
        line.substr(c2 + 1).empty() || line[c2 + 1] != '/') {
      return Malformed(path, "expected 'ID:controllers:/path' lines", line);
    }
    lines.push_back({std::string(line.substr(c1 + 1, c2 - c1 - 1)),
                     std::string(line.substr(c2 + 1))});
  }
  return lines;
}

bool HasController(std::string_view list, std::string_view name) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (list.substr(0, comma) == name) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// The directory of cgroup `cg_path` ("/a/b") under the hierarchy mounted at `mount`. A
// path that climbs out of the mount (cgroup namespaces print "/../x" for cgroups outside
// their root) is mapped to the mount itself.
fs::path CgroupDir(const fs::path& mount, std::string_view cg_path) {
  const fs::path rel = fs::path(cg_path).relative_path().lexically_normal();
  if (rel.empty() || rel == "." || *rel.begin() == "..") return mount;
  return mount / rel;
}

// `leaf`, its parents, ..., `mount` (inclusive). `leaf` must be under `mount`.
std::vector<fs::path> UpToMount(const fs::path& leaf, const fs::path& mount) {
  std::vector<fs::path> dirs;
  fs::path p = leaf;
  while (true) {
    dirs.push_back(p);
    if (p == mount || !p.has_relative_path() || p.parent_path() == p) break;
    p = p.parent_path();
  }
  return dirs;
}

std::optional<std::string_view> FindV2Path(const std::vector<CgroupLine>& lines) {
  for (const auto& l : lines) {
    if (l.controllers.empty()) return l.path;
  }
  return std::nullopt;
}

const CgroupLine* FindV1Line(const std::vector<CgroupLine>& lines, std::string_view ctl) {
  for (const auto& l : lines) {
    if (HasController(l.controllers, ctl)) return &l;
  }
  return nullptr;
}

// The first of `names` that is a directory under `mount`.
std::optional<fs::path> FirstDir(const fs::path& mount,
                                 std::initializer_list<std::string> names) {
  std::error_code ec;
  for (const auto& n : names) {
    if (!n.empty() && fs::is_directory(mount / n, ec)) return mount / n;
  }
  return std::nullopt;
}

struct CgroupInfo {
  std::string version = "none";
  double cpu_quota = 0;       // 0 = unlimited
  uint64_t memory_limit = 0;  // 0 = unlimited
  uint64_t memory_usage = 0;
  std::string memory_dir;
};

// Tightest memory limit from `leaf` up to `mount`, and the usage at the deepest directory
// that reports one.
arrow::Status ReadMemoryHierarchy(const fs::path& leaf, const fs::path& mount,
                                  const char* limit_file, const char* usage_file, bool v1,
                                  CgroupInfo* info) {
  bool have_usage = false;
  for (const auto& dir : UpToMount(leaf, mount)) {
    bool exists = false;
    ARROW_ASSIGN_OR_RAISE(auto limit,
                          ReadU64File(dir / limit_file, /*max_word=*/!v1, &exists));
    if (limit && v1 && *limit >= kV1UnlimitedFrom) limit.reset();
    if (limit && (info->memory_limit == 0 || *limit < info->memory_limit)) {
      info->memory_limit = *limit;
    }
    if (!have_usage) {
      ARROW_ASSIGN_OR_RAISE(auto usage, ReadU64File(dir / usage_file, false, &exists));
      if (exists) {
        info->memory_usage = usage.value_or(0);
        info->memory_dir = dir.string();
        have_usage = true;
      }
    }
  }
  return arrow::Status::OK();
}

arrow::Status ReadV2Cpu(const fs::path& leaf, const fs::path& mount, CgroupInfo* info) {
  for (const auto& dir : UpToMount(leaf, mount)) {
    const fs::path file = dir / "cpu.max";
    auto text = ReadFile(file);
    if (!text) continue;
    const std::string_view t = Trim(*text);
    const auto words = SplitWs(t);
    if (words.size() != 2) return Malformed(file, "expected '<quota|max> <period>'", t);
    const auto period = ParseU64(words[1]);
    if (!period || *period == 0) return Malformed(file, "expected a positive period", t);
    if (words[0] == "max") continue;
    const auto quota = ParseU64(words[0]);
    if (!quota) return Malformed(file, "expected '<quota|max> <period>'", t);
    const double q = static_cast<double>(*quota) / static_cast<double>(*period);
    if (info->cpu_quota == 0 || q < info->cpu_quota) info->cpu_quota = q;
  }
  return arrow::Status::OK();
}

arrow::Status ReadV1Cpu(const fs::path& leaf, const fs::path& mount, CgroupInfo* info) {
  for (const auto& dir : UpToMount(leaf, mount)) {
    const fs::path qfile = dir / "cpu.cfs_quota_us";
    auto qtext = ReadFile(qfile);
    if (!qtext) continue;
    const auto quota = ParseI64(Trim(*qtext));
    if (!quota)
      return Malformed(qfile, "expected an integer (-1 = no quota)", Trim(*qtext));
    if (*quota < 0) continue;
    const fs::path pfile = dir / "cpu.cfs_period_us";
    auto ptext = ReadFile(pfile);
    if (!ptext) continue;
    const auto period = ParseU64(Trim(*ptext));
    if (!period || *period == 0) {
      return Malformed(pfile, "expected a positive period", Trim(*ptext));
    }
    const double q = static_cast<double>(*quota) / static_cast<double>(*period);
    if (info->cpu_quota == 0 || q < info->cpu_quota) info->cpu_quota = q;
  }
  return arrow::Status::OK();
}

arrow::Result<CgroupInfo> ReadCgroups(const fs::path& root) {
  CgroupInfo info;
  const fs::path mount = root / "sys/fs/cgroup";
  ARROW_ASSIGN_OR_RAISE(const auto lines, ReadProcCgroup(root / "proc/self/cgroup"));
  std::error_code ec;

  if (fs::exists(mount / "cgroup.controllers", ec)) {
    info.version = "v2";
    const fs::path leaf = CgroupDir(mount, FindV2Path(lines).value_or("/"));
    ARROW_RETURN_NOT_OK(ReadMemoryHierarchy(leaf, mount, "memory.max", "memory.current",
                                            /*v1=*/false, &info));
    ARROW_RETURN_NOT_OK(ReadV2Cpu(leaf, mount, &info));
    return info;
  }

  // v1 (or hybrid: v1 controllers plus an empty unified hierarchy at cgroup/unified).
  const CgroupLine* mem_line = FindV1Line(lines, "memory");
  const CgroupLine* cpu_line = FindV1Line(lines, "cpu");
  const auto mem_mount =
      FirstDir(mount, {mem_line ? mem_line->controllers : "", "memory"});
  const auto cpu_mount =
      FirstDir(mount, {cpu_line ? cpu_line->controllers : "", "cpu,cpuacct", "cpu"});
  if (!mem_mount && !cpu_mount) return info;  // no cgroup file system: "none"
  info.version = "v1";
  if (mem_mount) {
    const fs::path leaf = CgroupDir(*mem_mount, mem_line ? mem_line->path : "/");
    ARROW_RETURN_NOT_OK(ReadMemoryHierarchy(leaf, *mem_mount, "memory.limit_in_bytes",
                                            "memory.usage_in_bytes", /*v1=*/true, &info));
  }
  if (cpu_mount) {
    const fs::path leaf = CgroupDir(*cpu_mount, cpu_line ? cpu_line->path : "/");
    ARROW_RETURN_NOT_OK(ReadV1Cpu(leaf, *cpu_mount, &info));
  }
  return info;
}

int OnlineCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  // More CPUs than a cpu_set_t holds (EINVAL), or a sandbox that forbids the call.
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

// PRETTY_NAME from os-release(5): KEY=value, value optionally in quotes with \-escapes.
std::string ReadOsName(const fs::path& path) {
  auto text = ReadFile(path);
  if (!text) return {};
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    constexpr std::string_view kKey = "PRETTY_NAME=";
    if (line.rfind(kKey, 0) != 0) continue;
    std::string_view v = Trim(std::string_view(line).substr(kKey.size()));
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') &&
        v.back() == v.front()) {
      v = v.substr(1, v.size() - 2);
    }
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == '\\' && i + 1 < v.size()) ++i;
      out.push_back(v[i]);
    }
    return out;
  }
  return {};
}

void ProbeDisk(const std::string& requested, SystemProfile* p) {
  std::error_code ec;
  fs::path path = fs::absolute(requested.empty() ? "." : requested, ec);
  if (ec) path = requested;
  path = path.lexically_normal();
  // "/work/lake/." normalizes to "/work/lake/": drop the trailing separator.
  if (!path.has_filename() && path.has_relative_path()) path = path.parent_path();
  p->disk_path = path.string();
  // The lake root may not exist yet: report the file system it will be created on.
  for (fs::path probe = path;; probe = probe.parent_path()) {
    struct statvfs st {};
    if (::statvfs(probe.c_str(), &st) == 0) {
      p->disk_free = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
      p->disk_total = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
      return;
    }
    if (!probe.has_relative_path() || probe.parent_path() == probe) return;
  }
}

}  // namespace

std::string_view ProcessingModeName(ProcessingMode m) {
  switch (m) {
    case ProcessingMode::kStreaming:
      return "streaming";
    case ProcessingMode::kBatch:
      return "batch";
    case ProcessingMode::kParallel:
      return "parallel";
  }
  return "streaming";
}

arrow::Result<ProcessingMode> ParseProcessingMode(std::string_view name) {
  for (auto m :
       {ProcessingMode::kStreaming, ProcessingMode::kBatch, ProcessingMode::kParallel}) {
    if (name == ProcessingModeName(m)) return m;
  }
  return arrow::Status::Invalid("unknown processing mode '", name,
                                "': expected streaming, batch or parallel");
}

ProcessingMode ModeForMemory(uint64_t usable_memory) {
  if (usable_memory < kStreamingBelow) return ProcessingMode::kStreaming;
  if (usable_memory <= kParallelAbove) return ProcessingMode::kBatch;
  return ProcessingMode::kParallel;
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double v = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  // Switch units before rounding would print "1024.0 KiB".
  while (v >= 1023.95 && unit + 1 < std::size(kUnits)) {
    v /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.1f} {}", v, kUnits[unit]);
}

arrow::Result<SystemProfile> ProbeSystem(const ProbeOptions& options) {
  SystemProfile p;
  const fs::path root = options.root.empty() ? fs::path("/") : fs::path(options.root);

  ARROW_ASSIGN_OR_RAISE(const CgroupInfo cg, ReadCgroups(root));
  p.cgroup_version = cg.version;
  p.cgroup_cpu_quota = cg.cpu_quota;
  p.cgroup_memory_limit = cg.memory_limit;
  p.cgroup_memory_usage = cg.memory_usage;
  p.cgroup_memory_path = cg.memory_dir;

  p.online_cpus = options.online_cpus > 0 ? options.online_cpus : OnlineCpus();
  p.usable_cores = p.online_cpus;
  if (p.cgroup_cpu_quota > 0) {
    // 1.5 CPUs of quota keep two threads busy 75 % of the time: round up.
    const double q = std::ceil(p.cgroup_cpu_quota - 1e-9);
    p.usable_cores = std::min(p.usable_cores, static_cast<int>(q));
  }
  p.usable_cores = std::max(p.usable_cores, 1);

  ARROW_ASSIGN_OR_RAISE(const MemInfo mem, ReadMemInfo(root / "proc/meminfo"));
  p.total_memory = mem.total;
  p.available_memory = mem.available;
  p.usable_memory = p.total_memory;
  if (p.cgroup_memory_limit > 0 &&
      (p.usable_memory == 0 || p.cgroup_memory_limit < p.usable_memory)) {
    p.usable_memory = p.cgroup_memory_limit;
  }
  p.mode = ModeForMemory(p.usable_memory);

  ProbeDisk(options.disk_path, &p);

  struct utsname u {};
  if (::uname(&u) == 0) {
    p.kernel = u.release;
    p.arch = u.machine;
  }
  p.os_name = ReadOsName(root / "etc/os-release");
  if (p.os_name.empty()) p.os_name = u.sysname[0] != '\0' ? u.sysname : "unknown";
  return p;
}

std::string SystemProfile::ToJson() const {
  nlohmann::ordered_json j;
  j["online_cpus"] = online_cpus;
  j["cgroup_cpu_quota"] = cgroup_cpu_quota;
  j["usable_cores"] = usable_cores;
  j["total_memory"] = total_memory;
  j["available_memory"] = available_memory;
  j["cgroup_memory_limit"] = cgroup_memory_limit;
  j["cgroup_memory_usage"] = cgroup_memory_usage;
  j["usable_memory"] = usable_memory;
  j["cgroup_version"] = cgroup_version;
  j["cgroup_memory_path"] = cgroup_memory_path;
  j["disk_path"] = disk_path;
  j["disk_free"] = disk_free;
  j["disk_total"] = disk_total;
  j["os_name"] = os_name;
  j["kernel"] = kernel;
  j["arch"] = arch;
  j["mode"] = ProcessingModeName(mode);
  nlohmann::ordered_json h;
  h["total_memory"] = HumanBytes(total_memory);
  h["available_memory"] = HumanBytes(available_memory);
  h["cgroup_memory_limit"] =
      cgroup_memory_limit ? HumanBytes(cgroup_memory_limit) : "none";
  h["cgroup_memory_usage"] = HumanBytes(cgroup_memory_usage);
  h["usable_memory"] = HumanBytes(usable_memory);
  h["disk_free"] = HumanBytes(disk_free);
  h["disk_total"] = HumanBytes(disk_total);
  j["human"] = std::move(h);
  // 'replace' keeps a non-UTF-8 path or os-release from throwing.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string SystemProfile::ToText() const {
  std::vector<std::pair<std::string, std::string>> rows;
  rows.emplace_back("os", fmt::format("{} (kernel {}, {})", os_name, kernel, arch));
  rows.emplace_back(
      "cores", fmt::format("{} usable ({} online, {})", usable_cores, online_cpus,
                           cgroup_cpu_quota > 0
                               ? fmt::format("cgroup quota {:.2f} CPUs", cgroup_cpu_quota)
                               : std::string("no cgroup CPU quota")));
  rows.emplace_back(
      "memory",
      fmt::format("{} usable ({} total, {} available)", HumanBytes(usable_memory),
                  HumanBytes(total_memory), HumanBytes(available_memory)));
  std::string cg = cgroup_version;
  if (cgroup_version != "none") {
    cg += cgroup_memory_limit
              ? fmt::format(", memory limit {}", HumanBytes(cgroup_memory_limit))
              : std::string(", no memory limit");
    if (!cgroup_memory_path.empty()) {
      cg += fmt::format(", usage {} ({})", HumanBytes(cgroup_memory_usage),
                        cgroup_memory_path);
    }
  }
  rows.emplace_back("cgroup", cg);
  rows.emplace_back("disk",
                    disk_total ? fmt::format("{} free of {} at {}", HumanBytes(disk_free),
                                             HumanBytes(disk_total), disk_path)
                               : fmt::format("unknown at {}", disk_path));
  const char* why = mode == ProcessingMode::kStreaming ? "usable memory < 32 GiB"
                    : mode == ProcessingMode::kBatch   ? "usable memory 32-64 GiB"
                                                       : "usable memory > 64 GiB";
  rows.emplace_back("mode", fmt::format("{} ({})", ProcessingModeName(mode), why));

  size_t width = 0;
  for (const auto& r : rows) width = std::max(width, r.first.size());
  std::string out;
  for (const auto& r : rows) out += fmt::format("{:<{}}  {}\n", r.first, width, r.second);
  return out;
}

}  // namespace qlake

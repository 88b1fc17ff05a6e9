// File: qlake/core/system_profile.h
//
// What the machine qlake runs on can give it: usable cores (the cgroup CPU quota counts,
// not just nproc), usable memory (the cgroup v2 memory.max or v1 memory.limit_in_bytes
// counts, not just /proc/meminfo), free disk at the lake root, and the OS. From memory it
// picks a processing mode (DESIGN.md section 1):
//   streaming  < 32 GiB   chunked, bounded memory, snappy, 50K-row row groups
//   batch      32-64 GiB  zstd(3), 100K-row row groups
//   parallel   > 64 GiB   several files at once, zstd(3), 1M-row row groups
// The config layer turns the profile into defaults (memory.limit, fetch.jobs, ...); the
// user can override the mode with system.mode.
//
// Probing reads files under a root directory ("/" normally) so tests can point it at a
// fake tree. What is read, relative to that root:
//   /proc/meminfo       MemTotal, MemAvailable
//   /proc/self/cgroup   the process's cgroup: "0::/path" (v2), "N:memory:/path" (v1)
//   /sys/fs/cgroup      v2 when cgroup.controllers is there: memory.max and cpu.max from
//                       the process's cgroup up to the root (the tightest wins),
//                       memory.current; v1: memory/<path>/memory.limit_in_bytes (the
//                       tightest up the tree; huge = none), memory.usage_in_bytes, and
//                       cpu/<path>/cpu.cfs_quota_us over cpu.cfs_period_us
//   /etc/os-release     PRETTY_NAME
// CPU affinity (sched_getaffinity), uname and the disk (statvfs) always come from the
// real process and file system.
//
// Mode thresholds apply to usable memory as the kernel reports it: a machine sold as
// "32 GB" shows a MemTotal of about 31.3 GiB and gets streaming; system.mode overrides.
//
// Thread safety: ProbeSystem() is reentrant; a SystemProfile is a plain value.

#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <arrow/result.h>

namespace qlake {

enum class ProcessingMode { kStreaming, kBatch, kParallel };
/// "streaming", "batch", "parallel".
std::string_view ProcessingModeName(ProcessingMode m);
/// Inverse of ProcessingModeName; Invalid for other text ("auto" is for the config).
arrow::Result<ProcessingMode> ParseProcessingMode(std::string_view name);

struct SystemProfile {
  // Cores
  int online_cpus = 1;          // sched_getaffinity / nproc
  double cgroup_cpu_quota = 0;  // cpu.max quota/period, 0 if unlimited
  int usable_cores = 1;         // min(online, ceil(quota)), at least 1

  // Memory (bytes)
  uint64_t total_memory = 0;         // MemTotal
  uint64_t available_memory = 0;     // MemAvailable
  uint64_t cgroup_memory_limit = 0;  // 0 if none
  uint64_t cgroup_memory_usage = 0;
  uint64_t usable_memory = 0;  // min(total, cgroup limit)
  std::string cgroup_version;  // "v2", "v1" or "none"
  /// Directory of the process's memory cgroup (where cgroup_memory_usage was read); empty
  /// when there is none. The memory monitor samples usage from here.
  std::string cgroup_memory_path;

  // Disk at the lake root (bytes); 0 when the path cannot be statted.
  std::string disk_path;
  uint64_t disk_free = 0;
  uint64_t disk_total = 0;

  // OS
  std::string os_name;  // e.g. "Debian GNU/Linux 12 (bookworm)"
  std::string kernel;   // uname -r
  std::string arch;     // uname -m

  ProcessingMode mode = ProcessingMode::kStreaming;  // from usable_memory

  /// JSON object with every field (bytes as integers) plus human-readable sizes.
  std::string ToJson() const;
  /// Multi-line human-readable summary.
  std::string ToText() const;
};

struct ProbeOptions {
  /// Root under which /proc, /sys/fs/cgroup and /etc/os-release are read. Tests point
  /// this at a fake tree.
  std::string root = "/";
  /// Path whose file system's free space is reported (the lake root). It need not exist
  /// yet: the nearest existing ancestor is statted. Not relative to `root`.
  std::string disk_path = ".";
  /// Online CPUs to assume; 0 = ask sched_getaffinity. Tests set it to make the cgroup
  /// quota arithmetic independent of the machine.
  int online_cpus = 0;
};

/// Reads the machine's profile. Missing files degrade to defaults (e.g. no cgroup limit);
/// malformed contents of a file that exists are an Invalid naming the file.
arrow::Result<SystemProfile> ProbeSystem(const ProbeOptions& options = {});

/// The mode DESIGN.md section 1 prescribes for `usable_memory` bytes: streaming below
/// 32 GiB, batch from 32 GiB up to and including 64 GiB, parallel above 64 GiB.
ProcessingMode ModeForMemory(uint64_t usable_memory);

/// Binary-unit size with one decimal: "512 B", "1.5 KiB", "23.4 GiB".
std::string HumanBytes(uint64_t bytes);

}  // namespace qlake

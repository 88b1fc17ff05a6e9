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
// fake /proc and /sys/fs/cgroup tree.
//
// Thread safety: Probe() is reentrant; a SystemProfile is a plain value.

#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <arrow/result.h>

namespace qlake {

enum class ProcessingMode { kStreaming, kBatch, kParallel };
std::string_view ProcessingModeName(ProcessingMode m);  // "streaming", "batch", "parallel"
arrow::Result<ProcessingMode> ParseProcessingMode(std::string_view name);

struct SystemProfile {
  // Cores
  int online_cpus = 1;       // sched_getaffinity / nproc
  double cgroup_cpu_quota = 0;  // cpu.max quota/period, 0 if unlimited
  int usable_cores = 1;      // min(online, ceil(quota)), at least 1

  // Memory (bytes)
  uint64_t total_memory = 0;      // MemTotal
  uint64_t available_memory = 0;  // MemAvailable
  uint64_t cgroup_memory_limit = 0;  // 0 if none
  uint64_t cgroup_memory_usage = 0;
  uint64_t usable_memory = 0;     // min(total, cgroup limit)
  std::string cgroup_version;     // "v2", "v1" or "none"

  // Disk at the lake root (bytes); 0 when the path cannot be statted.
  std::string disk_path;
  uint64_t disk_free = 0;
  uint64_t disk_total = 0;

  // OS
  std::string os_name;     // e.g. "Debian GNU/Linux 12 (bookworm)"
  std::string kernel;      // uname -r
  std::string arch;        // uname -m

  ProcessingMode mode = ProcessingMode::kStreaming;  // from usable_memory

  /// JSON object with every field (bytes as integers) plus human-readable sizes.
  std::string ToJson() const;
  /// Multi-line human-readable summary.
  std::string ToText() const;
};

struct ProbeOptions {
  /// Root under which /proc, /sys/fs/cgroup and /etc/os-release are read. Tests point this
  /// at a fake tree.
  std::string root = "/";
  /// Path whose file system's free space is reported (the lake root).
  std::string disk_path = ".";
};

/// Reads the machine's profile. Missing files degrade to defaults (e.g. no cgroup limit);
/// malformed contents of a file that exists are an Invalid naming the file.
arrow::Result<SystemProfile> ProbeSystem(const ProbeOptions& options = {});

/// The mode DESIGN.md section 1 prescribes for `usable_memory` bytes.
ProcessingMode ModeForMemory(uint64_t usable_memory);

}  // namespace qlake

#include "qlake/core/system_profile.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace qlake {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = kKiB * 1024;
constexpr uint64_t kGiB = kMiB * 1024;

#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr)   \
  auto tmp = (expr);                                \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString(); \
  lhs = std::move(tmp).ValueUnsafe()
#define CONCAT_INNER(a, b) a##b
#define CONCAT(a, b) CONCAT_INNER(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL(CONCAT(result_, __LINE__), lhs, expr)

// A fake root with /proc, /sys/fs/cgroup and /etc files, removed at the end of the test.
class FakeRoot {
 public:
  FakeRoot() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() /
            (std::string("qlake_profile_") + info->test_suite_name() + "_" +
             info->name() + "_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~FakeRoot() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  void Write(const std::string& rel, const std::string& text) const {
    const fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  void MemInfo(uint64_t total_kib, uint64_t available_kib) const {
    Write("proc/meminfo", "MemTotal:       " + std::to_string(total_kib) +
                              " kB\nMemFree:         1000 kB\nMemAvailable:   " +
                              std::to_string(available_kib) + " kB\nBuffers: 5 kB\n");
  }
  ProbeOptions Options() const {
    ProbeOptions o;
    o.root = root_.string();
    o.disk_path = root_.string();
    o.online_cpus = 8;
    return o;
  }
  std::string Path(const std::string& rel) const { return (root_ / rel).string(); }
  const fs::path& root() const { return root_; }

 private:
  fs::path root_;
};

TEST(SystemProfileTest, NoCgroupUsesMemInfo) {
  FakeRoot r;
  r.MemInfo(16 * kMiB, 12 * kMiB);  // 16 GiB, in kB
  r.Write("etc/os-release", "NAME=\"Test\"\nPRETTY_NAME=\"Test Linux 1 (fake)\"\n");
  ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem(r.Options()));
  EXPECT_EQ(p.cgroup_version, "none");
  EXPECT_EQ(p.total_memory, 16 * kGiB);
  EXPECT_EQ(p.available_memory, 12 * kGiB);
  EXPECT_EQ(p.cgroup_memory_limit, 0u);
  EXPECT_EQ(p.usable_memory, 16 * kGiB);
  EXPECT_EQ(p.online_cpus, 8);
  EXPECT_EQ(p.usable_cores, 8);
  EXPECT_EQ(p.cgroup_cpu_quota, 0);
  EXPECT_EQ(p.os_name, "Test Linux 1 (fake)");
  EXPECT_FALSE(p.kernel.empty());
  EXPECT_EQ(p.mode, ProcessingMode::kStreaming);
  EXPECT_TRUE(p.cgroup_memory_path.empty());
}

TEST(SystemProfileTest, CgroupV2LimitAtLeaf) {
  FakeRoot r;
  r.MemInfo(128 * kMiB, 100 * kMiB);
  r.Write("proc/self/cgroup", "0::/user.slice/job\n");
  r.Write("sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
  r.Write("sys/fs/cgroup/user.slice/memory.max", "max\n");
  r.Write("sys/fs/cgroup/user.slice/job/memory.max", std::to_string(8 * kGiB) + "\n");
  r.Write("sys/fs/cgroup/user.slice/job/memory.current", "123456789\n");
  ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem(r.Options()));
  EXPECT_EQ(p.cgroup_version, "v2");
  EXPECT_EQ(p.cgroup_memory_limit, 8 * kGiB);
  EXPECT_EQ(p.cgroup_memory_usage, 123456789u);
  EXPECT_EQ(p.usable_memory, 8 * kGiB);
  EXPECT_EQ(p.total_memory, 128 * kGiB);
  EXPECT_EQ(p.mode, ProcessingMode::kStreaming);
  EXPECT_EQ(p.cgroup_memory_path, r.Path("sys/fs/cgroup/user.slice/job"));
}

TEST(SystemProfileTest, CgroupV2TightestLimitIsAtParent) {
  FakeRoot r;
  r.MemInfo(256 * kMiB, 200 * kMiB);
  r.Write("proc/self/cgroup", "0::/a/b/c\n");
  r.Write("sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
  r.Write("sys/fs/cgroup/a/memory.max", std::to_string(40 * kGiB) + "\n");
  r.Write("sys/fs/cgroup/a/b/memory.max", std::to_string(100 * kGiB) + "\n");
  r.Write("sys/fs/cgroup/a/b/c/memory.max", "max\n");
  r.Write("sys/fs/cgroup/a/b/c/memory.current", "42\n");
  ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem(r.Options()));
  EXPECT_EQ(p.cgroup_memory_limit, 40 * kGiB);
  EXPECT_EQ(p.usable_memory, 40 * kGiB);
  EXPECT_EQ(p.cgroup_memory_usage, 42u);
  EXPECT_EQ(p.mode, ProcessingMode::kBatch);
}

TEST(SystemProfileTest, CgroupV2AllMaxMeansNoLimit) {
  FakeRoot r;
  r.MemInfo(96 * kMiB, 90 * kMiB);
  r.Write("proc/self/cgroup", "0::/x\n");
  r.Write("sys/fs/cgroup/cgroup.controllers", "memory\n");
  r.Write("sys/fs/cgroup/x/memory.max", "max\n");
  r.Write("sys/fs/cgroup/x/cpu.max", "max 100000\n");
  ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem(r.Options()));
  EXPECT_EQ(p.cgroup_version, "v2");
  EXPECT_EQ(p.cgroup_memory_limit, 0u);
  EXPECT_EQ(p.usable_memory, 96 * kGiB);
  EXPECT_EQ(p.cgroup_cpu_quota, 0);
  EXPECT_EQ(p.usable_cores, 8);
  EXPECT_EQ(p.mode, ProcessingMode::kParallel);
}

TEST(SystemProfileTest, CgroupLimitAboveMemTotalDoesNotRaiseUsable) {
  FakeRoot r;
  r.MemInfo(4 * kMiB, 3 * kMiB);
  r.Write("proc/self/cgroup", "0::/\n");
  r.Write("sys/fs/cgroup/cgroup.controllers", "memory\n");
  r.Write("sys/fs/cgroup/memory.max", std::to_string(64 * kGiB) + "\n");
  ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem(r.Options()));
  EXPECT_EQ(p.cgroup_memory_limit, 64 * kGiB);
  EXPECT_EQ(p.usable_memory, 4 * kGiB);
}

TEST(SystemProfileTest, CgroupV2PathOutsideTheMountFallsBackToTheMount) {
  // Without a cgroup namespace a container sees its host path ("/docker/<id>"), which
  // does not exist under its own /sys/fs/cgroup; with one it may see "/../..".
  for (const char* path : {"/docker/abc123", "/../../elsewhere"}) {
    FakeRoot r;
    r.MemInfo(64 * kMiB, 60 * kMiB);
    r.Write("proc/self/cgroup", std::string("0::") + path + "\n");
    r.Write("sys/fs/cgroup/cgroup.controllers", "memory\n");
    r.Write("sys/fs/cgroup/memory.max", std::to_string(2 * kGiB) + "\n");
    r.Write("sys/fs/cgroup/memory.current", "1000\n");
    ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem(r.Options()));
    EXPECT_EQ(p.cgroup_memory_limit, 2 * kGiB) << path;
    EXPECT_EQ(p.cgroup_memory_usage, 1000u) << path;
    EXPECT_EQ(p.cgroup_memory_path, r.Path("sys/fs/cgroup")) << path;
  }
}

TEST(SystemProfileTest, CpuQuotaRoundsUp) {
  struct Case {
    const char* cpu_max;
    double quota;
    int cores;
  };
  for (const Case& c : {Case{"150000 100000", 1.5, 2}, Case{"200000 100000", 2.0, 2},
                        Case{"50000 100000", 0.5, 1}, Case{"2000000 100000", 20.0, 8}}) {
    FakeRoot r;
    r.MemInfo(8 * kMiB, 8 * kMiB);
    r.Write("proc/self/cgroup", "0::/job\n");
    r.Write("sys/fs/cgroup/cgroup.controllers", "cpu\n");
    r.Write("sys/fs/cgroup/job/cpu.max", std::string(c.cpu_max) + "\n");
    ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem(r.Options()));
    EXPECT_DOUBLE_EQ(p.cgroup_cpu_quota, c.quota) << c.cpu_max;
    EXPECT_EQ(p.usable_cores, c.cores) << c.cpu_max;
  }
}

TEST(SystemProfileTest, CpuQuotaTightestAncestorWins) {
  FakeRoot r;
  r.MemInfo(8 * kMiB, 8 * kMiB);
  r.Write("proc/self/cgroup", "0::/a/b\n");
  r.Write("sys/fs/cgroup/cgroup.controllers", "cpu\n");
  r.Write("sys/fs/cgroup/a/cpu.max", "300000 100000\n");
  r.Write("sys/fs/cgroup/a/b/cpu.max", "max 100000\n");
  ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem(r.Options()));
  EXPECT_DOUBLE_EQ(p.cgroup_cpu_quota, 3.0);
  EXPECT_EQ(p.usable_cores, 3);
}

TEST(SystemProfileTest, CgroupV1LimitAndQuota) {
  FakeRoot r;
  r.MemInfo(64 * kMiB, 50 * kMiB);
  r.Write("proc/self/cgroup",
          "5:cpu,cpuacct:/svc\n4:memory:/svc/worker\n1:name=systemd:/svc\n");
  // The root of a v1 hierarchy reports PAGE_COUNTER_MAX pages: no limit.
  r.Write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  r.Write("sys/fs/cgroup/memory/svc/memory.limit_in_bytes",
          std::to_string(6 * kGiB) + "\n");
  r.Write("sys/fs/cgroup/memory/svc/worker/memory.limit_in_bytes",
          "9223372036854771712\n");
  r.Write("sys/fs/cgroup/memory/svc/worker/memory.usage_in_bytes", "5726208\n");
  r.Write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  r.Write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  r.Write("sys/fs/cgroup/cpu,cpuacct/svc/cpu.cfs_quota_us", "250000\n");
  r.Write("sys/fs/cgroup/cpu,cpuacct/svc/cpu.cfs_period_us", "100000\n");
  ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem(r.Options()));
  EXPECT_EQ(p.cgroup_version, "v1");
  EXPECT_EQ(p.cgroup_memory_limit, 6 * kGiB);
  EXPECT_EQ(p.cgroup_memory_usage, 5726208u);
  EXPECT_EQ(p.usable_memory, 6 * kGiB);
  EXPECT_EQ(p.cgroup_memory_path, r.Path("sys/fs/cgroup/memory/svc/worker"));
  EXPECT_DOUBLE_EQ(p.cgroup_cpu_quota, 2.5);
  EXPECT_EQ(p.usable_cores, 3);
}

TEST(SystemProfileTest, CgroupV1UnlimitedRootOnly) {
  FakeRoot r;
  r.MemInfo(24 * kMiB, 23 * kMiB);
  r.Write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  r.Write("sys/fs/cgroup/memory/memory.usage_in_bytes", "174059520\n");
  r.Write("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
  r.Write("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
  ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem(r.Options()));
  EXPECT_EQ(p.cgroup_version, "v1");
  EXPECT_EQ(p.cgroup_memory_limit, 0u);
  EXPECT_EQ(p.cgroup_memory_usage, 174059520u);
  EXPECT_EQ(p.usable_memory, 24 * kGiB);
  EXPECT_EQ(p.cgroup_cpu_quota, 0);
  EXPECT_EQ(p.usable_cores, 8);
}

TEST(SystemProfileTest, MalformedFilesAreInvalidAndNamed) {
  struct Case {
    const char* file;
    const char* text;
  };
  const Case cases[] = {
      {"sys/fs/cgroup/job/memory.max", "lots\n"},
      {"sys/fs/cgroup/job/memory.current", "-5\n"},
      {"sys/fs/cgroup/job/cpu.max", "150000\n"},
      {"sys/fs/cgroup/job/cpu.max", "abc 100000\n"},
      {"sys/fs/cgroup/job/cpu.max", "100000 0\n"},
      {"proc/meminfo", "MemTotal: many kB\n"},
      {"proc/meminfo", "MemFree: 5 kB\n"},
      {"proc/self/cgroup", "garbage\n"},
  };
  for (const Case& c : cases) {
    FakeRoot r;
    r.MemInfo(8 * kMiB, 8 * kMiB);
    r.Write("proc/self/cgroup", "0::/job\n");
    r.Write("sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
    r.Write(c.file, c.text);
    auto p = ProbeSystem(r.Options());
    ASSERT_FALSE(p.ok()) << c.file << ": " << c.text;
    EXPECT_TRUE(p.status().IsInvalid()) << p.status().ToString();
    EXPECT_THAT(p.status().message(), HasSubstr(r.Path(c.file))) << c.text;
  }
}

TEST(SystemProfileTest, MalformedV1QuotaIsNamed) {
  FakeRoot r;
  r.MemInfo(8 * kMiB, 8 * kMiB);
  r.Write("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "unlimited\n");
  auto p = ProbeSystem(r.Options());
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(),
              HasSubstr(r.Path("sys/fs/cgroup/cpu/cpu.cfs_quota_us")));
}

TEST(SystemProfileTest, DiskPathThatDoesNotExistYetUsesNearestAncestor) {
  FakeRoot r;
  r.MemInfo(8 * kMiB, 8 * kMiB);
  ProbeOptions o = r.Options();
  o.disk_path = (r.root() / "lake/not/yet/created").string();
  ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem(o));
  EXPECT_EQ(p.disk_path, o.disk_path);
  EXPECT_GT(p.disk_total, 0u);
  EXPECT_LE(p.disk_free, p.disk_total);
  EXPECT_FALSE(fs::exists(o.disk_path)) << "probing must not create the lake root";
}

TEST(SystemProfileTest, RelativeDiskPathIsReportedAbsolute) {
  FakeRoot r;
  r.MemInfo(8 * kMiB, 8 * kMiB);
  ProbeOptions o = r.Options();
  o.disk_path = "some/relative/lake";
  ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem(o));
  EXPECT_TRUE(fs::path(p.disk_path).is_absolute()) << p.disk_path;
  EXPECT_GT(p.disk_total, 0u);
}

TEST(SystemProfileTest, ModeThresholds) {
  EXPECT_EQ(ModeForMemory(0), ProcessingMode::kStreaming);
  EXPECT_EQ(ModeForMemory(32 * kGiB - 1), ProcessingMode::kStreaming);
  EXPECT_EQ(ModeForMemory(32 * kGiB), ProcessingMode::kBatch);
  EXPECT_EQ(ModeForMemory(64 * kGiB), ProcessingMode::kBatch);
  EXPECT_EQ(ModeForMemory(64 * kGiB + 1), ProcessingMode::kParallel);
  EXPECT_EQ(ModeForMemory(UINT64_MAX), ProcessingMode::kParallel);
}

TEST(SystemProfileTest, ModeNamesRoundTrip) {
  for (auto m :
       {ProcessingMode::kStreaming, ProcessingMode::kBatch, ProcessingMode::kParallel}) {
    auto parsed = ParseProcessingMode(ProcessingModeName(m));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, m);
  }
  auto bad = ParseProcessingMode("auto");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("'auto'"));
}

TEST(SystemProfileTest, HumanBytes) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.0 KiB");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(1024 * 1024 - 1), "1.0 MiB");
  EXPECT_EQ(HumanBytes(static_cast<uint64_t>(23.4 * static_cast<double>(kGiB))),
            "23.4 GiB");
  EXPECT_EQ(HumanBytes(3 * kGiB * 1024), "3.0 TiB");
}

TEST(SystemProfileTest, JsonAndTextForms) {
  FakeRoot r;
  r.MemInfo(48 * kMiB, 40 * kMiB);
  r.Write("proc/self/cgroup", "0::/\n");
  r.Write("sys/fs/cgroup/cgroup.controllers", "memory\n");
  r.Write("sys/fs/cgroup/memory.max", std::to_string(40 * kGiB) + "\n");
  ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem(r.Options()));

  const auto j = nlohmann::json::parse(p.ToJson());
  EXPECT_EQ(j.at("total_memory").get<uint64_t>(), 48 * kGiB);
  EXPECT_EQ(j.at("usable_memory").get<uint64_t>(), 40 * kGiB);
  EXPECT_EQ(j.at("cgroup_memory_limit").get<uint64_t>(), 40 * kGiB);
  EXPECT_EQ(j.at("cgroup_version"), "v2");
  EXPECT_EQ(j.at("usable_cores"), 8);
  EXPECT_EQ(j.at("mode"), "batch");
  EXPECT_EQ(j.at("human").at("usable_memory"), "40.0 GiB");
  for (const char* key :
       {"online_cpus", "cgroup_cpu_quota", "available_memory", "cgroup_memory_usage",
        "disk_path", "disk_free", "disk_total", "os_name", "kernel", "arch"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }

  const std::string text = p.ToText();
  EXPECT_THAT(text, HasSubstr("40.0 GiB usable (48.0 GiB total, 40.0 GiB available)"));
  EXPECT_THAT(text, HasSubstr("memory limit 40.0 GiB"));
  EXPECT_THAT(text, HasSubstr("mode    batch"));
  // Values start in one column.
  EXPECT_THAT(text, HasSubstr("\ncores   8 usable"));
}

TEST(SystemProfileTest, RealMachineProbes) {
  ASSERT_OK_AND_ASSIGN(const SystemProfile p, ProbeSystem());
  EXPECT_GE(p.online_cpus, 1);
  EXPECT_GE(p.usable_cores, 1);
  EXPECT_LE(p.usable_cores, p.online_cpus);
  EXPECT_GT(p.total_memory, 0u);
  EXPECT_GT(p.usable_memory, 0u);
  EXPECT_LE(p.usable_memory, p.total_memory);
  EXPECT_EQ(p.mode, ModeForMemory(p.usable_memory));
}

}  // namespace
}  // namespace qlake

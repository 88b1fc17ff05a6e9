// Unit tests of the pipeline's pieces that need no flat files: project files, the lake
// lock, sharding, publish deadlines, alerts, report formats. End-to-end sync/backfill
// runs (real synthetic mirrors, SIGKILL, alerts over HTTP, chromium) are in
// tests/python/test_pipeline*.py.

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "qlake/core/status.h"
#include "qlake/pipeline/alerts.h"
#include "qlake/pipeline/lock.h"
#include "qlake/pipeline/pipeline.h"
#include "qlake/pipeline/project.h"
#include "qlake/pipeline/report.h"
#include "qlake/pipeline/stage.h"

namespace qlake::pipeline {
namespace {

namespace fs = std::filesystem;

Date D(const char* s) { return *ParseDate(s); }

class TempDir {
 public:
  TempDir() {
    path_ =
        fs::temp_directory_path() / ("qlake_pipeline_test_" + std::to_string(getpid()) +
                                     "_" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

TEST(Project, TemplateParsesToTheDefaults) {
  InitOptions o;
  o.start = D("2025-01-02");
  auto p = ParseProject(ProjectTemplate(o), "/data/qlake.yaml");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->source, "/data/mirror");
  EXPECT_EQ(p->lake, "/data/lake");
  EXPECT_EQ(p->start, D("2025-01-02"));
  ASSERT_EQ(p->datasets.size(), 4u);
  EXPECT_EQ(p->datasets[1].name, "stocks_minute");
  EXPECT_EQ(p->alerts.publish_deadline_minute, 11 * 60);
  EXPECT_DOUBLE_EQ(p->alerts.max_quarantine_rate, 0.01);
  EXPECT_EQ(p->schedule_cron, "30 11 * * 2-6");
  EXPECT_TRUE(p->qlib.empty());
}

TEST(Project, FullFile) {
  const char* text = R"(source: s3://flatfiles
lake: lake
datasets:
  - stocks_daily
  - {name: stocks_minute, start: 2024-06-03}
qlib:
  - {path: q/day, freq: day}
  - {path: q/min, freq: 1min, dataset: stocks_minute}
alerts:
  webhook: http://localhost:9/hook
  publish_deadline: "10:30"
  max_quarantine_rate: 0.5
metrics_file: m.prom
runs_keep: 7
config:
  memory:
    limit: 1GiB
  ingest.row_group_rows: 20000
)";
  auto p = ParseProject(text, "/srv/x/qlake.yaml");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->source, "s3://flatfiles");
  EXPECT_EQ(p->lake, "/srv/x/lake");
  EXPECT_EQ(p->datasets[1].start, D("2024-06-03"));
  EXPECT_EQ(p->qlib[0].dataset, "stocks_daily");
  EXPECT_EQ(p->qlib[1].path, "/srv/x/q/min");
  EXPECT_EQ(p->alerts.publish_deadline_minute, 10 * 60 + 30);
  EXPECT_EQ(p->metrics_file, "/srv/x/m.prom");
  EXPECT_EQ(p->runs_keep, 7);
  Config cfg = Config::Defaults();
  ASSERT_TRUE(p->ApplyConfig(cfg).ok());
  EXPECT_EQ(*cfg.GetInt("memory.limit"), int64_t{1} << 30);
  EXPECT_EQ(*cfg.GetInt("ingest.row_group_rows"), 20000);
  EXPECT_EQ((*cfg.Find("memory.limit"))->origin, "/srv/x/qlake.yaml:17");
}

TEST(Project, ErrorsNameFileAndLine) {
  auto bad = [](const char* text) {
    auto p = ParseProject(text, "/p/qlake.yaml");
    EXPECT_FALSE(p.ok()) << text;
    return p.status().message();
  };
  EXPECT_NE(bad("source: a\nlake: b\nalertz: {}\n")
                .find("/p/qlake.yaml:3: unknown key 'alertz'"),
            std::string::npos);
  EXPECT_NE(bad("source: a\nlake: b\ndatasets: [stocks_minutes]\n").find("qlake.yaml:3"),
            std::string::npos);
  EXPECT_NE(
      bad("source: a\nlake: b\ndatasets: [indices_minute]\n").find("cannot be ingested"),
      std::string::npos);
  EXPECT_NE(
      bad("source: a\nlake: b\nalerts: {publish_deadline: '25:00'}\n").find("HH:MM"),
      std::string::npos);
  EXPECT_NE(bad("source: a\n").find("no 'lake'"), std::string::npos);
  EXPECT_NE(bad("source: a\nlake: b\nstart: 2025-02-30\n").find("2025-02-30"),
            std::string::npos);
  EXPECT_NE(bad("source: [a\n").find("YAML"), std::string::npos);
  // A store is built from the dataset of its freq, and is listed once.
  EXPECT_NE(bad("source: a\nlake: b\nqlib: [{path: q, freq: 1min, dataset: "
                "stocks_daily}]\n")
                .find("built from stocks_minute"),
            std::string::npos);
  EXPECT_NE(bad("source: a\nlake: b\nqlib: [{path: q}, {path: q, freq: day}]\n")
                .find("listed twice"),
            std::string::npos);
  auto cfg_bad =
      ParseProject("source: a\nlake: b\nconfig: {memory.limt: 1GiB}\n", "/p/q.yaml");
  ASSERT_TRUE(cfg_bad.ok());
  Config cfg = Config::Defaults();
  auto st = cfg_bad->ApplyConfig(cfg);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/p/q.yaml:3"), std::string::npos) << st.message();
}

TEST(Project, CacheKeyIsALocalFolderAndAddsTheFetchStage) {
  auto p = ParseProject("source: s3://flatfiles\nlake: lake\ncache: ./flatfiles\n",
                        "/srv/x/qlake.yaml");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->cache, "/srv/x/flatfiles");
  auto stages = BuildStages(*p);
  ASSERT_GE(stages.stages.size(), 2u);
  EXPECT_EQ(stages.stages[0]->name(), "fetch");
  EXPECT_EQ(stages.stages[0]->scope(), Stage::Scope::kDay);
  EXPECT_EQ(stages.stages[1]->name(), "ingest");
  // Without a cache (or with an empty one) ingest streams: no fetch stage.
  auto streaming = ParseProject("source: s3://flatfiles\nlake: lake\ncache: \"\"\n",
                                "/srv/x/qlake.yaml");
  ASSERT_TRUE(streaming.ok());
  EXPECT_EQ(streaming->cache, "");
  EXPECT_EQ(BuildStages(*streaming).stages[0]->name(), "ingest");
  auto uri = ParseProject("source: s3://flatfiles\nlake: lake\ncache: s3://b/c\n",
                          "/srv/x/qlake.yaml");
  ASSERT_FALSE(uri.ok());
  EXPECT_NE(uri.status().message().find("'cache' must be a local folder"),
            std::string::npos);
  InitOptions o;
  o.cache = "./flatfiles";
  auto t = ParseProject(ProjectTemplate(o), "/data/qlake.yaml");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->cache, "/data/flatfiles");
  auto plain = ParseProject(ProjectTemplate(InitOptions{}), "/data/qlake.yaml");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->cache, "");
}

TEST(Stage, FetchKeyLocksKeepTwoDaysOffOneKey) {
  FetchKeyLocks locks;
  locks.Lock({"a", "b"});
  std::atomic<bool> got{false};
  std::thread t([&] {
    locks.Lock({"b", "c"});  // shares "b": waits
    got = true;
    locks.Unlock({"b", "c"});
  });
  locks.Lock({"d"});  // disjoint: does not wait
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(got.load());
  locks.Unlock({"a", "b"});
  t.join();
  EXPECT_TRUE(got.load());
  locks.Unlock({"d"});
}

TEST(Lock, SecondExclusiveIsRefusedWithExitCode6) {
  TempDir dir;
  std::string path = (dir.path() / "_qlake" / "lock").string();
  auto me = CurrentProcess("sync");
  auto first = LakeLock::Acquire(path, LockMode::kExclusive, me);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // flock conflicts between two open file descriptions, also within one process.
  auto second = LakeLock::Acquire(path, LockMode::kExclusive, CurrentProcess("backfill"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(ExitCodeFor(second.status()), ExitCode::kLocked);
  EXPECT_NE(second.status().message().find("pid " + std::to_string(getpid())),
            std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("qlake sync"), std::string::npos);
  auto holder = ReadHolderIfHeld(path);
  ASSERT_TRUE(holder.has_value());
  EXPECT_EQ(holder->pid, getpid());
  (*first)->Release();
  EXPECT_FALSE(ReadHolderIfHeld(path).has_value());
  auto third = LakeLock::Acquire(path, LockMode::kExclusive, me);
  EXPECT_TRUE(third.ok());
  EXPECT_FALSE((*third)->took_over().has_value()) << "a clean release leaves no content";
}

TEST(Lock, StaleLockOfADeadProcessIsTakenOver) {
  TempDir dir;
  std::string path = (dir.path() / "lock").string();
  // A child writes its holder line, then dies without releasing anything.
  pid_t child = fork();
  if (child == 0) {
    int fd = open(path.c_str(), O_RDWR | O_CREAT, 0644);
    flock(fd, LOCK_EX);
    LockHolder h = CurrentProcess("sync");
    std::string line = h.ToJson();
    if (write(fd, line.data(), line.size()) < 0) _exit(2);
    _exit(0);  // the kernel drops the flock, the content stays
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_FALSE(ProcessAlive(child));
  auto lock = LakeLock::Acquire(path, LockMode::kExclusive, CurrentProcess("sync"));
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  ASSERT_TRUE((*lock)->took_over().has_value());
  EXPECT_EQ((*lock)->took_over()->pid, child);
  std::ifstream in(path);
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(LockHolder::FromJson(content)->pid, getpid());
}

TEST(Lock, SharedShardsCoexistButBlockAnExclusiveRun) {
  TempDir dir;
  std::string path = (dir.path() / "lock").string();
  auto a = LakeLock::Acquire(path, LockMode::kShared, CurrentProcess("backfill"));
  auto b = LakeLock::Acquire(path, LockMode::kShared, CurrentProcess("backfill"));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  auto sync = LakeLock::Acquire(path, LockMode::kExclusive, CurrentProcess("sync"));
  EXPECT_EQ(ExitCodeFor(sync.status()), ExitCode::kLocked);
}

TEST(Lock, PathForLocalAndRemoteLakes) {
  EXPECT_EQ(LockPathFor("/data/lake"), "/data/lake/_qlake/lock");
  EXPECT_EQ(LockPathFor("file:///data/lake", "shard-1-of-2"),
            "/data/lake/_qlake/lock.shard-1-of-2");
  auto s3 = LockPathFor("s3://bucket/lake");
  EXPECT_EQ(s3.find("s3:"), std::string::npos);
  EXPECT_NE(s3, LockPathFor("s3://bucket/other"));
}

TEST(Shard, ParseAndSplitAreDeterministicAndDisjoint) {
  int i = 0, n = 0;
  ASSERT_TRUE(ParseShard("2/4", &i, &n).ok());
  EXPECT_EQ(i, 1);
  EXPECT_EQ(n, 4);
  for (const char* bad : {"0/4", "5/4", "1/0", "a/b", "2", "1/2x", ""}) {
    EXPECT_FALSE(ParseShard(bad, &i, &n).ok()) << bad;
  }
  std::vector<Date> days;
  for (int k = 0; k < 23; ++k) days.push_back(D("2025-01-01") + date::days{k});
  std::vector<Date> all;
  for (int s = 0; s < 4; ++s) {
    auto part = ShardDays(days, s, 4);
    EXPECT_GE(part.size(), 5u);
    EXPECT_LE(part.size(), 6u);
    all.insert(all.end(), part.begin(), part.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, days);
  EXPECT_EQ(ShardDays(days, 0, 1), days);
}

TEST(Alerts, PublishDeadlineIsElevenNewYorkTheNextDay) {
  // 2025-01-03 (EST, UTC-5): due 2025-01-04 16:00 UTC.
  EXPECT_EQ(PublishDeadline(D("2025-01-03"), 11 * 60),
            (int64_t{ToDate32(D("2025-01-04"))} * 86400) + 16 * 3600);
  // 2025-07-03 (EDT, UTC-4): due 2025-07-04 15:00 UTC.
  EXPECT_EQ(PublishDeadline(D("2025-07-03"), 11 * 60),
            (int64_t{ToDate32(D("2025-07-04"))} * 86400) + 15 * 3600);
}

RunReport SampleReport() {
  RunReport r;
  r.run_id = "20250110T120000.000Z-1";
  r.command = "sync";
  r.status = "partial";
  DatasetRun ds;
  ds.dataset = "stocks_minute";
  ds.watermark_after = D("2025-01-08");
  ds.missing = {D("2025-01-10")};
  DayRun ok;
  ok.day = D("2025-01-08");
  StageRun ing;
  ing.stage = "ingest";
  ing.rows_read = 1000;
  ing.rows_written = 900;
  ing.rows_quarantined = 100;
  ing.seconds = 1.5;
  ok.stages.push_back(ing);
  DayRun empty = ok;
  empty.day = D("2025-01-07");
  empty.stages[0].rows_read = 0;
  empty.stages[0].rows_written = 0;
  empty.stages[0].rows_quarantined = 0;
  DayRun bad;
  bad.day = D("2025-01-09");
  bad.status = "failed";
  bad.error = "ingest: IOError: gzip";
  ds.days = {empty, ok, bad};
  r.datasets.push_back(ds);
  return r;
}

TEST(Alerts, EvaluateEveryKind) {
  AlertOptions o;
  auto alerts = EvaluateAlerts(o, SampleReport());
  std::map<std::string, int> kinds;
  for (const auto& a : alerts) ++kinds[a.kind];
  EXPECT_EQ(kinds["failure"], 1);
  EXPECT_EQ(kinds["missing_day"], 1);
  EXPECT_EQ(kinds["quarantine_rate"], 1);  // 10 % > 1 %
  EXPECT_EQ(kinds["empty_day"], 1);
  o.max_quarantine_rate = 0.2;
  o.on_missing_day = false;
  o.on_empty_day = false;
  o.on_failure = false;
  EXPECT_TRUE(EvaluateAlerts(o, SampleReport()).empty());
}

TEST(Alerts, CommandGetsTheDocumentOnStdin) {
  TempDir dir;
  auto out = dir.path() / "alert.json";
  AlertOptions o;
  o.command = "cat > '" + out.string() + "'; echo \"$QLAKE_ALERT_KINDS\" > '" +
              out.string() + ".kinds'";
  RunReport r = SampleReport();
  r.alerts = EvaluateAlerts(o, r);
  auto d = DeliverAlerts(o, r);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_TRUE(d[0].ok) << d[0].error;
  std::ifstream in(out);
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["format"], "qlake.alert.v1");
  EXPECT_EQ(j["alerts"].size(), r.alerts.size());
  std::ifstream kin(out.string() + ".kinds");
  std::string kinds;
  std::getline(kin, kinds);
  EXPECT_EQ(kinds, "failure,missing_day,empty_day,quarantine_rate");

  o.command = "exit 3";
  auto failed = DeliverAlerts(o, r);
  EXPECT_FALSE(failed[0].ok);
  EXPECT_NE(failed[0].error.find("status 3"), std::string::npos);
  o.command = "sleep 30";
  o.timeout_seconds = 1;
  auto slow = DeliverAlerts(o, r);
  EXPECT_FALSE(slow[0].ok);
  EXPECT_NE(slow[0].error.find("timed out"), std::string::npos);
}

TEST(Alerts, UnreachableWebhookIsAFailedDeliveryNotACrash) {
  AlertOptions o;
  o.webhook = "http://127.0.0.1:9/qlake";  // discard port: nothing listens
  o.timeout_seconds = 5;
  RunReport r = SampleReport();
  r.alerts = EvaluateAlerts(o, r);
  auto d = DeliverAlerts(o, r);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_FALSE(d[0].ok);
  EXPECT_NE(d[0].error.find("127.0.0.1"), std::string::npos);
}

TEST(Report, StatusJsonSummaryAndMetrics) {
  RunReport r = SampleReport();
  EXPECT_EQ(r.committed_days(), 2);
  EXPECT_EQ(r.failed_days(), 1);
  EXPECT_EQ(ExitCodeFor(r.ToStatus()), ExitCode::kPartial);
  auto j = r.ToJson();
  EXPECT_EQ(j["format"], "qlake.run.v1");
  EXPECT_EQ(j["datasets"][0]["days"][1]["stages"][0]["rows_quarantined"], 100);
  EXPECT_EQ(j["datasets"][0]["missing"][0], "2025-01-10");
  auto summary = r.Summary();
  EXPECT_NE(summary.find("2025-01-09 FAILED: ingest: IOError: gzip"), std::string::npos)
      << summary;
  auto prom = r.PrometheusText({{"stocks_minute", 1736500000.0}}, 1736510000.0);
  EXPECT_NE(prom.find("qlake_last_run_success{command=\"sync\"} 0\n"), std::string::npos);
  EXPECT_NE(prom.find("qlake_run_rows_quarantined{dataset=\"stocks_minute\"} 100\n"),
            std::string::npos)
      << prom;
  EXPECT_NE(prom.find("qlake_run_days_failed{dataset=\"stocks_minute\"} 1\n"),
            std::string::npos);
  EXPECT_NE(prom.find("qlake_watermark_timestamp_seconds{dataset=\"stocks_minute\"} "
                      "1736294400\n"),
            std::string::npos);
  // Every sample line belongs to a declared metric.
  std::set<std::string> declared;
  std::istringstream lines(prom);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      declared.insert(line.substr(7, line.find(' ', 7) - 7));
    } else if (!line.empty() && line[0] != '#') {
      auto name = line.substr(0, line.find_first_of("{ "));
      EXPECT_TRUE(declared.count(name)) << line;
    }
  }
  RunReport nothing;
  nothing.command = "sync";
  nothing.status = "nothing_to_do";
  DatasetRun d;
  d.dataset = "stocks_daily";
  d.latest_published = D("2025-01-10");
  nothing.datasets.push_back(d);
  EXPECT_NE(nothing.Summary().find("nothing to do: stocks_daily up to date through "
                                   "2025-01-10"),
            std::string::npos)
      << nothing.Summary();
}

TEST(Report, FetchStageBytesAndRetries) {
  RunReport r = SampleReport();
  StageRun f;
  f.stage = "fetch";
  f.action = "downloaded";
  f.bytes_in = 2500000;
  f.bytes_out = 2500000;
  f.retries = 2;
  f.seconds = 0.25;
  r.datasets[0].days[1].stages.insert(r.datasets[0].days[1].stages.begin(), f);
  auto j = r.ToJson();
  auto& js = j["datasets"][0]["days"][1]["stages"];
  EXPECT_EQ(js[0]["stage"], "fetch");
  EXPECT_EQ(js[0]["action"], "downloaded");
  EXPECT_EQ(js[0]["retries"], 2);
  EXPECT_FALSE(js[1].contains("action"));  // ingest says nothing more than ok
  auto summary = r.Summary();
  EXPECT_NE(summary.find("fetched 2.5 MB (2 retries);"), std::string::npos) << summary;
  EXPECT_NE(summary.find("fetch 0.2s ingest 3.0s"), std::string::npos) << summary;
  auto prom = r.PrometheusText({}, 1736510000.0);
  EXPECT_NE(prom.find("qlake_run_fetch_bytes{dataset=\"stocks_minute\"} 2500000\n"),
            std::string::npos)
      << prom;
  EXPECT_NE(prom.find("qlake_run_fetch_retries{dataset=\"stocks_minute\"} 2\n"),
            std::string::npos);
  EXPECT_NE(
      prom.find("qlake_run_stage_seconds{dataset=\"stocks_minute\",stage=\"fetch\"} "
                "0.250\n"),
      std::string::npos);
  // Without a fetch stage, no fetch metrics.
  EXPECT_EQ(SampleReport().PrometheusText({}, 0).find("qlake_run_fetch"),
            std::string::npos);
}

TEST(Stage, SameVersionComparesWhatBothSidesKnow) {
  lake::SourceVersion c;
  c.key = "k";
  c.size = 10;
  c.last_modified = "100";
  SourceObject l{"k", 10, "100", ""};
  EXPECT_TRUE(SameVersion(c, l));
  l.last_modified = "101";
  EXPECT_FALSE(SameVersion(c, l));
  l.last_modified = "";
  EXPECT_TRUE(SameVersion(c, l));
  l.size = 11;
  EXPECT_FALSE(SameVersion(c, l));
  l.size = 10;
  c.etag = "\"a\"";
  l.etag = "\"b\"";
  EXPECT_FALSE(SameVersion(c, l));
}

}  // namespace
}  // namespace qlake::pipeline

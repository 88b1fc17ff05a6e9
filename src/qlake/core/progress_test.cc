#include "qlake/core/progress.h"

#include <algorithm>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace qlake {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t kMiB = 1024 * 1024;

// A reporter wired to a string stream, a captured log and a clock the test moves.
struct Harness {
  std::chrono::steady_clock::time_point now{};
  std::ostringstream out;
  std::vector<std::string> logged;

  ProgressOptions Options(bool tty) {
    ProgressOptions o;
    o.tty = tty;
    o.out = &out;
    o.log = [this](const std::string& line) { logged.push_back(line); };
    o.clock = [this] { return now; };
    return o;
  }
  void Advance(milliseconds d) { now += d; }
  size_t Frames() const {
    const std::string s = out.str();
    return static_cast<size_t>(std::count(s.begin(), s.end(), '\r'));
  }
};

TEST(ProgressTest, FormatDuration) {
  EXPECT_EQ(FormatDuration(0), "0:00");
  EXPECT_EQ(FormatDuration(-3), "0:00");
  EXPECT_EQ(FormatDuration(12), "0:12");
  EXPECT_EQ(FormatDuration(12.6), "0:13");
  EXPECT_EQ(FormatDuration(725), "12:05");
  EXPECT_EQ(FormatDuration(3723), "1:02:03");
  EXPECT_EQ(FormatDuration(100 * 3600), "100:00:00");
}

TEST(ProgressTest, RatesAndEtaFromUnits) {
  Harness h;
  auto o = h.Options(false);
  o.total_units = 40;
  ProgressReporter p(o);
  EXPECT_FALSE(p.snapshot().eta_seconds.has_value()) << "nothing done yet: no estimate";
  h.Advance(milliseconds(10'000));
  p.Add(10, 100 * kMiB);
  const ProgressSnapshot s = p.snapshot();
  EXPECT_EQ(s.units, 10u);
  EXPECT_EQ(s.bytes, 100 * kMiB);
  EXPECT_DOUBLE_EQ(s.elapsed_seconds, 10.0);
  EXPECT_DOUBLE_EQ(s.units_per_second, 1.0);
  EXPECT_DOUBLE_EQ(s.bytes_per_second, 10.0 * kMiB);
  ASSERT_TRUE(s.eta_seconds.has_value());
  EXPECT_DOUBLE_EQ(*s.eta_seconds, 30.0);  // 30 units left at 1 unit/s
}

TEST(ProgressTest, EtaPrefersBytesWhenTotalKnown) {
  Harness h;
  auto o = h.Options(false);
  o.total_units = 4;
  o.total_bytes = 400 * kMiB;
  ProgressReporter p(o);
  h.Advance(milliseconds(10'000));
  p.Add(3, 100 * kMiB);  // 3 small days, one big one to go
  ASSERT_TRUE(p.snapshot().eta_seconds.has_value());
  EXPECT_DOUBLE_EQ(*p.snapshot().eta_seconds, 30.0);  // 300 MiB at 10 MiB/s
  p.SetTotals(4, 200 * kMiB);
  EXPECT_DOUBLE_EQ(*p.snapshot().eta_seconds, 10.0);
  p.Add(1, 100 * kMiB);
  EXPECT_DOUBLE_EQ(*p.snapshot().eta_seconds, 0.0);
}

TEST(ProgressTest, TtyLineFormat) {
  Harness h;
  auto o = h.Options(true);
  o.unit = "days";
  o.total_units = 40;
  o.bar_width = 14;
  ProgressReporter p(o);
  h.Advance(milliseconds(2500));
  p.Add(12, 120 * kMiB);
  // 12/40 of 14 columns = 4.2 -> 4; 120 MiB in 2.5 s; 28 days left at 4.8 days/s = 5.8 s.
  EXPECT_EQ(h.out.str(),
            "\r[####..........] 12/40 days  120.0 MiB  48.0 MiB/s  ETA 0:06\x1b[K");
  EXPECT_EQ(p.RenderLine(),
            "[####..........] 12/40 days  120.0 MiB  48.0 MiB/s  ETA 0:06");

  h.Advance(milliseconds(2500));
  p.Add(28, 0);
  p.Finish();
  EXPECT_THAT(
      h.out.str(),
      HasSubstr("\r[##############] 40/40 days  120.0 MiB  24.0 MiB/s  done in 0:05"
                "\x1b[K\n"));
}

TEST(ProgressTest, TtyLineWithLabelAndUnknownTotal) {
  Harness h;
  auto o = h.Options(true);
  o.label = "fetch";
  ProgressReporter p(o);
  h.Advance(milliseconds(2000));
  p.Add(7);
  EXPECT_EQ(p.RenderLine(), "fetch 7 files  3.5 files/s  ETA --:--");
}

TEST(ProgressTest, TtyRedrawsAtMostEveryInterval) {
  Harness h;
  auto o = h.Options(true);
  o.total_units = 1000;
  ProgressReporter p(o);
  p.Add(1);  // first frame at once
  EXPECT_EQ(h.Frames(), 1u);
  for (int i = 0; i < 9; ++i) {
    h.Advance(milliseconds(10));
    p.Add(1);
  }
  EXPECT_EQ(h.Frames(), 1u) << "90 ms after the first frame";
  h.Advance(milliseconds(10));
  p.Add(1);
  EXPECT_EQ(h.Frames(), 2u);
  p.Tick();
  EXPECT_EQ(h.Frames(), 2u);
  h.Advance(milliseconds(100));
  p.Tick();  // Tick redraws without counting
  EXPECT_EQ(h.Frames(), 3u);
  EXPECT_EQ(p.snapshot().units, 11u);
  EXPECT_TRUE(h.logged.empty()) << "a terminal gets the bar, not log lines";
}

TEST(ProgressTest, NonTtyLogsEveryIntervalAndFinishes) {
  Harness h;
  auto o = h.Options(false);
  o.label = "ingest";
  o.unit = "days";
  o.total_units = 40;
  o.log_interval = milliseconds(10'000);
  ProgressReporter p(o);
  for (int i = 0; i < 9; ++i) {
    h.Advance(milliseconds(1000));
    p.Add(1, kMiB);
  }
  EXPECT_TRUE(h.logged.empty()) << "nothing before the first interval";
  h.Advance(milliseconds(1000));
  p.Add(1, kMiB);  // t = 10 s
  ASSERT_EQ(h.logged.size(), 1u);
  EXPECT_EQ(h.logged[0],
            "ingest: 10/40 days (25 %), 10.0 MiB at 1.0 MiB/s, elapsed 0:10, ETA 0:30");
  h.Advance(milliseconds(9000));
  p.Add(1, kMiB);  // t = 19 s
  EXPECT_EQ(h.logged.size(), 1u);
  h.Advance(milliseconds(1000));
  p.Add(1, kMiB);  // t = 20 s
  EXPECT_EQ(h.logged.size(), 2u);
  p.Finish();
  p.Finish();  // idempotent
  ASSERT_EQ(h.logged.size(), 3u);
  EXPECT_EQ(h.logged[2],
            "ingest: done: 12/40 days (30 %), 12.0 MiB at 614.4 KiB/s, in 0:20");
  EXPECT_TRUE(h.out.str().empty()) << "no terminal escape codes in logs";
}

TEST(ProgressTest, ShortJobOffTerminalLogsOnlyTheFinalLine) {
  Harness h;
  {
    auto o = h.Options(false);
    o.total_units = 3;
    ProgressReporter p(o);
    h.Advance(milliseconds(1000));
    p.Add(3);
  }  // the destructor finishes
  EXPECT_THAT(h.logged,
              ElementsAre("progress: done: 3/3 files (100 %), 3.0 files/s, in 0:01"));
}

TEST(ProgressTest, QuietPrintsNothing) {
  for (bool tty : {true, false}) {
    Harness h;
    {
      auto o = h.Options(tty);
      o.quiet = true;
      o.total_units = 10;
      ProgressReporter p(o);
      for (int i = 0; i < 10; ++i) {
        h.Advance(milliseconds(20'000));
        p.Add(1, kMiB);
      }
      p.Finish();
      EXPECT_EQ(p.snapshot().units, 10u) << "quiet still counts";
    }
    EXPECT_EQ(h.out.str(), "") << "tty=" << tty;
    EXPECT_TRUE(h.logged.empty()) << "tty=" << tty;
  }
}

TEST(ProgressTest, AddAfterFinishCountsButDoesNotDraw) {
  Harness h;
  auto o = h.Options(true);
  ProgressReporter p(o);
  p.Add(1);
  p.Finish();
  const std::string after_finish = h.out.str();
  EXPECT_THAT(after_finish, ::testing::HasSubstr("\r1 files"));
  h.Advance(milliseconds(1000));
  p.Add(5);
  EXPECT_EQ(h.out.str(), after_finish);
  EXPECT_EQ(p.snapshot().units, 6u);
}

TEST(ProgressTest, ConcurrentAddsAreAllCounted) {
  std::vector<std::string> logged;
  ProgressOptions o;
  o.tty = false;
  o.log = [&](const std::string& line) { logged.push_back(line); };  // Finish only
  o.log_interval = milliseconds(3'600'000);
  o.total_units = 40'000;
  {
    ProgressReporter p(o);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&p] {
        for (int i = 0; i < 10'000; ++i) p.Add(1, 3);
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(p.snapshot().units, 40'000u);
    EXPECT_EQ(p.snapshot().bytes, 120'000u);
  }
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_THAT(logged[0], HasSubstr("40000/40000 files (100 %)"));
}

}  // namespace
}  // namespace qlake

namespace qlake {
namespace {

TEST(ProgressTest, WorkThatNeverStartedPrintsNoDoneLine) {
  std::vector<std::string> logged;
  ProgressOptions o;
  o.tty = false;
  o.log = [&](const std::string& line) { logged.push_back(line); };
  {
    ProgressReporter p(o);
    p.Finish();
  }
  EXPECT_TRUE(logged.empty());
  ProgressReporter started(o);
  started.SetTotals(3);
  started.Finish();
  EXPECT_EQ(logged.size(), 1u);
}

}  // namespace
}  // namespace qlake

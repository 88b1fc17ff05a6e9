#include "qlake/synth/synth.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <arrow/util/compression.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "qlake/catalog/datasets.h"
#include "qlake/catalog/nyse_calendar.h"
#include "qlake/catalog/symbols.h"
#include "qlake/synth/synth_internal.h"

namespace qlake::synth {
namespace {

namespace fs = std::filesystem;
using internal::AppendPrice;

#define ASSERT_OK(expr)                      \
  do {                                       \
    auto _st = (expr);                       \
    ASSERT_TRUE(_st.ok()) << _st.ToString(); \
  } while (false)

#define ASSERT_OK_AND_ASSIGN(lhs, rexpr)                              \
  auto lhs##_result = (rexpr);                                        \
  ASSERT_TRUE(lhs##_result.ok()) << lhs##_result.status().ToString(); \
  auto lhs = std::move(lhs##_result).ValueUnsafe()

Date D(const char* s) { return *ParseDate(s); }

std::string Price(int64_t ticks) {
  char buf[32];
  return std::string(buf, AppendPrice(buf, ticks));
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    size_t next = s.find(sep, pos);
    if (next == std::string_view::npos) {
      out.push_back(s.substr(pos));
      return out;
    }
    out.push_back(s.substr(pos, next - pos));
    pos = next + 1;
  }
}

// Data lines of a CSV (header dropped, no trailing empty line).
std::vector<std::string_view> Lines(std::string_view csv) {
  auto lines = Split(csv, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

bool ParseInt(std::string_view s, int64_t* v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

// Parses a price exactly into 1e-4 units ("187.45" -> 1874500).
bool ParseTicks(std::string_view s, int64_t* v) {
  auto dot = s.find('.');
  int64_t ip = 0;
  if (!ParseInt(s.substr(0, dot), &ip) || ip < 0) return false;
  int64_t frac = 0;
  if (dot != std::string_view::npos) {
    auto f = s.substr(dot + 1);
    if (f.empty() || f.size() > 4) return false;
    if (!ParseInt(f, &frac)) return false;
    for (size_t i = f.size(); i < 4; ++i) frac *= 10;
  }
  *v = ip * 10000 + frac;
  return true;
}

struct Row {
  std::string ticker;
  int64_t volume, open, close, high, low, ws, transactions;
};

// Parses a clean row; false if anything is off.
bool ParseRow(std::string_view line, Row* r) {
  auto f = Split(line, ',');
  if (f.size() != 8) return false;
  r->ticker = std::string(f[0]);
  return !r->ticker.empty() && ParseInt(f[1], &r->volume) && ParseTicks(f[2], &r->open) &&
         ParseTicks(f[3], &r->close) && ParseTicks(f[4], &r->high) &&
         ParseTicks(f[5], &r->low) && ParseInt(f[6], &r->ws) &&
         ParseInt(f[7], &r->transactions);
}

std::vector<Row> ParseAll(std::string_view csv) {
  std::vector<Row> rows;
  auto lines = Lines(csv);
  for (size_t i = 1; i < lines.size(); ++i) {
    Row r;
    EXPECT_TRUE(ParseRow(lines[i], &r)) << "line " << i + 1 << ": " << lines[i];
    rows.push_back(r);
  }
  return rows;
}

SynthOptions Small(Date from, Date to, double scale = 0.01) {
  SynthOptions o;
  o.from = from;
  o.to = to;
  o.scale = scale;
  o.jobs = 2;
  return o;
}

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::path(::testing::TempDir()) / ("synth_test_" + std::to_string(::getpid()) +
                                              "_" + std::to_string(counter++));
    fs::remove_all(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::map<std::string, std::string> ReadTree(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) {
      files[fs::relative(e.path(), root).string()] = ReadFile(e.path());
    }
  }
  return files;
}

// --------------------------------------------------------------------------------------
// Formatting, CRC, gzip.

TEST(SynthFormat, PricesAreExactFixedDecimalsWithTrailingZerosTrimmed) {
  EXPECT_EQ(Price(1874500), "187.45");
  EXPECT_EQ(Price(123), "0.0123");
  EXPECT_EQ(Price(1870000), "187");
  EXPECT_EQ(Price(5000), "0.5");
  EXPECT_EQ(Price(12345678), "1234.5678");
  EXPECT_EQ(Price(1), "0.0001");
  EXPECT_EQ(Price(10), "0.001");
  EXPECT_EQ(Price(5430000000), "543000");
  EXPECT_EQ(Price(-15000), "-1.5");
  for (int64_t v : {0LL, 7LL, 99LL, 100LL, 1001LL, 99999LL, 123456789LL}) {
    int64_t back = -1;
    ASSERT_TRUE(ParseTicks(Price(v), &back)) << v;
    EXPECT_EQ(back, v);
  }
}

TEST(SynthFormat, ToTicksRoundsToTheTickAndNeverBelowOne) {
  EXPECT_EQ(internal::ToTicks(187.456, 100), 1874600);
  EXPECT_EQ(internal::ToTicks(0.01234, 1), 123);
  EXPECT_EQ(internal::ToTicks(0.001, 100), 100);
  EXPECT_EQ(internal::ToTicks(std::nan(""), 100), 100);
  EXPECT_EQ(internal::ToTicks(3.07, 500), 30500);
}

TEST(SynthGzip, Crc32MatchesTheStandardCheckValue) {
  EXPECT_EQ(internal::Crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(internal::Crc32(""), 0u);
}

TEST(SynthGzip, Crc32CombineEqualsTheCrcOfTheConcatenation) {
  std::string data;
  internal::Rng rng(7);
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>(rng.Next() & 0xff));
  for (size_t cut :
       {size_t{0}, size_t{1}, size_t{13}, size_t{4096}, size_t{99999}, data.size()}) {
    std::string_view a(data.data(), cut), b(data.data() + cut, data.size() - cut);
    EXPECT_EQ(internal::Crc32Combine(internal::Crc32(a), internal::Crc32(b), b.size()),
              internal::Crc32(data))
        << "cut at " << cut;
  }
}

// Independently compressed segments form one valid gzip member, read back by both ISA-L
// and zlib (through Arrow's codec), at every level.
TEST(SynthGzip, SegmentsConcatenateIntoOneValidMember) {
  std::vector<std::string> parts = {"ticker,volume\n", "", "AAPL,100\nAAPL,200\n"};
  std::string big;
  for (int i = 0; i < 200000; ++i) big += "SPY," + std::to_string(i * 7 % 1000) + "\n";
  parts.push_back(big);
  for (int level = 0; level <= 3; ++level) {
    std::string gz(internal::GzipHeader());
    std::string all;
    uint32_t crc = 0;
    for (const auto& p : parts) {
      ASSERT_OK_AND_ASSIGN(seg, internal::DeflateFlushed(p, level));
      EXPECT_EQ(seg.raw_bytes, p.size());
      crc = internal::Crc32Combine(crc, seg.crc, seg.raw_bytes);
      gz += seg.data;
      all += p;
    }
    gz += internal::GzipTrailer(crc, all.size());
    ASSERT_OK_AND_ASSIGN(back, internal::Gunzip(gz));
    EXPECT_EQ(back, all) << "level " << level;

    ASSERT_OK_AND_ASSIGN(codec, arrow::util::Codec::Create(arrow::Compression::GZIP));
    std::string out(all.size(), '\0');
    ASSERT_OK_AND_ASSIGN(n, codec->Decompress(static_cast<int64_t>(gz.size()),
                                              reinterpret_cast<const uint8_t*>(gz.data()),
                                              static_cast<int64_t>(out.size()),
                                              reinterpret_cast<uint8_t*>(out.data())));
    EXPECT_EQ(n, static_cast<int64_t>(all.size()));
    EXPECT_EQ(out, all) << "zlib disagrees at level " << level;
  }
}

TEST(SynthGzip, GunzipRejectsTruncatedAndCorruptInput) {
  std::string payload(100000, 'x');
  for (size_t i = 0; i < payload.size(); i += 7)
    payload[i] = static_cast<char>('a' + i % 26);
  ASSERT_OK_AND_ASSIGN(seg, internal::DeflateFlushed(payload, 1));
  std::string gz = std::string(internal::GzipHeader()) + seg.data +
                   internal::GzipTrailer(seg.crc, payload.size());
  EXPECT_TRUE(internal::Gunzip(gz).ok());
  EXPECT_FALSE(internal::Gunzip(gz.substr(0, gz.size() / 2)).ok());
  EXPECT_FALSE(internal::Gunzip(gz.substr(0, gz.size() - 4)).ok());
  std::string bad_crc = gz;
  bad_crc[bad_crc.size() - 8] ^= 0x55;
  EXPECT_FALSE(internal::Gunzip(bad_crc).ok());
}

// --------------------------------------------------------------------------------------
// Names, keys, options validation.

TEST(SynthOptionsTest, KeysFollowTheBucketLayoutAndTheCatalog) {
  EXPECT_EQ(KeyFor(Dataset::kStocksMinute, D("2025-09-29")),
            "us_stocks_sip/minute_aggs_v1/2025/09/2025-09-29.csv.gz");
  EXPECT_EQ(KeyFor(Dataset::kOptionsDaily, D("2024-01-02")),
            "us_options_opra/day_aggs_v1/2024/01/2024-01-02.csv.gz");
  for (Dataset d : kAllDatasets) {
    auto spec = catalog::FindDataset(DatasetName(d));
    ASSERT_TRUE(spec.ok()) << DatasetName(d);
    EXPECT_EQ((*spec)->Prefix(), DatasetPrefix(d));
    EXPECT_EQ((*spec)->header,
              "ticker,volume,open,close,high,low,window_start,transactions");
  }
}

TEST(SynthOptionsTest, BadOptionsAreInvalidWithUsefulMessages) {
  SynthOptions ok = Small(D("2024-01-02"), D("2024-01-05"));
  ok.out_dir = "/tmp/x";
  ASSERT_OK(ok.Validate());

  auto expect_invalid = [](const SynthOptions& o, std::string_view needle) {
    auto st = o.Validate();
    EXPECT_TRUE(st.IsInvalid()) << st.ToString();
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
  };
  SynthOptions o = ok;
  o.out_dir.clear();
  expect_invalid(o, "--out");
  o = ok;
  o.scale = 0;
  expect_invalid(o, "--scale");
  o.scale = -1;
  expect_invalid(o, "--scale");
  o.scale = 11;
  expect_invalid(o, "--scale");
  o.scale = std::nan("");
  expect_invalid(o, "--scale");
  o = ok;
  o.from = D("2024-02-01");
  expect_invalid(o, "after");
  o = ok;
  o.from = D("1999-12-01");
  expect_invalid(o, "2000-01-01");
  o = ok;
  o.to = D("2036-01-02");
  expect_invalid(o, "2035");
  o = ok;
  o.datasets.clear();
  expect_invalid(o, "datasets");
  o = ok;
  o.jobs = -1;
  expect_invalid(o, "--jobs");
  o = ok;
  o.gzip_level = 4;
  expect_invalid(o, "gzip");

  // GenerateMirror validates before touching the disk.
  SynthOptions bad = ok;
  bad.scale = 0;
  EXPECT_TRUE(GenerateMirror(bad).status().IsInvalid());
  // A single file on a holiday does not exist.
  auto st = GenerateCsv(ok, Dataset::kStocksDaily, D("2024-01-01")).status();
  EXPECT_TRUE(st.IsInvalid()) << st.ToString();
  EXPECT_NE(st.message().find("not an NYSE trading day"), std::string::npos);
}

TEST(SynthOptionsTest, FaultAndDatasetListsParseAndListValidNamesOnError) {
  ASSERT_OK_AND_ASSIGN(none, ParseFaultList(""));
  EXPECT_TRUE(none.empty());
  ASSERT_OK_AND_ASSIGN(two, ParseFaultList("nan_inf, bad_occ,nan_inf"));
  EXPECT_EQ(two, (std::vector<Fault>{Fault::kNanInf, Fault::kBadOcc}));
  ASSERT_OK_AND_ASSIGN(all, ParseFaultList("all"));
  EXPECT_EQ(all.size(), std::size(kAllFaults));
  auto bad = ParseFaultList("bad_timestamp,explode");
  ASSERT_TRUE(bad.status().IsInvalid());
  EXPECT_NE(bad.status().message().find("explode"), std::string::npos);
  EXPECT_NE(bad.status().message().find("truncated_gzip"), std::string::npos);
  for (Fault f : kAllFaults) {
    ASSERT_OK_AND_ASSIGN(back, ParseFault(FaultName(f)));
    EXPECT_EQ(back, f);
  }

  ASSERT_OK_AND_ASSIGN(ds, ParseDatasetList("options_minute,stocks_daily"));
  EXPECT_EQ(ds, (std::vector<Dataset>{Dataset::kStocksDaily, Dataset::kOptionsMinute}));
  auto bad_ds = ParseDatasetList("stocks_hourly");
  ASSERT_TRUE(bad_ds.status().IsInvalid());
  EXPECT_NE(bad_ds.status().message().find("stocks_minute"), std::string::npos);
  EXPECT_FALSE(ParseDatasetList(" , ").ok());
}

// --------------------------------------------------------------------------------------
// Tickers and option symbols.

TEST(SynthUniverse, HasTheNastyTickersAtEveryScaleSortedAndUnique) {
  for (double scale : {0.01, 1.0}) {
    auto u = internal::BuildUniverse(42, scale);
    std::set<std::string> names;
    for (const auto& s : u.stocks) names.insert(s.ticker);
    EXPECT_EQ(names.size(), u.stocks.size()) << "duplicate tickers";
    for (const char* t :
         {"BRK.B", "BF.B", "CON", "PRN", "NUL", "AUX", "COM1", "LPT1", "NA", "NULL",
          "JPMpC", "PBR.A", "ACHR.WS", "BRACr", "POSTw", "SPY", "AAPL", "PCG", "C"}) {
      EXPECT_TRUE(names.count(t)) << t << " missing at scale " << scale;
    }
    EXPECT_TRUE(
        std::is_sorted(u.stocks.begin(), u.stocks.end(),
                       [](const auto& a, const auto& b) { return a.ticker < b.ticker; }));
    if (scale == 1.0) {
      EXPECT_NEAR(static_cast<double>(u.stocks.size()), 12000, 10);
      // Lowercase CQS suffixes and Nasdaq five-letter warrants appear among random names.
      int preferreds = 0, warrants = 0;
      for (const auto& s : u.stocks) {
        preferreds += s.cls == internal::TickerClass::kPreferred;
        warrants += s.cls == internal::TickerClass::kWarrant;
      }
      EXPECT_GT(preferreds, 200);
      EXPECT_GT(warrants, 100);
    }
  }
}

TEST(SynthUniverse, SmallerScalesAreSubsetsAndSeedsDiffer) {
  auto small = internal::BuildUniverse(42, 0.05);
  auto large = internal::BuildUniverse(42, 0.2);
  std::set<std::string> big;
  for (const auto& s : large.stocks) big.insert(s.ticker);
  for (const auto& s : small.stocks) EXPECT_TRUE(big.count(s.ticker)) << s.ticker;
  auto other = internal::BuildUniverse(43, 0.05);
  std::set<std::string> a, b;
  for (const auto& s : small.stocks) a.insert(s.ticker);
  for (const auto& s : other.stocks) b.insert(s.ticker);
  EXPECT_NE(a, b);
}

TEST(SynthOcc, FormattedSymbolsParseBackWithTheCatalogParser) {
  struct Case {
    const char* root;
    const char* expiry;
    bool call;
    int64_t strike;
    const char* text;
  };
  const Case cases[] = {
      {"SPY", "2025-01-17", true, 590000, "O:SPY250117C00590000"},
      {"PCG", "2024-03-15", false, 17500, "O:PCG240315P00017500"},
      {"C", "2024-06-21", true, 60000, "O:C240621C00060000"},
      {"AAPL1", "2024-02-16", false, 179670, "O:AAPL1240216P00179670"},
      {"BRKB", "2030-12-20", true, 99999999, "O:BRKB301220C99999999"},
  };
  for (const auto& c : cases) {
    const std::string t = internal::FormatOcc(c.root, D(c.expiry), c.call, c.strike);
    EXPECT_EQ(t, c.text);
    ASSERT_OK_AND_ASSIGN(p, catalog::ParseOcc(t));
    EXPECT_EQ(p.root, c.root);
    EXPECT_EQ(p.expiration, D(c.expiry));
    EXPECT_EQ(p.type, c.call ? 'C' : 'P');
    EXPECT_EQ(p.strike_milli, c.strike);
  }
}

TEST(SynthOcc, EveryContractOfADayParsesToItsOwnFieldsAndIsUnexpired) {
  const Date day = D("2024-03-27");  // the week of Good Friday 2024-03-29
  auto u = internal::BuildUniverse(42, 0.05);
  ASSERT_OK_AND_ASSIGN(ctx, internal::MakeDayContext(42, day));
  ASSERT_OK_AND_ASSIGN(chain, internal::OptionChain(u, ctx));
  ASSERT_GT(chain.size(), 500u);
  const auto& cal = catalog::NyseCalendar::Get();
  std::set<std::string> roots;
  for (const auto& c : chain) {
    ASSERT_OK_AND_ASSIGN(p, catalog::ParseOcc(c.ticker));
    EXPECT_EQ(p.root, u.underlyings[c.underlying].root);
    EXPECT_EQ(p.expiration, c.expiry);
    EXPECT_EQ(p.type == 'C', c.call);
    EXPECT_EQ(p.strike_milli, c.strike_milli);
    EXPECT_GE(c.expiry, day) << c.ticker;
    ASSERT_OK_AND_ASSIGN(trading, cal.IsTradingDay(c.expiry));
    EXPECT_TRUE(trading) << c.ticker << " expires on a closed day";
    EXPECT_NE(c.expiry, D("2024-03-29")) << "Good Friday expiry: " << c.ticker;
    roots.insert(std::string(p.root));
  }
  for (const char* r : {"SPY", "QQQ", "AAPL", "AAPL1", "PCG", "C", "BRKB"}) {
    EXPECT_TRUE(roots.count(r)) << r;
  }
  EXPECT_TRUE(
      std::is_sorted(chain.begin(), chain.end(),
                     [](const auto& a, const auto& b) { return a.ticker < b.ticker; }));
}

TEST(SynthExpirations, MonthliesMoveToThursdayOnFridayHolidays) {
  ASSERT_OK_AND_ASSIGN(apr25, internal::MonthlyExpiry(2025, 4));  // Good Friday 04-18
  EXPECT_EQ(apr25, D("2025-04-17"));
  ASSERT_OK_AND_ASSIGN(jun26, internal::MonthlyExpiry(2026, 6));  // Juneteenth 06-19
  EXPECT_EQ(jun26, D("2026-06-18"));
  ASSERT_OK_AND_ASSIGN(jan25, internal::MonthlyExpiry(2025, 1));
  EXPECT_EQ(jan25, D("2025-01-17"));
  ASSERT_OK_AND_ASSIGN(wk, internal::WeeklyExpiry(D("2024-03-29")));  // Good Friday
  EXPECT_EQ(wk, D("2024-03-28"));
}

TEST(SynthExpirations, IndexEtfsListDailiesAndEveryStyleListsOnlyTradingDays) {
  const Date today = D("2024-01-08");  // a Monday
  ASSERT_OK_AND_ASSIGN(etf,
                       internal::Expirations(internal::ChainStyle::kIndexEtf, today));
  // 0DTE and the next sessions, each weekday.
  for (const char* d :
       {"2024-01-08", "2024-01-09", "2024-01-10", "2024-01-11", "2024-01-12",
        "2024-01-16", "2024-01-19", "2024-02-16", "2024-12-20", "2025-12-19"}) {
    EXPECT_TRUE(std::binary_search(etf.begin(), etf.end(), D(d))) << d;
  }
  EXPECT_FALSE(std::binary_search(etf.begin(), etf.end(), D("2024-01-15")));  // MLK day
  ASSERT_OK_AND_ASSIGN(monthly,
                       internal::Expirations(internal::ChainStyle::kMonthly, today));
  EXPECT_TRUE(std::binary_search(monthly.begin(), monthly.end(), D("2024-01-19")));
  EXPECT_FALSE(std::binary_search(monthly.begin(), monthly.end(), D("2024-01-12")));
  EXPECT_TRUE(std::binary_search(monthly.begin(), monthly.end(), D("2025-01-17")));
  const auto& cal = catalog::NyseCalendar::Get();
  for (auto style : {internal::ChainStyle::kIndexEtf, internal::ChainStyle::kWeekly,
                     internal::ChainStyle::kMonthly, internal::ChainStyle::kAdjusted}) {
    ASSERT_OK_AND_ASSIGN(exps, internal::Expirations(style, D("2024-11-27")));
    ASSERT_FALSE(exps.empty());
    EXPECT_TRUE(std::is_sorted(exps.begin(), exps.end()));
    for (Date e : exps) {
      EXPECT_GE(e, D("2024-11-27"));
      ASSERT_OK_AND_ASSIGN(trading, cal.IsTradingDay(e));
      EXPECT_TRUE(trading) << FormatDate(e);
    }
  }
  // Near the end of the calendar, far expirations are left out rather than failing.
  ASSERT_OK_AND_ASSIGN(
      late, internal::Expirations(internal::ChainStyle::kIndexEtf, D("2035-12-03")));
  EXPECT_FALSE(late.empty());
  EXPECT_LE(late.back(), D("2035-12-31"));
}

// --------------------------------------------------------------------------------------
// The price model.

TEST(SynthModel, LevyBrownianHasBrownianIncrements) {
  // Increments over 1 and 16 days should have variance ~1 and ~16 across many keys.
  double s1 = 0, s16 = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const uint64_t key = internal::HashCombine(99, static_cast<uint64_t>(i));
    const double a = internal::LevyBrownian(key, 19000);
    s1 += std::pow(internal::LevyBrownian(key, 19001) - a, 2);
    s16 += std::pow(internal::LevyBrownian(key, 19016) - a, 2);
  }
  EXPECT_NEAR(s1 / n, 1.0, 0.1);
  EXPECT_NEAR(s16 / n, 16.0, 1.6);
  EXPECT_EQ(internal::LevyBrownian(5, 12345), internal::LevyBrownian(5, 12345));
}

TEST(SynthModel, DayContextTimestampsAndSessions) {
  ASSERT_OK_AND_ASSIGN(ctx, internal::MakeDayContext(1, D("2025-09-29")));
  EXPECT_EQ(ctx.midnight_ns, 1759118400000000000);
  EXPECT_EQ(ctx.ws_len, 19);
  EXPECT_EQ(ctx.n_minutes, 16 * 60);
  EXPECT_EQ(ctx.ws_text.substr(0, 19),
            std::to_string(1759118400000000000 + 4 * 3600000000000));
  ASSERT_OK_AND_ASSIGN(early, internal::MakeDayContext(1, D("2024-11-29")));
  EXPECT_TRUE(early.session.early_close);
  EXPECT_EQ(early.ext_end_minute, 17 * 60);
  // Winter: midnight New York is 05:00 UTC.
  EXPECT_EQ(early.midnight_ns, 1732856400000000000);
}

// --------------------------------------------------------------------------------------
// Whole files.

std::map<std::string, std::vector<Row>> ByTicker(const std::vector<Row>& rows) {
  std::map<std::string, std::vector<Row>> m;
  for (const auto& r : rows) m[r.ticker].push_back(r);
  return m;
}

void ExpectDayIsAggregateOfMinutes(const SynthOptions& o, Dataset minute, Dataset daily,
                                   Date day) {
  ASSERT_OK_AND_ASSIGN(mcsv, GenerateCsv(o, minute, day));
  ASSERT_OK_AND_ASSIGN(dcsv, GenerateCsv(o, daily, day));
  const auto minutes = ByTicker(ParseAll(mcsv.csv));
  const auto days = ParseAll(dcsv.csv);
  ASSERT_GT(days.size(), 50u);
  EXPECT_EQ(days.size(), minutes.size())
      << "a ticker with minutes has no day bar or v.v.";
  const int64_t midnight = FromNewYork(day, 0);
  for (const auto& d : days) {
    auto it = minutes.find(d.ticker);
    ASSERT_NE(it, minutes.end()) << d.ticker;
    const auto& ms = it->second;
    int64_t hi = 0, lo = INT64_MAX, vol = 0, txn = 0;
    for (const auto& m : ms) {
      hi = std::max(hi, m.high);
      lo = std::min(lo, m.low);
      vol += m.volume;
      txn += m.transactions;
    }
    EXPECT_EQ(d.open, ms.front().open) << d.ticker;
    EXPECT_EQ(d.close, ms.back().close) << d.ticker;
    EXPECT_EQ(d.high, hi) << d.ticker;
    EXPECT_EQ(d.low, lo) << d.ticker;
    EXPECT_EQ(d.volume, vol) << d.ticker;
    EXPECT_EQ(d.transactions, txn) << d.ticker;
    EXPECT_EQ(d.ws, midnight) << d.ticker;
  }
}

TEST(SynthFiles, DayBarsAreTheAggregateOfMinuteBars) {
  const SynthOptions o = Small(D("2024-01-02"), D("2024-01-31"));
  ExpectDayIsAggregateOfMinutes(o, Dataset::kStocksMinute, Dataset::kStocksDaily,
                                D("2024-01-09"));
  ExpectDayIsAggregateOfMinutes(o, Dataset::kOptionsMinute, Dataset::kOptionsDaily,
                                D("2024-01-09"));
}

// Minute rows: sorted by (ticker, window_start), unique, OHLC-consistent, inside extended
// hours and on the file's New York date; option rows inside regular hours.
TEST(SynthFiles, RowsAreSortedValidAndInsideTheirSession) {
  const SynthOptions o = Small(D("2024-07-01"), D("2024-07-05"));
  for (Dataset d : {Dataset::kStocksMinute, Dataset::kOptionsMinute}) {
    for (const char* day : {"2024-07-02", "2024-07-03"}) {  // a normal and an early close
      ASSERT_OK_AND_ASSIGN(csv, GenerateCsv(o, d, D(day)));
      const auto rows = ParseAll(csv.csv);
      ASSERT_GT(rows.size(), 1000u);
      ASSERT_OK_AND_ASSIGN(session, catalog::NyseCalendar::Get().SessionOn(D(day)));
      for (size_t i = 0; i < rows.size(); ++i) {
        const Row& r = rows[i];
        if (i > 0) {
          const Row& p = rows[i - 1];
          ASSERT_TRUE(std::tie(p.ticker, p.ws) < std::tie(r.ticker, r.ws))
              << "unsorted or duplicate at " << r.ticker << " " << r.ws;
        }
        EXPECT_GE(r.ws, int64_t{1'000'000'000'000'000'000});  // 19 digits
        EXPECT_EQ(r.ws % 60'000'000'000, 0);
        const NyTime ny = ToNewYork(r.ws);
        EXPECT_EQ(ny.date, D(day));
        EXPECT_GE(ny.minute_of_day, 4 * 60);
        EXPECT_LT(ny.minute_of_day, session->early_close ? 17 * 60 : 20 * 60);
        EXPECT_LE(r.low, std::min(r.open, r.close));
        EXPECT_GE(r.high, std::max(r.open, r.close));
        EXPECT_GT(r.low, 0);
        EXPECT_GE(r.volume, r.transactions);
        EXPECT_GE(r.transactions, 1);
        if (d == Dataset::kOptionsMinute) {
          const bool etf = r.ticker.rfind("O:SPY", 0) == 0 ||
                           r.ticker.rfind("O:QQQ", 0) == 0 ||
                           r.ticker.rfind("O:IWM", 0) == 0;
          EXPECT_GE(ny.minute_of_day, session->open_minute) << r.ticker;
          EXPECT_LT(ny.minute_of_day, session->close_minute + (etf ? 15 : 0)) << r.ticker;
        }
      }
    }
  }
}

// On 13:00 closes, the afternoon is post-market: sparse, not regular-session busy.
TEST(SynthFiles, EarlyCloseAfternoonIsSparsePostMarket) {
  const SynthOptions o = Small(D("2024-11-25"), D("2024-11-29"));
  // Bars of all tickers, and SPY's volume, between two New York times.
  auto count = [&](const char* day, int from_min, int to_min) {
    auto csv = GenerateCsv(o, Dataset::kStocksMinute, D(day));
    EXPECT_TRUE(csv.ok());
    std::pair<int64_t, int64_t> n{0, 0};
    for (const auto& r : ParseAll(csv->csv)) {
      const int m = ToNewYork(r.ws).minute_of_day;
      if (m < from_min || m >= to_min) continue;
      ++n.first;
      if (r.ticker == "SPY") n.second += r.volume;
    }
    return n;
  };
  const auto normal_afternoon = count("2024-11-26", 13 * 60, 16 * 60);
  const auto early_morning = count("2024-11-29", 9 * 60 + 30, 13 * 60);
  const auto early_afternoon = count("2024-11-29", 13 * 60, 16 * 60);
  EXPECT_GT(early_morning.first, normal_afternoon.first / 2);
  EXPECT_LT(early_afternoon.first, normal_afternoon.first / 2);
  EXPECT_LT(early_afternoon.second, normal_afternoon.second / 10);
  // Options stop at the early close (13:15 for index ETFs).
  ASSERT_OK_AND_ASSIGN(opt, GenerateCsv(o, Dataset::kOptionsMinute, D("2024-11-29")));
  for (const auto& r : ParseAll(opt.csv)) {
    EXPECT_LT(ToNewYork(r.ws).minute_of_day, 13 * 60 + 15) << r.ticker;
  }
  ASSERT_OK_AND_ASSIGN(session, catalog::NyseCalendar::Get().SessionOn(D("2024-11-29")));
  ASSERT_OK_AND_ASSIGN(csv, GenerateCsv(o, Dataset::kStocksMinute, D("2024-11-29")));
  for (const auto& r : ParseAll(csv.csv)) {
    const int m = ToNewYork(r.ws).minute_of_day;
    if (m >= 13 * 60) {
      EXPECT_EQ(session->Classify(m), catalog::SessionPart::kPost) << r.ticker;
    }
  }
}

TEST(SynthFiles, PricesContinueAcrossDaysForLiquidNames) {
  const SynthOptions o = Small(D("2024-03-01"), D("2024-03-29"));
  ASSERT_OK_AND_ASSIGN(sessions, catalog::NyseCalendar::Get().Sessions(o.from, o.to));
  std::map<std::string, int64_t> prev_close;
  int checked = 0;
  for (const auto& s : sessions) {
    ASSERT_OK_AND_ASSIGN(csv, GenerateCsv(o, Dataset::kStocksDaily, s.date));
    for (const auto& r : ParseAll(csv.csv)) {
      if (r.ticker != "SPY" && r.ticker != "AAPL" && r.ticker != "BRK.B") continue;
      auto it = prev_close.find(r.ticker);
      if (it != prev_close.end()) {
        const double gap =
            static_cast<double>(r.open) / static_cast<double>(it->second) - 1;
        EXPECT_LT(std::fabs(gap), 0.04) << r.ticker << " on " << FormatDate(s.date);
        ++checked;
      }
      prev_close[r.ticker] = r.close;
    }
  }
  EXPECT_GT(checked, 50);
}

TEST(SynthFiles, TickersListDelistAndHaveGaps) {
  // NWCO (14-day cycle) and DLST (10-day cycle) must both appear and disappear in a
  // month.
  const SynthOptions o = Small(D("2024-05-01"), D("2024-05-31"));
  ASSERT_OK_AND_ASSIGN(sessions, catalog::NyseCalendar::Get().Sessions(o.from, o.to));
  std::map<std::string, int> present;
  std::set<std::string> ever;
  for (const auto& s : sessions) {
    ASSERT_OK_AND_ASSIGN(csv, GenerateCsv(o, Dataset::kStocksDaily, s.date));
    for (const auto& r : ParseAll(csv.csv)) {
      ++present[r.ticker];
      ever.insert(r.ticker);
    }
  }
  const int n = static_cast<int>(sessions.size());
  for (const char* t : {"NWCO", "DLST"}) {
    EXPECT_GT(present[t], 0) << t;
    EXPECT_LT(present[t], n) << t;
  }
  int partial = 0;
  for (const auto& [t, k] : present) partial += k < n;
  EXPECT_GT(partial, 5);
  EXPECT_EQ(present["SPY"], n);
}

TEST(SynthFiles, SubPennyAndLargeValuesAppear) {
  const SynthOptions o = Small(D("2024-01-02"), D("2024-01-02"), 0.05);
  ASSERT_OK_AND_ASSIGN(csv, GenerateCsv(o, Dataset::kStocksDaily, D("2024-01-02")));
  bool four_decimals = false, big_volume = false, brka = false;
  for (const auto& line : Lines(csv.csv)) {
    auto f = Split(line, ',');
    const auto dot = f[3].find('.');
    four_decimals |= dot != std::string_view::npos && f[3].size() - dot - 1 == 4;
    int64_t v = 0;
    big_volume |= ParseInt(f[1], &v) && v > 100'000'000;
    brka |= f[0] == "BRK.A";
  }
  EXPECT_TRUE(four_decimals);
  EXPECT_TRUE(big_volume);
  EXPECT_TRUE(brka);
}

// --------------------------------------------------------------------------------------
// The mirror: layout, determinism, range independence.

TEST(SynthMirror, WritesOneFilePerDatasetPerSessionOnly) {
  TempDir dir;
  SynthOptions o = Small(D("2024-03-28"), D("2024-04-02"));  // Good Friday + weekend
  o.out_dir = dir.path().string();
  ASSERT_OK_AND_ASSIGN(summary, GenerateMirror(o));
  EXPECT_EQ(summary.files.size(), 3u * 4u);
  auto tree = ReadTree(dir.path());
  EXPECT_EQ(tree.size(), 3u * 4u + 1u);  // + manifest
  for (const char* day : {"2024-03-28", "2024-04-01", "2024-04-02"}) {
    for (Dataset d : kAllDatasets) {
      EXPECT_TRUE(tree.count(KeyFor(d, D(day)))) << KeyFor(d, D(day));
    }
  }
  for (const char* closed : {"2024-03-29", "2024-03-30", "2024-03-31"}) {
    EXPECT_FALSE(tree.count(KeyFor(Dataset::kStocksDaily, D(closed)))) << closed;
  }
  for (const auto& [key, bytes] : tree) EXPECT_EQ(key.find("tmp"), std::string::npos);
  // Every file decompresses to the CSV GenerateCsv produces, with the header first.
  for (const auto& f : summary.files) {
    ASSERT_OK_AND_ASSIGN(csv, internal::Gunzip(tree.at(f.key)));
    ASSERT_OK_AND_ASSIGN(mem, GenerateCsv(o, f.dataset, f.date));
    EXPECT_EQ(csv, mem.csv) << f.key;
    EXPECT_EQ(
        csv.rfind("ticker,volume,open,close,high,low,window_start,transactions\n", 0),
        0u);
    EXPECT_EQ(f.rows, static_cast<int64_t>(Lines(csv).size()) - 1);
    EXPECT_EQ(f.bytes, static_cast<int64_t>(tree.at(f.key).size()));
    EXPECT_EQ(f.uncompressed_bytes, static_cast<int64_t>(csv.size()));
    // gzip header: magic, deflate, no flags, mtime 0.
    EXPECT_EQ(tree.at(f.key).substr(0, 8),
              std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00", 8));
  }
}

TEST(SynthMirror, SameArgumentsGiveTheSameBytesWhateverTheJobs) {
  TempDir a, b, c;
  SynthOptions o = Small(D("2024-01-02"), D("2024-01-04"), 0.02);
  o.faults = {Fault::kNanInf, Fault::kDuplicateRows, Fault::kBadOcc};
  o.out_dir = a.path().string();
  o.jobs = 1;
  ASSERT_OK(GenerateMirror(o).status());
  o.out_dir = b.path().string();
  o.jobs = 3;
  ASSERT_OK(GenerateMirror(o).status());
  const auto ta = ReadTree(a.path());
  EXPECT_EQ(ta, ReadTree(b.path()));

  o.out_dir = c.path().string();
  o.seed = 43;
  ASSERT_OK(GenerateMirror(o).status());
  const auto tc = ReadTree(c.path());
  ASSERT_EQ(ta.size(), tc.size());
  for (const auto& [key, bytes] : ta) {
    if (key.find("manifest") != std::string::npos) continue;
    EXPECT_NE(bytes, tc.at(key)) << key << " did not change with the seed";
  }
}

TEST(SynthMirror, ADaysFileDoesNotDependOnTheRange) {
  TempDir wide, narrow;
  SynthOptions o = Small(D("2024-01-02"), D("2024-01-05"));
  o.faults = {Fault::kBadTimestamp, Fault::kWrongDay};  // row-level: range independent
  o.out_dir = wide.path().string();
  ASSERT_OK(GenerateMirror(o).status());
  o.from = o.to = D("2024-01-03");
  o.out_dir = narrow.path().string();
  ASSERT_OK(GenerateMirror(o).status());
  const auto w = ReadTree(wide.path());
  for (const auto& [key, bytes] : ReadTree(narrow.path())) {
    if (key.find("manifest") != std::string::npos) continue;
    EXPECT_EQ(bytes, w.at(key)) << key;
  }
}

TEST(SynthMirror, ScaleMultipliesRows) {
  auto rows = [](double scale, Dataset d) {
    auto csv =
        GenerateCsv(Small(D("2024-01-02"), D("2024-01-02"), scale), d, D("2024-01-09"));
    EXPECT_TRUE(csv.ok());
    return static_cast<double>(csv->rows);
  };
  for (Dataset d : {Dataset::kStocksMinute, Dataset::kOptionsMinute}) {
    const double r1 = rows(0.05, d), r4 = rows(0.2, d);
    EXPECT_GT(r4 / r1, 2.0) << DatasetName(d);
    EXPECT_LT(r4 / r1, 6.0) << DatasetName(d);
  }
}

// --------------------------------------------------------------------------------------
// Faults: exactly the rows the manifest lists are bad, and nothing else.

struct Checked {
  int64_t clean = 0;
  int64_t faulty = 0;
};

// Whether a line is clean for dataset `d` on `day`.
bool CleanLine(std::string_view line, Dataset d, Date day, int columns,
               std::string* why) {
  auto f = Split(line, ',');
  if (static_cast<int>(f.size()) != columns) return *why = "column count", false;
  Row r;
  std::string eight;
  for (int i = 0; i < 8; ++i)
    eight += (i ? "," : "") + std::string(f[static_cast<size_t>(i)]);
  if (!ParseRow(eight, &r)) return *why = "unparsable", false;
  if (r.volume < 0) return *why = "negative volume", false;
  if (r.ws < int64_t{1'000'000'000'000'000'000}) return *why = "short timestamp", false;
  if (ToNewYork(r.ws).date != day) return *why = "wrong day", false;
  if (r.high < std::max(r.open, r.close) || r.low > std::min(r.open, r.close)) {
    return *why = "ohlc", false;
  }
  if (IsOptions(d) && !catalog::ParseOcc(r.ticker).ok()) return *why = "occ", false;
  (void)IsMinute(d);
  return true;
}

TEST(SynthFaults, ManifestListsExactlyTheInjectedRows) {
  TempDir dir;
  SynthOptions o = Small(D("2024-01-02"), D("2024-01-04"));
  o.faults = {std::begin(kAllFaults), std::end(kAllFaults)};
  o.out_dir = dir.path().string();
  ASSERT_OK_AND_ASSIGN(summary, GenerateMirror(o));
  const auto tree = ReadTree(dir.path());
  const auto manifest = nlohmann::json::parse(tree.at("_synth/manifest.json"));
  ASSERT_EQ(manifest["files"].size(), summary.files.size());

  std::map<std::string, std::map<int64_t, nlohmann::json>> by_key;
  std::map<std::string, std::set<std::string>> file_faults;
  std::set<std::string> kinds_seen;
  for (const auto& f : manifest["faults"]) {
    kinds_seen.insert(f["kind"].get<std::string>());
    if (f["level"] == "file") {
      file_faults[f["key"]].insert(f["kind"].get<std::string>());
    } else {
      by_key[f["key"]][f["line"].get<int64_t>()] = f;
    }
  }
  EXPECT_EQ(kinds_seen.size(), std::size(kAllFaults)) << "some fault kind never injected";
  // File-level faults sit on the first session: truncated stocks minute, changed-header
  // stocks daily.
  EXPECT_EQ(file_faults[KeyFor(Dataset::kStocksMinute, D("2024-01-02"))],
            std::set<std::string>{"truncated_gzip"});
  EXPECT_EQ(file_faults[KeyFor(Dataset::kStocksDaily, D("2024-01-02"))],
            std::set<std::string>{"changed_header"});
  EXPECT_EQ(file_faults.size(), 2u);

  for (const auto& mf : manifest["files"]) {
    const std::string key = mf["key"];
    const auto& gz = tree.at(key);
    EXPECT_EQ(mf["bytes"].get<size_t>(), gz.size());
    const Dataset d = *ParseDataset(mf["dataset"].get<std::string>());
    const Date day = *ParseDate(mf["date"].get<std::string>());
    auto csv = internal::Gunzip(gz);
    if (mf["truncated"].get<bool>()) {
      EXPECT_FALSE(csv.ok()) << key << " should be cut mid-member";
      EXPECT_LT(gz.size(), mf["full_bytes"].get<size_t>());
      continue;
    }
    ASSERT_TRUE(csv.ok()) << key << ": " << csv.status().ToString();
    const auto lines = Lines(*csv);
    const bool changed = mf["changed_header"].get<bool>();
    const int columns = changed ? 9 : 8;
    EXPECT_EQ(Split(lines[0], ',').size(), static_cast<size_t>(columns)) << key;
    const auto& faults = by_key[key];
    EXPECT_EQ(mf["rows"].get<int64_t>(), static_cast<int64_t>(lines.size()) - 1);
    EXPECT_EQ(mf["fault_rows"].get<int64_t>(), static_cast<int64_t>(faults.size()));
    EXPECT_EQ(mf["valid_rows"].get<int64_t>() + mf["fault_rows"].get<int64_t>(),
              mf["rows"].get<int64_t>());
    // Each applicable row-level kind is injected in every file.
    std::map<std::string, int> per_kind;
    for (const auto& [line, f] : faults) ++per_kind[f["kind"].get<std::string>()];
    EXPECT_EQ(per_kind.size(), IsOptions(d) ? 8u : 7u) << key;

    Checked c;
    for (size_t i = 1; i < lines.size(); ++i) {
      const auto line_no = static_cast<int64_t>(i) + 1;
      std::string why;
      const bool clean = CleanLine(lines[i], d, day, columns, &why);
      auto it = faults.find(line_no);
      if (it == faults.end()) {
        EXPECT_TRUE(clean) << key << ":" << line_no << " (" << why << "): " << lines[i];
        // Unlisted lines never repeat the line before them.
        EXPECT_NE(lines[i], lines[i - 1]) << key << ":" << line_no;
        ++c.clean;
        continue;
      }
      ++c.faulty;
      const std::string kind = it->second["kind"];
      const auto src = it->second["source_line"].get<int64_t>();
      ASSERT_GE(src, 2);
      ASSERT_LT(src, line_no);
      const auto f = Split(lines[i], ',');
      const auto s = Split(lines[static_cast<size_t>(src - 1)], ',');
      auto col = [&](const std::string& name) {
        static const std::vector<std::string> names = {
            "ticker", "volume", "open",         "close",
            "high",   "low",    "window_start", "transactions"};
        return static_cast<size_t>(std::find(names.begin(), names.end(), name) -
                                   names.begin());
      };
      const std::string column = it->second["column"];
      if (kind == "duplicate_rows") {
        EXPECT_EQ(lines[i], lines[static_cast<size_t>(src - 1)]);
      } else {
        EXPECT_FALSE(clean) << key << ":" << line_no << " listed as " << kind
                            << " but is clean: " << lines[i];
      }
      if (kind == "bad_timestamp") {
        EXPECT_EQ(f[col(column)].size(), 17u) << lines[i];
      } else if (kind == "non_numeric") {
        EXPECT_EQ(f[col(column)], "abc");
      } else if (kind == "negative_volume") {
        EXPECT_EQ(f[1].front(), '-');
      } else if (kind == "nan_inf") {
        EXPECT_TRUE(f[col(column)] == "NaN" || f[col(column)] == "inf" ||
                    f[col(column)] == "-inf");
      } else if (kind == "wrong_day") {
        int64_t ws = 0;
        ASSERT_TRUE(ParseInt(f[6], &ws));
        EXPECT_EQ(ToNewYork(ws).date, day + date::days{1});
      } else if (kind == "ohlc_inconsistent") {
        int64_t close = 0, high = 0;
        ASSERT_TRUE(ParseTicks(f[3], &close) && ParseTicks(f[4], &high));
        EXPECT_GT(close, high);
      } else if (kind == "bad_occ") {
        EXPECT_TRUE(IsOptions(d));
        EXPECT_FALSE(catalog::ParseOcc(f[0]).ok()) << f[0];
      }
      // Apart from the damaged column, a fault row copies its source row.
      for (size_t k = 0; k < f.size(); ++k) {
        if (k == col(column)) continue;
        EXPECT_EQ(f[k], s[k]) << key << ":" << line_no << " column " << k;
      }
    }
    EXPECT_EQ(c.faulty, static_cast<int64_t>(faults.size())) << key;
    EXPECT_EQ(c.clean, mf["valid_rows"].get<int64_t>()) << key;
  }
}

TEST(SynthFaults, WithoutFaultsEveryRowIsClean) {
  const SynthOptions o = Small(D("2024-01-02"), D("2024-01-02"));
  for (Dataset d : kAllDatasets) {
    ASSERT_OK_AND_ASSIGN(csv, GenerateCsv(o, d, D("2024-01-02")));
    EXPECT_TRUE(csv.faults.empty());
    const auto lines = Lines(csv.csv);
    for (size_t i = 1; i < lines.size(); ++i) {
      std::string why;
      ASSERT_TRUE(CleanLine(lines[i], d, D("2024-01-02"), 8, &why))
          << why << ": " << lines[i];
    }
  }
}

}  // namespace
}  // namespace qlake::synth

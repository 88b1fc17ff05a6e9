#include "qlake/ingest/agg_reader.h"

#include <arrow/array.h>
#include <arrow/io/memory.h>
#include <arrow/scalar.h>
#include <arrow/table.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "qlake/catalog/datasets.h"
#include "qlake/catalog/nyse_calendar.h"

namespace qlake::ingest {
namespace {

using ::testing::HasSubstr;

constexpr const char* kHeader =
    "ticker,volume,open,close,high,low,window_start,transactions\n";

// Unix ns of a New York wall time on `day`.
int64_t Ny(const char* day, int hh, int mm) {
  return FromNewYork(*ParseDate(day), hh * 60 + mm);
}

DayContext Ctx(const char* dataset, const char* day) {
  DayContext ctx;
  ctx.spec = *catalog::FindDataset(dataset);
  ctx.session = **catalog::NyseCalendar::Get().SessionOn(*ParseDate(day));
  ctx.source = fmt::format("{}/{}.csv.gz", dataset, day);
  return ctx;
}

AggDay Read(const std::string& csv, const DayContext& ctx, bool arrow_csv = false) {
  auto in = std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString(csv));
  AggReaderOptions opts;
  opts.use_arrow_csv = arrow_csv;
  opts.block_size = 4096;  // many blocks even for small inputs
  auto day = ReadAggDay(in, ctx, opts);
  EXPECT_TRUE(day.ok()) << day.status();
  return day.ok() ? std::move(*day) : AggDay{};
}

std::string Row(const std::string& ticker, int64_t ws, const char* o = "10",
                const char* c = "11", const char* h = "12", const char* l = "9",
                const char* vol = "100", const char* tx = "5") {
  return fmt::format("{},{},{},{},{},{},{},{}\n", ticker, vol, o, c, h, l, ws, tx);
}

std::vector<std::string> Reasons(const AggDay& d) {
  std::vector<std::string> out;
  auto col = std::static_pointer_cast<arrow::StringArray>(
      d.quarantine->GetColumnByName("reason")->chunk(0));
  for (int64_t i = 0; i < col->length(); ++i) out.emplace_back(col->GetView(i));
  return out;
}

std::vector<int64_t> Lines(const AggDay& d) {
  std::vector<int64_t> out;
  auto col = std::static_pointer_cast<arrow::Int64Array>(
      d.quarantine->GetColumnByName("line")->chunk(0));
  for (int64_t i = 0; i < col->length(); ++i) out.push_back(col->Value(i));
  return out;
}

TEST(AggReaderTest, CleanMinuteFileIsTypedSortedAndClassified) {
  const char* day = "2024-12-24";  // early close at 13:00
  std::string csv = kHeader;
  csv += Row("MSFT", Ny(day, 9, 30));
  csv += Row("AAPL", Ny(day, 12, 59));
  csv += Row("AAPL", Ny(day, 4, 0));
  csv += Row("AAPL", Ny(day, 13, 0));
  csv += Row("BRK.B", Ny(day, 19, 59), "400.25", "400.5", "401", "399.125", "12345678901",
             "0");
  auto d = Read(csv, Ctx("stocks_minute", day));
  ASSERT_TRUE(d.table);
  EXPECT_EQ(d.counts.read, 5);
  EXPECT_EQ(d.counts.written, 5);
  EXPECT_TRUE(d.counts.Reconciles());
  ASSERT_TRUE(
      d.table->schema()->Equals(*LakeSchema(**catalog::FindDataset("stocks_minute"))));
  auto t = d.table->CombineChunksToBatch().ValueOrDie();
  auto tick =
      std::static_pointer_cast<arrow::DictionaryArray>(t->GetColumnByName("ticker"));
  auto dict = std::static_pointer_cast<arrow::StringArray>(tick->dictionary());
  std::vector<std::string> order;
  for (int64_t i = 0; i < t->num_rows(); ++i) {
    order.emplace_back(dict->GetView(tick->GetValueIndex(i)));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"AAPL", "AAPL", "AAPL", "BRK.B", "MSFT"}));
  auto ws =
      std::static_pointer_cast<arrow::TimestampArray>(t->GetColumnByName("window_start"));
  EXPECT_EQ(ws->Value(0), Ny(day, 4, 0));
  EXPECT_EQ(ws->Value(2), Ny(day, 13, 0));
  auto sess =
      std::static_pointer_cast<arrow::DictionaryArray>(t->GetColumnByName("session"));
  auto sdict = std::static_pointer_cast<arrow::StringArray>(sess->dictionary());
  auto session_of = [&](int64_t i) {
    return std::string(sdict->GetView(sess->GetValueIndex(i)));
  };
  EXPECT_EQ(session_of(0), "pre");
  EXPECT_EQ(session_of(1), "regular");
  EXPECT_EQ(session_of(2), "post");  // 13:00 on an early-close day
  EXPECT_EQ(session_of(3), "post");
  EXPECT_EQ(session_of(4), "regular");
  auto vol = std::static_pointer_cast<arrow::UInt64Array>(t->GetColumnByName("volume"));
  EXPECT_EQ(vol->Value(3), 12345678901ULL);  // exact beyond float32 and int32
  auto low = std::static_pointer_cast<arrow::FloatArray>(t->GetColumnByName("low"));
  EXPECT_FLOAT_EQ(low->Value(3), 399.125f);
  auto date = std::static_pointer_cast<arrow::Date32Array>(t->GetColumnByName("date"));
  EXPECT_EQ(date->Value(0), ToDate32(*ParseDate(day)));
}

TEST(AggReaderTest, EveryBadRowIsQuarantinedWithReasonAndLine) {
  const char* day = "2024-01-16";
  int64_t t0 = Ny(day, 10, 0);
  std::string csv = kHeader;
  csv += Row("AAA", t0);                                       // 2 ok
  csv += Row("AAA", t0);                                       // 3 duplicate
  csv += Row("AAA", t0 / 100);                                 // 4 17 digits
  csv += Row("BBB", t0, "abc");                                // 5 non numeric
  csv += Row("BBB", t0 + 60'000'000'000, "NaN");               // 6 nan
  csv += Row("BBB", t0 + 120'000'000'000, "10", "inf", "12");  // 7 inf
  csv += Row("CCC", t0, "10", "11", "12", "9", "-5");          // 8 negative volume
  csv += Row("CCC", t0 + 60'000'000'000, "10", "11", "12", "9", "1.5");  // 9 fractional
  csv += Row("DDD", t0, "10", "13", "12", "9");               // 10 close > high
  csv += Row("DDD", t0 + 86'400'000'000'000);                 // 11 next day
  csv += Row("DDD", Ny(day, 3, 59));                          // 12 before 04:00
  csv += Row("DDD", Ny(day, 20, 0));                          // 13 at 20:00
  csv += "EEE,1,2,3\n";                                       // 14 field count
  csv += Row("FFF", t0, "0", "0", "0", "0");                  // 15 zero price
  csv += Row("GGG", t0, "10", "11", "12", "9", "100", "");    // 16 empty field
  csv += Row("GGG", t0, "10", "11", "12", "9", "100", "-1");  // 17 bad transactions
  csv += Row("HHH", Ny("2024-01-17", 0, 30));  // 18 UTC date right, NY wrong
  csv += Row("ZZZ", Ny(day, 19, 30));          // 19 ok: 00:30 UTC next day
  for (bool arrow_csv : {false, true}) {
    SCOPED_TRACE(arrow_csv ? "arrow reader" : "fast reader");
    auto d = Read(csv, Ctx("stocks_minute", day), arrow_csv);
    ASSERT_TRUE(d.table);
    EXPECT_EQ(d.counts.read, 18);
    EXPECT_EQ(d.counts.written, 2);
    EXPECT_EQ(d.counts.quarantined, 16);
    EXPECT_TRUE(d.counts.Reconciles());
    EXPECT_EQ(Reasons(d),
              (std::vector<std::string>{
                  "duplicate", "bad_timestamp", "non_numeric", "nan_inf", "nan_inf",
                  "negative_volume", "non_integer_volume", "ohlc_inconsistent",
                  "wrong_day", "outside_hours", "outside_hours", "field_count",
                  "non_positive_price", "null_field", "bad_transactions", "wrong_day"}));
    EXPECT_EQ(Lines(d), (std::vector<int64_t>{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                              16, 17, 18}));
    auto raw = std::static_pointer_cast<arrow::StringArray>(
        d.quarantine->GetColumnByName("raw")->chunk(0));
    EXPECT_EQ(raw->GetString(11), "EEE,1,2,3");
    auto detail = std::static_pointer_cast<arrow::StringArray>(
        d.quarantine->GetColumnByName("detail")->chunk(0));
    EXPECT_THAT(detail->GetString(1), HasSubstr("17 digits"));
    EXPECT_THAT(detail->GetString(8), HasSubstr("is on 2024-01-17 in New York"));
  }
}

TEST(AggReaderTest, UnsortedInputIsSortedAndLateDuplicatesAreFound) {
  const char* day = "2024-01-16";
  int64_t t0 = Ny(day, 10, 0), m = 60'000'000'000;
  std::string csv = kHeader;
  csv += Row("BBB", t0 + m);
  csv += Row("AAA", t0 + 2 * m);
  csv += Row("AAA", t0);
  csv += Row("BBB", t0);
  csv += Row("AAA", t0 + 2 * m, "10.5", "11", "12",
             "9");  // duplicate of line 3, not adjacent
  auto d = Read(csv, Ctx("stocks_minute", day));
  EXPECT_EQ(d.counts.written, 4);
  EXPECT_EQ(Reasons(d), std::vector<std::string>{"duplicate"});
  EXPECT_EQ(Lines(d), std::vector<int64_t>{6});
  auto raw = std::static_pointer_cast<arrow::StringArray>(
      d.quarantine->GetColumnByName("raw")->chunk(0));
  EXPECT_EQ(raw->GetString(0), fmt::format("AAA,100,10.5,11,12,9,{},5", t0 + 2 * m));
  auto t = d.table->CombineChunksToBatch().ValueOrDie();
  auto ws =
      std::static_pointer_cast<arrow::TimestampArray>(t->GetColumnByName("window_start"));
  EXPECT_EQ(ws->Value(0), t0);
  EXPECT_EQ(ws->Value(1), t0 + 2 * m);
  EXPECT_EQ(ws->Value(2), t0);
  EXPECT_EQ(ws->Value(3), t0 + m);
}

TEST(AggReaderTest, HeaderIsMatchedByNameAndChecked) {
  const char* day = "2024-01-16";
  DayContext ctx = Ctx("stocks_daily", day);
  int64_t midnight = Ny(day, 0, 0);
  std::string permuted = "window_start,ticker,open,high,low,close,volume,transactions\n" +
                         fmt::format("{},AAPL,10,12,9,11,100,5\n", midnight);
  auto d = Read(permuted, ctx);
  EXPECT_EQ(d.counts.written, 1);
  auto t = d.table->CombineChunksToBatch().ValueOrDie();
  EXPECT_FLOAT_EQ(
      std::static_pointer_cast<arrow::FloatArray>(t->GetColumnByName("close"))->Value(0),
      11.f);

  for (const char* bad :
       {"ticker,volume,open,close,high,low,window_start,transactions,otc\n",
        "ticker,volume,open,close,high,low,window_start\n",
        "ticker,volume,open,close,high,high,window_start,transactions\n"}) {
    for (bool arrow_csv : {false, true}) {
      auto in = std::make_shared<arrow::io::BufferReader>(
          arrow::Buffer::FromString(std::string(bad) + "x\n"));
      AggReaderOptions o;
      o.use_arrow_csv = arrow_csv;
      auto r = ReadAggDay(in, ctx, o);
      ASSERT_FALSE(r.ok()) << bad;
      EXPECT_TRUE(r.status().IsInvalid());
      EXPECT_THAT(r.status().message(), HasSubstr("stocks_daily/2024-01-16.csv.gz"));
    }
  }
  auto empty = ReadAggDay(
      std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString("")), ctx);
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("empty file"));
}

TEST(AggReaderTest, CrLfAndMissingFinalNewline) {
  const char* day = "2024-01-16";
  std::string csv = "ticker,volume,open,close,high,low,window_start,transactions\r\n" +
                    fmt::format("AAPL,1,10,11,12,9,{},1\r\nMSFT,1,10,11,12,9,{},1",
                                Ny(day, 10, 0), Ny(day, 10, 0));
  auto d = Read(csv, Ctx("stocks_minute", day));
  EXPECT_EQ(d.counts.read, 2);
  EXPECT_EQ(d.counts.written, 2);
}

TEST(AggReaderTest, OptionsGetContractColumnsAndBadOccIsQuarantined) {
  const char* day = "2025-01-10";
  int64_t t = Ny(day, 10, 0);
  std::string csv = kHeader;
  csv += Row("O:SPY250117C00590000", t, "1.25", "1.5", "1.55", "1.2");
  csv += Row("O:PCG250117P00012500", t, "0.05", "0.05", "0.05", "0.05");
  csv += Row("O:SPY25011XC00590000", t);
  csv += Row("O:QQQ250117C00500000", t);
  DayContext ctx = Ctx("options_minute", day);
  auto d = Read(csv, ctx);
  EXPECT_EQ(d.counts.written, 3);
  EXPECT_EQ(Reasons(d), std::vector<std::string>{"bad_occ"});
  auto tb = d.table->CombineChunksToBatch().ValueOrDie();
  auto strike =
      std::static_pointer_cast<arrow::DoubleArray>(tb->GetColumnByName("strike"));
  auto exp =
      std::static_pointer_cast<arrow::Date32Array>(tb->GetColumnByName("expiration"));
  auto und =
      std::static_pointer_cast<arrow::DictionaryArray>(tb->GetColumnByName("underlying"));
  auto udict = std::static_pointer_cast<arrow::StringArray>(und->dictionary());
  auto typ = std::static_pointer_cast<arrow::DictionaryArray>(
      tb->GetColumnByName("option_type"));
  auto tdict = std::static_pointer_cast<arrow::StringArray>(typ->dictionary());
  // Sorted by ticker: PCG, QQQ, SPY.
  EXPECT_EQ(udict->GetView(und->GetValueIndex(0)), "PCG");
  EXPECT_EQ(tdict->GetView(typ->GetValueIndex(0)), "P");
  EXPECT_DOUBLE_EQ(strike->Value(0), 12.5);
  EXPECT_EQ(udict->GetView(und->GetValueIndex(2)), "SPY");
  EXPECT_EQ(tdict->GetView(typ->GetValueIndex(2)), "C");
  EXPECT_DOUBLE_EQ(strike->Value(2), 590.0);
  EXPECT_EQ(exp->Value(2), ToDate32(*ParseDate("2025-01-17")));

  ctx.symbols = {"SPY"};
  auto f = Read(csv, ctx);
  EXPECT_EQ(f.counts.written, 1);
  EXPECT_EQ(f.counts.filtered, 2);
  EXPECT_EQ(f.counts.quarantined, 1);
  EXPECT_TRUE(f.counts.Reconciles());
}

TEST(AggReaderTest, BigMovesAreFlaggedNotDropped) {
  const char* day = "2024-01-16";
  int64_t t = Ny(day, 10, 0), m = 60'000'000'000;
  std::string csv = kHeader;
  csv += Row("AAA", t, "10", "10", "10", "10");
  csv += Row("AAA", t + m, "10", "16", "16", "10");  // +60 %
  csv += Row("AAA", t + 2 * m, "16", "17", "17", "16");
  csv += Row("BBB", t, "100", "100", "100", "100");  // new ticker: no previous bar
  auto d = Read(csv, Ctx("stocks_minute", day));
  EXPECT_EQ(d.counts.written, 4);
  EXPECT_EQ(d.counts.flagged, 1);
  auto tb = d.table->CombineChunksToBatch().ValueOrDie();
  auto flags = std::static_pointer_cast<arrow::UInt8Array>(tb->GetColumnByName("flags"));
  EXPECT_EQ(flags->Value(0), 0);
  EXPECT_EQ(flags->Value(1), kFlagBigMove);
  EXPECT_EQ(flags->Value(2), 0);
  EXPECT_EQ(flags->Value(3), 0);
}

TEST(AggReaderTest, FastAndArrowReadersAgreeOnAMessyFile) {
  const char* day = "2024-03-15";
  std::string csv = kHeader;
  uint64_t x = 12345;
  auto next = [&] {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x >> 33;
  };
  const char* bad[] = {"abc", "NaN", "-1", "1e400", "", "0.0000001"};
  for (int i = 0; i < 3000; ++i) {
    std::string tk = fmt::format("T{}", next() % 50);
    int64_t ws =
        Ny(day, 4, 0) + static_cast<int64_t>(next() % (16 * 60)) * 60'000'000'000;
    if (next() % 40 == 0) ws += 86'400'000'000'000;
    std::string o = fmt::format("{}.{}", 10 + next() % 90, next() % 100);
    std::string c = next() % 60 == 0 ? bad[next() % 6] : o;
    csv += fmt::format("{},{},{},{},{},{},{},{}\n", tk, next() % 100000, o, c, o, o, ws,
                       next() % 50);
    if (next() % 100 == 0) csv += "broken,line\n";
  }
  auto fast = Read(csv, Ctx("stocks_minute", day), false);
  auto ref = Read(csv, Ctx("stocks_minute", day), true);
  ASSERT_TRUE(fast.table && ref.table);
  EXPECT_GT(fast.counts.quarantined, 50);
  EXPECT_EQ(fast.counts.read, ref.counts.read);
  EXPECT_EQ(fast.counts.by_reason, ref.counts.by_reason);
  EXPECT_TRUE(fast.table->Equals(*ref.table));
  EXPECT_TRUE(fast.quarantine->Equals(*ref.quarantine));
}

}  // namespace
}  // namespace qlake::ingest

namespace qlake::ingest {
namespace {

// Streams `csv` in chunks of `chunk_rows` and returns (concatenated table, concatenated
// quarantine, final counts, whether any chunk was out of order).
struct Streamed {
  std::shared_ptr<arrow::Table> table, quarantine;
  DayCounts counts;
  bool out_of_order = false;
  int chunks = 0;
};

Streamed Stream(const std::string& csv, const DayContext& ctx, int64_t chunk_rows) {
  Streamed out;
  std::vector<std::shared_ptr<arrow::Table>> tables, quarantines;
  AggReaderOptions opts;
  opts.block_size = 4096;
  opts.chunk_rows = chunk_rows;
  opts.on_chunk = [&](AggDay&& c) {
    ++out.chunks;
    out.out_of_order |= c.out_of_order;
    tables.push_back(c.table);
    quarantines.push_back(c.quarantine);
    return arrow::Status::OK();
  };
  auto in = std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString(csv));
  auto last = ReadAggDay(in, ctx, opts);
  EXPECT_TRUE(last.ok()) << last.status();
  out.out_of_order |= last->out_of_order;
  tables.push_back(last->table);
  quarantines.push_back(last->quarantine);
  out.counts = last->counts;
  // Unify the per-chunk dictionaries so tables compare by value.
  auto unify = [](std::vector<std::shared_ptr<arrow::Table>> ts) {
    auto t = *arrow::ConcatenateTables(ts);
    return *t->CombineChunks();
  };
  out.table = unify(tables);
  out.quarantine = unify(quarantines);
  return out;
}

std::string SortedMessyCsv(const char* day) {
  std::string csv = kHeader;
  int64_t t0 = Ny(day, 9, 30), m = 60'000'000'000;
  for (int t = 0; t < 40; ++t) {
    std::string tk = fmt::format("T{:03d}", t);
    double px = 10 + t;
    for (int k = 0; k < 120; ++k) {
      if (k == 60 && t % 7 == 0) px *= 2;  // big move inside a run
      csv += Row(tk, t0 + k * m, "1", fmt::format("{}", px).c_str(), "1000", "0.5");
      if (k % 37 == 5) csv += Row(tk, t0 + k * m);                 // duplicate
      if (k % 53 == 7) csv += Row(tk, t0 + k * m + m / 2, "abc");  // bad row
    }
  }
  return csv;
}

TEST(AggReaderStreamingTest, ChunksOfASortedFileEqualTheWholeDay) {
  const char* day = "2024-03-15";
  std::string csv = SortedMessyCsv(day);
  DayContext ctx = Ctx("stocks_minute", day);
  auto whole = Read(csv, ctx);
  for (int64_t chunk : {1000, 997, 4799, 100000}) {
    SCOPED_TRACE(chunk);
    auto s = Stream(csv, ctx, chunk);
    EXPECT_FALSE(s.out_of_order);
    EXPECT_EQ(s.counts.read, whole.counts.read);
    EXPECT_EQ(s.counts.written, whole.counts.written);
    EXPECT_EQ(s.counts.by_reason, whole.counts.by_reason);
    EXPECT_EQ(s.counts.flagged, whole.counts.flagged);
    EXPECT_GT(whole.counts.flagged, 0);
    EXPECT_GT(whole.counts.by_reason[static_cast<int>(RejectReason::kDuplicate)], 0);
    auto w = *whole.table->CombineChunks();
    ASSERT_EQ(s.table->num_rows(), w->num_rows());
    // Dictionaries differ per chunk; compare decoded tickers and every other column.
    for (int c = 0; c < w->num_columns(); ++c) {
      auto a = s.table->column(c), b = w->column(c);
      if (a->type()->id() == arrow::Type::DICTIONARY) {
        for (int64_t i = 0; i < w->num_rows(); i += 97) {
          EXPECT_EQ(a->GetScalar(i).ValueOrDie()->ToString(),
                    b->GetScalar(i).ValueOrDie()->ToString());
        }
      } else {
        EXPECT_TRUE(a->Equals(*b)) << w->schema()->field(c)->name();
      }
    }
    EXPECT_TRUE(s.quarantine->Equals(*whole.quarantine->CombineChunks().ValueOrDie()));
  }
}

TEST(AggReaderStreamingTest, UnsortedFilesAreReportedOutOfOrder) {
  const char* day = "2024-03-15";
  int64_t t = Ny(day, 10, 0);
  std::string csv = kHeader;
  for (int i = 0; i < 30000; ++i)
    csv += Row(fmt::format("B{}", i % 7),
               t + (i / 7) * 60'000'000'000LL % (8LL * 3600'000'000'000LL));
  for (int i = 0; i < 15000; ++i) csv += Row("A", t + i % 900 * 60'000'000'000LL);
  auto s = Stream(csv, Ctx("stocks_minute", day), 10000);
  EXPECT_TRUE(s.out_of_order);
  EXPECT_TRUE(s.counts.Reconciles());
}

}  // namespace
}  // namespace qlake::ingest

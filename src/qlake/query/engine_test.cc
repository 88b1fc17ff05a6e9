// Engine tests on a tiny hand-made lake; tests/python/test_query.py compares the engine
// with DuckDB over synthetic lakes of both layouts.

#include "qlake/query/engine.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include <arrow/array.h>
#include <arrow/compute/api.h>
#include <arrow/json/from_string.h>
#include <arrow/record_batch.h>
#include <gtest/gtest.h>

#include "qlake/catalog/datasets.h"
#include "qlake/ingest/agg_day.h"
#include "qlake/ingest/layout.h"
#include "qlake/ingest/parquet_out.h"

#include <parquet/arrow/writer.h>
#include <parquet/properties.h>

namespace qlake::query {
namespace {

namespace cp = arrow::compute;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitializeQueryEngine().ok());
    dir_ = std::filesystem::temp_directory_path() /
           ("qlake_engine_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    lake_ = lake::Lake::Open(dir_.string()).ValueOrDie();
    // Two days; tickers A, B, C with 2, 3, 2 bars; row groups of 2 rows.
    AddDay("2025-01-02", R"([
      {"ticker":"A","volume":10,"open":1,"close":1,"high":1,"low":1,"window_start":1735776000000000000,"transactions":1,"date":20090,"flags":0},
      {"ticker":"A","volume":20,"open":2,"close":2,"high":2,"low":2,"window_start":1735776060000000000,"transactions":1,"date":20090,"flags":0},
      {"ticker":"B","volume":30,"open":3,"close":3,"high":3,"low":3,"window_start":1735776000000000000,"transactions":1,"date":20090,"flags":0},
      {"ticker":"B","volume":40,"open":4,"close":4,"high":4,"low":4,"window_start":1735776060000000000,"transactions":1,"date":20090,"flags":0},
      {"ticker":"B","volume":50,"open":5,"close":5,"high":5,"low":5,"window_start":1735776120000000000,"transactions":1,"date":20090,"flags":0},
      {"ticker":"C","volume":60,"open":6,"close":6,"high":6,"low":6,"window_start":1735776000000000000,"transactions":1,"date":20090,"flags":0},
      {"ticker":"C","volume":70,"open":7,"close":7,"high":7,"low":7,"window_start":1735776060000000000,"transactions":1,"date":20090,"flags":0}])");
    AddDay("2025-01-03", R"([
      {"ticker":"B","volume":80,"open":8,"close":8,"high":8,"low":8,"window_start":1735862400000000000,"transactions":1,"date":20091,"flags":0},
      {"ticker":"C","volume":90,"open":9,"close":9,"high":9,"low":9,"window_start":1735862400000000000,"transactions":1,"date":20091,"flags":0}])");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void AddDay(const std::string& day, const std::string& json) {
    auto spec = catalog::FindDataset("stocks_daily").ValueOrDie();
    auto schema = ingest::LakeSchema(*spec);
    arrow::FieldVector plain;
    for (const auto& f : schema->fields()) {
      plain.push_back(f->type()->id() == arrow::Type::DICTIONARY
                          ? arrow::field(f->name(), arrow::utf8())
                          : f);
    }
    auto structs =
        arrow::json::ArrayFromJSONString(arrow::struct_(plain), json).ValueOrDie();
    auto batch = arrow::RecordBatch::FromStructArray(structs).ValueOrDie();
    arrow::ArrayVector cols;
    for (int i = 0; i < batch->num_columns(); ++i) {
      auto c = batch->column(i);
      if (schema->field(i)->type()->id() == arrow::Type::DICTIONARY) {
        c = cp::Cast(*c, schema->field(i)->type()).ValueOrDie();
      }
      cols.push_back(c);
    }
    auto table = arrow::Table::Make(schema, cols);
    Date d = ParseDate(day).ValueOrDie();
    auto txn = lake_->BeginDay("stocks_daily", d).ValueOrDie();
    auto out = txn->OpenFile(ingest::DayFilePath(d)).ValueOrDie();
    // Row groups of 2 rows (ingest's writer refuses < 1000), sorted by ticker as ingest
    // declares it.
    auto props = parquet::WriterProperties::Builder()
                     .max_row_group_length(2)
                     ->set_sorting_columns({parquet::SortingColumn{0, false, false}})
                     ->build();
    auto arrow_props = parquet::ArrowWriterProperties::Builder().store_schema()->build();
    auto st = parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, 2,
                                         props, arrow_props);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_TRUE(out->Close().ok());
    lake::CommitInfo info;
    info.rows.read = info.rows.written = table->num_rows();
    ASSERT_TRUE(txn->Commit(info).ok());
  }

  QueryOptions Q(std::vector<std::string> symbols) {
    QueryOptions q;
    q.dataset = "stocks_daily";
    q.symbols = std::move(symbols);
    q.from = ParseDate("2025-01-01").ValueOrDie();
    q.to = ParseDate("2025-01-31").ValueOrDie();
    return q;
  }

  std::vector<int64_t> Volumes(const arrow::Table& t) {
    std::vector<int64_t> out;
    for (const auto& chunk : t.GetColumnByName("volume")->chunks()) {
      auto a = std::static_pointer_cast<arrow::UInt64Array>(chunk);
      for (int64_t i = 0; i < a->length(); ++i)
        out.push_back(static_cast<int64_t>(a->Value(i)));
    }
    return out;
  }

  std::vector<std::string> Tickers(const arrow::Table& t) {
    std::vector<std::string> out;
    auto col = t.GetColumnByName("ticker");
    for (const auto& chunk : col->chunks()) {
      const auto& d = static_cast<const arrow::DictionaryArray&>(*chunk);
      const auto& dict = static_cast<const arrow::StringArray&>(*d.dictionary());
      for (int64_t i = 0; i < d.length(); ++i) {
        out.push_back(std::string(dict.GetView(d.GetValueIndex(i))));
      }
    }
    return out;
  }

  std::filesystem::path dir_;
  std::shared_ptr<lake::Lake> lake_;
};

TEST_F(EngineTest, SymbolsInOrderWithPruning) {
  auto engine = Engine::Make(lake_).ValueOrDie();
  auto r = engine->Query(Q({"C", "B"})).ValueOrDie();
  // By (symbol, day): B's rows first, then C's.
  EXPECT_EQ(Volumes(*r.table), (std::vector<int64_t>{30, 40, 50, 80, 60, 70, 90}));
  EXPECT_EQ(r.stats.days, 2);
  EXPECT_EQ(r.stats.files, 2);
  EXPECT_EQ(r.stats.row_groups, 5);
  EXPECT_EQ(r.stats.row_groups_pruned, 1);  // the row group of A only
  EXPECT_EQ(r.stats.rows, 7);
  EXPECT_GT(r.stats.bytes_read, 0);
  EXPECT_EQ(r.stats.cache_hits, 0);

  auto warm = engine->Query(Q({"B"})).ValueOrDie();
  EXPECT_EQ(Volumes(*warm.table), (std::vector<int64_t>{30, 40, 50, 80}));
  EXPECT_EQ(warm.stats.cache_misses, 0);
  EXPECT_GT(warm.stats.cache_hits, 0);
  EXPECT_EQ(warm.stats.bytes_read, 0);
}

TEST_F(EngineTest, WhereColumnsAndRange) {
  auto engine = Engine::Make(lake_).ValueOrDie();
  auto q = Q({});
  q.where = "volume >= 40 and close < 9";
  q.columns = {"volume", "ticker"};
  auto r = engine->Query(q).ValueOrDie();
  EXPECT_EQ(r.table->schema()->field(0)->name(), "volume");
  EXPECT_EQ(r.table->num_columns(), 2);
  EXPECT_EQ(Volumes(*r.table), (std::vector<int64_t>{40, 50, 60, 70, 80}));
  EXPECT_GT(r.stats.row_groups_pruned, 0);  // volume max 20 in A's group

  q = Q({"B"});
  q.from = q.to = ParseDate("2025-01-03").ValueOrDie();
  r = engine->Query(q).ValueOrDie();
  EXPECT_EQ(Volumes(*r.table), (std::vector<int64_t>{80}));

  q = Q({"ZZZ"});
  r = engine->Query(q).ValueOrDie();
  EXPECT_EQ(r.table->num_rows(), 0);
  EXPECT_EQ(r.table->num_columns(), 10);
}

TEST_F(EngineTest, Errors) {
  auto engine = Engine::Make(lake_).ValueOrDie();
  auto q = Q({"A"});
  q.columns = {"clos"};
  auto r = engine->Query(q);
  ASSERT_TRUE(r.status().IsInvalid());
  EXPECT_NE(r.status().message().find("unknown column 'clos' of stocks_daily"),
            std::string::npos);
  q = Q({"A"});
  q.where = "close >";
  EXPECT_TRUE(engine->Query(q).status().IsInvalid());
  q = Q({"A"});
  q.sessions = {"regular"};
  EXPECT_NE(engine->Query(q).status().message().find("needs a minute dataset"),
            std::string::npos);
  q = Q({"A"});
  q.dataset = "nope";
  EXPECT_FALSE(engine->Query(q).ok());
  q = Q({"A"});
  std::swap(q.from, q.to);
  EXPECT_NE(engine->Query(q).status().message().find("is after"), std::string::npos);
}

TEST_F(EngineTest, ShortPiecesAreCopiedIntoOneChunk) {
  auto engine = Engine::Make(lake_).ValueOrDie();
  // Five slices of 1-3 rows from four row groups of two files: one chunk per column.
  auto r = engine->Query(Q({"C", "B"})).ValueOrDie();
  for (const auto& col : r.table->columns()) EXPECT_EQ(col->num_chunks(), 1);
  EXPECT_EQ(Tickers(*r.table),
            (std::vector<std::string>{"B", "B", "B", "B", "C", "C", "C"}));
  EXPECT_TRUE(r.table->schema()->GetFieldByName("ticker")->type()->Equals(
      arrow::dictionary(arrow::int32(), arrow::utf8())));
  ASSERT_TRUE(r.table->ValidateFull().ok());
  // Whole row groups (no symbols) with their own dictionaries, filtered.
  auto q = Q({});
  q.where = "volume != 50";
  r = engine->Query(q).ValueOrDie();
  EXPECT_EQ(Tickers(*r.table),
            (std::vector<std::string>{"A", "A", "B", "B", "C", "C", "B", "C"}));
  EXPECT_EQ(Volumes(*r.table), (std::vector<int64_t>{10, 20, 30, 40, 60, 70, 80, 90}));
  ASSERT_TRUE(r.table->ValidateFull().ok());
  // Symbols and a condition on the symbol column: only the condition filters.
  q = Q({"A", "C"});
  q.where = "ticker != 'A' or volume > 10";
  q.columns = {"volume"};
  r = engine->Query(q).ValueOrDie();
  EXPECT_EQ(Volumes(*r.table), (std::vector<int64_t>{20, 60, 70, 90}));
  EXPECT_EQ(r.table->num_columns(), 1);
}

TEST_F(EngineTest, SeesNewCommitsWhileTheRecordListingIsCached) {
  auto engine = Engine::Make(lake_).ValueOrDie();
  auto commits = dir_ / "_qlake" / "stocks_daily" / "commits";
  ASSERT_TRUE(std::filesystem::is_directory(commits));
  EXPECT_EQ(engine->Query(Q({"B"})).ValueOrDie().stats.days, 2);
  // A commit right after a listing (the folder's time is too recent to trust).
  AddDay("2025-01-06", R"([
      {"ticker":"B","volume":100,"open":1,"close":1,"high":1,"low":1,"window_start":1736121600000000000,"transactions":1,"date":20094,"flags":0}])");
  auto r = engine->Query(Q({"B"})).ValueOrDie();
  EXPECT_EQ(Volumes(*r.table), (std::vector<int64_t>{30, 40, 50, 80, 100}));
  // A listing taken long after the folder last changed is reused until it changes.
  std::filesystem::last_write_time(
      commits, std::filesystem::last_write_time(commits) - std::chrono::seconds(30));
  EXPECT_EQ(engine->Query(Q({"B"})).ValueOrDie().stats.days, 3);
  EXPECT_EQ(engine->Query(Q({"B"})).ValueOrDie().stats.days, 3);
  AddDay("2025-01-07", R"([
      {"ticker":"B","volume":110,"open":1,"close":1,"high":1,"low":1,"window_start":1736208000000000000,"transactions":1,"date":20095,"flags":0}])");
  r = engine->Query(Q({"B"})).ValueOrDie();
  EXPECT_EQ(r.stats.days, 4);
  EXPECT_EQ(Volumes(*r.table), (std::vector<int64_t>{30, 40, 50, 80, 100, 110}));
  // A re-ingested day replaces its record: the new file is read, not the cached one.
  AddDay("2025-01-07", R"([
      {"ticker":"B","volume":120,"open":1,"close":1,"high":1,"low":1,"window_start":1736208000000000000,"transactions":1,"date":20095,"flags":0}])");
  r = engine->Query(Q({"B"})).ValueOrDie();
  EXPECT_EQ(Volumes(*r.table), (std::vector<int64_t>{30, 40, 50, 80, 100, 120}));
}

}  // namespace
}  // namespace qlake::query

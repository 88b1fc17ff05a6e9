#include "qlake/query/where.h"

#include <arrow/array.h>
#include <arrow/compute/api.h>
#include <arrow/compute/initialize.h>
#include <arrow/json/from_string.h>
#include <arrow/record_batch.h>
#include <gtest/gtest.h>

#include "qlake/catalog/datasets.h"
#include "qlake/ingest/agg_day.h"

namespace qlake::query {
namespace {

namespace cp = arrow::compute;

std::shared_ptr<arrow::Schema> Minute() {
  return ingest::LakeSchema(*catalog::FindDataset("stocks_minute").ValueOrDie());
}

// Evaluates `text` on a small batch and returns the mask as a vector.
std::vector<bool> Eval(const std::string& text) {
  EXPECT_TRUE(cp::Initialize().ok());
  auto schema = arrow::schema(
      {arrow::field("close", arrow::float32()), arrow::field("volume", arrow::uint64()),
       arrow::field("ticker", arrow::utf8()), arrow::field("date", arrow::date32())});
  auto structs = arrow::json::ArrayFromJSONString(arrow::struct_(schema->fields()), R"([
      {"close": 99.5, "volume": 10, "ticker": "AAPL", "date": 20089},
      {"close": 100.5, "volume": 2000, "ticker": "MSFT", "date": 20090},
      {"close": 150, "volume": 5000, "ticker": "O'NEIL", "date": 20091}])")
                     .ValueOrDie();
  auto batch = arrow::RecordBatch::FromStructArray(structs).ValueOrDie();
  auto expr = ParseWhere(text, *schema);
  EXPECT_TRUE(expr.ok()) << expr.status().ToString();
  auto bound = expr->Bind(*schema).ValueOrDie();
  auto mask = cp::ExecuteScalarExpression(bound, cp::ExecBatch(*batch)).ValueOrDie();
  auto arr = std::static_pointer_cast<arrow::BooleanArray>(mask.make_array());
  std::vector<bool> out;
  for (int64_t i = 0; i < arr->length(); ++i)
    out.push_back(arr->IsValid(i) && arr->Value(i));
  return out;
}

TEST(Where, Comparisons) {
  EXPECT_EQ(Eval("close > 100"), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(Eval("close > 100 and volume >= 5000"),
            (std::vector<bool>{false, false, true}));
  EXPECT_EQ(Eval("close < 100 OR volume = 2000"), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(Eval("not (close > 100)"), (std::vector<bool>{true, false, false}));
  EXPECT_EQ(Eval("volume != 10"), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(Eval("volume <> 10"), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(Eval("volume == 10"), (std::vector<bool>{true, false, false}));
}

TEST(Where, InBetweenNullArithmetic) {
  EXPECT_EQ(Eval("ticker in ('AAPL', 'O''NEIL')"),
            (std::vector<bool>{true, false, true}));
  EXPECT_EQ(Eval("ticker not in (\"AAPL\")"), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(Eval("volume between 10 and 2000"), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(Eval("volume not between 10 and 2000"),
            (std::vector<bool>{false, false, true}));
  EXPECT_EQ(Eval("close is not null"), (std::vector<bool>{true, true, true}));
  EXPECT_EQ(Eval("close is null"), (std::vector<bool>{false, false, false}));
  EXPECT_EQ(Eval("close * volume > 100000"), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(Eval("(close - 100) / 2 > 0.2"), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(Eval("volume / 4000 >= 0.5"), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(Eval("-close < -100"), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(Eval("close > 1e2"), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(Eval("date >= '2025-01-02'"), (std::vector<bool>{false, true, true}));
  EXPECT_EQ(Eval("((close > 100)) and (volume < 5000 or ticker = 'AAPL')"),
            (std::vector<bool>{false, true, false}));
}

TEST(Where, LakeSchemaColumns) {
  auto schema = Minute();
  EXPECT_TRUE(ParseWhere("session = 'regular' and close > 1", *schema).ok());
  EXPECT_TRUE(ParseWhere("window_start >= '2025-01-02T14:30:00Z'", *schema).ok());
  auto e = ParseWhere("ticker = 'AAPL' and volume > 3", *schema).ValueOrDie();
  EXPECT_EQ(ReferencedColumns(e), (std::vector<std::string>{"ticker", "volume"}));
}

void ExpectError(const std::string& text, const std::string& part) {
  auto r = ParseWhere(text, *Minute());
  ASSERT_FALSE(r.ok()) << text;
  EXPECT_TRUE(r.status().IsInvalid());
  EXPECT_NE(r.status().message().find(part), std::string::npos)
      << text << " -> " << r.status().message();
}

TEST(Where, Errors) {
  ExpectError("clse > 1", "unknown column 'clse' at 1 (columns: ticker");
  ExpectError("close >", "expected a column, number or string at 8, found end of input");
  ExpectError("close > 1 and", "at 14");
  ExpectError("close", "expected a comparison");
  ExpectError("close > 'abc", "unterminated string");
  ExpectError("close # 1", "unexpected character '#'");
  ExpectError("", "empty expression");
  ExpectError("close + 1", "expected a comparison");
  ExpectError("(close > 1", "expected ')'");
  ExpectError("close > 1 volume", "expected end of expression");
  ExpectError("date > 'yesterday'", "is not a date");
  ExpectError("window_start > '2025-01-02'", "is not a time");
  ExpectError("ticker > 3", "where:");
  ExpectError("close in (1, 'a')", "IN list mixes");
}

}  // namespace
}  // namespace qlake::query

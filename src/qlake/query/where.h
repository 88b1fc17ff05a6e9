// File: qlake/query/where.h
//
// The --where language of `qlake query` (and `where=` of the Python module): a small,
// boolean filter over the columns of a lake dataset, compiled to an
// arrow::compute::Expression that the query engine pushes into its scan (row groups whose
// statistics cannot match are skipped) and then evaluates on the rows it reads.
//
//   expr      := or
//   or        := and ("or" and)*
//   and       := not ("and" not)*
//   not       := "not" not | primary
//   primary   := "(" expr ")" | comparison
//   comparison:= operand op operand
//              | operand ["not"] "in" "(" literal ("," literal)* ")"
//              | operand ["not"] "between" literal "and" literal
//              | operand "is" ["not"] "null"
//   op        := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//   operand   := column | literal | operand ("+"|"-"|"*"|"/") operand  (usual precedence)
//   literal   := number (123, -1.5, 1e6) | 'string' (single or double quotes; '' escapes)
//              | true | false
//
// Keywords are case-insensitive; column names are the dataset's (case-sensitive). A
// string compared with a date column is a date ('2025-01-02'); with a timestamp column it
// is an ISO 8601 time with an explicit offset or Z ('2025-01-02T14:30:00Z'). Examples:
//
//   close > 100 and volume >= 1000
//   ticker in ('AAPL', 'MSFT') and not (session = 'pre')
//   (high - low) / open > 0.02 or transactions between 10 and 20
//
// Errors are Invalid with the position and what was expected ("where: unknown column
// 'clse' at 1 (columns: ticker, volume, ...)").
//
// Thread safety: pure functions.

#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <arrow/compute/expression.h>
#include <arrow/result.h>
#include <arrow/type_fwd.h>

namespace qlake::query {

/// Parses `text` against `schema` (the dataset's lake schema). The expression is not yet
/// bound; the engine binds it to the schema of what it reads.
arrow::Result<arrow::compute::Expression> ParseWhere(std::string_view text,
                                                     const arrow::Schema& schema);

/// The column names `expr` refers to, sorted, without duplicates.
std::vector<std::string> ReferencedColumns(const arrow::compute::Expression& expr);

}  // namespace qlake::query

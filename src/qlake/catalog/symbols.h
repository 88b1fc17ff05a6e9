// File: qlake/catalog/symbols.h
//
// Tickers are untrusted strings (DESIGN.md section 5). This header has the two things
// every stage does with them:
//
//  * OCC option symbols: "O:SPY230327P00390000" -> root SPY, expiry 2023-03-27, put,
//    strike 390.000. Parsed from the right (the last 15 characters are YYMMDD, C/P and
//    the strike x 1000 in 8 digits), because roots may contain digits (adjusted contracts
//    such as AAPL1) and the letters P and C (PCG), so "the first P or C" is wrong.
//  * Path components: EscapePathComponent turns any ticker into a directory name that is
//    safe on Linux, macOS and Windows (no separators, no "." or "..", no reserved device
//    names such as CON or LPT1, no case collisions) and that standard percent-decoding,
//    as done by pyarrow's hive partitioning, turns back into the ticker.
//
// Thread safety: pure functions.

#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <arrow/result.h>

#include "qlake/core/dates.h"

namespace qlake::catalog {

struct OccContract {
  std::string_view root;  // view into the parsed ticker: "SPY"
  Date expiration;
  char type = 'C';           // 'C' or 'P'
  int64_t strike_milli = 0;  // strike x 1000, exact: 390.000 -> 390000

  double strike() const { return static_cast<double>(strike_milli) / 1000.0; }
};

/// Parses an OCC option ticker with the "O:" prefix. Invalid (naming the ticker and what
/// is wrong) for anything else. The year is 2000 + YY (all current data).
arrow::Result<OccContract> ParseOcc(std::string_view ticker);

/// Reversible, portable directory name for a ticker: bytes other than A-Z, 0-9, '-' and
/// '_' are percent-encoded (%2E for '.', %70 for 'p', ...), and the first letter of a
/// Windows reserved device name is encoded too (CON -> %43ON). Invalid for an empty
/// ticker.
arrow::Result<std::string> EscapePathComponent(std::string_view ticker);

/// Inverse of EscapePathComponent (plain percent-decoding). Invalid on a malformed
/// escape.
arrow::Result<std::string> UnescapePathComponent(std::string_view component);

}  // namespace qlake::catalog

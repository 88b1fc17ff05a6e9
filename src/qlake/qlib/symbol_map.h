// File: qlake/qlib/symbol_map.h
//
// How a lake ticker becomes a Qlib instrument code and a features/ directory name, and
// back. Qlib reads `instruments/<market>.txt` with pandas' default NA list (a ticker `NA`
// or `NULL` becomes float NaN and breaks every market query), lowercases codes to find
// directories (so `BRACr` and `BRACR` would share one), and passes dots, slashes and
// colons into paths unchanged. The code is therefore built from [A-Z0-9_-] only:
//
//   A-Z, 0-9          unchanged                        AAPL    -> AAPL
//   a-z               '_' + the uppercase letter       JPMpC   -> JPM_PC,  BRACr ->
//   BRAC_R
//   '.'               '-'                              BRK.B   -> BRK-B   (Yahoo's
//   spelling) any other byte    '__' + two uppercase hex digits  A/B -> A__2FB, X-Y ->
//   X__2DY, _ -> __5F code NA or NULL   a trailing '_' is added          NA      -> NA_,
//   NULL -> NULL_
//
// '_' is always followed by a letter (a lowercase letter), by '_' (a hex escape) or by
// nothing (the NA guard), so decoding is unambiguous, and since a code has no lowercase
// letters, lowercasing it (the directory name) is injective too: distinct tickers never
// share a directory. The directory is Qlib's own `code_to_fname(code).lower()`: codes
// that are Windows device names (CON, PRN, AUX, NUL, COM0-9, LPT0-9) get the `_qlib_`
// prefix, exactly as Qlib's reader expects (`CON` -> features/_qlib_con/).
//
// Thread safety: pure functions.

#pragma once

#include <string>
#include <string_view>

#include <arrow/result.h>

namespace qlake::qlib {

/// The Qlib instrument code of a ticker (see the table above). Invalid for an empty
/// ticker or one longer than 64 bytes.
arrow::Result<std::string> TickerToCode(std::string_view ticker);

/// Inverse of TickerToCode. Invalid (naming the code) if `code` is not a well-formed
/// code (lowercase letters, a dangling escape, bad hex, a stray guard).
arrow::Result<std::string> CodeToTicker(std::string_view code);

/// The features/ directory name Qlib opens for `code`: `code_to_fname(code).lower()`.
std::string CodeToDir(std::string_view code);

/// Field names become file names and `$name` references: 1-32 characters of [a-z0-9_],
/// starting with a letter. Invalid otherwise.
arrow::Status ValidateFieldName(std::string_view field);

}  // namespace qlake::qlib

// File: qlake/ingest/fields.h
//
// Strict parsers for the fields of a flat-file CSV row. Each returns false (never throws,
// never guesses) when the text is not exactly what the field allows, so the caller can
// quarantine the row with a precise reason. They work on std::string_view slices of the
// decompressed buffer: no allocation, no locale.
//
// Decimal prices: the common short form ("187.45", "0.0123", "12") is parsed as an exact
// integer mantissa divided by a power of ten, which is correctly rounded to double
// because both operands are exact (mantissa < 2^53, exponent <= 22). Anything else
// (exponents, long mantissas) falls back to std::from_chars, also correctly rounded. The
// result is the same double that DuckDB or pyarrow read, so casting it to float32 matches
// their CAST.
//
// Thread safety: pure functions.

#pragma once

#include <cstdint>
#include <string_view>

namespace qlake::ingest {

/// Result of parsing a decimal number.
enum class NumberStatus : uint8_t {
  kOk,
  kEmpty,      // empty field
  kMalformed,  // not a number at all ("abc", "1.2.3", "1e")
  kNotFinite,  // NaN, inf, or overflow to inf
};

/// Parses a decimal floating-point number (optional sign, digits, optional fraction,
/// optional exponent, or nan/inf spellings which yield kNotFinite).
NumberStatus ParseDecimal(std::string_view text, double* out);

/// Parses an unsigned integer that may carry a zero fraction ("1200" or "1200.0"; volumes
/// in some files are written as floats). Sets *negative for a leading '-' (value
/// untouched), *fractional for a non-zero fraction. Returns kOk only for a non-negative
/// whole number that fits in uint64.
NumberStatus ParseWholeNumber(std::string_view text, uint64_t* out, bool* negative,
                              bool* fractional);

/// Parses a plain integer of decimal digits with an optional leading '-'. Returns false
/// for anything else (including empty text, '+', spaces and overflow). *digits receives
/// the number of digits (timestamps must have 19).
bool ParseInt64(std::string_view text, int64_t* out, int* digits);

}  // namespace qlake::ingest

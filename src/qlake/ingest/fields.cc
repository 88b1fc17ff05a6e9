#include "qlake/ingest/fields.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace qlake::ingest {

namespace {

constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                             1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                             1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
constexpr uint64_t kMaxExactMantissa = uint64_t{1} << 53;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool LooksNonFinite(std::string_view t) {
  if (!t.empty() && (t[0] == '-' || t[0] == '+')) t.remove_prefix(1);
  if (t.empty()) return false;
  char c = static_cast<char>(t[0] | 0x20);
  return c == 'n' || c == 'i';
}

// Slow path: full grammar via std::from_chars (correctly rounded).
NumberStatus ParseDecimalSlow(std::string_view text, double* out) {
  std::string_view t = text;
  if (!t.empty() && t[0] == '+') t.remove_prefix(1);
  if (LooksNonFinite(t)) {
    double v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec == std::errc() && p == t.data() + t.size()) return NumberStatus::kNotFinite;
    return NumberStatus::kMalformed;
  }
  double v = 0;
  auto [p, ec] =
      std::from_chars(t.data(), t.data() + t.size(), v, std::chars_format::general);
  if (ec == std::errc::result_out_of_range) return NumberStatus::kNotFinite;
  if (ec != std::errc() || p != t.data() + t.size()) return NumberStatus::kMalformed;
  if (!std::isfinite(v)) return NumberStatus::kNotFinite;
  *out = v;
  return NumberStatus::kOk;
}

}  // namespace

NumberStatus ParseDecimal(std::string_view text, double* out) {
  if (text.empty()) return NumberStatus::kEmpty;
  const char* p = text.data();
  const char* end = p + text.size();
  bool neg = false;
  if (*p == '-') {
    neg = true;
    ++p;
  }
  uint64_t mantissa = 0;
  int int_digits = 0, frac_digits = 0;
  while (p < end && IsDigit(*p) && int_digits < 19) {
    mantissa = mantissa * 10 + static_cast<uint64_t>(*p - '0');
    ++p;
    ++int_digits;
  }
  if (p < end && *p == '.') {
    ++p;
    while (p < end && IsDigit(*p) && int_digits + frac_digits < 19) {
      mantissa = mantissa * 10 + static_cast<uint64_t>(*p - '0');
      ++p;
      ++frac_digits;
    }
  }
  if (p != end || int_digits + frac_digits == 0 || mantissa >= kMaxExactMantissa ||
      frac_digits > 22) {
    return ParseDecimalSlow(text, out);
  }
  double v = static_cast<double>(mantissa) / kPow10[frac_digits];
  *out = neg ? -v : v;
  return NumberStatus::kOk;
}

NumberStatus ParseWholeNumber(std::string_view text, uint64_t* out, bool* negative,
                              bool* fractional) {
  *negative = false;
  *fractional = false;
  if (text.empty()) return NumberStatus::kEmpty;
  const char* p = text.data();
  const char* end = p + text.size();
  if (*p == '-') {
    *negative = true;
    ++p;
  }
  uint64_t v = 0;
  const char* digits_begin = p;
  while (p < end && IsDigit(*p)) {
    uint64_t d = static_cast<uint64_t>(*p - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10)
      return NumberStatus::kMalformed;
    v = v * 10 + d;
    ++p;
  }
  bool any_digit = p != digits_begin;
  if (p < end && *p == '.') {
    ++p;
    const char* frac_begin = p;
    while (p < end && IsDigit(*p)) {
      if (*p != '0') *fractional = true;
      ++p;
    }
    any_digit |= p != frac_begin;
  }
  if (p != end || !any_digit) {
    // Not a plain decimal: maybe "1.2e3", "nan", "abc".
    double d = 0;
    auto st = ParseDecimalSlow(text, &d);
    if (st != NumberStatus::kOk) return st;
    if (d < 0) {
      *negative = true;
      return NumberStatus::kOk;
    }
    if (d != std::floor(d)) {
      *fractional = true;
      return NumberStatus::kOk;
    }
    if (d >= 18446744073709551616.0) return NumberStatus::kMalformed;
    *out = static_cast<uint64_t>(d);
    return NumberStatus::kOk;
  }
  if (!*negative && !*fractional) *out = v;
  return NumberStatus::kOk;
}

bool ParseInt64(std::string_view text, int64_t* out, int* digits) {
  const char* p = text.data();
  const char* end = p + text.size();
  bool neg = p < end && *p == '-';
  if (neg) ++p;
  const int n = static_cast<int>(end - p);
  if (n == 0 || n > 19) return false;
  uint64_t v = 0;
  for (; p < end; ++p) {
    unsigned d = static_cast<unsigned>(*p - '0');
    if (d > 9) return false;
    v = v * 10 + d;  // at most 19 digits: cannot overflow uint64
  }
  const uint64_t limit = neg ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  if (v > limit) return false;
  *out = neg ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
  *digits = n;
  return true;
}

}  // namespace qlake::ingest

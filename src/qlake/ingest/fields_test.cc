#include "qlake/ingest/fields.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace qlake::ingest {
namespace {

TEST(FieldsTest, DecimalFastPathIsCorrectlyRounded) {
  // Compare with strtod (correctly rounded in glibc) over many short decimals.
  uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < 200000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::string s =
        std::to_string(x % 100000000) + "." + std::to_string((x >> 30) % 10000);
    double ours = 0;
    ASSERT_EQ(ParseDecimal(s, &ours), NumberStatus::kOk) << s;
    EXPECT_EQ(ours, std::strtod(s.c_str(), nullptr)) << s;
  }
  double v = 0;
  EXPECT_EQ(ParseDecimal("0.0123", &v), NumberStatus::kOk);
  EXPECT_EQ(v, 0.0123);
  EXPECT_EQ(ParseDecimal("-187.45", &v), NumberStatus::kOk);
  EXPECT_EQ(v, -187.45);
  EXPECT_EQ(ParseDecimal("1.5e3", &v), NumberStatus::kOk);  // slow path
  EXPECT_EQ(v, 1500.0);
  EXPECT_EQ(ParseDecimal("12345678901234567890.5", &v), NumberStatus::kOk);
  EXPECT_EQ(v, 12345678901234567890.5);
  EXPECT_EQ(ParseDecimal("7.", &v), NumberStatus::kOk);
  EXPECT_EQ(v, 7.0);
}

TEST(FieldsTest, DecimalRejectsGarbageAndReportsNonFinite) {
  double v = 0;
  for (const char* bad :
       {"abc", "1.2.3", "1e", "--1", "1,5", " 1", "1 ", ".", "-", "0x10"}) {
    EXPECT_EQ(ParseDecimal(bad, &v), NumberStatus::kMalformed) << bad;
  }
  for (const char* nf : {"NaN", "nan", "inf", "-inf", "Infinity", "1e400"}) {
    EXPECT_EQ(ParseDecimal(nf, &v), NumberStatus::kNotFinite) << nf;
  }
  EXPECT_EQ(ParseDecimal("", &v), NumberStatus::kEmpty);
}

TEST(FieldsTest, WholeNumbers) {
  uint64_t v = 0;
  bool neg = false, frac = false;
  EXPECT_EQ(ParseWholeNumber("18446744073709551615", &v, &neg, &frac), NumberStatus::kOk);
  EXPECT_EQ(v, 18446744073709551615ULL);
  EXPECT_EQ(ParseWholeNumber("18446744073709551616", &v, &neg, &frac),
            NumberStatus::kMalformed);
  EXPECT_EQ(ParseWholeNumber("1200.0", &v, &neg, &frac), NumberStatus::kOk);
  EXPECT_EQ(v, 1200u);
  EXPECT_FALSE(frac);
  EXPECT_EQ(ParseWholeNumber("1200.5", &v, &neg, &frac), NumberStatus::kOk);
  EXPECT_TRUE(frac);
  EXPECT_EQ(ParseWholeNumber("-3", &v, &neg, &frac), NumberStatus::kOk);
  EXPECT_TRUE(neg);
  EXPECT_EQ(ParseWholeNumber("2e3", &v, &neg, &frac), NumberStatus::kOk);
  EXPECT_EQ(v, 2000u);
  EXPECT_EQ(ParseWholeNumber("x1", &v, &neg, &frac), NumberStatus::kMalformed);
  EXPECT_EQ(ParseWholeNumber("nan", &v, &neg, &frac), NumberStatus::kNotFinite);
  EXPECT_EQ(ParseWholeNumber("", &v, &neg, &frac), NumberStatus::kEmpty);
}

TEST(FieldsTest, Int64CountsDigits) {
  int64_t v = 0;
  int digits = 0;
  EXPECT_TRUE(ParseInt64("1759118400000000000", &v, &digits));
  EXPECT_EQ(v, 1759118400000000000LL);
  EXPECT_EQ(digits, 19);
  EXPECT_TRUE(ParseInt64("17591184000000000", &v, &digits));
  EXPECT_EQ(digits, 17);
  EXPECT_FALSE(ParseInt64("99999999999999999999", &v, &digits));  // overflow
  EXPECT_FALSE(ParseInt64("+1", &v, &digits));
  EXPECT_FALSE(ParseInt64("1.0", &v, &digits));
  EXPECT_FALSE(ParseInt64("", &v, &digits));
  EXPECT_FALSE(ParseInt64("-", &v, &digits));
}

}  // namespace
}  // namespace qlake::ingest
